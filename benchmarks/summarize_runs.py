"""Summarise finished run directories as a Markdown table (used for docs/results.md).

python benchmarks/summarize_runs.py runs/ll-a-s0 runs/ll-a-s1 runs/ll-a-s2 --threshold 200
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from common import table


def summarize(run_dir: Path, threshold: float | None) -> list[str]:
    config = json.loads((run_dir / "config.json").read_text())["config"]
    summary = json.loads((run_dir / "evaluation.json").read_text())
    with open(run_dir / "evaluations.csv", newline="") as f:
        evals = [(int(r["step"]), float(r["mean_return"])) for r in csv.DictReader(f)]
    first = next((s for s, m in evals if threshold is not None and m >= threshold), "-")
    best, final = summary["best"], summary["final"]
    return [
        run_dir.name, str(config["seed"]), str(summary["steps"]),
        f"{max((m for _, m in evals), default=float('nan')):.1f}", str(first),
        f"{best['mean_return']:.1f} +- {best['std_return']:.1f} ({best['episodes']} ep.)",
        f"{final['mean_return']:.1f} +- {final['std_return']:.1f}",
        str(round(summary["wall_time_s"])),
    ]  # fmt: skip


HEADER = ["run", "seed", "steps", "best periodic eval", "first step >= threshold"]
HEADER += ["best model, fresh episodes", "final model, fresh episodes", "wall time s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--threshold", type=float, default=None)
    args = parser.parse_args()
    print("\n".join(table(HEADER, [summarize(d, args.threshold) for d in args.run_dirs], "l" * 8)))


if __name__ == "__main__":
    main()
