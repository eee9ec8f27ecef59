"""Summarise finished run directories as a Markdown table (used for docs/results.md).

python benchmarks/summarize_runs.py runs/ll-a-s0 runs/ll-a-s1 runs/ll-a-s2 --threshold 200
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def summarize(run_dir: Path, threshold: float | None) -> dict[str, object]:
    config = json.loads((run_dir / "config.json").read_text())["config"]
    summary = json.loads((run_dir / "evaluation.json").read_text())
    with open(run_dir / "evaluations.csv", newline="") as f:
        evals = [(int(r["step"]), float(r["mean_return"])) for r in csv.DictReader(f)]
    first = next((s for s, m in evals if threshold is not None and m >= threshold), None)
    return {
        "run": run_dir.name,
        "seed": config["seed"],
        "steps": summary["steps"],
        "best periodic eval": max((m for _, m in evals), default=float("nan")),
        "first step >= threshold": first if first is not None else "-",
        "best model, fresh episodes": f"{summary['best']['mean_return']:.1f} "
        f"+- {summary['best']['std_return']:.1f} ({summary['best']['episodes']} ep.)",
        "final model, fresh episodes": f"{summary['final']['mean_return']:.1f} "
        f"+- {summary['final']['std_return']:.1f}",
        "wall time s": round(summary["wall_time_s"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--threshold", type=float, default=None)
    args = parser.parse_args()
    rows = [summarize(d, args.threshold) for d in args.run_dirs]
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        cells = [f"{v:.1f}" if isinstance(v, float) else str(v) for v in row.values()]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
