"""The standard suite: MuJoCo envs x seeds x libraries at a fixed step budget, side by side.

  ours: the `mujoco` preset (the TD3 paper's re-tuned DDPG) with --env, learning_starts as the
        paper's run_experiments.sh (10000 on HalfCheetah and Ant, 1000 on the others).
  sb3:  Stable-Baselines3's DDPG at the same settings (SB3_SETTINGS): net_arch [400, 300], Adam
        lr 1e-3, batch 100, buffer 1e6, gamma 0.99, tau 0.005, Gaussian noise of std 0.1 in the
        [-1, 1] action scale, the same learning_starts, one update per env step.

With --algo td3 both libraries run TD3 instead, at the `td3-mujoco` preset's settings (sfujim/TD3
main.py and TD3.py): ours that preset, SB3's TD3 at SB3_TD3_SETTINGS (net_arch [256, 256], ReLU
and default init in both, Adam lr 3e-4, batch 256, buffer 1e6, gamma 0.99, tau 0.005, Gaussian
exploration of std 0.1, policy_delay 2, target noise 0.2 clipped at 0.5, learning_starts 25000
on every env: main.py's start_timesteps). Its records carry "algo": "td3" and its rows read
"Hopper-v5 td3 (100,000 steps)"; records without the field are DDPG's.

Both train with one torch thread and are evaluated by the same code (runner.py) every --eval-every
steps and at the end over --eval-episodes deterministic episodes, reset with the same seeds for
both libraries, the clocks paused. Each run is a process of its own, forked from this one after
every module is imported (so a run executes the launch's code even if files change meanwhile),
--jobs at a time; each finished run appends one JSON line to --results. A run already recorded
there (same lib, env, seed, steps, variant) is skipped: started again, an interrupted invocation
continues (a run cut short restarts). Queue order: env-major, then seed, then library, so that
comparable pairs finish together; SB3 runs on envs outside SB3_FIRST (the issue's three) go last.

    python benchmarks/suite.py --jobs 2 --steps 100000 --seeds 0 1 2 --libs ours sb3 \\
        --envs HalfCheetah-v5 Hopper-v5 Walker2d-v5 InvertedDoublePendulum-v5 Reacher-v5
    python benchmarks/suite.py --jobs 2 --libs ours --envs HalfCheetah-v5 --seeds 0 1 \\
        --set activation=relu --set final_layer_init=none  # a variant of ours, rows of its own
    python benchmarks/suite.py --jobs 2 --steps 100000 --seeds 0 1 2 --libs ours sb3 --algo td3 \\
        --envs HalfCheetah-v5 Hopper-v5 Walker2d-v5          # TD3 against SB3's TD3
    python benchmarks/suite.py --summarize      # the table so far, and each late evaluation
    python benchmarks/suite.py --quick --envs Pendulum-v1     # plumbing check, seconds

Needs the `bench` extra: pip install -e ".[bench]".
"""

from __future__ import annotations

import argparse
import ctypes
import multiprocessing
import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Sequence
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import gymnasium as gym
from common import (
    append_record,
    command,
    exit_with,
    git_state,
    invocation,
    read_records,
    table,
)
from runner import Spec, our_config, run_one, run_ours, run_sb3

from ddpg.config import check_keys, parse_value
from ddpg.envs import register_robotics
from ddpg.errors import ConfigError
from ddpg.report import format_value

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results" / "suite.jsonl"
QUICK_RESULTS = Path(tempfile.gettempdir()) / "ddpg-suite-quick.jsonl"
ENVS = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "InvertedDoublePendulum-v5", "Reacher-v5")
SB3_FIRST = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5")
PRESET = "mujoco"
PRESETS = {"ddpg": PRESET, "td3": "td3-mujoco"}  # ours, per --algo
SB3_SETTINGS: dict[str, Any] = {  # the mujoco preset's values, in the RL Zoo's format
    "policy": "MlpPolicy", "policy_kwargs": {"net_arch": [400, 300]}, "learning_rate": 1e-3,
    "buffer_size": 1_000_000, "batch_size": 100, "gamma": 0.99, "tau": 0.005, "train_freq": 1,
    "gradient_steps": 1, "noise_type": "normal", "noise_std": 0.1,
}  # fmt: skip
SB3_TD3_SETTINGS: dict[str, Any] = {  # the td3-mujoco preset's values, in the RL Zoo's format
    "algo": "td3", "policy": "MlpPolicy", "policy_kwargs": {"net_arch": [256, 256]},
    "learning_rate": 3e-4, "buffer_size": 1_000_000, "batch_size": 256, "gamma": 0.99,
    "tau": 0.005, "train_freq": 1, "gradient_steps": 1, "noise_type": "normal", "noise_std": 0.1,
    "policy_delay": 2, "target_policy_noise": 0.2, "target_noise_clip": 0.5,
}  # fmt: skip
SB3 = {"ddpg": SB3_SETTINGS, "td3": SB3_TD3_SETTINGS}
TD3_LEARNING_STARTS = 25_000  # sfujim/TD3 main.py --start_timesteps 25e3, on every env
# Goal-conditioned tasks (the `robotics` extra): our preset of each, and SB3's DDPG with its
# HerReplayBuffer at the same settings (sb3_goal_settings). Their rows score the success rate.
GOAL_PRESETS = {"FetchReach-v4": "fetchreach", "FetchPush-v4": "fetchpush"}
# --quick: a budget that only checks the plumbing; small nets, the same for both libraries.
QUICK = {"steps": 400, "eval_every": 200, "eval_episodes": 1, "learning_starts": 100, "width": 16}


def sb3_goal_settings(preset: str) -> dict[str, Any]:
    """SB3's DDPG + HER at our goal preset's values, in the RL Zoo's format."""
    from ddpg.presets import preset_config

    c = preset_config(preset)
    assert c.actor_lr == c.critic_lr and c.activation == "relu" and c.final_layer_init is None
    return {
        "policy": "MultiInputPolicy",  # each Dict part flattened and concatenated, as ours
        "policy_kwargs": {"net_arch": [c.hidden_size, c.hidden_size_2 or c.hidden_size]},
        "learning_rate": c.actor_lr, "buffer_size": c.buffer_size, "batch_size": c.batch_size,
        "gamma": c.gamma, "tau": c.tau, "train_freq": 1, "gradient_steps": 1,
        "noise_type": "normal", "noise_std": c.noise_std, "learning_starts": c.learning_starts,
        "n_sampled_goal": c.her_k, "goal_selection_strategy": c.her_strategy,
        # VecNormalize on observations (each key on its own statistics; ours pools the goals).
        "normalize": {"clip_obs": c.obs_clip} if c.normalize_obs else None,
    }  # fmt: skip


def learning_starts(env_id: str, algo: str = "ddpg") -> int:
    """DDPG: sfujim/TD3 @ bc98e62 run_experiments.sh: 1000, but main.py's 1e4 on HalfCheetah and
    Ant. TD3: main.py's 25e3 on every env. A goal-conditioned task: its preset's."""
    if env_id in GOAL_PRESETS:
        return sb3_goal_settings(GOAL_PRESETS[env_id])["learning_starts"]
    if algo == "td3":
        return TD3_LEARNING_STARTS
    return 10_000 if env_id.split("-")[0] in ("HalfCheetah", "Ant") else 1_000


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="suite.py", description=__doc__.split("\n\n")[0])
    add = p.add_argument
    add("--envs", nargs="+", default=list(ENVS), help="env ids (the five of the table)")
    add("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (0 1 2)")
    add("--libs", nargs="+", choices=("ours", "sb3"), default=["ours", "sb3"], help="(both)")
    add("--algo", choices=tuple(PRESETS), default="ddpg", help="both libraries run DDPG (the "
        "mujoco preset) or TD3 (the td3-mujoco preset) (ddpg)")  # fmt: skip
    add("--steps", type=int, default=100_000, help="env steps per run (100000)")
    add("--eval-every", type=int, default=5_000, help="env steps between evaluations (5000)")
    add("--eval-episodes", type=int, default=10, help="episodes per evaluation (10)")
    add("--learning-starts", type=int, help="for both libraries (default: the paper's per env)")
    add("--set", action="append", default=[], metavar="FIELD=VALUE", help="ours only: a "
        "config value over the preset's (repeatable); a variant with rows of its own")  # fmt: skip
    add("--jobs", type=int, default=1, help="runs at a time, one process each (1)")
    add("--results", type=Path, help=f"JSON-lines file ({DEFAULT_RESULTS})")
    add("--quick", action="store_true", help=f"tiny runs for tests: {QUICK}")
    add("--summarize", nargs="*", type=Path, metavar="RESULTS", help="print the table per env "
        "and lib (IQM, CI of final returns; of --results without a file) and ours / SB3 at each "
        "of the last evaluations, then exit")  # fmt: skip
    add("--plot", type=Path, metavar="PNG", help="with --summarize: also the learning curves")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.eval_every = QUICK["steps"], QUICK["eval_every"]
        args.eval_episodes = QUICK["eval_episodes"]
    args.results = args.results or (QUICK_RESULTS if args.quick else DEFAULT_RESULTS)
    for name in ("steps", "eval_every", "eval_episodes", "jobs", "learning_starts"):
        if (value := getattr(args, name)) is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    args.overrides = {}
    for item in args.set:
        name, _, text = item.partition("=")
        try:
            check_keys({name.strip(): None})
            args.overrides[name.strip()] = parse_value(name.strip(), text.strip())
        except ConfigError as exc:
            p.error(f"--set {item}: {exc}")
    goals = [e for e in args.envs if e in GOAL_PRESETS]
    if goals and args.algo != "ddpg":
        p.error(f"{goals[0]}: goal-conditioned tasks run DDPG + HER (--algo ddpg)")
    if args.overrides and "sb3" in args.libs:
        p.error("--set changes our config only: use it with --libs ours")
    for env_id in args.envs:
        register_robotics(env_id)
    unknown = [e for e in args.envs if e not in gym.registry]
    if unknown and args.summarize is None:
        p.error(f"unknown env id(s): {', '.join(unknown)}")
    return args


# -- the runs ------------------------------------------------------------------------------------
def queue(envs: Sequence[str], seeds: Sequence[int], libs: Sequence[str]) -> list[tuple]:
    """(lib, env, seed) in launch order: env-major, seed, library; SB3 off SB3_FIRST last."""
    runs = [(lib, env, seed) for env in envs for seed in seeds for lib in libs]
    return sorted(runs, key=lambda r: r[0] == "sb3" and r[1] not in SB3_FIRST)  # stable


def variant(args: argparse.Namespace) -> str:
    starts = {} if args.learning_starts is None else {"learning_starts": args.learning_starts}
    changes = [f"{k}={format_value(v)}" for k, v in {**starts, **args.overrides}.items()]
    if args.quick:
        return ",".join(["quick", *changes])
    return ",".join(changes) or "suite"


def run(args: argparse.Namespace, lib: str, env_id: str, seed: int, launch: dict) -> None:
    """One run, in its own process: train, evaluate, append the record."""
    spec = Spec(lib, variant(args), env_id, seed, None, args.eval_every, args.eval_episodes,
                args.steps, None, torch_threads=1)  # fmt: skip
    starts = QUICK["learning_starts"] if args.quick else learning_starts(env_id, args.algo)
    starts = starts if args.learning_starts is None else args.learning_starts
    small = {"buffer_size": args.steps} if args.quick else {}  # quick: small nets and buffer
    if lib == "ours":
        width = {"hidden_size": QUICK["width"], "hidden_size_2": QUICK["width"]}
        overrides = {"learning_starts": starts, **small, **(width if args.quick else {})}
        overrides |= args.overrides
        preset = GOAL_PRESETS.get(env_id, PRESETS[args.algo])
        config = our_config(preset, overrides, spec)
        extra = {"preset": preset, "overrides": overrides}
        record = run_one(spec, lambda t: run_ours(spec, config, t) | extra, log)
    else:
        settings = (
            sb3_goal_settings(GOAL_PRESETS[env_id]) if env_id in GOAL_PRESETS else SB3[args.algo]
        )
        hp = {**settings, "learning_starts": starts, **small}
        if args.quick:
            hp["policy_kwargs"] = {"net_arch": [QUICK["width"]] * 2}
        record = run_one(spec, lambda t: run_sb3(spec, hp, t), log)
    record |= {"steps": spec.max_steps, "curve": [e[:2] for e in record["evaluations"]], **launch}
    if record["final_success_rate"] is not None:
        steps = [e[0] for e in record["evaluations"]]
        record["success_curve"] = [
            list(e) for e in zip(steps, record["success_rates"], strict=True)
        ]
    record |= {"algo": args.algo}
    append_record(args.results, record)
    if record["final_success_rate"] is not None:
        log(f"{lib} {env_id} seed {seed}: final success rate {record['final_success_rate']:.2f}")
    log(f"{lib} {args.algo} {env_id} seed {seed}: final {record['final_eval_mean']:.1f}, best "
        f"{record['best_eval_mean']:.1f}, {record['train_wall_s']:.0f} s training wall "
        f"({record['steps_per_s']:.0f} steps/s); recorded in {args.results}")  # fmt: skip


def log(message: str) -> None:
    print(message, flush=True)  # a forked child leaves through os._exit: no buffer survives


def child(args: argparse.Namespace, job: tuple, launch: dict) -> None:
    if sys.platform.startswith("linux"):  # die with the parent, so no run outlives the queue
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    try:
        run(args, *job, launch)
    except BaseException:
        log(f"{job}: failed\n{traceback.format_exc()}")
        os._exit(1)


def run_all(args: argparse.Namespace, argv: list[str]) -> int:
    done = set()
    if args.results.exists():
        done = {key(r) for r in read_records([args.results], "suite.py") if "steps" in r}
    todo = [j for j in queue(args.envs, args.seeds, args.libs)
            if (*j, args.steps, variant(args), args.algo) not in done]  # fmt: skip
    log(f"suite.py: {len(todo)} runs to do, {args.jobs} at a time; results in {args.results}")
    # Import everything the runs use before forking: every child runs the launch's code.
    import ddpg.train  # noqa: F401

    if "sb3" in args.libs:
        import stable_baselines3  # noqa: F401
    launch = {"argv": argv, "command": command(argv), "git": git_state()}
    running: dict[Any, tuple] = {}
    failed = 0
    while todo or running:
        while todo and len(running) < args.jobs:
            job = todo.pop(0)
            proc = multiprocessing.get_context("fork").Process(
                target=child, args=(args, job, launch)
            )
            proc.start()
            running[proc.sentinel] = (proc, job)
            log(f"suite.py: started {job} (pid {proc.pid})")
        for sentinel in wait(list(running)):
            proc, job = running.pop(sentinel)
            proc.join()
            if proc.exitcode != 0:
                failed += 1
                log(f"suite.py: {job} exited with {proc.exitcode}; not recorded")
    log(f"suite.py: finished; {failed} run(s) failed")
    return 1 if failed else 0


def key(r: dict[str, Any]) -> tuple:
    return (r["lib"], r["env"], r["seed"], r["steps"], r["variant"], algo_of(r))


def algo_of(r: dict[str, Any]) -> str:
    """The algorithm a record ran: records made before --algo ran DDPG."""
    return r.get("algo", "ddpg")


# -- summary ------------------------------------------------------------------------------------
def label(record: dict[str, Any]) -> str:
    """The row a record belongs to: its library, and the variant unless it is the suite's own."""
    changes = [part for part in record["variant"].split(",") if part not in ("suite", "quick")]
    return " ".join([record["lib"], *changes[:1]]) + "".join(f",{c}" for c in changes[1:])


def runs_by_env_and_lib(records: list[dict[str, Any]]) -> dict[tuple[str, str], list[Any]]:
    """The records as `ddpg report` runs, grouped by (env, label); a run recorded twice counts
    once (the first)."""
    import numpy as np

    from ddpg.report import Run

    firsts: dict[tuple, dict[str, Any]] = {}
    for r in records:
        firsts.setdefault(key(r), r)
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in firsts.values():
        # A goal-conditioned task is scored by its success rate, any other by its return.
        goal = r.get("final_success_rate") is not None
        curve = r["success_curve"] if goal else r["curve"]
        steps, means = (np.array(column, dtype=float) for column in zip(*curve, strict=True))
        run = Run(
            run_dir=Path(f"{r['lib']}/{r['env']}/seed-{r['seed']}"),
            config={"env_id": r["env"], "seed": r["seed"]},
            preset=r.get("preset") if r["lib"] == "ours" else None,
            eval_steps=steps,
            eval_means=means,
            finished=True,
            final=r["final_success_rate"] if goal else r["final_eval_mean"],
            best=r["best_success_rate"] if goal else r["best_eval_mean"],
            steps=r["steps"],
        )
        run.cpu_minutes = r["train_cpu_s"] / 60  # type: ignore[attr-defined]
        env = r["env"] if algo_of(r) == "ddpg" else f"{r['env']} {algo_of(r)}"
        groups.setdefault((f"{env} ({r['steps']:,} steps)", label(r)), []).append(run)
    return dict(sorted(groups.items()))


def num(x: float) -> str:
    """A return as the table shows it: whole numbers, two decimals for small ones (Reacher)."""
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.2f}"


def summarize(records: list[dict[str, Any]]) -> str:
    """Per env and library: seeds, the IQM of the final evaluation returns with its 95%
    bootstrap CI (ddpg report's statistics; none from one seed), their median, the IQM of the
    best evaluation and of each run's mean over its last 5 evaluations (less noisy than one
    final evaluation), and the median training CPU minutes. `<` (`>`) marks our CI lying entirely
    below (above) SB3's, judged only where both libraries have at least 2 seeds."""
    import statistics

    from ddpg.report import aggregate
    from ddpg.stats import iqm

    groups = runs_by_env_and_lib(records)
    rows, stats = [], {}
    for (env, lib), runs in groups.items():
        final, best = aggregate(runs, "final"), aggregate(runs, "best")
        stats[env, lib] = final, len(runs)
        ci = f"[{num(final['ci_low'])}, {num(final['ci_high'])}]" if len(runs) > 1 else "(1 seed)"
        last5 = iqm([float(r.eval_means[-5:].mean()) for r in runs])
        seeds = " ".join(str(seed) for seed in sorted(r.seed for r in runs))
        rows.append([env, lib, f"{len(runs)} ({seeds})", f"{num(final['iqm'])} {ci}",
                     num(final["median"]), num(best["iqm"]), num(last5),
                     f"{statistics.median(r.cpu_minutes for r in runs):.0f}"])  # fmt: skip
    for row in rows:
        ours, sb3 = stats.get((row[0], "ours")), stats.get((row[0], "sb3"))
        if row[1] == "ours" and ours and sb3 and min(ours[1], sb3[1]) > 1:
            row[3] += mark(ours[0], sb3[0])
    header = ["env", "lib", "seeds", "IQM final [95% CI]", "median final", "IQM best"]
    header += ["IQM last-5 mean", "training CPU min"]
    return "\n".join(table(header, rows, "lllrrrrr")) + "\n"


def algorithms(records: list[dict[str, Any]]) -> str:
    """Our TD3 against our DDPG, per env and step budget where our suite runs (no variant) of
    both have at least 2 seeds: each one's IQM final [95% CI] and IQM last-5 mean, with `>`
    (`<`) where TD3's CI lies entirely above (below) DDPG's."""
    from ddpg.report import aggregate
    from ddpg.stats import iqm

    ours = [r for r in records if r["lib"] == "ours" and label(r) == "ours"]
    by_algo = {
        a: runs_by_env_and_lib([r for r in ours if algo_of(r) == a]) for a in ("ddpg", "td3")
    }
    rows = []
    for (env, _), ddpg in by_algo["ddpg"].items():
        name, budget = env.split(" (", 1)
        td3 = by_algo["td3"].get((f"{name} td3 ({budget}", "ours"), [])
        if min(len(ddpg), len(td3)) < 2:
            continue
        row, stats = [env], []
        for runs in (ddpg, td3):
            final = aggregate(runs, "final")
            stats.append(final)
            row.append(f"{num(final['iqm'])} [{num(final['ci_low'])}, {num(final['ci_high'])}]")
        row[2] += mark(stats[1], stats[0])
        row += [num(iqm([float(r.eval_means[-5:].mean()) for r in runs])) for runs in (ddpg, td3)]
        rows.append(row)
    if not rows:
        return ""
    header = ["env", "ours DDPG IQM final [95% CI]", "ours TD3 IQM final [95% CI]"]
    header += ["DDPG IQM last-5 mean", "TD3 IQM last-5 mean"]
    return "\n".join(table(header, rows, "lrrrr")) + "\n"


def mark(ours: dict[str, float], sb3: dict[str, float]) -> str:
    """ " <" where our CI (ci_low, ci_high) lies entirely below SB3's, " >" entirely above."""
    if ours["ci_high"] < sb3["ci_low"]:
        return " <"
    return " >" if ours["ci_low"] > sb3["ci_high"] else ""


def by_step(records: list[dict[str, Any]], last: int = 9) -> str:
    """The comparison at each of the last `last` evaluation steps, per env where both libraries
    have 2 seeds or more: each library's IQM over seeds of its evaluation at that step, ours /
    SB3, with the table's mark on the 95% bootstrap CIs of the learning curves (ddpg report's
    learning_curve, as plotted). The table judges one evaluation, the final; this shows whether
    the evaluations before it agree. One table per set of steps."""
    from ddpg.report import learning_curve

    groups = runs_by_env_and_lib(records)
    tables: dict[tuple[int, ...], list[list[str]]] = {}
    for env in sorted({env for env, _ in groups}):
        ours, sb3 = groups.get((env, "ours"), []), groups.get((env, "sb3"), [])
        if min(len(ours), len(sb3)) < 2:
            continue
        curves = [curve for runs in (ours, sb3) if (curve := learning_curve(runs)) is not None]
        if len(curves) < 2:  # a library without evaluations
            continue
        steps = sorted(set(curves[0][0].tolist()) & set(curves[1][0].tolist()))[-last:]
        row = [env]
        for step in steps:
            stats = []
            for grid, center, low, high in curves:
                at = grid == step
                stats.append({"iqm": center[at][0], "ci_low": low[at][0], "ci_high": high[at][0]})
            row.append(f"{num(stats[0]['iqm'])} / {num(stats[1]['iqm'])}{mark(*stats)}")
        tables.setdefault(tuple(steps), []).append(row)
    return "\n".join(
        "\n".join(table(["env", *(f"{s / 1000:g}k" for s in steps)], rows, "l")) + "\n"
        for steps, rows in tables.items()
    )


def plot(records: list[dict[str, Any]], out: Path) -> None:
    """Learning curves per env: the IQM over seeds of each library, with a 95% bootstrap band
    (ddpg report's learning_curve)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ddpg.report import learning_curve

    groups = runs_by_env_and_lib(records)
    envs = sorted({env for env, _ in groups})
    fig, axes = plt.subplots(1, len(envs), figsize=(4.2 * len(envs), 3.6), squeeze=False)
    for ax, env in zip(axes[0], envs, strict=True):
        colors = iter(("tab:green", "tab:red", "tab:purple", "tab:brown"))  # for variants
        for lib in sorted(lib for e, lib in groups if e == env):
            curve = learning_curve(groups[env, lib])
            if curve is None:
                continue
            color = {"ours": "tab:blue", "sb3": "tab:orange"}.get(lib) or next(colors)
            steps, center, low, high = curve
            n = len(groups[env, lib])
            ax.plot(steps, center, color=color, label=f"{lib} ({n} seeds)")
            ax.fill_between(steps, low, high, color=color, alpha=0.2, linewidth=0)
        goal = env.split(" ")[0] in GOAL_PRESETS  # scored by the success rate
        ax.set_title(f"{env}{': success rate' if goal else ''}", fontsize=9)
        ax.set_xlabel("environment steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0, 0].set_ylabel("evaluation return or success rate (IQM, 95% CI)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    full_argv = invocation(__file__, argv)
    args = parse_args(full_argv[1:])
    if args.summarize is None:
        return run_all(args, full_argv)
    paths = args.summarize or [args.results]
    try:
        records = [r for r in read_records(paths, "suite.py") if "steps" in r]
    except OSError as exc:
        print(f"suite.py: {exc}", file=sys.stderr)
        return 2
    if not records:
        print(f"suite.py: no suite records in {', '.join(map(str, paths))}", file=sys.stderr)
        return 1
    try:
        text, comparison = summarize(records), by_step(records)
    except (KeyError, TypeError, ValueError) as exc:  # a JSON line that is not a suite record
        print(f"suite.py: a record in {', '.join(map(str, paths))} is malformed: {exc!r}",
              file=sys.stderr)  # fmt: skip
        return 2
    print(text, end="")
    if comparison:
        print("\nours / SB3 at each of the last evaluations (IQM over seeds; < > as above):\n")
        print(comparison, end="")
    if versus := algorithms(records):
        print("\nour TD3 against our DDPG (> where TD3's CI lies entirely above DDPG's):\n")
        print(versus, end="")
    if args.plot is not None:
        try:
            plot(records, args.plot)
        except OSError as exc:
            print(f"suite.py: cannot write {args.plot}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    exit_with(main)
