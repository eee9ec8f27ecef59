"""GPU benchmark: the eager DDPG update against the CUDA-graph update (`ddpg.cudagraph`).

HalfCheetah-v5's shapes (obs 17, act 6), hidden 256x256, batch 256, no BatchNorm, no weight decay,
100k random transitions in a device buffer. Measures (1) eager `agent.update(buffer.sample(256))`
and (2) `GraphedUpdate` in ms/update (median of --repeats runs of --updates after --warmup; the
capture timed on its own); (3) numerics: the largest eager-graphed difference of any network
tensor after --numerics-updates updates on the same indices; (4) `Trainer` env steps/s on
HalfCheetah-v5 with update_mode eager and cudagraph (--trainer-steps timed after 1000 random and
--trainer-warmup learning steps); (5) torch.compile variants (--compile-modes; eager update and,
but for reduce-overhead, under `GraphedUpdate`), each in a child process with a timeout. The run
stays under --budget seconds (compile variants that would not fit are skipped or stopped). On a
machine without CUDA the script says so and exits 0.

    PYTHONPATH=src python benchmarks/gpu.py --out gpu.md
    PYTHONPATH=src python benchmarks/gpu.py --compile-modes none --trainer-steps 1000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
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
from common import cpu_model, env_ms_per_step, table

from ddpg.agent import DDPGAgent
from ddpg.buffer import ReplayBuffer
from ddpg.config import Config
from ddpg.cudagraph import GraphedUpdate
from ddpg.envs import EnvInfo

OBS_DIM, ACT_DIM = 17, 6  # HalfCheetah-v5
HIDDEN, BATCH, BUFFER, SEED = 256, 256, 100_000, 0
ENV_ID, LEARNING_STARTS = "HalfCheetah-v5", 1_000
START = time.perf_counter()
RESULT_TAG = "GPU_BENCH_RESULT "
COMPILE_MODES = ["default", "reduce-overhead", "max-autotune-no-cudagraphs"]  # tried in turn


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = p.add_argument
    add("--updates", type=int, default=1_000, help="timed updates per run (1000)")
    add("--repeats", type=int, default=3, help="timed runs per variant (3)")
    add("--warmup", type=int, default=50, help="untimed updates before timing (50)")
    add("--numerics-updates", type=int, default=200, help="updates of the numerics check (200)")
    add("--trainer-steps", type=int, default=3_000, help="timed Trainer env steps per mode")
    add("--trainer-warmup", type=int, default=100, help="untimed learning steps before (100)")
    add("--compile-modes", nargs="+", default=COMPILE_MODES, help="'none': no compile variants")
    add("--compile-timeout", type=float, default=120.0, help="seconds per compile variant (120)")
    add("--budget", type=float, default=200.0, help="seconds for the whole run (200)")
    add("--out", help="also write the markdown report to this file")
    add("--child-compile", metavar="MODE", help=argparse.SUPPRESS)
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
    values = dict(env_id=ENV_ID, seed=SEED, device="cuda", hidden_size=HIDDEN, batch_size=BATCH,
                  batch_norm=False, weight_decay=0.0, buffer_size=BUFFER, eval_every=0,
                  checkpoint_every=0, tensorboard=False)  # fmt: skip
    return Config(**{**values, **changes})


def setup(buffer_seed: int = 1) -> tuple[DDPGAgent, ReplayBuffer]:
    """A fresh agent (same weights every time) and a device buffer of random transitions."""
    ones = np.ones(ACT_DIM, dtype=np.float32)
    agent = DDPGAgent(EnvInfo(obs_dim=OBS_DIM, action_low=-ones, action_high=ones), bench_config())
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


def time_updates(fn: Callable[[], object], args: argparse.Namespace) -> dict[str, Any]:
    """ms/update of each of `args.repeats` runs of `args.updates` calls, after `args.warmup`,
    and their median."""
    for _ in range(args.warmup):
        fn()
    runs = []
    for _ in range(args.repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.updates):
            fn()
        torch.cuda.synchronize()
        runs.append((time.perf_counter() - start) / args.updates * 1e3)
    return {"runs": runs, "median": statistics.median(runs)}


def bench_eager(args: argparse.Namespace) -> dict[str, Any]:
    agent, buffer = setup()
    return time_updates(lambda: agent.update(buffer.sample(BATCH)), args)


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
    return time_updates(graphed, args) | {"first_calls_s": first_s}


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
        pairs = zip(losses_eager, losses_graphed, strict=True)
        diffs[field + " (all updates)"] = max(abs(float(a[i]) - float(b[i])) for a, b in pairs)
    # How far learning moved the weights, for scale: the comparison is not of untouched copies.
    fresh = DDPGAgent(eager.info, eager.config).actor.state_dict()["net.0.weight"]
    moved = (eager.actor.state_dict()["net.0.weight"] - fresh).abs().max()
    diffs["(scale) largest change of actor net.0.weight by learning"] = float(moved)
    return diffs


def trainer_throughput(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    from ddpg.train import Trainer

    warm, timed = args.trainer_warmup, args.trainer_steps
    total = LEARNING_STARTS + warm + timed
    config = bench_config(update_mode=mode, learning_starts=LEARNING_STARTS, total_steps=total)
    trainer = Trainer(config.replace(buffer_size=20_000))
    if (mode == "cudagraph") != (trainer.graphed is not None):
        raise RuntimeError(f"update_mode {mode} did not give the matching update")
    try:
        trainer.run(max_steps=LEARNING_STARTS)  # random actions, untimed
        trainer.run(max_steps=LEARNING_STARTS + warm)  # first updates (and capture), untimed
        updates_before = trainer.state.updates
        torch.cuda.synchronize()
        start = time.perf_counter()
        trainer.run(max_steps=LEARNING_STARTS + warm + timed)
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        return {
            "steps_per_s": timed / elapsed,
            "ms_per_step": elapsed / timed * 1e3,
            "updates": trainer.state.updates - updates_before,
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
        out["eager"] = time_updates(step, args)
    except Exception as exc:
        return out | {"eager_error": short_error(exc)}
    if not mark_step:
        try:
            log(f"compile {mode}: timing under GraphedUpdate")
            out["graphed"] = time_updates(GraphedUpdate(agent, buffer, BATCH), args)
        except Exception as exc:
            out["graphed_error"] = short_error(exc)
    return out


def run_compile_variant(mode: str, args: argparse.Namespace, timeout: float) -> dict[str, Any]:
    command = [sys.executable, os.path.abspath(__file__), "--child-compile", mode]
    command += ["--updates", str(args.updates), "--repeats", str(args.repeats)]
    command += ["--warmup", str(args.warmup)]
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
    return [
        f"- GPU: {torch.cuda.get_device_name(0)} ({props.total_memory / 2**30:.0f} GiB, "
        f"compute capability {props.major}.{props.minor})",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores",
        f"- torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"cuDNN {torch.backends.cudnn.version()}, Python {sys.version.split()[0]}",
    ]


def update_rows(r: dict[str, Any]) -> list[list[str]]:
    eager = r.get("eager", {}).get("median")

    def row(label: str, res: dict[str, Any] | None, error: str | None = None) -> list[str]:
        if error is not None or res is None:
            return [label, "failed", str(error), ""]
        speed = f"{eager / res['median']:.2f}x" if eager else "n/a"
        return [label, f"{res['median']:.4f}", ", ".join(f"{x:.4f}" for x in res["runs"]), speed]

    rows = [row("eager `agent.update(buffer.sample(256))`", r.get("eager"), r.get("eager_error"))]
    rows.append(row("`GraphedUpdate` (CUDA graph)", r.get("graphed"), r.get("graphed_error")))
    for c in r.get("compile", []):
        name = f"torch.compile({c['mode']})"
        if "error" in c:
            rows.append([name, "failed", c["error"], ""])
            continue
        rows.append(row(f"{name} modules, eager update", c.get("eager"), c.get("eager_error")))
        if "graphed" in c or "graphed_error" in c:
            label = f"{name} modules + `GraphedUpdate`"
            rows.append(row(label, c.get("graphed"), c.get("graphed_error")))
    return rows


def report(args: argparse.Namespace, r: dict[str, Any]) -> str:
    command = shlex.join(getattr(sys, "orig_argv", sys.argv))
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
        *table(["variant", "median ms", "runs (ms)", "speed-up over eager"], update_rows(r), "lrl"),
        "",
    ]
    eager, graphed = r.get("eager", {}).get("median"), r.get("graphed")
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
        diffs = [[k, f"{v:.3g}"] for k, v in r.get("numerics", {}).items()]
        out += table(["tensor", "max abs difference"], diffs)
    out += [
        "",
        f"## Training throughput on {ENV_ID} (`Trainer`, one update per env step)",
        "",
        f"{LEARNING_STARTS} random steps and {args.trainer_warmup} learning steps untimed, then "
        f"{args.trainer_steps} timed steps; buffer 20,000, no evaluation, no checkpoints.",
        "",
    ]
    rows = []
    for mode, t in r.get("trainer", {}).items():
        if "error" in t:
            rows.append([mode, t["error"], "", ""])
            continue
        rate, ms = f"{t['steps_per_s']:.0f}", f"{t['ms_per_step']:.3f}"
        rows.append([mode, rate, ms, str(t["updates"])])
    out += table(["update_mode", "env steps/s", "ms/step", "updates in timed part"], rows, "lrrr")
    if "env_ms" in r:
        out.append(f"\nEnvironment alone: {r['env_ms']:.4f} ms/step (random actions).")
    if "steps_per_s" in r.get("trainer", {}).get("cudagraph", {}):
        ok = r["trainer"]["cudagraph"]["steps_per_s"] >= 1000
        out.append(f"\nTarget >= 1,000 env steps/s with cudagraph: {'met' if ok else 'NOT met'}.")
    if r.get("errors"):
        out += ["", "## Errors", "", *(f"```\n{e}\n```" for e in r["errors"])]
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
    r: dict[str, Any] = {"trainer": {}, "compile": []}
    for name, fn in (("eager", bench_eager), ("graphed", bench_graphed), ("numerics", numerics)):
        value = section(name, r, lambda fn=fn: fn(args))
        if value is not None:
            r[name] = value
            if name != "numerics":
                log(f"{name}: {value['median']:.4f} ms/update")
    env_ms = section("env", r, lambda: env_ms_per_step(ENV_ID, 2_000))
    if env_ms is not None:
        r["env_ms"] = env_ms
    for mode in ("eager", "cudagraph"):
        value = section(f"trainer_{mode}", r, lambda mode=mode: trainer_throughput(mode, args))
        r["trainer"][mode] = value if value is not None else {"error": r[f"trainer_{mode}_error"]}
        if value is not None:
            log(f"trainer {mode}: {value['steps_per_s']:.0f} env steps/s")
    skipped = []
    for mode in (m for m in args.compile_modes if m != "none"):
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
    print(f"\n{text}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
