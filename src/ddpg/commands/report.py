"""`ddpg report`: runs grouped by configuration, IQM and CI over seeds, report files."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from ddpg.commands.options import path_arg
from ddpg.errors import ConfigError
from ddpg.runreader import IGNORED_FIELDS, duplicate_seeds

HELP = "aggregate runs over seeds: a table, report.md, report.json, report.png"
DESCRIPTION = (
    "Group run directories by configuration (every config field but the seed and the "
    "fields that do not change learning) and give, per configuration, the number of "
    "seeds, IQM with a 95% stratified bootstrap CI, mean and median of the final "
    "evaluation return, best return and steps to --threshold. Directories are searched "
    "recursively for run directories. Writes report.md, report.json and report.png "
    "(learning curves) into the one directory given, or into --out DIR."
)


def add_arguments(report: argparse.ArgumentParser) -> None:
    report.add_argument("paths", type=path_arg, nargs="+", metavar="SWEEP_DIR|RUN_DIR")
    report.add_argument(
        "--out",
        type=path_arg,
        metavar="DIR",
        help="output directory (default: the directory given, if only one; else report-TIME)",
    )
    report.add_argument(
        "--threshold",
        type=float,
        metavar="R",
        help="also count the steps until a periodic evaluation's mean return first reaches this",
    )
    report.add_argument(
        "--score",
        choices=("final", "best"),
        default="final",
        help="per-run score: the final or the best policy's evaluation return (default: final)",
    )
    report.add_argument(
        "--metric",
        choices=("return", "success_rate"),
        default="return",
        help="what scores a run and its curve: the mean return, or the success rate where the "
        "env reports info['is_success'] (then --threshold is a success rate) (default: return)",
    )
    report.add_argument(
        "--split-by",
        action="append",
        default=[],
        metavar="FIELD",
        help="also separate configurations by FIELD, one of those ignored by default "
        f"({', '.join(name for name in IGNORED_FIELDS if name != 'seed')}); repeatable",
    )
    report.add_argument(
        "--force", action="store_true", help="replace report files that ddpg report did not write"
    )


def run(args: argparse.Namespace) -> int:
    from ddpg.config import check_keys
    from ddpg.outputs import check_outside_runs
    from ddpg.report import build_report, format_table, write_report

    if args.threshold is not None and not math.isfinite(args.threshold):
        raise ConfigError(f"--threshold must be a finite number, got {args.threshold}")
    check_keys({name: None for name in args.split_by})
    if args.out is not None:
        out = args.out
    elif len(args.paths) == 1:
        out = args.paths[0]
    else:
        out = Path(f"report-{time.strftime('%Y%m%d-%H%M%S')}")
    check_outside_runs(out / "report.md", own=args.paths)  # the folder given may take it
    report = build_report(args.paths, args.score, args.threshold, args.split_by, args.metric)
    written = write_report(report, out, force=args.force)
    for run_dir, reason in report.skipped:
        print(f"ddpg: warning: skipped {run_dir}: {' '.join(reason.split())}", file=sys.stderr)
    for group in report.groups:
        for seed, dirs in duplicate_seeds(group):
            print(
                f"ddpg: warning: seed {seed} of {group.name} is used by {len(dirs)} runs "
                f"({', '.join(map(str, dirs))}); each counts as a seed",
                file=sys.stderr,
            )
    print(format_table(report))
    print(f"wrote {', '.join(map(str, written))}")
    return 0
