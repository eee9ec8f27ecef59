"""Learning curves: evaluation and training returns against env steps, mean and spread across
runs of the same config."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ddpg.errors import RunDirError
from ddpg.links import read_run_config
from ddpg.loggers import read_curve


@dataclass
class RunCurves:
    run_dir: Path
    label: str
    group: str
    eval_steps: np.ndarray
    eval_means: np.ndarray
    train_steps: np.ndarray
    train_running: np.ndarray


def load_curves(run_dir: Path) -> RunCurves:
    data = read_run_config(run_dir)
    config = dict(data["config"])
    config.pop("seed", None)
    label = data.get("preset") or config.get("env_id", "run")
    eval_steps, eval_means = read_curve(run_dir / "evaluations.csv", "mean_return")
    train_steps, train_running = read_curve(run_dir / "metrics.csv", "running_avg_100")
    if not len(eval_steps) and not len(train_steps):
        raise RunDirError(f"{run_dir} has no metrics to plot yet")
    return RunCurves(
        run_dir=run_dir,
        label=f"{label} ({config.get('env_id')})",
        group=json.dumps(config, sort_keys=True),
        eval_steps=eval_steps,
        eval_means=eval_means,
        train_steps=train_steps,
        train_running=train_running,
    )


def _band(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...] | None:
    """Mean, min and max of several curves on a common step grid (each only inside its range)."""
    curves = [(x, y) for x, y in curves if len(x)]
    if not curves:
        return None
    top = max(x[-1] for x, _ in curves)
    grid = np.linspace(min(x[0] for x, _ in curves), top, 200)
    stacked = np.full((len(curves), grid.size), np.nan)
    for i, (x, y) in enumerate(curves):
        inside = (grid >= x[0]) & (grid <= x[-1])
        stacked[i, inside] = np.interp(grid[inside], x, y)
    counted = ~np.all(np.isnan(stacked), axis=0)
    grid, stacked = grid[counted], stacked[:, counted]
    return grid, np.nanmean(stacked, 0), np.nanmin(stacked, 0), np.nanmax(stacked, 0)


def plot_runs(run_dirs: list[Path], out: Path) -> Path:
    """Write a PNG with evaluation (left) and training (right) returns of the given runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [load_curves(Path(d)) for d in run_dirs]
    groups: dict[str, list[RunCurves]] = {}
    for run in runs:
        groups.setdefault(run.group, []).append(run)
    fig, (ax_eval, ax_train) = plt.subplots(1, 2, figsize=(12, 4.5))
    for color, members in zip(
        plt.rcParams["axes.prop_cycle"].by_key()["color"], groups.values(), strict=False
    ):
        label = f"{members[0].label}, {len(members)} run{'s' if len(members) > 1 else ''}"
        for ax, pairs in (
            (ax_eval, [(r.eval_steps, r.eval_means) for r in members]),
            (ax_train, [(r.train_steps, r.train_running) for r in members]),
        ):
            band = _band(pairs)
            if band is None:
                continue
            grid, mean, low, high = band
            ax.plot(grid, mean, color=color, label=label)
            if len(members) > 1:
                ax.fill_between(grid, low, high, color=color, alpha=0.2, linewidth=0)
    ax_eval.set_title("Deterministic evaluation (mean; band: min-max over runs)")
    ax_train.set_title("Training return (running average of 100 episodes)")
    for ax in (ax_eval, ax_train):
        ax.set_xlabel("environment steps")
        ax.set_ylabel("return")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp-{os.getpid()}{out.suffix}")
    try:
        fig.savefig(tmp, dpi=100, format=out.suffix.lstrip(".").lower() or "png")
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return out
