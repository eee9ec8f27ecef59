"""`ddpg report`: aggregate the scores of runs over seeds, per configuration, and write
report.md, report.json and report.png.

The runs are found, read and grouped by `ddpg.runreader` (only files that `ddpg train` wrote, so
it works on finished, running and interrupted runs, on any machine, without Ray). The numbers
and their sources are defined in docs/report.md; the statistics live in `ddpg.stats`.
"""

from __future__ import annotations

import json
import math
import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ddpg import __version__
from ddpg.atomic import atomic_write_bytes
from ddpg.errors import RunDirError
from ddpg.runreader import IGNORED_FIELDS, METRICS, Group, Run, group_runs, load_runs
from ddpg.runreader import normalized_config as normalized_config  # importable here, as before
from ddpg.stats import BOOTSTRAP_REPS, BOOTSTRAP_SEED, CONFIDENCE, iqm, stratified_bootstrap_ci

SCORES = ("final", "best")
METRIC_LABELS = {"return": "mean return", "success_rate": "success rate"}
REPORT_FILES = ("report.md", "report.json", "report.png")
GENERATOR = "ddpg report"
MD_MARKER = "<!-- written by ddpg report, which overwrites this file -->"
CURVE_REPS = 2_000  # bootstrap replicates per evaluation step of the learning curves


# -- statistics ---------------------------------------------------------------------------------
def aggregate(runs: Sequence[Run], which: str) -> dict[str, float]:
    """IQM with its stratified bootstrap CI (strata: env_id), mean and median over runs."""
    scores = np.array([r.score(which) for r in runs])
    strata: dict[str, list[float]] = {}
    for run in runs:
        strata.setdefault(run.env_id, []).append(run.score(which))
    low, high = stratified_bootstrap_ci([np.array(s) for s in strata.values()])
    return {
        "iqm": float(iqm(scores)),
        "ci_low": low,
        "ci_high": high,
        "mean": float(scores.mean()),
        "median": float(np.median(scores)),
    }


def summarize(group: Group[Run], score: str, threshold: float | None) -> dict[str, Any]:
    """One configuration's entry of report.json."""
    runs = group.runs
    per_run = []
    for run in runs:
        entry: dict[str, Any] = {
            "run_dir": str(run.run_dir),
            "seed": run.seed,
            "finished": run.finished,
            "steps": run.steps,
            "final": run.final,
            "best": run.best,
            "evaluations": int(run.eval_steps.size),
            "max_periodic_evaluation": float(run.eval_means.max()) if run.eval_means.size else None,
        }
        if threshold is not None:
            entry["steps_to_threshold"] = run.steps_to(threshold)
        per_run.append(entry)
    summary: dict[str, Any] = {
        "name": group.name,
        "overrides": group.overrides,
        "env_id": group.config["env_id"],
        "seeds": len(runs),
        "unfinished": sum(not r.finished for r in runs),
        "score": score,
    }
    both = {which: aggregate(runs, which) for which in SCORES}
    summary |= both[score] | both
    if threshold is not None:
        evaluated = [r for r in runs if r.eval_steps.size]
        hits = [s for s in (r.steps_to(threshold) for r in evaluated) if s is not None]
        summary["threshold"] = {
            "value": threshold,
            "reached": len(hits),
            "evaluated": len(evaluated),
            "median_steps": float(np.median(hits)) if hits else None,
            "steps": sorted(hits),
        }
    summary["runs"] = per_run
    summary["config"] = group.config
    return summary


def learning_curve(runs: Sequence[Run]) -> tuple[np.ndarray, ...] | None:
    """Evaluation steps, and the IQM of the runs' evaluation mean returns at each step with a
    95% bootstrap band. A run counts at the steps within its own evaluated range (linearly
    interpolated between its evaluations if the runs evaluated at different steps)."""
    evaluated = [r for r in runs if r.eval_steps.size]
    if not evaluated:
        return None
    grid = np.unique(np.concatenate([r.eval_steps for r in evaluated]))
    values = np.full((len(evaluated), grid.size), np.nan)
    for i, run in enumerate(evaluated):
        inside = (grid >= run.eval_steps[0]) & (grid <= run.eval_steps[-1])
        values[i, inside] = np.interp(grid[inside], run.eval_steps, run.eval_means)
    center, low, high = (np.empty(grid.size) for _ in range(3))
    for j in range(grid.size):
        column = values[:, j][~np.isnan(values[:, j])]
        center[j] = iqm(column)
        low[j], high[j] = stratified_bootstrap_ci([column], reps=CURVE_REPS)
    return grid, center, low, high


# -- the report ---------------------------------------------------------------------------------
@dataclass
class Report:
    groups: list[Group[Run]]
    skipped: list[tuple[Path, str]]
    score: str
    threshold: float | None
    summaries: list[dict[str, Any]]
    ignored: list[str]  # the fields that do not separate configurations
    metric: str = "return"

    @property
    def label(self) -> str:
        return METRIC_LABELS[self.metric]


def build_report(
    paths: Sequence[Path],
    score: str = "final",
    threshold: float | None = None,
    split_by: Sequence[str] = (),
    metric: str = "return",
) -> Report:
    if score not in SCORES:
        raise RunDirError(f"score must be one of {', '.join(SCORES)}, got {score!r}")
    if metric not in METRICS:
        raise RunDirError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    runs, skipped = load_runs(paths, metric)
    groups = group_runs(runs, split_by)
    summaries = [summarize(g, score, threshold) for g in groups]
    ignored = [f for f in IGNORED_FIELDS if f not in split_by]
    return Report(groups, skipped, score, threshold, summaries, ignored, metric)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def report_json(report: Report, out_dir: Path) -> dict[str, Any]:
    def relative(entry: dict[str, Any]) -> dict[str, Any]:
        runs = [r | {"run_dir": os.path.relpath(r["run_dir"], out_dir)} for r in entry["runs"]]
        return entry | {"runs": runs}

    return _json_safe(
        {
            "generator": GENERATOR,
            "library_version": __version__,
            "score": report.score,
            "metric": report.metric,
            "threshold": report.threshold,
            "grouped_without": report.ignored,
            "statistics": {
                "center": "interquartile mean over seeds (floor(n/4) cut from each end)",
                "interval": "stratified percentile bootstrap over seeds, strata: env_id",
                "confidence": CONFIDENCE,
                "reps": BOOTSTRAP_REPS,
                "rng_seed": BOOTSTRAP_SEED,
            },
            "configs": [relative(s) for s in report.summaries],
            "skipped": [
                {"run_dir": os.path.relpath(d, out_dir), "reason": why} for d, why in report.skipped
            ],
        }
    )


def _fmt(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def table_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    other = "best" if report.score == "final" else "final"
    header = ["config", "env", "seeds", "IQM", "95% CI", "mean", "median", f"{other} IQM"]
    if report.threshold is not None:
        header += [f"reached {report.threshold:g}", "median steps"]
    digits = 2 if report.metric == "success_rate" else 1  # a rate to the percent

    def fmt(x: float | None) -> str:
        return _fmt(x, digits)

    rows = []
    for s in report.summaries:
        row = [
            s["name"],
            s["env_id"],
            f"{s['seeds']}{'*' if s['unfinished'] else ''}",
            fmt(s["iqm"]),
            f"[{fmt(s['ci_low'])}, {fmt(s['ci_high'])}]",
            fmt(s["mean"]),
            fmt(s["median"]),
            fmt(s[other]["iqm"]),
        ]
        if report.threshold is not None:
            t = s["threshold"]
            steps = t["median_steps"]
            row += [f"{t['reached']}/{t['evaluated']}", "-" if steps is None else f"{steps:,.0f}"]
        rows.append(row)
    return header, rows


def score_sentence(report: Report) -> str:
    which = "final" if report.score == "final" else "best"
    return (
        f"Score per run: the {which} policy's {report.label} on fresh episodes "
        "(evaluation.json). "
        f"IQM, mean and median over seeds; 95% CI: stratified percentile bootstrap of the IQM "
        f"({BOOTSTRAP_REPS:,} resamples)."
    )


def footnotes(report: Report) -> list[str]:
    notes = []
    if any(s["unfinished"] for s in report.summaries):
        notes.append(
            "* includes unfinished runs (no evaluation.json yet): their final is the last "
            "periodic evaluation and their best the highest one (evaluations.csv)."
        )
    if report.threshold is not None:
        notes.append(
            f"reached {report.threshold:g}: runs whose periodic evaluation mean reached it, of "
            "those with periodic evaluations; median steps: the median among them of the step "
            "of the first such evaluation."
        )
    return notes


def format_table(report: Report) -> str:
    header, rows = table_rows(report)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    ]
    return "\n".join([score_sentence(report), *lines, *footnotes(report)])


def format_markdown(report: Report, png_name: str, out_dir: Path) -> str:
    header, rows = table_rows(report)
    md = [
        MD_MARKER,
        "# Report",
        "",
        f"{sum(s['seeds'] for s in report.summaries)} runs in {len(report.summaries)} "
        f"configuration{'s' if len(report.summaries) != 1 else ''}, by ddpg {__version__}. "
        + score_sentence(report)
        + " Definitions: docs/report.md in the ddpg repository.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
        *(f"{note}  " for note in footnotes(report)),
        "",
        f"![learning curves]({png_name})",
        "",
        "Learning curves: at each evaluation step, the IQM over seeds of the periodic evaluation "
        f"{report.label}, with a 95% percentile bootstrap band.",
        "",
        "## Runs",
    ]
    for s in report.summaries:
        md += [
            "",
            f"### {s['name']}",
            "",
            "| run | seed | finished | steps | final | best |",
            "|---|---:|---|---:|---:|---:|",
        ]
        md += [
            f"| {os.path.relpath(r['run_dir'], out_dir)} | {r['seed']} | "
            f"{'yes' if r['finished'] else 'no'} | {r['steps']:,} | {_fmt(r['final'])} | "
            f"{_fmt(r['best'])} |"
            for r in s["runs"]
        ]
    if report.skipped:
        md += ["", "## Skipped", ""]
        md += [f"- {os.path.relpath(d, out_dir)}: {why}" for d, why in report.skipped]
    return "\n".join(md) + "\n"


def plot_curves(report: Report) -> bytes:
    """The learning curves as PNG bytes: one panel per environment, one line and band per
    configuration."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted({g.config["env_id"] for g in report.groups})
    fig, axes = plt.subplots(
        1, len(envs), figsize=(6.5 * len(envs), 4.5), squeeze=False, layout="constrained"
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, group in enumerate(report.groups):
        ax = axes[0, envs.index(group.config["env_id"])]
        curve = learning_curve(group.runs)
        if curve is None:
            continue
        steps, center, low, high = curve
        color = colors[i % len(colors)]
        n = len(group.runs)
        label = textwrap.fill(f"{group.name} ({n} seed{'s' * (n != 1)})", 90)
        ax.plot(steps, center, color=color, label=label)
        ax.fill_between(steps, low, high, color=color, alpha=0.2, linewidth=0)
    for env, ax in zip(envs, axes[0], strict=True):
        if report.threshold is not None:
            ax.axhline(report.threshold, color="grey", linestyle="--", linewidth=1)
        ax.set_title(f"{env}: IQM over seeds, 95% bootstrap CI", fontsize=10)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(f"evaluation {report.label}")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), fontsize=8, frameon=False)
        else:
            ax.text(0.5, 0.5, "no periodic evaluations", ha="center", transform=ax.transAxes)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": f"{GENERATOR} {__version__}"})
    plt.close(fig)
    return buffer.getvalue()


# -- output files ---------------------------------------------------------------------------------
def _is_ours(path: Path) -> bool:
    """Whether an existing report file was written by `ddpg report` (then it may be replaced)."""
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            return isinstance(data, dict) and data.get("generator") == GENERATOR
        if path.suffix == ".md":
            with open(path, encoding="utf-8") as f:
                return f.readline().rstrip("\n") == MD_MARKER
        from PIL import Image

        with Image.open(path) as image:
            return str(image.info.get("Software", "")).startswith(GENERATOR)
    except Exception:  # unreadable or foreign (PIL raises assorted errors): not ours
        return False


def check_outputs(out_dir: Path, force: bool) -> None:
    """Refuse before writing anything: an output path that is not a directory, or a report file
    that `ddpg report` did not write (unless `force`)."""
    from ddpg.outputs import check_folder

    if out_dir.exists() and not out_dir.is_dir():
        raise RunDirError(f"output {out_dir} exists and is not a directory")
    check_folder(out_dir)
    for name in REPORT_FILES:
        path = out_dir / name
        if path.is_dir():
            raise RunDirError(f"{path} is a directory; pass --out DIR")
        if path.exists() and not force and not _is_ours(path):
            raise RunDirError(
                f"{path} exists and was not written by ddpg report; pass --force to replace it "
                "or --out DIR"
            )


def write_report(report: Report, out_dir: Path, force: bool = False) -> list[Path]:
    """Write report.md, report.json and report.png into `out_dir` (created if missing)."""
    check_outputs(out_dir, force)
    png = plot_curves(report)
    md_name, json_name, png_name = REPORT_FILES
    contents = {
        md_name: format_markdown(report, png_name, out_dir).encode(),
        json_name: (
            json.dumps(report_json(report, out_dir), indent=2, allow_nan=False) + "\n"
        ).encode(),
        png_name: png,
    }
    out_dir.mkdir(parents=True, exist_ok=True)  # an OSError names the path (exit code 4)
    for name, data in contents.items():
        atomic_write_bytes(out_dir / name, data)
    return [out_dir / name for name in REPORT_FILES]
