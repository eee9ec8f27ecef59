"""The `ddpg` command: train, evaluate, plot, record, report, presets.

Errors a user can cause are printed as one line on stderr with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn

from ddpg import __version__
from ddpg.config import Config, field_docs, parse_value
from ddpg.errors import ConfigError, DDPGError, RunDirError
from ddpg.loggers import Console
from ddpg.presets import DEFAULT_PRESET, PRESETS, preset_config

# Fields that may change when a run is resumed: budgets and output only.
RESUMABLE_OVERRIDES = {"total_steps", "episodes", "log_every", "render_from"}
EXIT_INTERRUPTED = {"SIGINT": 130, "SIGTERM": 143}


def option_name(field: str) -> str:
    return "--" + field.replace("_", "-")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with a suggestion for a mistyped option)."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            options = [o for a in self._actions for o in a.option_strings]
            for word in message.split(":", 1)[1].split():
                close = difflib.get_close_matches(word.split("=")[0], options, n=1)
                if close:
                    message += f" (did you mean {close[0]}?)"
                    break
        self.exit(2, f"{self.prog}: error: {message}; see --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="ddpg",
        description="DDPG for Gymnasium continuous-control environments.",
    )
    parser.add_argument("--version", action="version", version=f"ddpg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="train an agent and write a run directory",
        description=(
            "Train an agent. Starts from a preset (default: "
            f"{DEFAULT_PRESET}); every config field can be overridden with --field-name VALUE. "
            "Writes config.json, metrics.csv, evaluations.csv, model_final.safetensors, "
            "model_best.safetensors, evaluation.json and checkpoints/ into the run directory."
        ),
    )
    train.add_argument(
        "--preset", default=None, help=f"preset to start from ({', '.join(PRESETS)})"
    )
    train.add_argument("--env", dest="env_id", default=argparse.SUPPRESS, help="alias of --env-id")
    train.add_argument(
        "--run-dir", type=Path, default=None, help="run directory (default: runs/PRESET-sSEED-TIME)"
    )
    train.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    train.add_argument(
        "--resume", type=Path, default=None, metavar="RUN_DIR", help="continue an interrupted run"
    )
    train.add_argument("--quiet", action="store_true", help="print nothing but errors")
    group = train.add_argument_group("config fields (override the preset)")
    docs = field_docs()
    for f in fields(Config):
        group.add_argument(
            option_name(f.name),
            dest=f.name,
            default=argparse.SUPPRESS,
            metavar=f.type.upper().replace(" ", "") if isinstance(f.type, str) else "VALUE",
            help=docs.get(f.name, "").replace("%", "%%"),
        )

    evaluate = sub.add_parser(
        "evaluate",
        help="evaluate a run's model",
        description="Evaluate a trained run's policy deterministically on fresh episodes.",
    )
    add_model_arguments(evaluate)
    evaluate.add_argument("--episodes", type=int, default=None, help="episodes (default: config)")
    evaluate.add_argument("--json", type=Path, default=None, help="also write results as JSON")

    plot = sub.add_parser(
        "plot",
        help="plot learning curves of runs to a PNG",
        description=(
            "Plot evaluation and training returns against env steps. Runs of the same config "
            "(seed aside) are drawn as their mean with a min-max band."
        ),
    )
    plot.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    plot.add_argument(
        "--out", type=Path, default=None, help="PNG path (default: FIRST_RUN/learning_curve.png)"
    )

    record = sub.add_parser(
        "record",
        help="write a video of a run's trained agent",
        description="Render the deterministic policy headless into a GIF or MP4.",
    )
    add_model_arguments(record)
    record.add_argument(
        "--out", type=Path, default=None, help="video path (default: RUN/agent.gif)"
    )
    record.add_argument("--episodes", type=int, default=1, help="episodes to record (default: 1)")
    record.add_argument(
        "--frame-skip", type=int, default=2, help="keep every Nth frame (default: 2)"
    )

    report = sub.add_parser(
        "report",
        help="aggregate runs over seeds: a table, report.md, report.json, report.png",
        description=(
            "Group run directories by configuration (every config field but the seed and the "
            "fields that do not change learning) and give, per configuration, the number of "
            "seeds, IQM with a 95% stratified bootstrap CI, mean and median of the final "
            "evaluation return, best return and steps to --threshold. Directories are searched "
            "recursively for run directories. Writes report.md, report.json and report.png "
            "(learning curves) into the one directory given, or into --out DIR."
        ),
    )
    report.add_argument("paths", type=Path, nargs="+", metavar="SWEEP_DIR|RUN_DIR")
    report.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="output directory (default: the directory given, if only one; else report-TIME)",
    )
    report.add_argument(
        "--threshold",
        type=float,
        default=None,
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
        "--split-by",
        action="append",
        default=[],
        metavar="FIELD",
        help="also separate configurations by FIELD, one of those ignored by default "
        "(log_every, tensorboard, checkpoint_every, render_from, torch_threads, device, "
        "update_mode); repeatable",
    )
    report.add_argument(
        "--force", action="store_true", help="replace report files that ddpg report did not write"
    )

    sub.add_parser("presets", help="list the presets", description="List the presets.")
    return parser


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """RUN_DIR, --model and --seed: which trained policy to run, on which start states."""
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument(
        "--model", choices=("best", "final"), default="best", help="which model (default: best)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed (default: the run's)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            return cmd_train(args)
        if args.command == "evaluate":
            return cmd_evaluate(args)
        if args.command == "plot":
            return cmd_plot(args)
        if args.command == "record":
            return cmd_record(args)
        if args.command == "report":
            return cmd_report(args)
        return cmd_presets()
    except DDPGError as exc:
        print(f"ddpg: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ddpg: interrupted", file=sys.stderr)
        return 130


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = {f.name for f in fields(Config)}
    return {
        name: parse_value(name, value) if isinstance(value, str) else value
        for name, value in vars(args).items()
        if name in names
    }


def cmd_presets() -> int:
    for name, preset in PRESETS.items():
        values = preset["values"]
        budget = (
            f"{values['total_steps']:,} steps"
            if values.get("total_steps")
            else f"{values.get('episodes')} episodes"
        )
        print(f"{name:18s} {values['env_id']:26s} {budget:16s} {preset['description']}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ddpg.checkpoints import list_checkpoints
    from ddpg.train import Trainer, TrainingInterrupted, read_config, write_config

    console = Console(quiet=args.quiet)
    overrides = _overrides(args)
    if args.resume is not None:
        run_dir = args.resume
        saved = read_config(run_dir)
        bad = sorted(set(overrides) - RESUMABLE_OVERRIDES)
        if bad or args.preset or args.run_dir or args.overwrite:
            what = ", ".join(option_name(b) for b in bad) or "--preset/--run-dir/--overwrite"
            raise RunDirError(f"{what} cannot be changed when resuming; only budgets can")
        config = Config.from_dict(saved["config"]).replace(**overrides)
        preset = saved.get("preset")
        if not list_checkpoints(run_dir / "checkpoints"):
            raise RunDirError(f"{run_dir} has no valid checkpoint to resume from")
    else:
        preset = args.preset or DEFAULT_PRESET
        config = preset_config(preset, **overrides)
        run_dir = args.run_dir or Path("runs") / (
            f"{preset}-s{config.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
        )
        if run_dir.exists() and not run_dir.is_dir():
            raise RunDirError(f"run directory {run_dir} exists and is not a directory")
        if run_dir.exists() and any(run_dir.iterdir()) and not args.overwrite:
            raise RunDirError(
                f"run directory {run_dir} exists; pass --overwrite to replace it or "
                f"--resume {run_dir} to continue it"
            )

    trainer = Trainer(config, None, console=console)  # validates the env before touching disk
    trainer.close()
    if args.resume is None and args.overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    trainer = Trainer(config, run_dir, console=console)
    if args.resume is not None:
        path, skipped = trainer.restore()
        for reason in skipped:
            console.print(f"skipped a damaged checkpoint: {reason}")
        console.print(f"resumed from {path} at step {trainer.step}, episode {trainer.episode}")
    else:
        write_config(run_dir, config, {"preset": preset, "library_version": __version__})
        console.print(
            f"training {config.env_id} ({preset}) into {run_dir}; "
            f"budget {config.total_steps or '-'} steps / {config.episodes or '-'} episodes"
        )

    def request_stop(signum: int, _frame: Any) -> None:
        trainer.stop_requested = signal.Signals(signum).name

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        trainer.run()
    except TrainingInterrupted as stop:
        print(
            f"ddpg: stopped by {stop.signal_name} at step {trainer.step}; checkpoint written to "
            f"{stop.checkpoint}\nresume with: ddpg train --resume {run_dir}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED.get(stop.signal_name, 1)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)

    final_path, best_path = trainer.save_models()
    console.print(f"evaluating best and final policy over {config.eval_episodes} episodes...")
    summary = trainer.final_evaluation()
    trainer.close()
    steps_per_s = summary["steps"] / max(summary["wall_time_s"], 1e-9)
    lines = [
        f"done: {summary['steps']:,} steps, {summary['episodes']} episodes, "
        f"{summary['wall_time_s']:.0f} s ({steps_per_s:.0f} steps/s)",
        f"  best policy  (step {summary['best_step']}): "
        f"{summary['best']['mean_return']:.1f} +- {summary['best']['std_return']:.1f}",
        f"  final policy: {summary['final']['mean_return']:.1f} +- "
        f"{summary['final']['std_return']:.1f}",
        f"  files: {run_dir}/ (evaluation.json, metrics.csv, {best_path.name}, {final_path.name})",
    ]
    console.print("\n".join(lines))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ddpg.api import DDPG
    from ddpg.envs import FINAL_EVAL_STREAM
    from ddpg.evaluation import evaluate
    from ddpg.train import read_config

    read_config(args.run_dir)
    model = DDPG.load(args.run_dir / f"model_{args.model}.safetensors")
    config = model.config
    episodes = config.eval_episodes if args.episodes is None else args.episodes
    if episodes < 1:
        raise RunDirError(f"--episodes must be >= 1, got {episodes}")
    seed = config.seed if args.seed is None else args.seed
    result = evaluate(model.agent.act, model.trainer.eval_env, episodes, seed, FINAL_EVAL_STREAM)
    print(f"{config.env_id}, {args.model} model of {args.run_dir}, {episodes} episodes")
    print(f"{'episode':>8} {'return':>10} {'length':>7}")
    for i, (ret, length) in enumerate(zip(result.returns, result.lengths, strict=True)):
        print(f"{i:8d} {ret:10.1f} {length:7d}")
    print(f"{'mean':>8} {result.mean:10.1f} +- {result.std:.1f}")
    if args.json is not None:
        payload = {"run_dir": str(args.run_dir), "model": args.model, **result.to_dict()}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    model.trainer.close()
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from ddpg.plots import plot_runs

    out = args.out or args.run_dirs[0] / "learning_curve.png"
    print(f"wrote {plot_runs(args.run_dirs, out)}")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from ddpg.record import record_video
    from ddpg.train import read_config

    read_config(args.run_dir)
    out = args.out or args.run_dir / "agent.gif"
    path, frames, returns = record_video(
        args.run_dir / f"model_{args.model}.safetensors",
        out,
        episodes=args.episodes,
        seed=args.seed,
        frame_skip=args.frame_skip,
    )
    shown = ", ".join(f"{r:.1f}" for r in returns)
    print(f"wrote {path}: {frames} frames, episode return(s) {shown}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ddpg.config import check_keys
    from ddpg.report import build_report, duplicate_seeds, format_table, write_report

    if args.threshold is not None and not math.isfinite(args.threshold):
        raise ConfigError(f"--threshold must be a finite number, got {args.threshold}")
    check_keys({name: None for name in args.split_by})
    if args.out is not None:
        out = args.out
    elif len(args.paths) == 1:
        out = args.paths[0]
    else:
        out = Path(f"report-{time.strftime('%Y%m%d-%H%M%S')}")
    report = build_report(args.paths, args.score, args.threshold, args.split_by)
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


if __name__ == "__main__":
    raise SystemExit(main())
