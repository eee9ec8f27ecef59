"""The `ddpg` command: train, evaluate, presets.

Errors a user can cause are printed as one line on stderr with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import difflib
import json
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
from ddpg.envs import make_env
from ddpg.errors import DDPGError, RunDirError
from ddpg.loggers import Console
from ddpg.presets import DEFAULT_PRESET, PRESETS, preset_config

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

    export = sub.add_parser(
        "export",
        help="export a run's policy to ONNX or TorchScript",
        description=(
            "Write the deterministic policy (observations in, actions in environment units out, "
            "bounds included) as ONNX or TorchScript, runnable without this library."
        ),
    )
    export.add_argument("source", type=Path, metavar="RUN_DIR|MODEL_FILE")
    export.add_argument("--format", choices=("onnx", "torchscript"), required=True)
    export.add_argument(
        "--model", choices=("best", "final"), default="best", help="with a RUN_DIR (default: best)"
    )
    export.add_argument(
        "--out", type=Path, default=None, help="file to write (default: beside the model file)"
    )
    export.add_argument("--force", action="store_true", help="replace an existing --out file")

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
        if args.command == "export":
            return cmd_export(args)
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
    from ddpg.runs import finish_run, resume_run, start_run
    from ddpg.train import TrainingInterrupted

    console = Console(quiet=args.quiet)
    overrides = _overrides(args)
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
        make_env(config.env_id, config.max_episode_steps).close()  # before touching the disk
        if args.overwrite and run_dir.exists():
            shutil.rmtree(run_dir)
        trainer = start_run(config, run_dir, preset, console)
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
            f"ddpg: stopped by {stop.signal_name} at step {trainer.state.step}; checkpoint "
            f"written to {stop.checkpoint}\nresume with: ddpg train --resume {run_dir}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED.get(stop.signal_name, 1)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)

    console.print(
        f"evaluating best and final policy over {trainer.config.eval_episodes} episodes..."
    )
    summary = finish_run(trainer)
    trainer.close()
    steps_per_s = summary["steps"] / max(summary["wall_time_s"], 1e-9)
    lines = [
        f"done: {summary['steps']:,} steps, {summary['episodes']} episodes, "
        f"{summary['wall_time_s']:.0f} s ({steps_per_s:.0f} steps/s)",
        f"  best policy  (step {summary['best_step']}): "
        f"{summary['best']['mean_return']:.1f} +- {summary['best']['std_return']:.1f}",
        f"  final policy: {summary['final']['mean_return']:.1f} +- "
        f"{summary['final']['std_return']:.1f}",
        f"  files: {run_dir}/ (evaluation.json, metrics.csv, model_best.safetensors, "
        "model_final.safetensors)",
    ]
    console.print("\n".join(lines))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ddpg.checkpoints import read_config
    from ddpg.envs import FINAL_EVAL_STREAM
    from ddpg.evaluation import evaluate
    from ddpg.policy import Policy

    read_config(args.run_dir)
    policy = Policy.load(args.run_dir / f"model_{args.model}.safetensors")
    config = policy.config
    episodes = config.eval_episodes if args.episodes is None else args.episodes
    if episodes < 1:
        raise RunDirError(f"--episodes must be >= 1, got {episodes}")
    seed = config.seed if args.seed is None else args.seed
    env = make_env(config.env_id, config.max_episode_steps)
    result = evaluate(policy, env, episodes, seed, FINAL_EVAL_STREAM)
    env.close()
    print(f"{config.env_id}, {args.model} model of {args.run_dir}, {episodes} episodes")
    print(f"{'episode':>8} {'return':>10} {'length':>7}")
    for i, (ret, length) in enumerate(zip(result.returns, result.lengths, strict=True)):
        print(f"{i:8d} {ret:10.1f} {length:7d}")
    print(f"{'mean':>8} {result.mean:10.1f} +- {result.std:.1f}")
    if args.json is not None:
        payload = {"run_dir": str(args.run_dir), "model": args.model, **result.to_dict()}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from ddpg.plots import plot_runs

    out = args.out or args.run_dirs[0] / "learning_curve.png"
    print(f"wrote {plot_runs(args.run_dirs, out)}")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from ddpg.checkpoints import read_config
    from ddpg.record import record_video

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


def cmd_export(args: argparse.Namespace) -> int:
    from ddpg.export import FORMATS, export_policy
    from ddpg.policy import Policy

    source: Path = args.source
    model_file = source / f"model_{args.model}.safetensors" if source.is_dir() else source
    suffix = FORMATS[args.format]
    out = args.out or model_file.with_name(
        f"{model_file.stem.replace('model_', 'policy_')}{suffix}"
    )
    if out.exists() and not args.force:
        raise RunDirError(f"{out} exists; pass --force to replace it")
    policy = Policy.load(model_file)
    print(
        f"wrote {export_policy(policy, args.format, out)} ({args.format}, {policy.config.env_id})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
