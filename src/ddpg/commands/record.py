"""`ddpg record`: a headless video of a run's policy."""

from __future__ import annotations

import argparse
from pathlib import Path

from ddpg.commands.options import (
    add_force_option,
    add_model_arguments,
    episode_count,
    model_file,
    path_arg,
    positive_int,
    suffix_kind,
)
from ddpg.errors import RunDirError

HELP = "write a video of a run's trained agent"
DESCRIPTION = "Render the deterministic policy headless into a GIF or MP4."


def add_arguments(record: argparse.ArgumentParser) -> None:
    add_model_arguments(record)
    record.add_argument("--out", type=path_arg, help="video path (default: RUN/agent.gif)")
    record.add_argument("--episodes", type=episode_count, default=1, help="episodes (default: 1)")
    record.add_argument(
        "--frame-skip", type=positive_int, default=2, help="keep every Nth frame (default: 2)"
    )
    add_force_option(record)


def run(args: argparse.Namespace) -> int:
    from ddpg.outputs import check_output, check_outside_runs
    from ddpg.record import VIDEO_KINDS, record_video

    out: Path = args.out or args.run_dir / "agent.gif"
    kind = suffix_kind(out, VIDEO_KINDS)
    if kind is None:
        raise RunDirError(f"video file must end in .gif or .mp4, got '{out}'")
    check_output(out, kind, args.force)
    check_outside_runs(out, own=[args.run_dir])
    path, frames, returns = record_video(
        model_file(args.run_dir, args.model),
        out,
        episodes=args.episodes,
        seed=args.seed,
        frame_skip=args.frame_skip,
    )
    shown = ", ".join(f"{r:.1f}" for r in returns)
    print(f"wrote {path}: {frames} frames, episode return(s) {shown}")
    return 0
