"""Learning curves: evaluation and training returns against env steps, mean and spread across
the runs of one configuration (grouped by `ddpg.runreader`, as `ddpg report` groups them)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ddpg.errors import RunDirError
from ddpg.loggers import read_curve
from ddpg.outputs import write_output
from ddpg.runreader import Group, RunRecord, group_runs, read_record


@dataclass
class RunCurves(RunRecord):
    """A run's periodic evaluations (RunRecord's) and its training returns."""

    train_steps: np.ndarray
    train_running: np.ndarray  # running average of 100 episodes

    @property
    def label(self) -> str:
        return f"{self.preset or self.env_id} ({self.env_id})"


def load_curves(run_dir: Path) -> RunCurves:
    record = read_record(Path(run_dir))
    train_steps, train_running = read_curve(record.run_dir / "metrics.csv", "running_avg_100")
    if not len(record.eval_steps) and not len(train_steps):
        raise RunDirError(f"{record.run_dir} has no metrics to plot yet")
    return RunCurves(**vars(record), train_steps=train_steps, train_running=train_running)


def curve_groups(run_dirs: Sequence[Path]) -> list[Group[RunCurves]]:
    """The runs' curves, grouped by configuration (`ddpg.runreader.group_runs`)."""
    return group_runs(load_curves(d) for d in run_dirs)


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

    groups = curve_groups(run_dirs)
    fig, (ax_eval, ax_train) = plt.subplots(1, 2, figsize=(12, 4.5))
    for color, group in zip(
        plt.rcParams["axes.prop_cycle"].by_key()["color"], groups, strict=False
    ):
        members = group.runs
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
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, dpi=100, format=Path(out).suffix.lstrip(".").lower() or "png")
    finally:
        plt.close(fig)
    write_output(Path(out), buffer.getvalue())
    return Path(out)
