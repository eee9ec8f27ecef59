"""`ddpg train`: start a run (or resume one), train it, finish it; Ctrl-C and SIGTERM stop it
with a checkpoint and the resume command."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ddpg.commands.boundary import EXIT_SIGNAL, Terminated, context, raise_terminated
from ddpg.commands.options import (
    add_config_options,
    add_preset_option,
    config_overrides,
    path_arg,
    train_config,
)
from ddpg.config import config_warnings
from ddpg.errors import RunDirError
from ddpg.loggers import Console
from ddpg.presets import DEFAULT_PRESET

HELP = "train an agent and write a run directory"
DESCRIPTION = (
    f"Train an agent. Without --preset and --env, the {DEFAULT_PRESET} preset; with --env "
    "alone, the library's generic defaults. Every config field can be overridden with "
    "--field-name VALUE. Writes config.json, metrics.csv, evaluations.csv, "
    "model_final.safetensors, model_best.safetensors, evaluation.json and checkpoints/ "
    "into the run directory."
)


def add_arguments(train: argparse.ArgumentParser) -> None:
    add_preset_option(train)
    train.add_argument(
        "--run-dir", type=path_arg, help="run directory (default: runs/PRESET-sSEED-TIME)"
    )
    train.add_argument(
        "--overwrite", action="store_true", help="replace an existing run directory of this library"
    )
    train.add_argument(
        "--resume", type=path_arg, metavar="RUN_DIR", help="continue an interrupted run"
    )
    train.add_argument("--quiet", action="store_true", help="print nothing but errors")
    add_config_options(train)


def run(args: argparse.Namespace) -> int:
    previous = signal.signal(signal.SIGTERM, raise_terminated)  # exit 143 until training runs
    try:
        return _start_and_train(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _start_and_train(args: argparse.Namespace) -> int:
    from ddpg.outputs import check_outside_runs
    from ddpg.runs import clear_run_dir, finish_run, resume_run, start_run
    from ddpg.train import TrainingInterrupted

    console = Console(quiet=args.quiet)
    overrides = config_overrides(args)
    if args.resume is not None:
        run_dir = args.resume
        if args.preset or args.run_dir or args.overwrite:
            raise RunDirError("--preset/--run-dir/--overwrite cannot be changed when resuming")
        trainer, path, skipped = resume_run(run_dir, overrides, console)
        for reason in skipped:
            console.print(f"skipped a damaged checkpoint: {reason}")
        console.print(
            f"resumed from {path} at step {trainer.state.step}, episode {trainer.state.episode}"
        )
        _warn(_costs(trainer))
    else:
        config, preset, notes = train_config(args.preset, overrides)
        run_dir = args.run_dir or Path("runs") / (
            f"{preset}-s{config.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
        )
        check_outside_runs(run_dir)
        if (run_dir.exists() or run_dir.is_symlink()) and not run_dir.is_dir():
            what = "is a broken symbolic link" if run_dir.is_symlink() else "is not a directory"
            raise RunDirError(f"run directory {run_dir} exists and {what}")
        if run_dir.exists() and any(run_dir.iterdir()):
            if not args.overwrite:
                raise RunDirError(
                    f"run directory {run_dir} exists; pass --overwrite to replace it or "
                    f"--resume {shlex.quote(str(run_dir))} to continue it"
                )
            clear_run_dir(run_dir, check_only=True)  # refuses anything but a run of ours
        trainer = start_run(config, run_dir, preset, console, overwrite=args.overwrite)
        _warn([*notes, *config_warnings(config), *_costs(trainer)])
        console.print(
            f"training {config.env_id} ({preset}) into {run_dir}; "
            f"budget {config.total_steps or '-'} steps / {config.episodes or '-'} episodes"
        )
    context["run_dir"] = run_dir
    try:
        return _train(trainer, run_dir, console, TrainingInterrupted, finish_run)
    finally:
        trainer.close()


def _costs(trainer: Any) -> list[str]:
    """What the run about to train will cost, where that is worth a warning (costs.py)."""
    from ddpg.costs import cost_warnings, episode_limit  # torch: not for report or plot

    c = trainer.config
    return cost_warnings(c, trainer.info.obs_dim, trainer.info.act_dim, episode_limit(c))


def _warn(lines: list[str]) -> None:
    for line in lines:
        print(f"ddpg: warning: {line}", file=sys.stderr)


def _train(
    trainer: Any, run_dir: Path, console: Console, interrupted: type, finish: Callable
) -> int:
    def request_stop(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if trainer.stop_requested is not None:  # asked twice (an update or an env step that
            # does not end, say): stop now, without a checkpoint; the last one stays
            context["no_checkpoint"] = run_dir
            raise KeyboardInterrupt if name == "SIGINT" else Terminated
        trainer.stop_requested = name

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        trainer.run()
    except interrupted as stop:
        console.close()  # the progress bar ends on its own line, above the message
        print(
            f"ddpg: stopped by {stop.signal_name} at step {trainer.state.step}; checkpoint "
            f"written to {stop.checkpoint}\nresume with: ddpg train --resume "
            f"{shlex.quote(str(run_dir))}",
            file=sys.stderr,
        )
        return EXIT_SIGNAL.get(stop.signal_name, 1)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    stopped = trainer.stop_requested  # a signal that came during the run's last checkpoint
    try:
        if stopped is None:
            console.print(
                f"evaluating best and final policy over {trainer.config.eval_episodes} episodes..."
            )
            summary = finish(trainer)
    except KeyboardInterrupt:
        stopped = "SIGINT"
    except Terminated:
        stopped = "SIGTERM"
    if stopped is not None:  # training is done and checkpointed; the model files may not be
        print(
            f"ddpg: stopped by {stopped} after training, before the final evaluation was "
            f"written; finish it with: ddpg train --resume {shlex.quote(str(run_dir))}",
            file=sys.stderr,
        )
        return EXIT_SIGNAL[stopped]
    steps_per_s = summary["steps"] / max(summary["wall_time_s"], 1e-9)
    console.print(
        f"done: {summary['steps']:,} steps, {summary['episodes']} episodes, "
        f"{summary['wall_time_s']:.0f} s ({steps_per_s:.0f} steps/s)\n"
        f"  best policy  (step {summary['best_step']}): "
        f"{summary['best']['mean_return']:.1f} +- {summary['best']['std_return']:.1f}"
        f"{_success(summary['best'])}\n"
        f"  final policy: {summary['final']['mean_return']:.1f} +- "
        f"{summary['final']['std_return']:.1f}{_success(summary['final'])}\n"
        f"  files: {run_dir}/ (evaluation.json, metrics.csv, model_best.safetensors, "
        "model_final.safetensors)"
    )
    return 0


def _success(evaluation: dict[str, Any]) -> str:
    """', success rate 0.95' where the env reports info['is_success']."""
    rate = evaluation.get("success_rate")
    return "" if rate is None else f", success rate {rate:.2f}"
