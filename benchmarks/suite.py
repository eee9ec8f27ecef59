"""The standard suite: MuJoCo envs x seeds x libraries at a fixed step budget, side by side.

  ours: the `mujoco` preset (the TD3 paper's re-tuned DDPG) with --env, learning_starts as the
        paper's run_experiments.sh (10000 on HalfCheetah and Ant, 1000 on the others).
  sb3:  Stable-Baselines3's DDPG at the same settings (SB3_SETTINGS below): net_arch [400, 300],
        Adam lr 1e-3, batch 100, buffer 1e6, gamma 0.99, tau 0.005, Gaussian noise of std 0.1
        in the [-1, 1] action scale, the same learning_starts, one update per env step.

Both train with one torch thread and are evaluated by the same code (benchmarks/runner.py) every
--eval-every env steps and at the end of the budget over --eval-episodes deterministic episodes on
a separate env, episode i of seed s reset with the same seed for both libraries; the clocks pause
during evaluations. Each run is its own process (forked, so every run executes the code of the
launch even if files change meanwhile), --jobs at a time; each finished run appends one JSON line
to --results. A run already recorded there (same lib, env, seed, steps) is skipped, so an
interrupted invocation continues where it stopped when started again (a run cut short restarts).

Queue order: env-major, then seed, then library, so that the pairs that compare finish together;
SB3 runs on envs outside SB3_FIRST (the issue's required three) go last.

    python benchmarks/suite.py --jobs 2 --steps 100000 --seeds 0 1 2 --libs ours sb3 \\
        --envs HalfCheetah-v5 Hopper-v5 Walker2d-v5 InvertedDoublePendulum-v5 Reacher-v5
    python benchmarks/suite.py --summarize           # n, median, IQM of final returns so far
    python benchmarks/suite.py --quick --envs InvertedPendulum-v5   # plumbing check, seconds

Needs the `bench` extra: pip install -e ".[bench]".
"""

from __future__ import annotations

import argparse
import ctypes
import multiprocessing
import multiprocessing.connection
import os
import signal
import statistics
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
from common import append_record, command, git_state, read_records, table
from runner import Spec, our_config, run_one, run_ours, run_sb3

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results" / "suite.jsonl"
QUICK_RESULTS = Path(tempfile.gettempdir()) / "ddpg-suite-quick.jsonl"
ENVS = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "InvertedDoublePendulum-v5", "Reacher-v5")
LIBS = ("ours", "sb3")
SB3_FIRST = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5")
# sfujim/TD3 @ bc98e62 run_experiments.sh: --start_timesteps 1000 except HalfCheetah and Ant
# (main.py's default, 1e4).
LONG_START = ("HalfCheetah", "Ant")
PRESET = "mujoco"
SB3_SETTINGS: dict[str, Any] = {  # the mujoco preset's values, in the RL Zoo's format
    "policy": "MlpPolicy",
    "policy_kwargs": {"net_arch": [400, 300]},  # SB3's DDPG default, as the preset's widths
    "learning_rate": 1e-3,
    "buffer_size": 1_000_000,
    "batch_size": 100,
    "gamma": 0.99,
    "tau": 0.005,
    "train_freq": 1,
    "gradient_steps": 1,
    "noise_type": "normal",
    "noise_std": 0.1,
}
# --quick: a budget that only checks the plumbing; small nets, the same for both libraries.
QUICK = {"steps": 400, "eval_every": 200, "eval_episodes": 1, "learning_starts": 100, "width": 16}


def learning_starts(env_id: str) -> int:
    return 10_000 if env_id.split("-")[0] in LONG_START else 1_000


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="suite.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", nargs="+", default=list(ENVS), help="env ids (the five of the table)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (0 1 2)")
    p.add_argument("--libs", nargs="+", choices=LIBS, default=list(LIBS), help="(ours sb3)")
    p.add_argument("--steps", type=int, default=100_000, help="env steps per run (100000)")
    p.add_argument("--eval-every", type=int, default=5_000, help="env steps between evaluations")
    p.add_argument("--eval-episodes", type=int, default=10, help="episodes per evaluation (10)")
    p.add_argument(
        "--learning-starts",
        type=int,
        help="random steps before learning, for both libraries (the paper's per-env value)",
    )
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, one process each (1)")
    p.add_argument("--results", type=Path, help=f"JSON-lines file ({DEFAULT_RESULTS})")
    p.add_argument("--quick", action="store_true", help=f"tiny runs for tests: {QUICK}")
    p.add_argument(
        "--summarize",
        nargs="*",
        type=Path,
        metavar="RESULTS",
        help="print n, median and IQM of final returns per env and library (of --results when "
        "no file is given), then exit",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.eval_every, args.eval_episodes = (
            QUICK["steps"],
            QUICK["eval_every"],
            QUICK["eval_episodes"],
        )
    if args.results is None:
        args.results = QUICK_RESULTS if args.quick else DEFAULT_RESULTS
    for name in ("steps", "eval_every", "eval_episodes", "jobs", "learning_starts"):
        if (getattr(args, name) or 1) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.summarize is None:
        unknown = [e for e in args.envs if e not in gym.registry]
        if unknown:
            p.error(f"unknown env id(s): {', '.join(unknown)}")
    return args


# -- the runs ------------------------------------------------------------------------------------
def queue(envs: Sequence[str], seeds: Sequence[int], libs: Sequence[str]) -> list[tuple]:
    """(lib, env, seed) in launch order: env-major, seed, library; SB3 off SB3_FIRST last."""
    runs = [(lib, env, seed) for env in envs for seed in seeds for lib in libs]
    return sorted(runs, key=lambda r: r[0] == "sb3" and r[1] not in SB3_FIRST)  # stable


def variant(args: argparse.Namespace) -> str:
    if args.quick:
        return "quick"
    return "suite" if args.learning_starts is None else f"learning_starts={args.learning_starts}"


def settings(args: argparse.Namespace, lib: str, env_id: str) -> dict[str, Any]:
    """What the run of `lib` on `env_id` is configured with, beyond the Spec."""
    quick = args.quick
    starts = QUICK["learning_starts"] if quick else learning_starts(env_id)
    starts = starts if args.learning_starts is None else args.learning_starts
    if lib == "ours":
        overrides: dict[str, Any] = {"learning_starts": starts}
        if quick:
            w = QUICK["width"]
            overrides |= {"hidden_size": w, "hidden_size_2": w, "buffer_size": QUICK["steps"]}
        return {"preset": PRESET, "overrides": overrides}
    hp = {**SB3_SETTINGS, "learning_starts": starts}
    if quick:
        hp |= {"policy_kwargs": {"net_arch": [QUICK["width"]] * 2}, "buffer_size": QUICK["steps"]}
    return {"hyperparameters": hp}


def spec_of(args: argparse.Namespace, lib: str, env_id: str, seed: int) -> Spec:
    return Spec(
        lib=lib,
        variant=variant(args),
        env_id=env_id,
        seed=seed,
        threshold=None,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,
        max_steps=args.steps,
        max_seconds=None,
        torch_threads=1,
    )


def key(r: dict[str, Any]) -> tuple:
    return (r["lib"], r["env"], r["seed"], r["steps"], r["variant"])


def run(args: argparse.Namespace, lib: str, env_id: str, seed: int, launch: dict) -> None:
    """One run, in its own process: train, evaluate, append the record."""
    spec = spec_of(args, lib, env_id, seed)
    extra = settings(args, lib, env_id)
    if lib == "ours":
        config = our_config(extra["preset"], extra["overrides"], spec)
        record = run_one(spec, lambda t: run_ours(spec, config, t) | extra, log)
    else:
        record = run_one(spec, lambda t: run_sb3(spec, extra["hyperparameters"], t), log)
    record |= {"steps": spec.max_steps, "curve": [e[:2] for e in record["evaluations"]], **launch}
    append_record(args.results, record)
    log(
        f"{lib} {env_id} seed {seed}: final {record['final_eval_mean']:.1f}, best "
        f"{record['best_eval_mean']:.1f}, {record['train_wall_s']:.0f} s training wall "
        f"({record['steps_per_s']:.0f} steps/s); recorded in {args.results}"
    )


def log(message: str) -> None:
    print(message, flush=True)  # a forked child leaves through os._exit: no buffer survives


def child(args: argparse.Namespace, job: tuple, launch: dict) -> None:
    if sys.platform.startswith("linux"):  # die with the parent, so no run outlives the queue
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    try:
        run(args, *job, launch)
    except BaseException:
        log(f"{job}: failed\n{traceback.format_exc()}")
        sys.stdout.flush()
        os._exit(1)


def run_all(args: argparse.Namespace, argv: list[str]) -> int:
    done = set()
    if args.results.exists():
        done = {key(r) for r in read_records([args.results], "suite.py") if "steps" in r}
    jobs = [
        j
        for j in queue(args.envs, args.seeds, args.libs)
        if (*j, args.steps, variant(args)) not in done
    ]
    log(f"suite.py: {len(jobs)} runs to do, {args.jobs} at a time; results in {args.results}")
    # Import everything the runs use before forking: every child runs the launch's code.
    import ddpg.train  # noqa: F401

    if "sb3" in args.libs:
        import stable_baselines3  # noqa: F401
    launch = {"argv": argv, "command": command(argv), "git": git_state()}
    ctx = multiprocessing.get_context("fork")
    running: dict[Any, tuple] = {}
    failed = 0
    while jobs or running:
        while jobs and len(running) < args.jobs:
            job = jobs.pop(0)
            proc = ctx.Process(target=child, args=(args, job, launch), daemon=False)
            proc.start()
            running[proc.sentinel] = (proc, job)
            log(f"suite.py: started {job} (pid {proc.pid})")
        for sentinel in multiprocessing.connection.wait(list(running)):
            proc, job = running.pop(sentinel)
            proc.join()
            if proc.exitcode != 0:
                failed += 1
                log(f"suite.py: {job} exited with {proc.exitcode}; not recorded")
    log(f"suite.py: finished; {failed} run(s) failed")
    return 1 if failed else 0


# -- summary -------------------------------------------------------------------------------------
def iqm(values: Sequence[float]) -> float:
    """Interquartile mean: the mean after cutting int(n/4) values from each end (as
    scipy.stats.trim_mean(x, 0.25), which rliable uses); with n < 4 the plain mean."""
    xs = sorted(values)
    cut = len(xs) // 4
    return statistics.fmean(xs[cut : len(xs) - cut])


def summarize(records: list[dict[str, Any]]) -> str:
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["env"], r["steps"], r["lib"]), []).append(r)
    rows = []
    for (env_id, steps, lib), runs in sorted(groups.items()):
        final = [r["final_eval_mean"] for r in runs]
        rows.append(
            [env_id, f"{steps:,}", lib, str(len(runs)), " ".join(str(r["seed"]) for r in runs)]
            + [statistics.median(final), iqm(final), iqm([r["best_eval_mean"] for r in runs])]
            + [statistics.median(r["train_wall_s"] for r in runs) / 60]
        )
    header = ["env", "steps", "lib", "n", "seeds", "median final", "IQM final", "IQM best"]
    return "\n".join(table([*header, "median training min"], rows, left=5)) + "\n"


def main(argv: list[str] | None = None) -> int:
    script = os.path.relpath(__file__) if argv is not None else sys.argv[0]
    full_argv = [script, *(sys.argv[1:] if argv is None else argv)]
    args = parse_args(full_argv[1:])
    if args.summarize is not None:
        paths = args.summarize or [args.results]
        try:
            records = [r for r in read_records(paths, "suite.py") if "steps" in r]
        except OSError as exc:
            print(f"suite.py: {exc}", file=sys.stderr)
            return 2
        if not records:
            print(f"suite.py: no suite records in {', '.join(map(str, paths))}", file=sys.stderr)
            return 1
        print(summarize(records), end="")
        return 0
    return run_all(args, full_argv)


if __name__ == "__main__":
    raise SystemExit(main())
