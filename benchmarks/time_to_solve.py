"""Time to solve: wall-clock seconds of training until a policy reaches the task's return.

One invocation trains one library on one environment for one or more seeds, one run after the
other, and appends each finished run as one JSON line to a results file; independent runs can
therefore be launched as separate processes side by side. `--summarize` turns results files into
the markdown report: per environment and per library/variant each run's steps, wall seconds and
CPU seconds to solve, their medians over seeds, and SB3's median divided by ours.

Solved means: the first periodic evaluation whose mean return over `--eval-episodes`
deterministic episodes reaches the threshold (Pendulum-v1: -200, LunarLanderContinuous-v3: 200).
Every `--eval-every` env steps the policy plays those episodes on a separate `gymnasium.make(env)`
environment, episode i reset with seed `episode_seed(seed, EVAL_STREAM, i)`: the same start states
for both libraries and for every evaluation of a run. Both clocks (wall: `time.perf_counter`,
CPU: `time.process_time`) are paused while an evaluation runs, so the figures are training time
only (environment and model construction included, imports excluded); the totals including the
evaluations are recorded too. A run stops when solved, at `--max-steps`, or at the first
evaluation after `--max-seconds` of training wall time.

  ours: our `Trainer` with a preset (`--preset`, by default the env's tuned one) and
        `--set FIELD=VALUE` overrides of any config field (e.g. num_envs=4,
        updates_per_step=0.5), named in the report by `--variant`.
  sb3:  Stable-Baselines3's DDPG with the RL Zoo's published hyperparameters (ZOO_DDPG below).
        Needs the `bench` extra: pip install -e ".[bench]".

    python benchmarks/time_to_solve.py --lib ours --env Pendulum-v1 --seeds 0 1 2
    python benchmarks/time_to_solve.py --lib sb3 --env Pendulum-v1 --seeds 0 1 2
    python benchmarks/time_to_solve.py --lib ours --env Pendulum-v1 --seeds 0 1 2 \\
        --set num_envs=4 updates_per_step=0.5 --variant num_envs=4,utd=0.5
    python benchmarks/time_to_solve.py --summarize benchmarks/results/time_to_solve.jsonl \\
        --out docs/time-to-solve.md
    # a quick check (seconds):
    python benchmarks/time_to_solve.py --lib ours --env Pendulum-v1 --max-steps 1500 \\
        --eval-every 500 --eval-episodes 2 --results /tmp/tts.jsonl
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import difflib
import json
import math
import os
import shlex
import statistics
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from common import append_record, command, read_records
from runner import EVAL_STREAM, Spec, Tracker, our_config, run_one, run_ours, run_sb3

from ddpg.config import Config, check_keys, parse_value
from ddpg.errors import ConfigError
from ddpg.presets import PRESETS

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results" / "time_to_solve.jsonl"


@dataclasses.dataclass(frozen=True)
class EnvDefaults:
    threshold: float
    eval_every: int
    max_steps: int
    preset: str


ENVS: dict[str, EnvDefaults] = {
    # Budgets are the RL Zoo's n_timesteps for DDPG on these tasks.
    "Pendulum-v1": EnvDefaults(
        threshold=-200.0, eval_every=1_000, max_steps=20_000, preset="pendulum"
    ),
    "LunarLanderContinuous-v3": EnvDefaults(
        threshold=200.0, eval_every=5_000, max_steps=300_000, preset="lunarlander"
    ),
}

# RL Baselines3 Zoo's tuned DDPG hyperparameters, from DLR-RM/rl-baselines3-zoo,
# hyperparams/ddpg.yml (the version with Gymnasium ids, as of commit 208b6fdf3a9a). Fields the
# file leaves out take SB3's DDPG defaults (batch_size 256, tau 0.005). Older versions of the file
# (keys Pendulum-v0 and LunarLanderContinuous-v2, e.g. commit 1159e2840a3d, and the sb3/ddpg-*
# models on the Hugging Face Hub) had the same values except train_freq [1, "episode"] with
# gradient_steps -1 (all of an episode's updates at its end).
ZOO_SOURCE = (
    "DLR-RM/rl-baselines3-zoo hyperparams/ddpg.yml @ 208b6fdf3a9aa24de44b2e068c6e5f6a07d97fcc"
)
_ZOO_SHARED: dict[str, Any] = {  # the file gives both tasks these same values
    "policy": "MlpPolicy",
    "gamma": 0.98,
    "buffer_size": 200_000,
    "learning_starts": 10_000,
    "noise_type": "normal",
    "noise_std": 0.1,
    "gradient_steps": 1,
    "train_freq": 1,
    "learning_rate": 1e-3,
    "policy_kwargs": {"net_arch": [400, 300]},
}
ZOO_DDPG: dict[str, dict[str, Any]] = {
    "Pendulum-v1": {"n_timesteps": 20_000, **_ZOO_SHARED},
    "LunarLanderContinuous-v3": {"n_timesteps": 300_000, **_ZOO_SHARED},
}
# SB3 DDPG defaults the zoo entries rely on, recorded so that the report shows every value.
SB3_DEFAULTS = {"batch_size": 256, "tau": 0.005}

# Config fields the benchmark sets itself; `--set` may not touch them.
FORCED_FIELDS = (
    "env_id",
    "seed",
    "total_steps",
    "episodes",
    "eval_every",
    "target_return",
    "checkpoint_every",
    "tensorboard",
    "torch_threads",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="time_to_solve.py",
        description=__doc__.split("\n\n")[0],
        epilog="Run with --help for options; the module docstring has examples.",
    )
    p.add_argument("--lib", choices=("ours", "sb3"), help="library to train")
    p.add_argument("--env", default="Pendulum-v1", help=f"env id ({', '.join(ENVS)})")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds, run in turn (0)")
    p.add_argument(
        "--threshold",
        type=float,
        help="mean evaluation return that counts as solved (Pendulum-v1 -200, "
        "LunarLanderContinuous-v3 200)",
    )
    p.add_argument(
        "--eval-every",
        type=int,
        help="env steps between evaluations (Pendulum-v1 1000, LunarLanderContinuous-v3 5000)",
    )
    p.add_argument("--eval-episodes", type=int, default=10, help="episodes per evaluation (10)")
    p.add_argument(
        "--max-steps",
        type=int,
        help="step budget (the zoo's n_timesteps: Pendulum-v1 20000, "
        "LunarLanderContinuous-v3 300000)",
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        help="stop at the first evaluation after this much training wall time (none)",
    )
    p.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch.set_num_threads for both libraries (1; 0: torch's default)",
    )
    p.add_argument(
        "--preset",
        help="ours: preset to start from (Pendulum-v1: pendulum, "
        "LunarLanderContinuous-v3: lunarlander)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        nargs="+",
        action="extend",
        default=[],
        metavar="FIELD=VALUE",
        help="ours: config overrides, e.g. --set num_envs=4 updates_per_step=0.5",
    )
    p.add_argument(
        "--variant",
        help="label of this configuration in the report (ours: 'preset', or the overrides; "
        "sb3: 'zoo')",
    )
    p.add_argument(
        "--results",
        type=Path,
        default=DEFAULT_RESULTS,
        help="JSON-lines file each finished run is appended to "
        "(benchmarks/results/time_to_solve.jsonl)",
    )
    p.add_argument(
        "--summarize",
        type=Path,
        nargs="+",
        metavar="RESULTS",
        help="write the report of these results files instead of training",
    )
    p.add_argument("--out", type=Path, help="with --summarize: also write the report here")
    args = p.parse_args(argv)
    if args.summarize is None and args.lib is None:
        p.error("give --lib (to train) or --summarize (to report)")
    if args.summarize is not None:
        return args
    if args.env not in ENVS and (
        args.threshold is None or args.eval_every is None or args.max_steps is None
    ):
        p.error(
            f"{args.env}: not one of {', '.join(ENVS)}; give --threshold, --eval-every and "
            "--max-steps"
        )
    if args.lib == "sb3" and (args.preset or args.overrides):
        p.error("--preset and --set configure ours; sb3 runs use the zoo's hyperparameters")
    for name in ("eval_every", "eval_episodes", "max_steps"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.torch_threads < 0:
        p.error("--torch-threads must be >= 0")
    return args


# -- ours and SB3's settings ---------------------------------------------------------------------
def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """`FIELD=VALUE` strings to typed config values, with the CLI's parser (never evaluated)."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise SystemExit(f"time_to_solve.py: --set expects FIELD=VALUE, got '{item}'")
        check_keys({name: None})
        if name in FORCED_FIELDS:
            raise SystemExit(
                f"time_to_solve.py: --set {name}: the benchmark sets this field itself "
                f"({', '.join(FORCED_FIELDS)}); use --env, --seeds, --max-steps, --torch-threads"
            )
        out[name] = parse_value(name, text)
    return out


def zoo_hyperparameters(env_id: str) -> tuple[dict[str, Any], str | None]:
    """The zoo's entry for `env_id`, or the closest one with a note saying so."""
    if env_id in ZOO_DDPG:
        return copy.deepcopy(ZOO_DDPG[env_id]), None
    close = difflib.get_close_matches(env_id, list(ZOO_DDPG), n=1, cutoff=0.0)
    note = f"the zoo has no DDPG entry for {env_id}; used the one for {close[0]}"
    return copy.deepcopy(ZOO_DDPG[close[0]]), note


def default_variant(lib: str, preset: str | None, env_id: str, overrides: list[str]) -> str:
    if lib == "sb3":
        return "zoo"
    parts = []
    if preset and (env_id not in ENVS or preset != ENVS[env_id].preset):
        parts.append(f"preset={preset}")
    parts += overrides
    return ",".join(parts) or "preset"


def trainer(
    spec: Spec, preset: str | None, overrides: dict[str, Any]
) -> Callable[[Tracker], dict[str, Any]]:
    """The run function of `spec`'s library, its settings bound and recorded."""
    if spec.lib == "ours":
        assert preset is not None
        config = our_config(preset, overrides, spec)
        extra = {"preset": preset, "overrides": overrides}
        return lambda tracker: run_ours(spec, config, tracker) | extra
    zoo, note = zoo_hyperparameters(spec.env_id)
    hp = {**SB3_DEFAULTS, **zoo}
    extra = {"hyperparameters_source": ZOO_SOURCE, "hyperparameters_note": note}
    return lambda tracker: run_sb3(spec, hp, tracker) | extra


def train_main(args: argparse.Namespace, argv: list[str]) -> int:
    env = ENVS.get(args.env)
    preset = None
    if args.lib == "ours":
        preset = args.preset or (env.preset if env else None)
        if preset is None or preset not in PRESETS:
            print(f"time_to_solve.py: give --preset (one of {', '.join(PRESETS)})", file=sys.stderr)
            return 2
    variant = args.variant or default_variant(args.lib, args.preset, args.env, args.overrides)
    specs = [
        Spec(
            lib=args.lib,
            variant=variant,
            env_id=args.env,
            seed=seed,
            threshold=args.threshold if args.threshold is not None else env.threshold,
            eval_every=args.eval_every or env.eval_every,
            eval_episodes=args.eval_episodes,
            max_steps=args.max_steps or env.max_steps,
            max_seconds=args.max_seconds,
            torch_threads=args.torch_threads,
        )
        for seed in args.seeds
    ]
    try:  # refuse bad overrides and invalid configs before any run starts
        runs = [trainer(spec, preset, parse_overrides(args.overrides)) for spec in specs]
    except ConfigError as exc:
        print(f"time_to_solve.py: {exc}", file=sys.stderr)
        return 2
    for spec, train in zip(specs, runs, strict=True):
        record = run_one(spec, train) | {"argv": argv, "command": command(argv)}
        append_record(args.results, record)
        outcome = (
            f"solved at step {record['steps_to_solve']} after {record['wall_s_to_solve']:.1f} s "
            f"wall, {record['cpu_s_to_solve']:.1f} s CPU"
            if record["solved"]
            else f"not solved ({record['stop_reason']})"
        )
        print(
            f"{spec.lib}/{variant} {spec.env_id} seed {spec.seed}: {outcome}; "
            f"{record['steps_per_s']:.0f} steps/s; appended to {args.results}",
            flush=True,
        )
    return 0


# -- summary -------------------------------------------------------------------------------------
def median(values: list[float]) -> float:
    """Median where an unsolved run counts as infinitely slow: it is finite only when more
    than half the runs solved (and, with an even count, both middle ones)."""
    return statistics.median(values) if values else math.nan


def to_solve(records: list[dict[str, Any]], key: str) -> list[float]:
    """`key` of each run, infinity for a run that did not solve."""
    return [float(r[key]) if r["solved"] else math.inf for r in records]


def ratio(sb3: float, ours: float) -> float:
    """SB3's median over ours: > 1 means ours is faster; inf when only ours solved."""
    if math.isnan(sb3) or math.isnan(ours) or math.isinf(ours):
        return math.nan
    if ours == 0:
        return math.inf
    return sb3 / ours


def group_stats(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "runs": len(records),
        "solved": sum(r["solved"] for r in records),
        "steps": median(to_solve(records, "steps_to_solve")),
        "wall": median(to_solve(records, "wall_s_to_solve")),
        "cpu": median(to_solve(records, "cpu_s_to_solve")),
        "wall_incl_eval": median(to_solve(records, "wall_s_to_solve_incl_eval")),
        "steps_per_s": median([r["steps_per_s"] for r in records if r["steps_per_s"]]),
        "best_eval": median(
            [r["best_eval_mean"] for r in records if r["best_eval_mean"] is not None]
        ),
    }


Groups = dict[tuple[str, str], list[dict[str, Any]]]


def group(records: list[dict[str, Any]]) -> dict[tuple[str, float], Groups]:
    """(env, threshold) -> (lib, variant) -> runs sorted by seed; sections and groups in
    first-seen order, SB3 after ours."""
    out: dict[tuple[str, float], Groups] = {}
    for r in records:
        section = out.setdefault((r["env"], r["threshold"]), {})
        section.setdefault((r["lib"], r["variant"]), []).append(r)
    for key, groups in out.items():
        ordered = sorted(groups.items(), key=lambda kv: kv[0][0] == "sb3")
        out[key] = {k: sorted(v, key=lambda r: r["seed"]) for k, v in ordered}
    return out


def fmt(x: float | None, digits: int = 1, unsolved: str = "not solved") -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and math.isnan(x):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return unsolved
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def fmt_ratio(x: float) -> str:
    if math.isnan(x):
        return "-"
    if math.isinf(x):
        return "SB3 not solved"
    return f"{x:.2f}x"


def budget_text(r: dict[str, Any]) -> str:
    b = r["budget"]
    text = f"{b['max_steps']:,} steps"
    if b.get("max_seconds"):
        text += f" / {b['max_seconds']:g} s"
    return text


def config_text(r: dict[str, Any]) -> str:
    if r["lib"] == "sb3":
        hp = ", ".join(f"{k}={v}" for k, v in r["hyperparameters"].items())
        text = f"SB3 DDPG, {hp} (from {r['hyperparameters_source']})"
        if r.get("hyperparameters_note"):
            text += f"; NOTE: {r['hyperparameters_note']}"
        return text
    defaults = {f.name: f.default for f in dataclasses.fields(Config)}
    skip = {"seed", "env_id"}
    changed = ", ".join(
        f"{k}={v}"
        for k, v in r["config"].items()
        if k not in skip and (k not in defaults or defaults[k] != v)
    )
    overrides = ", ".join(f"{k}={v}" for k, v in r["overrides"].items()) or "none"
    return (
        f"preset `{r['preset']}`, --set overrides: {overrides}; resolved config (fields that "
        f"differ from Config's defaults): {changed}"
    )


def summarize(records: list[dict[str, Any]], summarize_command: str | None = None) -> str:
    out = [
        "# Time to solve",
        "",
        "Training wall-clock seconds until the first periodic evaluation whose mean return over "
        "deterministic episodes reaches the threshold, our DDPG (by preset/variant) against "
        "Stable-Baselines3's DDPG with the RL Zoo's hyperparameters. Produced by "
        "`benchmarks/time_to_solve.py`.",
        "",
        "- Evaluation: every N env steps, on a separate `gymnasium.make(env)` environment, "
        f"episode i of seed s reset with `episode_seed(s, {EVAL_STREAM}, i)`: the same start "
        "states for both libraries.",
        "- Both clocks (wall `time.perf_counter`, CPU `time.process_time`) are paused during "
        "evaluations: the figures are training time, environment and model construction "
        'included; "incl. eval" adds the evaluations\' time up to the solve.',
        "- Medians over seeds. A run that did not solve within its budget counts as infinitely "
        'slow, so a median reads "not solved" unless more than half the runs solved.',
        "- SB3/ours is SB3's median over ours: above 1 ours is faster (the issue's aim: 2x).",
        "- steps/s: env steps run over training wall seconds, the random steps before learning "
        "starts included; best eval: the best evaluation mean of the run (runs stop when "
        "solved).",
    ]
    grouped = group(records)
    for (env_id, threshold), groups in grouped.items():
        stats = {key: group_stats(runs) for key, runs in groups.items()}
        sb3_keys = [k for k in groups if k[0] == "sb3"]
        ref = ("sb3", "zoo") if ("sb3", "zoo") in groups else (sb3_keys[0] if sb3_keys else None)
        protocols = sorted(
            {
                (r["eval_protocol"]["every"], r["eval_protocol"]["episodes"])
                for runs in groups.values()
                for r in runs
            }
        )
        out += [
            "",
            f"## {env_id}, threshold {threshold:g}",
            "",
            "Evaluation every "
            + "; ".join(f"{e:,} steps over {n} episodes" for e, n in protocols)
            + ".",
            "",
            "| library | variant | solved | median steps to solve | median wall s | median CPU s "
            "| median wall s incl. eval | median steps/s | median best eval "
            + ("| SB3/ours wall | SB3/ours CPU | SB3/ours steps " if ref else "")
            + "|",
            "|---|---|---:|---:|---:|---:|---:|---:|---:"
            + ("|---:|---:|---:" if ref else "")
            + "|",
        ]
        for (lib, variant), s in stats.items():
            row = (
                f"| {lib} | {variant} | {s['solved']}/{s['runs']} | {fmt(s['steps'], 0)} "
                f"| {fmt(s['wall'])} | {fmt(s['cpu'])} | {fmt(s['wall_incl_eval'])} "
                f"| {fmt(s['steps_per_s'], 0)} | {fmt(s['best_eval'])} "
            )
            if ref:
                if lib == "ours":
                    r = stats[ref]
                    row += (
                        f"| {fmt_ratio(ratio(r['wall'], s['wall']))} "
                        f"| {fmt_ratio(ratio(r['cpu'], s['cpu']))} "
                        f"| {fmt_ratio(ratio(r['steps'], s['steps']))} "
                    )
                else:
                    row += "| | | "
            out.append(row + "|")
        if ref:
            out += ["", f"Ratios against SB3 variant `{ref[1]}`."]
        out += [
            "",
            "| library | variant | seed | steps to solve | wall s to solve | CPU s to solve "
            "| wall s incl. eval | steps/s | best eval | stopped | training wall s "
            "| load avg start, end |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
        ]
        for (lib, variant), runs in groups.items():
            for r in runs:
                unsolved = f"not solved within budget ({budget_text(r)})"
                solved = r["solved"]
                load = [r.get("load_average_start"), r.get("load_average_end")]
                load_text = ", ".join(f"{x[0]:.2f}" if x else "-" for x in load)
                out.append(
                    f"| {lib} | {variant} | {r['seed']} "
                    f"| {fmt(r['steps_to_solve'], 0) if solved else unsolved} "
                    f"| {fmt(r['wall_s_to_solve']) if solved else '-'} "
                    f"| {fmt(r['cpu_s_to_solve']) if solved else '-'} "
                    f"| {fmt(r['wall_s_to_solve_incl_eval']) if solved else '-'} "
                    f"| {fmt(r['steps_per_s'], 0)} | {fmt(r['best_eval_mean'])} "
                    f"| {r['stop_reason']} at {r['total_steps_run']:,} "
                    f"| {fmt(r['train_wall_s'])} | {load_text} |"
                )
        out += ["", "Configurations:", ""]
        for (lib, variant), runs in groups.items():
            texts = {config_text(r) for r in runs}
            note = "" if len(texts) == 1 else f" ({len(texts)} different configurations!)"
            for text in sorted(texts):
                out.append(f"- {lib} / {variant}{note}: {text}")

    out += ["", "## Machine and versions", ""]
    machines = sorted({(r["cpu"], r["cpu_count"], r.get("hostname", "?")) for r in records})
    for cpu, count, host in machines:
        out.append(f"- CPU: {cpu} ({count} cores available), host {host}")
    threads = sorted({(r["torch_threads"], r["torch_threads_flag"]) for r in records})
    out.append(
        "- torch threads: " + "; ".join(f"{t} (--torch-threads {flag})" for t, flag in threads)
    )
    for v in sorted({json.dumps(r["versions"], sort_keys=True) for r in records}):
        out.append("- versions: " + ", ".join(f"{k} {x}" for k, x in json.loads(v).items()))
    gits = sorted({(g["commit"][:12], g["src_modified"]) for r in records if (g := r.get("git"))})
    for commit, modified in gits:
        out.append(f"- code: commit {commit}" + (" with src/ modified" if modified else ""))
    dates = sorted(r["date"] for r in records)
    if dates:
        out.append(f"- runs finished between {dates[0]} and {dates[-1]}")
    out += ["", "## Commands", "", "```"]
    seen: list[str] = []
    for r in records:
        if r["command"] not in seen:
            seen.append(r["command"])
    out += seen
    if summarize_command:
        out.append(summarize_command)
    out.append("```")
    return "\n".join(out) + "\n"


def summarize_main(args: argparse.Namespace, argv: list[str]) -> int:
    records = read_records(args.summarize, "time_to_solve.py")
    if not records:
        print(
            "time_to_solve.py: no records in " + ", ".join(map(str, args.summarize)),
            file=sys.stderr,
        )
        return 1
    text = summarize(records, "python " + shlex.join(argv))
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    script = os.path.relpath(__file__) if argv is not None else sys.argv[0]
    full_argv = [script, *(sys.argv[1:] if argv is None else argv)]
    args = parse_args(full_argv[1:])
    if args.summarize is not None:
        return summarize_main(args, full_argv)
    return train_main(args, full_argv)


if __name__ == "__main__":
    raise SystemExit(main())
