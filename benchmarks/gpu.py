"""GPU benchmark: the eager DDPG update against the CUDA-graph update (`ddpg.cudagraph`).

On one GPU, with HalfCheetah-v5's shapes (obs 17, act 6), hidden layers of 256, batch 256, no
BatchNorm, no weight decay and a replay buffer of 100k random transitions on the device:

  1. eager `agent.update(buffer.sample(256))`, ms/update (median of --repeats runs of --updates
     timed updates after --warmup untimed ones, synchronised around each run);
  2. `GraphedUpdate`, likewise (its capture included in the warm-up, and timed on its own), and
     the speed-up 1 / 2;
  3. numerics: the largest difference of any network tensor between eager and graphed learners
     after --numerics-updates updates from the same start on the same indices;
  4. end-to-end training throughput on HalfCheetah-v5 through `ddpg.train.Trainer` with
     update_mode 'eager' and 'cudagraph' (env steps/s over --trainer-steps steps, after
     learning_starts=1000 random steps and --trainer-warmup learning steps, both untimed);
  5. torch.compile variants (modules compiled with each of --compile-modes, eager update and, but
     for reduce-overhead, under `GraphedUpdate`), each in a child process with a timeout so that a
     slow compile or a failure is reported as text and cannot stop the rest.

The whole run stays under --budget seconds (default 200): compile variants that would not fit are
skipped or stopped. On a machine without CUDA the script says so and exits 0.

    PYTHONPATH=src python benchmarks/gpu.py --out gpu.md
    PYTHONPATH=src python benchmarks/gpu.py --compile-modes none --trainer-steps 1000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ddpg.agent import DDPGAgent
from ddpg.buffer import ReplayBuffer
from ddpg.config import Config
from ddpg.cudagraph import GraphedUpdate
from ddpg.envs import EnvInfo

OBS_DIM, ACT_DIM = 17, 6  # HalfCheetah-v5
HIDDEN = 256
BATCH = 256
BUFFER = 100_000
SEED = 0
ENV_ID = "HalfCheetah-v5"
LEARNING_STARTS = 1_000
START = time.perf_counter()
RESULT_TAG = "GPU_BENCH_RESULT "


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--updates", type=int, default=1_000, help="timed updates per run (1000)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per variant (3)")
    p.add_argument("--warmup", type=int, default=50, help="untimed updates before timing (50)")
    p.add_argument(
        "--numerics-updates", type=int, default=200, help="updates of the numerics check (200)"
    )
    p.add_argument(
        "--trainer-steps", type=int, default=3_000, help="timed Trainer env steps per mode (3000)"
    )
    p.add_argument(
        "--trainer-warmup",
        type=int,
        default=100,
        help="untimed learning steps after learning_starts, before the timed ones (100)",
    )
    p.add_argument(
        "--compile-modes",
        nargs="+",
        default=["default", "reduce-overhead", "max-autotune-no-cudagraphs"],
        help="torch.compile modes to try, in this order ('none': no compile variants)",
    )
    p.add_argument(
        "--compile-timeout",
        type=float,
        default=120.0,
        help="seconds one compile variant may take, setup and compile included (120)",
    )
    p.add_argument(
        "--budget",
        type=float,
        default=200.0,
        help="seconds the whole run may take; compile variants get what is left (200)",
    )
    p.add_argument("--out", help="also write the markdown report to this file")
    p.add_argument("--child-compile", metavar="MODE", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def log(message: str) -> None:
    print(f"[{time.perf_counter() - START:6.1f} s] {message}", file=sys.stderr, flush=True)


def short_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().replace("\n", " ")
    return text if len(text) <= 400 else text[:400] + " ..."


# -- set-up and timing --------------------------------------------------------------------------
def bench_config(**changes: Any) -> Config:
    """The benchmark's learner on the GPU: HalfCheetah shapes, 256x256, batch 256, no BatchNorm,
    no weight decay, nothing written to disk."""
    values: dict[str, Any] = dict(
        env_id=ENV_ID,
        seed=SEED,
        device="cuda",
        hidden_size=HIDDEN,
        batch_size=BATCH,
        batch_norm=False,
        weight_decay=0.0,
        buffer_size=BUFFER,
        eval_every=0,
        checkpoint_every=0,
        tensorboard=False,
    )
    values.update(changes)
    return Config(**values)


def setup(buffer_seed: int = 1) -> tuple[DDPGAgent, ReplayBuffer]:
    """A fresh agent (same weights every time) and a device buffer of random transitions."""
    config = bench_config()
    ones = np.ones(ACT_DIM, dtype=np.float32)
    agent = DDPGAgent(EnvInfo(obs_dim=OBS_DIM, action_low=-ones, action_high=ones), config)
    buffer = ReplayBuffer(BUFFER, OBS_DIM, ACT_DIM, seed=buffer_seed, device=agent.device)
    rng = np.random.default_rng(123)
    obs = rng.standard_normal((BUFFER, OBS_DIM), dtype=np.float32)
    buffer.add(
        obs,
        rng.uniform(-1.0, 1.0, (BUFFER, ACT_DIM)).astype(np.float32),
        rng.standard_normal(BUFFER, dtype=np.float32),
        obs + 0.1 * rng.standard_normal((BUFFER, OBS_DIM), dtype=np.float32),
        (rng.random(BUFFER) < 0.01).astype(np.float32),
    )
    torch.cuda.synchronize()
    return agent, buffer


def time_updates(fn: Callable[[], object], args: argparse.Namespace) -> list[float]:
    """ms/update of each of `args.repeats` runs of `args.updates` calls, after `args.warmup`."""
    for _ in range(args.warmup):
        fn()
    torch.cuda.synchronize()
    runs = []
    for _ in range(args.repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.updates):
            fn()
        torch.cuda.synchronize()
        runs.append((time.perf_counter() - start) / args.updates * 1e3)
    return runs


def bench_eager(args: argparse.Namespace) -> dict[str, Any]:
    agent, buffer = setup()
    runs = time_updates(lambda: agent.update(buffer.sample(BATCH)), args)
    return {"runs": runs, "median": statistics.median(runs)}


def bench_graphed(args: argparse.Namespace) -> dict[str, Any]:
    agent, buffer = setup()
    graphed = GraphedUpdate(agent, buffer, BATCH)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(graphed.warmup + 1):  # eager warm-up, then capture and one replay
        graphed()
    torch.cuda.synchronize()
    first_s = time.perf_counter() - start
    if not graphed.captured:
        raise RuntimeError("GraphedUpdate did not capture after its warm-up")
    runs = time_updates(graphed, args)
    expected = graphed.warmup + 1 + args.warmup + args.repeats * args.updates
    if agent.updates != expected:
        raise RuntimeError(f"agent.updates is {agent.updates}, expected {expected}")
    return {"runs": runs, "median": statistics.median(runs), "first_calls_s": first_s}


def numerics(args: argparse.Namespace) -> dict[str, float]:
    """Largest |eager - graphed| per network after the same updates on the same indices."""
    eager, buffer = setup()
    graphed_agent = DDPGAgent(eager.info, eager.config)  # seeded: the same initial weights
    start_state = buffer.generator.get_state()
    losses_eager = [eager.update(buffer.sample(BATCH)) for _ in range(args.numerics_updates)]
    buffer.generator.set_state(start_state)
    graphed = GraphedUpdate(graphed_agent, buffer, BATCH)
    losses_graphed = [graphed() for _ in range(args.numerics_updates)]
    diffs: dict[str, float] = {}
    for name, net in eager.networks().items():
        other = graphed_agent.networks()[name].state_dict()
        diffs[name] = max(
            float((value - other[key]).abs().max())
            for key, value in net.state_dict().items()
            if value.is_floating_point()
        )
    for i, field in enumerate(("critic_loss", "actor_loss", "q_mean")):
        diffs[field + " (all updates)"] = max(
            abs(float(a[i]) - float(b[i]))
            for a, b in zip(losses_eager, losses_graphed, strict=True)
        )
    # How far learning moved the weights, for scale: the comparison is not of untouched copies.
    fresh = DDPGAgent(eager.info, eager.config).actor.state_dict()["net.0.weight"]
    moved = (eager.actor.state_dict()["net.0.weight"] - fresh).abs().max()
    diffs["(scale) largest change of actor net.0.weight by learning"] = float(moved)
    return diffs


# -- end-to-end training ------------------------------------------------------------------------
def env_alone(steps: int = 2_000) -> float:
    """ms per HalfCheetah-v5 step with random actions: the floor of a training step."""
    from ddpg.envs import make_env

    env = make_env(ENV_ID)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1.0, 1.0, (steps, ACT_DIM)).astype(np.float32)
    env.reset(seed=0)
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - start
    env.close()
    return elapsed / steps * 1e3


def trainer_throughput(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    from ddpg.train import Trainer

    warm, timed = args.trainer_warmup, args.trainer_steps
    config = bench_config(
        update_mode=mode,
        learning_starts=LEARNING_STARTS,
        buffer_size=20_000,
        total_steps=LEARNING_STARTS + warm + timed,
    )
    note = ""
    trainer = Trainer(config)
    try:
        trainer.run(max_steps=LEARNING_STARTS)  # random actions, untimed
        trainer.run(max_steps=LEARNING_STARTS + warm)  # first updates (and capture), untimed
        updates_before = trainer.agent.updates
        torch.cuda.synchronize()
        start = time.perf_counter()
        trainer.run(max_steps=LEARNING_STARTS + warm + timed)
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        graphed = any(isinstance(v, GraphedUpdate) for v in vars(trainer).values())
        return {
            "steps_per_s": timed / elapsed,
            "ms_per_step": elapsed / timed * 1e3,
            "updates": trainer.agent.updates - updates_before,
            "graphed_update_attribute": graphed,
            "note": note,
        }
    finally:
        trainer.close()


# -- torch.compile variants, each in a child process --------------------------------------------
def child_compile(args: argparse.Namespace) -> dict[str, Any]:
    """Runs in the child: compile the four networks with one mode, time the eager update on them
    and, but for reduce-overhead (its own CUDA graphs cannot nest in ours), the graphed one."""
    mode = args.child_compile
    out: dict[str, Any] = {"mode": mode}
    agent, buffer = setup()
    mark_step = mode == "reduce-overhead"

    def step() -> object:
        if mark_step:
            torch.compiler.cudagraph_mark_step_begin()
        return agent.update(buffer.sample(BATCH))

    try:
        log(f"compile {mode}: compiling")
        start = time.perf_counter()
        for net in agent.networks().values():
            net.compile(mode=mode)
        for _ in range(3):
            step()
        torch.cuda.synchronize()
        out["compile_s"] = time.perf_counter() - start
        log(f"compile {mode}: compiled in {out['compile_s']:.1f} s, timing the eager update")
        runs = time_updates(step, args)
        out["eager"] = {"runs": runs, "median": statistics.median(runs)}
    except Exception as exc:
        out["eager_error"] = short_error(exc)
        return out
    if not mark_step:
        try:
            log(f"compile {mode}: timing under GraphedUpdate")
            graphed = GraphedUpdate(agent, buffer, BATCH)
            runs = time_updates(graphed, args)
            out["graphed"] = {"runs": runs, "median": statistics.median(runs)}
        except Exception as exc:
            out["graphed_error"] = short_error(exc)
    return out


def run_compile_variant(mode: str, args: argparse.Namespace, timeout: float) -> dict[str, Any]:
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--child-compile",
        mode,
        "--updates",
        str(args.updates),
        "--repeats",
        str(args.repeats),
        "--warmup",
        str(args.warmup),
    ]
    # A session of its own, so that a timeout also stops the compile workers it started.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"mode": mode, "error": f"stopped after {timeout:.0f} s (time budget)"}
    for line in stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    return {"mode": mode, "error": f"child exited with {proc.returncode} and no result"}


# -- report -------------------------------------------------------------------------------------
def machine() -> list[str]:
    props = torch.cuda.get_device_properties(0)
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    return [
        f"- GPU: {torch.cuda.get_device_name(0)} ({props.total_memory / 2**30:.0f} GiB, "
        f"compute capability {props.major}.{props.minor})",
        f"- CPU: {cpu}, {os.cpu_count()} logical cores",
        f"- torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"cuDNN {torch.backends.cudnn.version()}, Python {platform.python_version()}",
    ]


def fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def report(args: argparse.Namespace, r: dict[str, Any]) -> str:
    command = shlex.join(sys.orig_argv) if hasattr(sys, "orig_argv") else shlex.join(sys.argv)
    if os.environ.get("PYTHONPATH"):
        command = f"PYTHONPATH={shlex.quote(os.environ['PYTHONPATH'])} {command}"
    out = [
        "# DDPG update on the GPU: eager against CUDA graph",
        "",
        f"Command: `{command}`",
        "",
        *machine(),
        f"- Shapes: obs {OBS_DIM}, act {ACT_DIM} ({ENV_ID}), hidden {HIDDEN}x{HIDDEN}, batch "
        f"{BATCH}, no BatchNorm, weight decay 0, buffer of {BUFFER:,} random transitions on the "
        "device, fused capturable AdamW",
        "",
        f"## Update time (ms/update, median of {args.repeats} runs of {args.updates} updates "
        f"after {args.warmup} warm-up updates)",
        "",
        "| variant | median ms | runs (ms) | speed-up over eager |",
        "| --- | ---: | --- | ---: |",
    ]
    eager = r.get("eager", {}).get("median")

    def row(label: str, res: dict[str, Any] | None, error: str | None = None) -> None:
        if error is not None or res is None:
            out.append(f"| {label} | failed | {error} | |")
            return
        runs = ", ".join(f"{x:.4f}" for x in res["runs"])
        speed = f"{eager / res['median']:.2f}x" if eager else "n/a"
        out.append(f"| {label} | {fmt_ms(res['median'])} | {runs} | {speed} |")

    row("eager `agent.update(buffer.sample(256))`", r.get("eager"), r.get("eager_error"))
    row("`GraphedUpdate` (CUDA graph)", r.get("graphed"), r.get("graphed_error"))
    for c in r.get("compile", []):
        mode = c["mode"]
        if "error" in c:
            out.append(f"| torch.compile({mode}) | failed | {c['error']} | |")
            continue
        row(f"torch.compile({mode}) modules, eager update", c.get("eager"), c.get("eager_error"))
        if "graphed" in c or "graphed_error" in c:
            row(
                f"torch.compile({mode}) modules + `GraphedUpdate`",
                c.get("graphed"),
                c.get("graphed_error"),
            )
    out.append("")
    graphed = r.get("graphed")
    if graphed and eager:
        speed = eager / graphed["median"]
        out.append(
            f"Speed-up of the CUDA graph over eager: **{speed:.2f}x** "
            f"(target >= 3x: {'met' if speed >= 3 else 'NOT met'}). The graphed update's first "
            f"calls (3 eager warm-up updates, capture, one replay) took "
            f"{graphed['first_calls_s'] * 1e3:.0f} ms."
        )
    for c in r.get("compile", []):
        if "compile_s" in c:
            out.append(
                f"torch.compile({c['mode']}): first 3 updates (compile) {c['compile_s']:.1f} s."
            )
    if r.get("compile_skipped"):
        out.append(f"torch.compile variants skipped: {r['compile_skipped']}.")

    out += ["", f"## Numerics after {args.numerics_updates} updates (eager vs graphed)", ""]
    if "numerics_error" in r:
        out.append(f"failed: {r['numerics_error']}")
    else:
        out += ["| tensor | max abs difference |", "| --- | ---: |"]
        out += [f"| {k} | {v:.3g} |" for k, v in r.get("numerics", {}).items()]

    out += [
        "",
        f"## Training throughput on {ENV_ID} (`Trainer`, one update per env step)",
        "",
        f"{LEARNING_STARTS} random steps and {args.trainer_warmup} learning steps untimed, then "
        f"{args.trainer_steps} timed steps; buffer 20,000, no evaluation, no checkpoints.",
        "",
        "| update_mode | env steps/s | ms/step | updates in timed part | note |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for mode in ("eager", "cudagraph"):
        t = r.get("trainer", {}).get(mode)
        if t is None:
            continue
        if "error" in t:
            out.append(f"| {mode} | | | | {t['error']} |")
            continue
        note = t["note"]
        if mode == "cudagraph" and not t["graphed_update_attribute"]:
            note = (note + "; " if note else "") + "no GraphedUpdate attribute found on the Trainer"
        rate, ms = f"{t['steps_per_s']:.0f}", f"{t['ms_per_step']:.3f}"
        out.append(f"| {mode} | {rate} | {ms} | {t['updates']} | {note} |")
    if "env_ms" in r:
        out.append(f"\nEnvironment alone: {r['env_ms']:.4f} ms/step (random actions).")
    graph_t = r.get("trainer", {}).get("cudagraph", {})
    if "steps_per_s" in graph_t:
        ok = graph_t["steps_per_s"] >= 1000
        out.append(f"\nTarget >= 1,000 env steps/s with cudagraph: {'met' if ok else 'NOT met'}.")
    if r.get("errors"):
        out += ["", "## Errors", ""]
        out += [f"```\n{e}\n```" for e in r["errors"]]
    out.append(f"\nTotal time of this invocation: {time.perf_counter() - START:.0f} s.")
    return "\n".join(out) + "\n"


def section(name: str, r: dict[str, Any], fn: Callable[[], Any]) -> Any:
    """Run one part; on failure note the error in the report and go on."""
    log(f"{name} ...")
    try:
        value = fn()
    except Exception as exc:
        r[f"{name}_error"] = short_error(exc)
        r.setdefault("errors", []).append(f"{name}:\n{traceback.format_exc(limit=6)}")
        log(f"{name} failed: {short_error(exc)}")
        return None
    log(f"{name} done")
    return value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu.py: no CUDA device, nothing to benchmark")
        return 0
    if min(args.updates, args.repeats, args.numerics_updates, args.trainer_steps) < 1:
        print("gpu.py: counts must be >= 1", file=sys.stderr)
        return 2
    if args.child_compile:
        print(RESULT_TAG + json.dumps(child_compile(args)), flush=True)
        return 0

    log(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    r: dict[str, Any] = {}
    for name, fn in (
        ("eager", lambda: bench_eager(args)),
        ("graphed", lambda: bench_graphed(args)),
        ("numerics", lambda: numerics(args)),
    ):
        value = section(name, r, fn)
        if value is not None:
            r[name] = value
        if name in ("eager", "graphed") and value is not None:
            log(f"{name}: {value['median']:.4f} ms/update")

    r["trainer"] = {}
    env_ms = section("env", r, env_alone)
    if env_ms is not None:
        r["env_ms"] = env_ms
    for mode in ("eager", "cudagraph"):
        value = section(f"trainer_{mode}", r, lambda mode=mode: trainer_throughput(mode, args))
        if value is not None:
            r["trainer"][mode] = value
            if "steps_per_s" in value:
                log(f"trainer {mode}: {value['steps_per_s']:.0f} env steps/s")
        else:
            r["trainer"][mode] = {"error": r[f"trainer_{mode}_error"]}

    modes = [m for m in args.compile_modes if m != "none"]
    r["compile"] = []
    skipped = []
    for mode in modes:
        left = args.budget - (time.perf_counter() - START) - 5.0
        if left < 20.0:
            skipped.append(mode)
            continue
        timeout = min(args.compile_timeout, left)
        log(f"compile variant {mode} (at most {timeout:.0f} s) ...")
        try:
            result = run_compile_variant(mode, args, timeout)
        except Exception as exc:
            result = {"mode": mode, "error": short_error(exc)}
        log(f"compile variant {mode}: {json.dumps(result)}")
        r["compile"].append(result)
    if skipped:
        r["compile_skipped"] = ", ".join(skipped) + " (time budget)"

    text = report(args, r)
    print()
    print(text, flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
