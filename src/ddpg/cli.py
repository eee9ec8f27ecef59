"""The `ddpg` command: train, evaluate, plot, record, export, report, presets.

One error boundary (`main`) turns every failure into one line on stderr and an exit code:

    0 success          2 usage or input error (bad option or value, unknown env, foreign or
    1 unexpected error   damaged file, existing output, run in use)
    3 NaN or infinity  4 file-system error (permission denied, no space, read-only, ...)
    130 Ctrl-C (SIGINT)  143 SIGTERM

An unexpected error also writes its traceback to a file (in the run directory, or the system's
temporary directory) and names it; `--debug` prints the traceback instead. Python warnings are
printed as one line each (`ddpg: warning: ...`); other libraries' deprecation notices are not.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import errno
import json
import math
import os
import re
import shlex
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn

from ddpg import __version__
from ddpg.config import SEED_LIMIT, Config, config_warnings, field_docs, parse_value
from ddpg.errors import ConfigError, DDPGError, RunDirError
from ddpg.loggers import Console, silence_stdout
from ddpg.presets import DEFAULT_PRESET, PRESETS, preset_config

EXIT_UNEXPECTED, EXIT_FILESYSTEM = 1, 4
EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}
# Where an unexpected error's traceback goes: the run directory once a command has one.
_context: dict[str, Path] = {}


# argparse's own pattern knows -1 and -1.5 only; a float option also takes these.
NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$|^-(inf|infinity|nan)$", re.I)


def option_name(field: str) -> str:
    return "--" + field.replace("_", "-")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with a suggestion for a mistyped option), and
    every negative number is a value (`--target-return -1e3`, `-inf`), not an option."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_NUMBER

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            options = _options(self)
            for word in message.split(":", 1)[1].split():
                close = difflib.get_close_matches(word.split("=")[0], options, n=1)
                if close:
                    message += f" (did you mean {close[0]}?)"
                    break
        self.exit(2, f"ddpg: error: {message}; see {self.prog} --help\n")


def _options(parser: argparse.ArgumentParser) -> list[str]:
    """Every option of `parser` and of its commands (the top level reports their unknowns)."""
    options = []
    for action in parser._actions:
        options += action.option_strings
        if isinstance(action, argparse._SubParsersAction):
            for command in dict.fromkeys(action.choices.values()):
                options += [o for o in _options(command) if o not in options]
    return options


def text(what: str) -> Callable[[str], str]:
    """An argparse type for a string that must not be empty."""

    def parse(value: str) -> str:
        if not value.strip():
            raise argparse.ArgumentTypeError(f"{what} is empty")
        return value

    return parse


def path_arg(value: str) -> Path:
    if not value.strip():
        raise argparse.ArgumentTypeError("empty path")
    return Path(value)


def seed_arg(value: str) -> int:
    try:
        seed = parse_value("seed", value)
    except DDPGError:
        seed = -1
    if not 0 <= seed < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2^63), got '{value}'")
    return seed


def positive_int(value: str) -> int:
    try:
        number = parse_value("total_steps", value)
    except DDPGError:
        number = None
    if number is None or number < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got '{value}'")
    return number


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", help="print the traceback of an unexpected error"
    )
    parser = OneLineParser(
        prog="ddpg",
        description="DDPG for Gymnasium continuous-control environments.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"ddpg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=description, parents=[common])

    train = command(
        "train",
        "train an agent and write a run directory",
        f"Train an agent. Without --preset and --env, the {DEFAULT_PRESET} preset; with --env "
        "alone, the library's generic defaults. Every config field can be overridden with "
        "--field-name VALUE. Writes config.json, metrics.csv, evaluations.csv, "
        "model_final.safetensors, model_best.safetensors, evaluation.json and checkpoints/ "
        "into the run directory.",
    )
    train.add_argument(
        "--preset", type=text("--preset"), help=f"preset to start from ({', '.join(PRESETS)})"
    )
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

    evaluate = command(
        "evaluate",
        "evaluate a run's model",
        "Evaluate a trained run's policy deterministically on fresh episodes.",
    )
    add_model_arguments(evaluate)
    evaluate.add_argument("--episodes", type=positive_int, help="episodes (default: config)")
    evaluate.add_argument("--json", type=path_arg, help="also write the results as JSON")
    evaluate.add_argument("--force", action="store_true", help="replace a --json file of any kind")

    plot = command(
        "plot",
        "plot learning curves of runs to a PNG",
        "Plot evaluation and training returns against env steps. Runs of the same config "
        "(seed aside) are drawn as their mean with a min-max band.",
    )
    plot.add_argument("run_dirs", type=path_arg, nargs="+", metavar="RUN_DIR")
    plot.add_argument(
        "--out", type=path_arg, help="image path, .png/.svg/.pdf (default: RUN/learning_curve.png)"
    )
    plot.add_argument("--force", action="store_true", help="replace an --out file of any kind")

    record = command(
        "record",
        "write a video of a run's trained agent",
        "Render the deterministic policy headless into a GIF or MP4.",
    )
    add_model_arguments(record)
    record.add_argument("--out", type=path_arg, help="video path (default: RUN/agent.gif)")
    record.add_argument("--episodes", type=positive_int, default=1, help="episodes (default: 1)")
    record.add_argument(
        "--frame-skip", type=positive_int, default=2, help="keep every Nth frame (default: 2)"
    )
    record.add_argument("--force", action="store_true", help="replace an --out file of any kind")

    export = command(
        "export",
        "export a run's policy to ONNX or TorchScript",
        "Write the deterministic policy (observations in, actions in environment units out, "
        "bounds included) as ONNX or TorchScript, runnable without this library.",
    )
    export.add_argument("source", type=path_arg, metavar="RUN_DIR|MODEL_FILE")
    export.add_argument("--format", choices=("onnx", "torchscript"), required=True)
    export.add_argument(
        "--model", choices=("best", "final"), default="best", help="with a RUN_DIR (default: best)"
    )
    export.add_argument("--out", type=path_arg, help="file (default: beside the model file)")
    export.add_argument("--force", action="store_true", help="replace an --out file of any kind")

    report = command(
        "report",
        "aggregate runs over seeds: a table, report.md, report.json, report.png",
        "Group run directories by configuration (every config field but the seed and the "
        "fields that do not change learning) and give, per configuration, the number of "
        "seeds, IQM with a 95% stratified bootstrap CI, mean and median of the final "
        "evaluation return, best return and steps to --threshold. Directories are searched "
        "recursively for run directories. Writes report.md, report.json and report.png "
        "(learning curves) into the one directory given, or into --out DIR.",
    )
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
        "(log_every, tensorboard, checkpoint_every, render_from, torch_threads, device, "
        "update_mode); repeatable",
    )
    report.add_argument(
        "--force", action="store_true", help="replace report files that ddpg report did not write"
    )

    sweep = command(
        "sweep",
        "train many runs over seeds and hyperparameters on Ray Tune",
        "Run every point of a grid or a search with every seed on Ray Tune (the `ray` extra), "
        "each trial an ordinary run directory under SWEEP_DIR/trials/, resumable with `ddpg "
        "train --resume`. Starts a local Ray unless --address names a cluster. Trials report "
        "at each periodic evaluation (--eval-every). See docs/scale-out.md.",
    )
    add_sweep_options(sweep)
    add_config_options(sweep)

    command("presets", "list the presets", "List the presets.")
    return parser


def add_sweep_options(parser: argparse.ArgumentParser) -> None:
    from ddpg.sweep.spec import DEFAULT_METRIC, METRICS, SCHEDULERS, SEARCHES

    add = parser.add_argument
    add("--preset", type=text("--preset"), help=f"preset to start from ({', '.join(PRESETS)})")
    add(
        "--out",
        type=path_arg,
        metavar="SWEEP_DIR",
        help="sweep directory, which must not exist (default: sweeps/PRESET-TIME)",
    )
    add(
        "--resume",
        type=path_arg,
        metavar="SWEEP_DIR",
        help="continue an interrupted sweep (only --address may change)",
    )
    add("--seeds", metavar="SEEDS", help="seeds, as 0-4 or 0,2,5 (default: the config's seed)")
    add(
        "--grid",
        action="append",
        default=[],
        metavar="FIELD=V1,V2",
        help="values of a config field to try, repeatable: the grid is their product",
    )
    add(
        "--search",
        choices=SEARCHES,
        help="draw --samples points from --space: random (drawn "
        "up front) or optuna (TPE, each suggestion trains every seed)",
    )
    add("--samples", type=positive_int, help="points a search tries")
    add(
        "--space",
        action="append",
        default=[],
        metavar="FIELD=DIST",
        help="a searched field: uniform:LO:HI, loguniform:LO:HI or choice:A,B; repeatable",
    )
    add("--search-seed", type=seed_arg, help="seed of the search (default 0)")
    add(
        "--scheduler",
        choices=SCHEDULERS,
        help="fifo (every trial runs to its end; the default) or asha (early stopping)",
    )
    add(
        "--grace-period",
        type=positive_int,
        metavar="STEPS",
        help="ASHA: env steps before a "
        "trial can be stopped, >= learning_starts + eval_every (the default)",
    )
    add("--reduction-factor", type=positive_int, help="ASHA's reduction factor (default 3)")
    add(
        "--metric",
        choices=tuple(METRICS),
        help="what trials report and schedulers rank, "
        f"higher is better (default {DEFAULT_METRIC}: the periodic evaluation's mean return)",
    )
    add("--max-concurrent", type=positive_int, help="trials at once (default: what fits)")
    add(
        "--cpus-per-trial",
        type=positive_int,
        help="CPUs per trial, also its torch threads unless --torch-threads is given (default 1)",
    )
    add("--gpus-per-trial", type=float, help="GPUs per trial, fractions allowed (default 0)")
    add(
        "--max-failures",
        type=int,
        help="retries of a trial whose worker died, each from its last checkpoint (default 2)",
    )
    add(
        "--address",
        type=text("--address"),
        help="join a running Ray cluster: auto or "
        "HOST:PORT (default: start a local Ray for the sweep)",
    )
    add(
        "--ray-temp-dir",
        type=path_arg,
        metavar="DIR",
        help="a local Ray's temp dir (default SWEEP_DIR/ray; at most 40 bytes, for Ray's sockets)",
    )
    add("--quiet", action="store_true", help="print nothing but errors")  # fmt: skip


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """`--env` and one `--field-name VALUE` option per config field, documented by its
    docstring; unset options are absent from the parsed namespace."""
    parser.add_argument(
        "--env", dest="env_id", type=text("--env"), default=argparse.SUPPRESS, help="env id"
    )
    group = parser.add_argument_group("config fields (override the preset)")
    docs = field_docs()
    for f in fields(Config):
        group.add_argument(
            option_name(f.name),
            dest=f.name,
            default=argparse.SUPPRESS,
            metavar=f.type.upper().replace(" ", "") if isinstance(f.type, str) else "VALUE",
            help=docs.get(f.name, "").replace("%", "%%"),
        )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """RUN_DIR, --model and --seed: which trained policy to run, on which start states."""
    parser.add_argument("run_dir", type=path_arg, metavar="RUN_DIR")
    parser.add_argument(
        "--model", choices=("best", "final"), default="best", help="which model (default: best)"
    )
    parser.add_argument("--seed", type=seed_arg, help="seed (default: the run's)")


# -- the error boundary --------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run the `ddpg` command; return its exit code (never raises, but with --debug)."""
    with warnings.catch_warnings():
        # Deprecations inside PyTorch, SWIG and friends say nothing a user of this command can
        # act on; Gymnasium's ("environment X is out of date") do.
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.simplefilter("ignore", category)
        warnings.filterwarnings("default", category=DeprecationWarning, module=r"^gymnasium\.")
        warnings.showwarning = _show_warning
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    _context.clear()
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except DDPGError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"ddpg: interrupted{_resume_hint()}", file=sys.stderr)
        return EXIT_SIGNAL["SIGINT"]
    except _Terminated:
        print(f"ddpg: terminated{_resume_hint()}", file=sys.stderr)
        return EXIT_SIGNAL["SIGTERM"]
    except BrokenPipeError:  # stdout's reader went away (`ddpg presets | head -1`): done
        silence_stdout()
        return 0
    except OSError as exc:
        if debug:
            raise
        _error(describe_os_error(exc))
        return EXIT_FILESYSTEM
    except MemoryError:
        _error("out of memory; lower --buffer-size, --batch-size or --hidden-size")
        return 2
    except Exception as exc:
        if debug:
            raise
        where = _save_traceback()
        _error(
            f"unexpected error: {type(exc).__name__}: {exc} ({where}; rerun with --debug to "
            "print it; please report it)"
        )
        return EXIT_UNEXPECTED


_LINE_BREAKS = re.compile(r" *[\r\n\t]\s*")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colour codes in Gymnasium's warnings


def _error(message: str) -> None:
    """One line: line breaks (of a library's multi-line message) become spaces; other spaces
    stay, as they may be part of a path."""
    print(f"ddpg: error: {_LINE_BREAKS.sub(' ', message).strip()}", file=sys.stderr)


def _show_warning(message: Warning | str, *_args: Any, **_kwargs: Any) -> None:
    """A Python warning (Gymnasium's "environment is out of date", say) as one line."""
    text = " ".join(_ANSI.sub("", str(message)).split())
    text = text.removeprefix("WARN: ")
    with contextlib.suppress(OSError, ValueError):  # stderr gone: nothing to tell
        print(f"ddpg: warning: {text}", file=sys.stderr)


def _resume_hint() -> str:
    """After a stop without a checkpoint: where the run can be resumed from."""
    from ddpg.checkpoints import list_checkpoints

    run_dir = _context.get("no_checkpoint")
    if run_dir is None:
        return ""
    if not list_checkpoints(run_dir / "checkpoints"):
        return " at once, before the run's first checkpoint"
    return (
        " at once, without a checkpoint; resume from the last one with: ddpg train --resume "
        f"{shlex.quote(str(run_dir))}"
    )


def describe_os_error(exc: OSError) -> str:
    """'permission denied: PATH' and the like, in words."""
    reason = (exc.strerror or errno.errorcode.get(exc.errno or 0, "") or str(exc)).lower()
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{reason}: {' -> '.join(paths)}" if paths else reason


def _save_traceback() -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = _context.get("run_dir")
    candidates = [folder] if folder is not None and folder.is_dir() else []
    candidates.append(Path(tempfile.gettempdir()))
    for place in candidates:
        path = place / f"error-{stamp}-{os.getpid()}.log"
        if place != folder:
            path = place / f"ddpg-error-{stamp}-{os.getpid()}.log"
        try:
            path.write_text(traceback.format_exc())
            return f"traceback in {path}"
        except OSError:
            continue
    return "the traceback could not be written"


class _Terminated(Exception):
    """SIGTERM before training started (raised by the handler, caught by `main`)."""


def _raise_terminated(_signum: int, _frame: Any) -> NoReturn:
    raise _Terminated


# -- commands ------------------------------------------------------------------------------------
def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = {f.name for f in fields(Config)}
    return {
        name: parse_value(name, value) if isinstance(value, str) else value
        for name, value in vars(args).items()
        if name in names
    }


def cmd_presets(_args: argparse.Namespace) -> int:
    for name, preset in PRESETS.items():
        values = preset["values"]
        budget = (
            f"{values['total_steps']:,} steps"
            if values.get("total_steps")
            else f"{values.get('episodes')} episodes"
        )
        print(f"{name:18s} {values['env_id']:26s} {budget:16s} {preset['description']}")
    return 0


def train_config(preset: str | None, overrides: dict[str, Any]) -> tuple[Config, str, list[str]]:
    """The config `ddpg train` (and `ddpg sweep`) runs: a preset with overrides; with --env and
    no preset, the generic defaults. Also its name (preset or 'defaults') and notes to print."""
    notes: list[str] = []
    if preset is None and "env_id" in overrides:
        return Config.from_dict(overrides), "defaults", notes
    preset = preset or DEFAULT_PRESET
    config = preset_config(preset, **overrides)
    made_for = PRESETS[preset]["values"]["env_id"]
    if config.env_id != made_for and "target_return" not in overrides and config.target_return:
        notes.append(
            f"target_return {config.target_return} of preset {preset} is for {made_for}, "
            f"not {config.env_id}: unset"
        )
        config = config.replace(target_return=None)
    return config, preset, notes


def cmd_train(args: argparse.Namespace) -> int:
    previous = signal.signal(signal.SIGTERM, _raise_terminated)  # exit 143 until training runs
    try:
        return _start_and_train(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _start_and_train(args: argparse.Namespace) -> int:
    from ddpg.runs import clear_run_dir, finish_run, resume_run, start_run
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
        config, preset, notes = train_config(args.preset, overrides)
        run_dir = args.run_dir or Path("runs") / (
            f"{preset}-s{config.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
        )
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
        for line in [*notes, *config_warnings(config)]:
            print(f"ddpg: warning: {line}", file=sys.stderr)
        console.print(
            f"training {config.env_id} ({preset}) into {run_dir}; "
            f"budget {config.total_steps or '-'} steps / {config.episodes or '-'} episodes"
        )
    _context["run_dir"] = run_dir
    try:
        return _train(trainer, run_dir, console, TrainingInterrupted, finish_run)
    finally:
        trainer.close()


def _train(
    trainer: Any, run_dir: Path, console: Console, interrupted: type, finish: Callable
) -> int:
    def request_stop(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if trainer.stop_requested is not None:  # asked twice (an update or an env step that
            # does not end, say): stop now, without a checkpoint; the last one stays
            _context["no_checkpoint"] = run_dir
            raise KeyboardInterrupt if name == "SIGINT" else _Terminated
        trainer.stop_requested = name

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        trainer.run()
    except interrupted as stop:
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
    except _Terminated:
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


def _model_file(run_dir: Path, model: str) -> Path:
    from ddpg.checkpoints import read_config

    read_config(run_dir)  # a run directory of this library, or one line saying why not
    return run_dir / f"model_{model}.safetensors"


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ddpg.envs import FINAL_EVAL_STREAM, make_env
    from ddpg.evaluation import evaluate
    from ddpg.outputs import check_output, write_output
    from ddpg.policy import Policy

    if args.json is not None:
        check_output(args.json, "evaluation JSON", args.force)  # before the evaluation runs
    policy = Policy.load(_model_file(args.run_dir, args.model))
    config = policy.config
    episodes = args.episodes or config.eval_episodes
    seed = config.seed if args.seed is None else args.seed
    env = make_env(config.env_id, config.max_episode_steps)
    try:
        result = evaluate(policy, env, episodes, seed, FINAL_EVAL_STREAM)
    finally:
        env.close()
    if args.json is not None:  # written first: a closed stdout must not lose it
        payload = {"run_dir": str(args.run_dir), "model": args.model, **result.to_dict()}
        write_output(args.json, (json.dumps(payload, indent=2) + "\n").encode())
    lines = [f"{config.env_id}, {args.model} model of {args.run_dir}, {episodes} episodes"]
    lines.append(f"{'episode':>8} {'return':>10} {'length':>7}")
    for i, (ret, length) in enumerate(zip(result.returns, result.lengths, strict=True)):
        lines.append(f"{i:8d} {ret:10.1f} {length:7d}")
    lines.append(f"{'mean':>8} {result.mean:10.1f} +- {result.std:.1f}")
    print("\n".join(lines))
    return 0


IMAGE_KINDS = {".png": "PNG image", ".svg": "SVG image", ".pdf": "PDF document"}


def cmd_plot(args: argparse.Namespace) -> int:
    from ddpg.checkpoints import read_config
    from ddpg.outputs import check_output
    from ddpg.plots import plot_runs

    for run_dir in args.run_dirs:  # runs first: "not a run directory" says more than the output
        read_config(run_dir)
    out: Path = args.out or args.run_dirs[0] / "learning_curve.png"
    if not out.suffix:
        out = out.with_name(out.name + ".png")
    if out.suffix.lower() not in IMAGE_KINDS:
        raise RunDirError(f"--out must end in {', '.join(IMAGE_KINDS)}, got '{out.name}'")
    check_output(out, IMAGE_KINDS[out.suffix.lower()], args.force)
    print(f"wrote {plot_runs(args.run_dirs, out)}")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from ddpg.outputs import check_output
    from ddpg.record import VIDEO_KINDS, record_video

    out: Path = args.out or args.run_dir / "agent.gif"
    if out.suffix.lower() not in VIDEO_KINDS:
        raise RunDirError(f"video file must end in .gif or .mp4, got '{out}'")
    check_output(out, VIDEO_KINDS[out.suffix.lower()], args.force)
    path, frames, returns = record_video(
        _model_file(args.run_dir, args.model),
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
    from ddpg.outputs import check_output
    from ddpg.policy import Policy

    source: Path = args.source
    model = _model_file(source, args.model) if source.is_dir() else source
    suffix = FORMATS[args.format]
    out = args.out or model.with_name(model.stem.replace("model_", "policy_") + suffix)
    kind = "ONNX model" if args.format == "onnx" else "TorchScript model"
    check_output(out, kind, args.force)
    policy = Policy.load(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"wrote {export_policy(policy, args.format, out)} ({args.format}, {policy.config.env_id})"
    )
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


def cmd_sweep(args: argparse.Namespace) -> int:
    from ddpg.sweep.command import run_command

    return run_command(args)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "plot": cmd_plot,
    "record": cmd_record,
    "export": cmd_export,
    "report": cmd_report,
    "sweep": cmd_sweep,
    "presets": cmd_presets,
}


if __name__ == "__main__":
    raise SystemExit(main())
