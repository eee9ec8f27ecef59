"""`ddpg plot`: learning curves of runs to an image."""

from __future__ import annotations

import argparse
from pathlib import Path

from ddpg.commands.options import add_force_option, path_arg, suffix_kind
from ddpg.errors import RunDirError

HELP = "plot learning curves of runs to a PNG"
DESCRIPTION = (
    "Plot evaluation and training returns against env steps. Runs of one configuration "
    "(grouped as ddpg report groups them: every config field but the seed and the fields "
    "that do not change learning) are drawn as their mean with a min-max band."
)
IMAGE_KINDS = {".png": "PNG image", ".svg": "SVG image", ".pdf": "PDF document"}


def add_arguments(plot: argparse.ArgumentParser) -> None:
    plot.add_argument("run_dirs", type=path_arg, nargs="+", metavar="RUN_DIR")
    plot.add_argument(
        "--out", type=path_arg, help="image path, .png/.svg/.pdf (default: RUN/learning_curve.png)"
    )
    add_force_option(plot)


def run(args: argparse.Namespace) -> int:
    from ddpg.links import read_run_config
    from ddpg.outputs import check_output, check_outside_runs
    from ddpg.plots import plot_runs

    for run_dir in args.run_dirs:  # runs first: "not a run directory" says more than the output
        read_run_config(run_dir)
    out: Path = args.out or args.run_dirs[0] / "learning_curve.png"
    if not out.suffix:
        out = out.with_name(out.name + ".png")
    kind = suffix_kind(out, IMAGE_KINDS)
    if kind is None:
        raise RunDirError(f"--out must end in {', '.join(IMAGE_KINDS)}, got '{out.name}'")
    check_output(out, kind, args.force)
    check_outside_runs(out, own=args.run_dirs)
    print(f"wrote {plot_runs(args.run_dirs, out)}")
    return 0
