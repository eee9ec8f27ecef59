"""Training throughput: our DDPG against Stable-Baselines3's DDPG, and against the floor.

With --algo td3, our TD3 against SB3's TD3 instead (both: policy_delay 2, target noise 0.2 clipped
at 0.5, two critics), alternated the same way; the floor parts (a), (b), (d) are DDPG's and are
not measured then, (c) is our TD3 update.

Per environment, --repeats times in turn: a run of our `Trainer`, of SB3's `DDPG` and of the floor
loop (d), with the same settings (hidden 256x256, batch 256, one update per env step, the same
learning_starts, Gaussian noise of std 0.1, a buffer that holds the run, no evaluation or logging);
each steps through learning_starts random and --warmup learning steps untimed, then times --steps
steps. Reported: median env steps/s of each, and the floor a DDPG learner cannot go below:
  (a) the environment alone, stepped with precomputed random actions (ms/step);
  (b) the minimal update: the same DDPG math (critic MSE step, actor step through the critic
      without the critic's weight gradients, foreach lerp Polyak averaging, fused AdamW) in the
      leanest plain-PyTorch form, on a fixed batch (ms/update);
  (c) our `DDPGAgent.update` alone on the same kind of fixed batch (ms/update);
  (d) the floor loop: (a) + a uniformly sampled batch + (b) per step, timed in the alternation;
and a cProfile of --profile-steps of our training steps. Needs the `bench` extra.

    python benchmarks/throughput.py [--out /tmp/throughput.md]
    python benchmarks/throughput.py --envs Pendulum-v1 --steps 500 --repeats 1 --profile-steps 0
    python benchmarks/throughput.py --algo td3 --envs Pendulum-v1 HalfCheetah-v5
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import inspect
import math
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import common
import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from common import OTHER_LOAD, Timer, table
from torch import Tensor

from ddpg.agent import DDPGAgent
from ddpg.buffer import Batch
from ddpg.config import Config
from ddpg.envs import check_env
from ddpg.train import Trainer

# Shared hyperparameters: the defaults of SB3's DDPG where they matter for cost, and ours set to
# match. Our weight decay is 0 so that our AdamW does the same work as SB3's Adam would with none.
HIDDEN, BATCH, GAMMA, TAU, LR, NOISE_STD, SEED = 256, 256, 0.99, 0.005, 1e-3, 0.1, 0
# TD3's three values, SB3's TD3 defaults and ours (the TD3 paper's).
POLICY_DELAY, TARGET_NOISE, TARGET_NOISE_CLIP = 2, 0.2, 0.5
DISTURBED = 0.05  # a timed section where other processes used more of the CPU is disturbed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = p.add_argument
    add("--envs", nargs="+", default=["Pendulum-v1", "HalfCheetah-v5"], help="environment ids")
    add("--steps", type=int, default=3_000, help="timed env steps per run (3000)")
    add("--learning-starts", type=int, default=1_000, help="random steps before learning (1000)")
    add("--warmup", type=int, default=200, help="untimed learning steps before the timed (200)")
    add("--repeats", type=int, default=3, help="runs of each library per env (3)")
    add("--floor-steps", type=int, default=5_000, help="env steps per env-only measurement")
    add("--update-iters", type=int, default=500, help="updates per update-only measurement")
    add("--profile-steps", type=int, default=500, help="steps to profile per env (0: none)")
    add("--algo", choices=("ddpg", "td3"), default="ddpg", help="both libraries' algorithm")
    add("--out", help="also write the markdown report to this file")
    return p.parse_args(argv)


# -- full training runs ------------------------------------------------------------------------
def our_config(env_id: str, learning_starts: int, buffer_size: int, algo: str = "ddpg") -> Config:
    td3 = {"policy_delay": POLICY_DELAY, "target_noise": TARGET_NOISE}
    td3 |= {"target_noise_clip": TARGET_NOISE_CLIP}
    return Config(algo=algo, **(td3 if algo == "td3" else {}),
        env_id=env_id, seed=SEED, total_steps=buffer_size, hidden_size=HIDDEN, batch_norm=False,
        gamma=GAMMA, actor_lr=LR, critic_lr=LR, weight_decay=0.0, batch_size=BATCH,
        buffer_size=buffer_size, tau=TAU, noise="gaussian", noise_std=NOISE_STD,
        learning_starts=learning_starts, updates_per_step=1, eval_every=0, checkpoint_every=0,
        tensorboard=False, torch_threads=0,  # torch's default
    )  # fmt: skip


def run_ours(env_id: str, learning_starts: int, warmup: int, steps: int, algo: str) -> float:
    """Env steps/s of our Trainer over `steps` steps after learning_starts + warmup."""
    trainer = Trainer(our_config(env_id, learning_starts, learning_starts + warmup + steps, algo))
    try:
        trainer.run(max_steps=learning_starts + warmup)
        updates = trainer.state.updates
        with Timer(f"ours {env_id}") as timer:
            trainer.run(max_steps=learning_starts + warmup + steps)
        assert trainer.state.step == learning_starts + warmup + steps
        assert trainer.state.updates - updates == steps, "one update per timed step"
    finally:
        trainer.close()
    return steps / timer.elapsed


def run_sb3(env_id: str, learning_starts: int, warmup: int, steps: int, algo: str) -> float:
    """Env steps/s of SB3's DDPG (or TD3) over `steps` steps after learning_starts + warmup."""
    from stable_baselines3 import DDPG, TD3
    from stable_baselines3.common.noise import NormalActionNoise

    env = gym.make(env_id)
    n = env.action_space.shape[0]
    td3 = {"policy_delay": POLICY_DELAY, "target_policy_noise": TARGET_NOISE}
    td3 |= {"target_noise_clip": TARGET_NOISE_CLIP}
    model = (TD3 if algo == "td3" else DDPG)(
        "MlpPolicy", env, **(td3 if algo == "td3" else {}),
        learning_rate=LR, buffer_size=learning_starts + warmup + steps,
        learning_starts=learning_starts, batch_size=BATCH, tau=TAU, gamma=GAMMA, train_freq=1,
        gradient_steps=1, action_noise=NormalActionNoise(np.zeros(n), NOISE_STD * np.ones(n)),
        policy_kwargs={"net_arch": [HIDDEN, HIDDEN]}, seed=SEED, device="cpu", verbose=0,
    )  # fmt: skip
    try:
        model.learn(total_timesteps=learning_starts + warmup)
        updates = model._n_updates
        with Timer(f"SB3 {env_id}") as timer:
            model.learn(total_timesteps=steps, reset_num_timesteps=False)
        assert model.num_timesteps == learning_starts + warmup + steps, model.num_timesteps
        assert model._n_updates - updates == steps, "one update per timed step"
    finally:
        model.env.close()
    return steps / timer.elapsed


# -- floor (b): the minimal update in plain PyTorch --------------------------------------------
def _layers(sizes: list[int], gen: torch.Generator) -> list[Tensor]:
    """Weights and biases of an MLP, PyTorch's default Linear init; the last layer as DDPG's."""
    params: list[Tensor] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        bound = 3e-3 if i == len(sizes) - 2 else 1.0 / n_in**0.5
        params.append((torch.rand(n_out, n_in, generator=gen) * 2 - 1) * bound)
        params.append((torch.rand(n_out, generator=gen) * 2 - 1) * bound)
    return [p.requires_grad_() for p in params]


def _mlp(p: list[Tensor], x: Tensor) -> Tensor:
    x = F.leaky_relu(F.linear(x, p[0], p[1]))
    return F.linear(F.leaky_relu(F.linear(x, p[2], p[3])), p[4], p[5])


def _actor(p: list[Tensor], obs: Tensor) -> Tensor:
    return torch.tanh(_mlp(p, obs))


def _critic(p: list[Tensor], obs: Tensor, act: Tensor) -> Tensor:
    return _mlp(p, torch.cat([obs, act], dim=1)).squeeze(1)


class MinimalDDPG:
    def __init__(self, obs_dim: int, act_dim: int) -> None:
        gen = torch.Generator().manual_seed(SEED)
        self.actor = _layers([obs_dim, HIDDEN, HIDDEN, act_dim], gen)
        self.critic = _layers([obs_dim + act_dim, HIDDEN, HIDDEN, 1], gen)
        self.actor_target = [p.detach().clone() for p in self.actor]
        self.critic_target = [p.detach().clone() for p in self.critic]
        kw: dict[str, Any] = {"lr": LR, "weight_decay": 0.0, "fused": True}
        self.actor_opt = torch.optim.AdamW(self.actor, **kw)
        self.critic_opt = torch.optim.AdamW(self.critic, **kw)
        self.targets, self.onlines = (
            self.critic_target + self.actor_target,
            self.critic + self.actor,
        )

    def update(self, b: Batch) -> None:
        """One DDPG update with nothing but the math: no modules, no hooks, no mode switches.
        `autograd.grad` asks only for the wanted parameters' gradients, so the actor's backward
        pass through the critic never computes the critic's weight gradients."""
        with torch.no_grad():
            next_q = _critic(self.critic_target, b.next_obs, _actor(self.actor_target, b.next_obs))
            target = b.reward + GAMMA * (1.0 - b.terminated) * next_q
        critic_loss = F.mse_loss(_critic(self.critic, b.obs, b.action), target)
        for p, g in zip(self.critic, torch.autograd.grad(critic_loss, self.critic), strict=True):
            p.grad = g
        self.critic_opt.step()
        actor_loss = -_critic(self.critic, b.obs, _actor(self.actor, b.obs)).mean()
        for p, g in zip(self.actor, torch.autograd.grad(actor_loss, self.actor), strict=True):
            p.grad = g
        self.actor_opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(self.targets, self.onlines, TAU)


def run_floor(env_id: str, learning_starts: int, warmup: int, steps: int, algo: str) -> float:
    """Env steps/s of the floor loop: per step, `env.step` with a precomputed random action, a
    uniformly sampled batch (`torch.randint` + `index_select` from preallocated random storage)
    and the minimal update; no acting, no storing, no bookkeeping. Timed like the two libraries."""
    env = gym.make(env_id)
    info = check_env(env)
    actions = common.random_actions(env, warmup + steps, SEED)
    size = learning_starts + warmup + steps
    gen = torch.Generator().manual_seed(SEED)
    storage = fixed_batch(info.obs_dim, info.act_dim, size)
    minimal = MinimalDDPG(info.obs_dim, info.act_dim)

    def floor_steps(first: int, last: int) -> None:
        for action in actions[first:last]:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
            idx = torch.randint(0, size, (BATCH,), generator=gen)
            minimal.update(Batch(*(torch.index_select(t, 0, idx) for t in storage)))

    env.reset(seed=SEED)
    try:
        floor_steps(0, warmup)
        with Timer(f"floor {env_id}") as timer:
            floor_steps(warmup, warmup + steps)
    finally:
        env.close()
    return steps / timer.elapsed


def fixed_batch(obs_dim: int, act_dim: int, n: int = BATCH) -> Batch:
    gen = torch.Generator().manual_seed(SEED + 1)
    return Batch(
        obs=torch.randn(n, obs_dim, generator=gen),
        action=torch.rand(n, act_dim, generator=gen) * 2 - 1,
        reward=torch.randn(n, generator=gen),
        next_obs=torch.randn(n, obs_dim, generator=gen),
        terminated=(torch.rand(n, generator=gen) < 0.01).float(),
    )


def time_calls(label: str, fn: Callable[[], object], iters: int, warmup: int = 50) -> float:
    """ms per call of `fn`, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    with Timer(label) as timer:
        for _ in range(iters):
            fn()
    return timer.elapsed / iters * 1e3


def update_floors(env_id: str, iters: int, repeats: int, algo: str) -> tuple[float, float]:
    """Median ms/update of the minimal update and of our DDPGAgent.update, interleaved; with TD3
    only ours (NaN for the minimal DDPG update), over consecutive update numbers."""
    env = gym.make(env_id)
    info = check_env(env)
    env.close()
    batch = fixed_batch(info.obs_dim, info.act_dim)
    minimal = MinimalDDPG(info.obs_dim, info.act_dim)
    agent = DDPGAgent(info, our_config(env_id, 0, BATCH, algo))
    index = iter(range(1 << 62))
    mins, ours = [], []
    for _ in range(repeats):
        if algo == "ddpg":
            mins.append(
                time_calls(f"minimal update {env_id}", lambda: minimal.update(batch), iters)
            )
        ours.append(
            time_calls(f"our update {env_id}", lambda: agent.update(batch, next(index)), iters)
        )
    return (statistics.median(mins) if mins else math.nan), statistics.median(ours)


# -- profile -----------------------------------------------------------------------------------
# What the torch-internal names in a profile of `DDPGAgent.update` stand for.
HINTS = {
    "(_wrapped_call_impl)": "nn.Module calls: forward passes",
    "_tensor.py:566(backward)": "Tensor.backward",
    "optimizer.py:509(wrapper)": "Optimizer.step",
    "_compile.py:42(inner)": "Optimizer.zero_grad",
    "(train)": "Module.train",
    "(eval)": "Module.eval",
}


def _key(func: Callable[..., Any]) -> tuple[str, int, str]:
    code = inspect.unwrap(func).__code__
    return code.co_filename, code.co_firstlineno, code.co_name


def _short(key: tuple[str, int, str]) -> str:
    """A profile entry's name, its path from site-packages or src; hinted where torch's is not
    telling; torch's no_grad wrapper named by the function it wraps."""
    filename, line, name = key
    if filename == "~":
        return name  # a builtin or C function
    parts = filename.replace("\\", "/").split("/")
    anchor = next((a for a in ("site-packages", "src") if a in parts), None)
    parts = parts[parts.index(anchor) + 1 :] if anchor else parts[-2:]
    short = f"{'/'.join(parts)}:{line}({name})"
    hint = next((h for pattern, h in HINTS.items() if short.endswith(pattern)), None)
    return f"{short} [{hint}]" if hint else short


def profile_ours(
    env_id: str, learning_starts: int, warmup: int, steps: int, algo: str = "ddpg"
) -> list[str]:
    """cProfile `steps` of our training steps; markdown lines: what `train_step`, `update` and
    `policy` call directly (inclusive ms per step) and the functions with the most own time."""
    trainer = Trainer(our_config(env_id, learning_starts, learning_starts + warmup + steps, algo))
    trainer.run(max_steps=learning_starts + warmup)
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.runcall(trainer.run, max_steps=learning_starts + warmup + steps)
    wall = time.perf_counter() - start
    trainer.close()
    entries: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = entries[_key(Trainer.train_step)][3]

    def ms(t: float) -> str:
        return f"{t / steps * 1e3:.3f}"

    rows = []
    for parent in (Trainer.train_step, DDPGAgent.update, DDPGAgent.policy):
        func, key = inspect.unwrap(parent), _key(parent)
        if key not in entries:
            continue
        calls = sorted(((c[key][3], c[key][0], k) for k, (*_, c) in entries.items() if key in c))
        shown = calls[::-1][:8]
        name = f"`{func.__qualname__}`"
        for cum, n, child in shown:
            label = _short(child)
            if child[2] == "decorate_context":  # torch.no_grad's wrapper: name what it wraps
                inner = [k for k, (*_, c) in entries.items() if child in c and "ddpg" in k[0]
                         and k[2] in func.__code__.co_names]  # fmt: skip
                label = f"{inner[0][2]} (inside @torch.no_grad)" if inner else label
            rows.append([name, f"`{label}`", str(n), ms(cum), f"{cum / total:.1%}"])
        rest = entries[key][3] - sum(c[0] for c in shown)
        rows.append([name, "(own lines and other callees)", "", ms(rest), f"{rest / total:.1%}"])
    own = sorted(entries.items(), key=lambda kv: -kv[1][2])[:10]
    return [
        f"cProfile of {steps} training steps on {env_id} (after {learning_starts} random and "
        f"{warmup} learning steps): {wall / steps * 1e3:.3f} ms/step under the profiler "
        f"(profiler overhead included), {ms(total)} ms/step inside `Trainer.train_step`.",
        "",
        *table(["caller", "callee", "calls", "ms/step", "share of train_step"], rows, "ll"),
        "",
        *table(
            ["function with most own time (tottime)", "calls", "own ms/step"],
            [[f"`{_short(k)}`", str(v[1]), ms(v[2])] for k, v in own],
        ),
    ]


# -- report ------------------------------------------------------------------------------------
@dataclass
class EnvResult:
    env_id: str
    ours: list[float]
    sb3: list[float]
    floor: list[float]
    env_ms: float
    minimal_ms: float
    update_ms: float


HEADERS = (
    ["env", "ours steps/s", "SB3 steps/s", "ours/SB3", "ours, all runs", "SB3, all runs"],
    ["env", "ours steps/s", "floor loop steps/s", "ours/floor per step, median", "per repeat"],
    ["env", "(a) env ms/step", "(b) floor update ms", "(c) our update ms", "(c)/(b)",
     "ours ms/step", "floor ms/step", "ours/floor", "ours - (a) - (c) ms"],
)  # fmt: skip


def report(args: argparse.Namespace, results: list[EnvResult], profile: list[str]) -> str:
    med, rows = statistics.median, ([], [], [])
    for r in results:
        ours, sb3 = med(r.ours), med(r.sb3)
        rows[0].append(
            [r.env_id, f"{ours:.0f}", f"{sb3:.0f}", f"{ours / sb3:.2f}x"]
            + [", ".join(f"{x:.0f}" for x in xs) for xs in (r.ours, r.sb3)]
        )
        if not r.floor:  # TD3: no floor loop
            continue
        ratios = [f / o for o, f in zip(r.ours, r.floor, strict=True)]
        floor = [f"{ours:.0f}", f"{med(r.floor):.0f}", f"{med(ratios):.2f}x"]
        rows[1].append([r.env_id, *floor, ", ".join(f"{x:.2f}x" for x in ratios)])
        ours_ms, floor_ms = 1e3 / ours, r.env_ms + r.minimal_ms
        rest = ours_ms - r.env_ms - r.update_ms
        ms = [r.env_ms, r.minimal_ms, r.update_ms, ours_ms, floor_ms, rest]
        a, b, c, o, f, rest = (f"{v:.3f}" for v in ms)
        x = [f"{r.update_ms / r.minimal_ms:.2f}x", f"{ours_ms / floor_ms:.2f}x"]
        rows[2].append([r.env_id, a, b, c, x[0], o, f, x[1], rest])
    name = {"ddpg": "DDPG", "td3": "TD3"}[args.algo]
    out = [
        f"## Throughput ({name})",
        "",
        f"Env steps/s over the {args.steps} timed steps of each run (after "
        f"{args.learning_starts} random steps and {args.warmup} untimed learning steps), "
        f"median of {args.repeats} alternating runs per library. One update per env step, "
        f"hidden {HIDDEN}x{HIDDEN}, batch {BATCH}"
        + (
            f"; TD3: policy_delay {POLICY_DELAY}, target noise {TARGET_NOISE} clipped at "
            f"{TARGET_NOISE_CLIP}, two critics, ours against SB3's TD3."
            if args.algo == "td3"
            else "."
        ),
        "",
        *table(HEADERS[0], rows[0], "lrrrll"),
        "",
    ]
    if args.algo == "td3":
        out += [
            "Our TD3 update alone on a fixed batch (ms/update, over consecutive update numbers, so "
            "half of them with the actor step): "
            + ", ".join(f"{r.env_id} {r.update_ms:.3f}" for r in results)
            + ".",
            "",
        ]
    else:
        out += [
            "## Against the floor loop",
            "",
            "The floor loop (module docstring, (d)) runs in the same alternation as the two "
            "libraries. Ratios are per repeat (ours and the floor loop measured back to back), "
            "then the median. The issue's target is ours/floor <= 1.1.",
            "",
            *table(HEADERS[1], rows[1], "lrrrl"),
            "",
            "## Floor, by parts",
            "",
            "(a), (b), (c) as in the module docstring. Ours per step is 1000 / (ours steps/s); "
            "floor per step is (a) + (b). The last column is what a training step costs beyond the "
            "env step and the update itself: acting (actor forward, noise), replay add and "
            "sample, bookkeeping.",
            "",
            *table(HEADERS[2], rows[2]),
            "",
        ]
    out += [
        "## Machine",
        "",
        f"- CPU: {common.cpu_model()} ({common.cpu_count()} cores available)",
        f"- torch threads: {torch.get_num_threads()} intra-op (torch's default, not set), "
        f"{torch.get_num_interop_threads()} inter-op",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in common.versions().items()),
        f"- command: `{common.command(sys.argv)}`",
    ]
    if OTHER_LOAD:
        worst = max(OTHER_LOAD, key=lambda x: x[1])
        busy = sorted({label for label, share in OTHER_LOAD if share > DISTURBED})
        note = f"; above {DISTURBED:.0%} in: {', '.join(busy)} (those numbers are disturbed)"
        out.append(
            f"- other processes' share of the machine's CPU time during the {len(OTHER_LOAD)} "
            f"timed sections of 1 s or more: median {med(x[1] for x in OTHER_LOAD):.1%}, "
            f"max {worst[1]:.1%} ({worst[0]})" + (note if busy else "")
        )
    return "\n".join(out + (["", "## Profile", "", *profile] if profile else [])) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if min(args.steps, args.repeats, args.floor_steps, args.update_iters) < 1:
        print("throughput.py: counts must be >= 1", file=sys.stderr)
        return 2
    if args.learning_starts < BATCH:
        print(f"throughput.py: --learning-starts must be >= {BATCH} (one batch)", file=sys.stderr)
        return 2
    for env_id in args.envs:
        try:
            gym.make(env_id).close()
        except Exception as exc:  # e.g. MuJoCo missing
            print(f"throughput.py: cannot make {env_id}: {exc}", file=sys.stderr)
            return 1

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {common.cpu_model()}")
    start = time.perf_counter()
    results = []
    # TD3: ours and SB3's alternate; the floor loop is DDPG's and is left out.
    runs = (run_ours, run_sb3, run_floor)[: 3 if args.algo == "ddpg" else 2]
    for env_id in args.envs:
        env_ms = statistics.median(
            common.env_ms_per_step(env_id, args.floor_steps) for _ in range(args.repeats)
        )
        minimal_ms, update_ms = update_floors(env_id, args.update_iters, args.repeats, args.algo)
        print(f"{env_id}: env {env_ms:.3f} ms/step, minimal update {minimal_ms:.3f} ms, "
              f"our update {update_ms:.3f} ms", flush=True)  # fmt: skip
        rates: list[list[float]] = [[], [], []]
        for i in range(args.repeats):
            for fn, out in zip(runs, rates, strict=False):
                gc.collect()
                out.append(fn(env_id, args.learning_starts, args.warmup, args.steps, args.algo))
            others = ", ".join(f"{share:.1%}" for _, share in OTHER_LOAD[-3:])
            floor = f", floor loop {rates[2][-1]:.0f} steps/s" if rates[2] else ""
            print(f"{env_id} run {i + 1}/{args.repeats}: ours {rates[0][-1]:.0f} steps/s, SB3 "
                  f"{rates[1][-1]:.0f} steps/s{floor} (other processes' CPU share: {others})",
                  flush=True)  # fmt: skip
        results.append(EnvResult(env_id, *rates, env_ms, minimal_ms, update_ms))

    profile: list[str] = []
    for env_id in args.envs if args.profile_steps else []:
        gc.collect()
        profile += profile_ours(
            env_id, args.learning_starts, args.warmup, args.profile_steps, args.algo
        )
        profile.append("")
    text = report(args, results, profile)
    text += f"\nTotal time of this invocation: {time.perf_counter() - start:.0f} s.\n"
    print(f"\n{text}")
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
