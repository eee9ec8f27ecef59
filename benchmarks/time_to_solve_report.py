"""The markdown report of time_to_solve.py's records: per environment and library/variant each
run's steps, wall and CPU seconds to solve, their medians over seeds, and SB3's median over ours.
Run through `time_to_solve.py --summarize RESULTS... [--out FILE]`."""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from common import command, fmt, read_records, table
from runner import EVAL_STREAM

from ddpg.config import Config

Records = list[dict[str, Any]]


def median(values: list[float]) -> float:
    """Median where an unsolved run (infinity) counts as infinitely slow: it is finite only when
    more than half the runs solved (and, with an even count, both middle ones)."""
    return statistics.median(values) if values else math.nan


def to_solve(records: Records, key: str) -> list[float]:
    return [float(r[key]) if r["solved"] else math.inf for r in records]


def ratio(sb3: float, ours: float) -> float:
    """SB3's median over ours: > 1 means ours is faster; inf when only ours solved."""
    if math.isnan(sb3) or math.isnan(ours) or math.isinf(ours):
        return math.nan
    return math.inf if ours == 0 else sb3 / ours


def fmt_ratio(x: float) -> str:
    return "-" if math.isnan(x) else "SB3 not solved" if math.isinf(x) else f"{x:.2f}x"


def group_stats(records: Records) -> dict[str, Any]:
    keys = ("steps", "wall", "cpu", "wall_incl_eval")
    fields = ("steps_to_solve", "wall_s_to_solve", "cpu_s_to_solve", "wall_s_to_solve_incl_eval")
    return {
        "runs": len(records),
        "solved": sum(r["solved"] for r in records),
        **{k: median(to_solve(records, f)) for k, f in zip(keys, fields, strict=True)},
        "steps_per_s": median([r["steps_per_s"] for r in records if r["steps_per_s"]]),
        "best_eval": median([b for r in records if (b := r["best_eval_mean"]) is not None]),
    }


def config_text(r: dict[str, Any]) -> str:
    if r["lib"] == "sb3":
        hp = ", ".join(f"{k}={v}" for k, v in r["hyperparameters"].items())
        note = f"; NOTE: {r['hyperparameters_note']}" if r.get("hyperparameters_note") else ""
        return f"SB3 DDPG, {hp} (from {r['hyperparameters_source']}){note}"
    defaults = {f.name: f.default for f in dataclasses.fields(Config)}
    changed = ", ".join(
        f"{k}={v}"
        for k, v in r["config"].items()
        if k not in ("seed", "env_id") and (k not in defaults or defaults[k] != v)
    )
    overrides = ", ".join(f"{k}={v}" for k, v in r["overrides"].items()) or "none"
    return (
        f"preset `{r['preset']}`, --set overrides: {overrides}; resolved config (fields that "
        f"differ from Config's defaults): {changed}"
    )


INTRO = f"""# Time to solve

Training wall-clock seconds until the first periodic evaluation whose mean return over \
deterministic episodes reaches the threshold, our DDPG (by preset/variant) against \
Stable-Baselines3's DDPG with the RL Zoo's hyperparameters (`benchmarks/time_to_solve.py`).

- Evaluation on a separate `gymnasium.make(env)`, episode i of seed s reset with \
`episode_seed(s, {EVAL_STREAM}, i)` for both libraries; the wall (`time.perf_counter`) and CPU \
(`time.process_time`) clocks pause during evaluations ("incl. eval" adds them up to the solve).
- Medians over seeds; an unsolved run counts as infinitely slow ("not solved" unless more than \
half solved). SB3/ours: SB3's median over ours, above 1 ours is faster (the issue's aim: 2x).
- steps/s: env steps over training wall seconds, random steps included; best eval: the best \
evaluation mean of the run (runs stop when solved)."""


def env_section(env_id: str, threshold: float, groups: dict[tuple, Records]) -> list[str]:
    stats = {key: group_stats(runs) for key, runs in groups.items()}
    all_runs = [r for runs in groups.values() for r in runs]
    sb3 = [k for k in groups if k[0] == "sb3"]
    ref = ("sb3", "zoo") if ("sb3", "zoo") in groups else (sb3[0] if sb3 else None)
    protocols = {(r["eval_protocol"]["every"], r["eval_protocol"]["episodes"]) for r in all_runs}
    every = "; ".join(f"{e:,} steps over {n} episodes" for e, n in sorted(protocols))
    header = ["library", "variant", "solved", "median steps to solve", "median wall s"]
    header += ["median CPU s", "median wall s incl. eval", "median steps/s", "median best eval"]
    if ref:
        header += ["SB3/ours wall", "SB3/ours CPU", "SB3/ours steps"]
    rows = []
    for (lib, variant), s in stats.items():
        cells = [fmt(s[k], d, "not solved") for k, d in zip(STAT_KEYS, DIGITS, strict=True)]
        row = [lib, variant, f"{s['solved']}/{s['runs']}", *cells]
        if ref:
            r = stats[ref]
            pairs = [(r[k], s[k]) for k in ("wall", "cpu", "steps")]
            row += [fmt_ratio(ratio(a, b)) if lib == "ours" else "" for a, b in pairs]
        rows.append(row)
    out = ["", f"## {env_id}, threshold {threshold:g}", "", f"Evaluation every {every}.", ""]
    out += table(header, rows, "ll")
    if ref:
        out += ["", f"Ratios against SB3 variant `{ref[1]}`."]
    runs_header = ["library", "variant", "seed", "steps to solve", "wall s to solve"]
    runs_header += ["CPU s to solve", "wall s incl. eval", "steps/s", "best eval", "stopped"]
    runs_header += ["training wall s", "load avg start, end"]
    run_rows = []
    for (lib, variant), runs in groups.items():
        for r in runs:
            ok = r["solved"]
            budget = f"{r['budget']['max_steps']:,} steps"
            if r["budget"].get("max_seconds"):
                budget += f" / {r['budget']['max_seconds']:g} s"
            loads = [r.get("load_average_start"), r.get("load_average_end")]
            run_rows.append(
                [lib, variant, str(r["seed"])]
                + [fmt(r["steps_to_solve"], 0) if ok else f"not solved within budget ({budget})"]
                + [fmt(r[k]) if ok else "-" for k in SOLVE_KEYS]
                + [fmt(r["steps_per_s"], 0), fmt(r["best_eval_mean"])]
                + [f"{r['stop_reason']} at {r['total_steps_run']:,}", fmt(r["train_wall_s"])]
                + [", ".join(f"{x[0]:.2f}" if x else "-" for x in loads)]
            )
    out += ["", *table(runs_header, run_rows, "ll" + "r" * 7 + "lrl"), "", "Configurations:", ""]
    for (lib, variant), runs in groups.items():
        texts = sorted({config_text(r) for r in runs})
        note = "" if len(texts) == 1 else f" ({len(texts)} different configurations!)"
        out += [f"- {lib} / {variant}{note}: {text}" for text in texts]
    return out


STAT_KEYS = ("steps", "wall", "cpu", "wall_incl_eval", "steps_per_s", "best_eval")
DIGITS = (0, 1, 1, 1, 0, 1)
SOLVE_KEYS = ("wall_s_to_solve", "cpu_s_to_solve", "wall_s_to_solve_incl_eval")


def machine_section(records: Records) -> list[str]:
    out = ["", "## Machine and versions", ""]
    machines = {(r["cpu"], r["cpu_count"], r.get("hostname", "?")) for r in records}
    for cpu, count, host in sorted(machines):
        out.append(f"- CPU: {cpu} ({count} cores available), host {host}")
    threads = sorted({(r["torch_threads"], r["torch_threads_flag"]) for r in records})
    out.append("- torch threads: " + "; ".join(f"{t} (--torch-threads {f})" for t, f in threads))
    for v in sorted({json.dumps(r["versions"], sort_keys=True) for r in records}):
        out.append("- versions: " + ", ".join(f"{k} {x}" for k, x in json.loads(v).items()))
    for commit, modified in sorted(
        {(g["commit"][:12], g["src_modified"]) for r in records if (g := r.get("git"))}
    ):
        out.append(f"- code: commit {commit}" + (" with src/ modified" if modified else ""))
    dates = sorted(r["date"] for r in records)
    if dates:
        out.append(f"- runs finished between {dates[0]} and {dates[-1]}")
    return out


def summarize(records: Records, summarize_command: str | None = None) -> str:
    """The report; sections and groups in first-seen order, SB3 after ours, runs by seed."""
    sections: dict[tuple[str, float], dict[tuple, Records]] = {}
    for r in records:
        section = sections.setdefault((r["env"], r["threshold"]), {})
        section.setdefault((r["lib"], r["variant"]), []).append(r)
    out = [INTRO]
    for (env_id, threshold), groups in sections.items():
        ordered = sorted(groups.items(), key=lambda kv: kv[0][0] == "sb3")
        groups = {k: sorted(v, key=lambda r: r["seed"]) for k, v in ordered}
        out += env_section(env_id, threshold, groups)
    commands = list(dict.fromkeys(r["command"] for r in records))
    out += machine_section(records) + ["", "## Commands", "", "```", *commands]
    out += [summarize_command] if summarize_command else []
    return "\n".join([*out, "```"]) + "\n"


def report_main(paths: list[Path], out: Path | None, argv: list[str]) -> int:
    records = read_records(paths, "time_to_solve.py")
    if not records:
        names = ", ".join(map(str, paths))
        print(f"time_to_solve.py: no records in {names}", file=sys.stderr)
        return 1
    text = summarize(records, command(argv))
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    return 0
