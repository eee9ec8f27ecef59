"""Training throughput: our DDPG against Stable-Baselines3's DDPG, and against the floor.

For each environment the script alternates a run of our `Trainer`, a run of SB3's `DDPG` and a
run of the floor loop (below), with the same settings (two hidden layers of 256, batch 256, one
gradient step per env step, the same learning_starts, Gaussian exploration noise of std 0.1, a
replay buffer that holds the whole run, no evaluation, no logging to disk), `--repeats` times, and
reports the median env steps/s of each over the learning phase only: every run first steps
through `learning_starts` random steps plus `--warmup` learning steps untimed, then times
`--steps` further steps.

In the same invocation it measures the floor a DDPG learner cannot go below:

  (a) the environment alone, stepped with precomputed random actions (ms/step);
  (b) the minimal update: the same DDPG math (critic MSE step, actor step through the critic
      without computing the critic's weight gradients, foreach lerp Polyak averaging, fused
      AdamW) in the leanest plain-PyTorch form, on a fixed batch (ms/update);
  (c) our `DDPGAgent.update` alone on the same kind of fixed batch (ms/update);
  (d) the floor loop: (a) + a uniformly sampled batch + (b) per step, timed in the same
      alternation as the two libraries so that all three see the same machine;

and compares our time per training step with (d), and with (a) + (b). Finally it profiles
`--profile-steps` of our training steps with cProfile and prints where a step's time goes.

Needs the `bench` extra:  pip install -e ".[bench]"  (Stable-Baselines3 and MuJoCo).

    python benchmarks/throughput.py
    python benchmarks/throughput.py --envs Pendulum-v1 --steps 500 --repeats 1 --profile-steps 0
    python benchmarks/throughput.py --out /tmp/throughput.md
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import inspect
import os
import platform
import pstats
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from common import cpu_count, cpu_model  # benchmarks/common.py, beside this script
from torch import Tensor

from ddpg.agent import DDPGAgent
from ddpg.buffer import Batch
from ddpg.config import Config
from ddpg.envs import check_env
from ddpg.train import Trainer

# Shared hyperparameters: the defaults of SB3's DDPG where they matter for cost, and ours set to
# match. Our weight decay is 0 so that our AdamW does the same work as SB3's Adam would with none.
HIDDEN = 256
BATCH = 256
GAMMA = 0.99
TAU = 0.005
LR = 1e-3
NOISE_STD = 0.1
SEED = 0
# A timed section during which other processes used more than this share of the machine's CPU
# time is reported as disturbed.
DISTURBED = 0.05


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--envs",
        nargs="+",
        default=["Pendulum-v1", "HalfCheetah-v5"],
        help="environment ids (default: Pendulum-v1 HalfCheetah-v5)",
    )
    p.add_argument("--steps", type=int, default=3_000, help="timed env steps per run (3000)")
    p.add_argument(
        "--learning-starts", type=int, default=1_000, help="random steps before learning (1000)"
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=200,
        help="untimed learning steps after learning_starts, before the timed ones (200)",
    )
    p.add_argument("--repeats", type=int, default=3, help="runs of each library per env (3)")
    p.add_argument(
        "--floor-steps",
        type=int,
        default=5_000,
        help="env steps per env-only measurement, median of --repeats (5000)",
    )
    p.add_argument(
        "--update-iters", type=int, default=500, help="updates per update-only measurement (500)"
    )
    p.add_argument(
        "--profile-steps",
        type=int,
        default=500,
        help="our training steps to profile with cProfile per env (500; 0: no profile)",
    )
    p.add_argument("--out", help="also write the markdown report to this file")
    return p.parse_args(argv)


# -- machine and versions ----------------------------------------------------------------------
def versions() -> dict[str, str]:
    import stable_baselines3

    out = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "stable-baselines3": stable_baselines3.__version__,
        "gymnasium": gym.__version__,
        "numpy": np.__version__,
    }
    try:
        import mujoco

        out["mujoco"] = mujoco.__version__
    except ImportError:
        out["mujoco"] = "not installed"
    return out


# -- timing, and a watch on the rest of the machine ----------------------------------------------
def _busy_ticks() -> tuple[int, int] | None:
    """(busy clock ticks of the whole machine, of this process) from /proc; None off Linux."""
    try:
        with open("/proc/stat") as f:
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(
                int, f.readline().split()[1:9]
            )
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return user + nice + system + irq + softirq + steal, int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None


# (what was timed, share of the machine's CPU time other processes used meanwhile)
OTHER_LOAD: list[tuple[str, float]] = []


class Timer:
    """Wall time of a block; also records how busy other processes kept the machine during it,
    so that a benchmark disturbed by other work says so."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.elapsed = 0.0

    def __enter__(self) -> Timer:
        self._ticks = _busy_ticks()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.perf_counter() - self._start
        end = _busy_ticks()
        # Clock ticks are 10 ms: only sections of a second or more give a meaningful share.
        if self._ticks is not None and end is not None and self.elapsed >= 1.0:
            machine, mine = (b - a for a, b in zip(self._ticks, end, strict=True))
            capacity = self.elapsed * os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)
            OTHER_LOAD.append((self.label, max(machine - mine, 0) / capacity))


# -- full training runs ------------------------------------------------------------------------
def our_config(env_id: str, learning_starts: int, buffer_size: int) -> Config:
    return Config(
        env_id=env_id,
        seed=SEED,
        total_steps=buffer_size,
        hidden_size=HIDDEN,
        batch_norm=False,
        gamma=GAMMA,
        actor_lr=LR,
        critic_lr=LR,
        weight_decay=0.0,
        batch_size=BATCH,
        buffer_size=buffer_size,
        tau=TAU,
        noise="gaussian",
        noise_std=NOISE_STD,
        learning_starts=learning_starts,
        updates_per_step=1,
        eval_every=0,
        checkpoint_every=0,
        tensorboard=False,
        torch_threads=0,  # torch's default
    )


def run_ours(env_id: str, learning_starts: int, warmup: int, steps: int) -> float:
    """Env steps/s of our Trainer over `steps` steps after learning_starts + warmup."""
    config = our_config(env_id, learning_starts, learning_starts + warmup + steps)
    trainer = Trainer(config, run_dir=None)
    try:
        trainer.run(max_steps=learning_starts + warmup)
        updates = trainer.agent.updates
        with Timer(f"ours {env_id}") as timer:
            trainer.run(max_steps=learning_starts + warmup + steps)
        assert trainer.step == learning_starts + warmup + steps
        assert trainer.agent.updates - updates == steps, "one update per timed step"
    finally:
        trainer.close()
    return steps / timer.elapsed


def run_sb3(env_id: str, learning_starts: int, warmup: int, steps: int) -> float:
    """Env steps/s of SB3's DDPG over `steps` steps after learning_starts + warmup."""
    from stable_baselines3 import DDPG
    from stable_baselines3.common.noise import NormalActionNoise

    env = gym.make(env_id)
    act_dim = env.action_space.shape[0]
    model = DDPG(
        "MlpPolicy",
        env,
        learning_rate=LR,
        buffer_size=learning_starts + warmup + steps,
        learning_starts=learning_starts,
        batch_size=BATCH,
        tau=TAU,
        gamma=GAMMA,
        train_freq=1,
        gradient_steps=1,
        action_noise=NormalActionNoise(np.zeros(act_dim), NOISE_STD * np.ones(act_dim)),
        policy_kwargs={"net_arch": [HIDDEN, HIDDEN]},
        seed=SEED,
        device="cpu",
        verbose=0,
    )
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


# -- floor (a): the environment alone ----------------------------------------------------------
def env_ms_per_step(env_id: str, steps: int) -> float:
    env = gym.make(env_id)
    low, high = env.action_space.low, env.action_space.high
    rng = np.random.default_rng(SEED)
    actions = rng.uniform(low, high, size=(steps, low.size)).astype(np.float32)
    env.reset(seed=SEED)
    with Timer(f"env {env_id}") as timer:
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
    env.close()
    return timer.elapsed / steps * 1e3


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
    x = F.leaky_relu(F.linear(x, p[2], p[3]))
    return F.linear(x, p[4], p[5])


def _actor(p: list[Tensor], obs: Tensor) -> Tensor:
    return torch.tanh(_mlp(p, obs))


def _critic(p: list[Tensor], obs: Tensor, act: Tensor) -> Tensor:
    return _mlp(p, torch.cat([obs, act], dim=1)).squeeze(1)


@dataclass
class MinimalDDPG:
    actor: list[Tensor]
    critic: list[Tensor]
    actor_target: list[Tensor]
    critic_target: list[Tensor]
    actor_opt: torch.optim.Optimizer
    critic_opt: torch.optim.Optimizer
    targets: list[Tensor] = field(default_factory=list)
    onlines: list[Tensor] = field(default_factory=list)


def make_minimal(obs_dim: int, act_dim: int) -> MinimalDDPG:
    gen = torch.Generator().manual_seed(SEED)
    actor = _layers([obs_dim, HIDDEN, HIDDEN, act_dim], gen)
    critic = _layers([obs_dim + act_dim, HIDDEN, HIDDEN, 1], gen)
    actor_t = [p.detach().clone() for p in actor]
    critic_t = [p.detach().clone() for p in critic]
    kw: dict[str, Any] = {"lr": LR, "weight_decay": 0.0, "fused": True}
    return MinimalDDPG(
        actor,
        critic,
        actor_t,
        critic_t,
        torch.optim.AdamW(actor, **kw),
        torch.optim.AdamW(critic, **kw),
        critic_t + actor_t,
        critic + actor,
    )


def minimal_update(m: MinimalDDPG, b: Batch) -> None:
    """One DDPG update with nothing but the math: no modules, no hooks, no mode switches.
    `autograd.grad` asks only for the wanted parameters' gradients, so the actor's backward
    pass through the critic never computes the critic's weight gradients."""
    with torch.no_grad():
        next_q = _critic(m.critic_target, b.next_obs, _actor(m.actor_target, b.next_obs))
        target = b.reward + GAMMA * (1.0 - b.terminated) * next_q
    critic_loss = F.mse_loss(_critic(m.critic, b.obs, b.action), target)
    for p, g in zip(m.critic, torch.autograd.grad(critic_loss, m.critic), strict=True):
        p.grad = g
    m.critic_opt.step()
    actor_loss = -_critic(m.critic, b.obs, _actor(m.actor, b.obs)).mean()
    for p, g in zip(m.actor, torch.autograd.grad(actor_loss, m.actor), strict=True):
        p.grad = g
    m.actor_opt.step()
    with torch.no_grad():
        torch._foreach_lerp_(m.targets, m.onlines, TAU)


def run_floor(env_id: str, learning_starts: int, warmup: int, steps: int) -> float:
    """Env steps/s of the floor loop: per step, `env.step` with a precomputed random action, a
    uniformly sampled batch (`torch.randint` + `index_select` from preallocated random storage)
    and `minimal_update`; no acting, no storing, no bookkeeping. Timed like the two libraries."""
    env = gym.make(env_id)
    info = check_env(env)
    low, high = env.action_space.low, env.action_space.high
    rng = np.random.default_rng(SEED)
    total = warmup + steps
    actions = rng.uniform(low, high, size=(total, low.size)).astype(np.float32)
    size = learning_starts + total
    gen = torch.Generator().manual_seed(SEED)
    storage = fixed_batch(info.obs_dim, info.act_dim, size)
    minimal = make_minimal(info.obs_dim, info.act_dim)

    def floor_steps(first: int, last: int) -> None:
        for action in actions[first:last]:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
            idx = torch.randint(0, size, (BATCH,), generator=gen)
            minimal_update(minimal, Batch(*(torch.index_select(t, 0, idx) for t in storage)))

    env.reset(seed=SEED)
    try:
        floor_steps(0, warmup)
        with Timer(f"floor {env_id}") as timer:
            floor_steps(warmup, total)
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


def update_floors(env_id: str, iters: int, repeats: int) -> tuple[float, float]:
    """Median ms/update of the minimal update and of our DDPGAgent.update, interleaved."""
    env = gym.make(env_id)
    info = check_env(env)
    env.close()
    batch = fixed_batch(info.obs_dim, info.act_dim)
    minimal = make_minimal(info.obs_dim, info.act_dim)
    agent = DDPGAgent(info, our_config(env_id, 0, BATCH))
    mins, ours = [], []
    for _ in range(repeats):
        mins.append(
            time_calls(f"minimal update {env_id}", lambda: minimal_update(minimal, batch), iters)
        )
        ours.append(time_calls(f"our update {env_id}", lambda: agent.update(batch), iters))
    return statistics.median(mins), statistics.median(ours)


# -- profile -----------------------------------------------------------------------------------
def profile_ours(env_id: str, learning_starts: int, warmup: int, steps: int) -> list[str]:
    """cProfile `steps` of our training steps; markdown lines: what `train_step`, `update` and
    `policy` call directly (inclusive ms per step) and the functions with the most own time."""
    config = our_config(env_id, learning_starts, learning_starts + warmup + steps)
    trainer = Trainer(config, run_dir=None)
    trainer.run(max_steps=learning_starts + warmup)
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    trainer.run(max_steps=learning_starts + warmup + steps)
    profiler.disable()
    wall = time.perf_counter() - start
    trainer.close()
    entries: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    step_total = entries[_key(Trainer.train_step)][3]
    lines = [
        f"cProfile of {steps} training steps on {env_id} (after {learning_starts} random and "
        f"{warmup} learning steps): {wall / steps * 1e3:.3f} ms/step under the profiler "
        f"(profiler overhead included), {step_total / steps * 1e3:.3f} ms/step inside "
        "`Trainer.train_step`.",
        "",
        "| caller | callee | calls | ms/step | share of train_step |",
        "|---|---|---:|---:|---:|",
    ]
    for parent in (Trainer.train_step, DDPGAgent.update, DDPGAgent.policy):
        func = inspect.unwrap(parent)
        key = _key(func)
        if key not in entries:
            continue
        parent_total = entries[key][3]
        children = [
            (callers[key][3], callers[key][0], child)
            for child, (*_, callers) in entries.items()
            if key in callers
        ]
        children.sort(reverse=True)
        shown = children[:8]
        for cumtime, ncalls, child in shown:
            lines.append(
                f"| `{func.__qualname__}` | `{_label(entries, func, child)}` | {ncalls} "
                f"| {cumtime / steps * 1e3:.3f} | {cumtime / step_total * 100:.1f}% |"
            )
        rest = parent_total - sum(c[0] for c in shown)
        lines.append(
            f"| `{func.__qualname__}` | (own lines and other callees) | | "
            f"{rest / steps * 1e3:.3f} | {rest / step_total * 100:.1f}% |"
        )
    lines += [
        "",
        "| function with most own time (tottime) | calls | own ms/step |",
        "|---|---:|---:|",
    ]
    for key, (_, ncalls, tottime, _, _) in sorted(entries.items(), key=lambda kv: -kv[1][2])[:10]:
        lines.append(f"| `{_short(*key)}` | {ncalls} | {tottime / steps * 1e3:.3f} |")
    return lines


def _key(func: Callable[..., Any]) -> tuple[str, int, str]:
    code = inspect.unwrap(func).__code__
    return code.co_filename, code.co_firstlineno, code.co_name


def _label(entries: dict[Any, Any], parent: Callable[..., Any], child: tuple[str, int, str]) -> str:
    """`child` shortened; torch's decorator wrapper is named by the function it wraps."""
    if child[2] == "decorate_context":
        for key, (*_, callers) in entries.items():
            if child in callers and key[2] in parent.__code__.co_names and "ddpg" in key[0]:
                return f"{key[2]} (inside @torch.no_grad)"
    short = _short(*child)
    for pattern, hint in HINTS.items():
        if short.endswith(pattern):
            return f"{short} [{hint}]"
    return short


# What the torch-internal names in a profile of `DDPGAgent.update` stand for.
HINTS = {
    "(_wrapped_call_impl)": "nn.Module calls: forward passes",
    "_tensor.py:566(backward)": "Tensor.backward",
    "optimizer.py:509(wrapper)": "Optimizer.step",
    "_compile.py:42(inner)": "Optimizer.zero_grad",
    "(train)": "Module.train",
    "(eval)": "Module.eval",
}


def _short(filename: str, line: int, name: str) -> str:
    if filename == "~":
        return name  # a builtin or C function
    parts = filename.replace("\\", "/").split("/")
    for anchor in ("site-packages", "src"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + 1 :]
            break
    else:
        parts = parts[-2:]
    return f"{'/'.join(parts)}:{line}({name})"


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

    @property
    def ours_median(self) -> float:
        return statistics.median(self.ours)

    @property
    def sb3_median(self) -> float:
        return statistics.median(self.sb3)


def report(args: argparse.Namespace, results: list[EnvResult], profile: list[str]) -> str:
    v = versions()
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    out = [
        "## Throughput",
        "",
        f"Env steps/s over the {args.steps} timed steps of each run (after "
        f"{args.learning_starts} random steps and {args.warmup} untimed learning steps), "
        f"median of {args.repeats} alternating runs per library. One update per env step, "
        f"hidden {HIDDEN}x{HIDDEN}, batch {BATCH}.",
        "",
        "| env | ours steps/s | SB3 steps/s | ours/SB3 | ours, all runs | SB3, all runs |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in results:
        out.append(
            f"| {r.env_id} | {r.ours_median:.0f} | {r.sb3_median:.0f} "
            f"| {r.ours_median / r.sb3_median:.2f}x "
            f"| {', '.join(f'{x:.0f}' for x in r.ours)} | {', '.join(f'{x:.0f}' for x in r.sb3)} |"
        )
    out += [
        "",
        "## Against the floor loop",
        "",
        "The floor loop runs in the same alternation as the two libraries (ours, SB3, floor, "
        "repeated): per step `env.step` with a precomputed random action, a uniformly sampled "
        "batch (`torch.randint` + `index_select` from preallocated storage) and the minimal "
        "update below; nothing else. Ratios are per repeat (ours and the floor loop measured "
        "back to back), then the median. The issue's target is ours/floor <= 1.1.",
        "",
        "| env | ours steps/s | floor loop steps/s | ours/floor per step, median | per repeat |",
        "|---|---:|---:|---:|---|",
    ]
    for r in results:
        ratios = [f / o for o, f in zip(r.ours, r.floor, strict=True)]
        out.append(
            f"| {r.env_id} | {r.ours_median:.0f} | {statistics.median(r.floor):.0f} "
            f"| {statistics.median(ratios):.2f}x | {', '.join(f'{x:.2f}x' for x in ratios)} |"
        )
    out += [
        "",
        "## Floor, by parts",
        "",
        "(a) env step with random actions; (b) the minimal plain-PyTorch update; (c) our "
        "`DDPGAgent.update` alone on a fixed batch. Ours per step is 1000 / (ours steps/s). "
        "Floor per step is (a) + (b); the issue's target is ours/floor <= 1.1.",
        "",
        "| env | (a) env ms/step | (b) floor update ms | (c) our update ms | (c)/(b) "
        "| ours ms/step | floor ms/step | ours/floor | ours - (a) - (c) ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ours_ms = 1e3 / r.ours_median
        floor_ms = r.env_ms + r.minimal_ms
        rest = ours_ms - r.env_ms - r.update_ms
        out.append(
            f"| {r.env_id} | {r.env_ms:.3f} | {r.minimal_ms:.3f} | {r.update_ms:.3f} "
            f"| {r.update_ms / r.minimal_ms:.2f}x | {ours_ms:.3f} | {floor_ms:.3f} "
            f"| {ours_ms / floor_ms:.2f}x | {rest:.3f} |"
        )
    out += [
        "",
        "The last column is what a training step costs beyond the env step and the update "
        "itself: acting (actor forward, noise), replay add and sample, bookkeeping.",
        "",
        "## Machine",
        "",
        f"- CPU: {cpu_model()} ({cpu_count()} cores available)",
        f"- torch threads: {torch.get_num_threads()} intra-op (torch's default, not set), "
        f"{torch.get_num_interop_threads()} inter-op",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- command: `{command}`",
    ]
    if OTHER_LOAD:
        worst = max(OTHER_LOAD, key=lambda x: x[1])
        busy = sorted({label for label, share in OTHER_LOAD if share > DISTURBED})
        median = statistics.median(x[1] for x in OTHER_LOAD)
        out.append(
            f"- other processes' share of the machine's CPU time during the {len(OTHER_LOAD)} "
            f"timed sections of 1 s or more: median {median:.1%}, "
            f"max {worst[1]:.1%} ({worst[0]})"
            + (
                f"; above {DISTURBED:.0%} in: {', '.join(busy)} (those numbers are disturbed)"
                if busy
                else ""
            )
        )
    if profile:
        out += ["", "## Profile", "", *profile]
    return "\n".join(out) + "\n"


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

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {cpu_model()}")
    start = time.perf_counter()
    results = []
    for env_id in args.envs:
        env_ms = statistics.median(
            env_ms_per_step(env_id, args.floor_steps) for _ in range(args.repeats)
        )
        minimal_ms, update_ms = update_floors(env_id, args.update_iters, args.repeats)
        print(
            f"{env_id}: env {env_ms:.3f} ms/step, minimal update {minimal_ms:.3f} ms, "
            f"our update {update_ms:.3f} ms",
            flush=True,
        )
        ours, sb3, floor = [], [], []
        for i in range(args.repeats):
            gc.collect()
            ours.append(run_ours(env_id, args.learning_starts, args.warmup, args.steps))
            gc.collect()
            sb3.append(run_sb3(env_id, args.learning_starts, args.warmup, args.steps))
            gc.collect()
            floor.append(run_floor(env_id, args.learning_starts, args.warmup, args.steps))
            others = ", ".join(f"{share:.1%}" for _, share in OTHER_LOAD[-3:])
            print(
                f"{env_id} run {i + 1}/{args.repeats}: ours {ours[-1]:.0f} steps/s, "
                f"SB3 {sb3[-1]:.0f} steps/s, floor loop {floor[-1]:.0f} steps/s "
                f"(other processes' CPU share: {others})",
                flush=True,
            )
        results.append(EnvResult(env_id, ours, sb3, floor, env_ms, minimal_ms, update_ms))

    profile: list[str] = []
    if args.profile_steps:
        for env_id in args.envs:
            gc.collect()
            profile += profile_ours(env_id, args.learning_starts, args.warmup, args.profile_steps)
            profile.append("")
    text = report(args, results, profile)
    text += f"\nTotal time of this invocation: {time.perf_counter() - start:.0f} s.\n"
    print()
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
