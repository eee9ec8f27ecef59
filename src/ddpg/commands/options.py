"""What the commands share: the one-line parser, argument types, the config options and the
config `ddpg train` and `ddpg sweep` run.

Every config field is a `--field-name VALUE` option (`config.option_name` spells it), parsed by
`config.parse_value`, so an option and `--grid FIELD=...` read a value alike.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn

from ddpg.config import (
    INT_LIMIT,
    MAX_EVAL_EPISODES,
    SEED_LIMIT,
    Config,
    exact_int,
    field_docs,
    option_name,
    parse_value,
)
from ddpg.errors import DDPGError
from ddpg.presets import DEFAULT_PRESET, PRESETS, preset_config

# argparse's own pattern knows -1 and -1.5 only; a float option also takes these.
NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$|^-(inf|infinity|nan)$", re.I)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with a suggestion for a mistyped option), and
    every negative number is a value (`--target-return -1e3`, `-inf`), not an option."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_NUMBER

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._argv = list(sys.argv[1:] if args is None else args)  # for error()'s suggestion
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            options = _options(self, getattr(self, "_argv", []))
            for word in message.split(":", 1)[1].split():
                name = word.split("=")[0]
                close = difflib.get_close_matches(name, [o for o in options if o != name], n=1)
                if close:
                    message += f" (did you mean {close[0]}?)"
                    break
        self.exit(2, f"ddpg: error: {message}; see {self.prog} --help\n")


def _options(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """Every option of `parser` and of the command `argv` names (the top level reports the
    command's unknowns); of every command where `argv` names none."""
    options = []
    for action in parser._actions:
        options += action.option_strings
        if isinstance(action, argparse._SubParsersAction):
            named = [action.choices[a] for a in argv if a in action.choices][:1]
            for command in named or dict.fromkeys(action.choices.values()):
                options += [o for o in _options(command, []) if o not in options]
    return options


# -- argument types ------------------------------------------------------------------------------
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
    return _int_at_least(value, 1)


def count_arg(value: str) -> int:
    """An integer >= 0 (`--max-failures`)."""
    return _int_at_least(value, 0)


def _int_at_least(value: str, low: int) -> int:
    """An integer written as 42, 1_000 or 1e3, at least `low` and below 2^63."""
    try:
        number: int | None = exact_int(value)
    except ValueError:
        number = None
    except OverflowError:
        number = INT_LIMIT
    if number is None or number < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got '{value}'")
    if number >= INT_LIMIT:
        raise argparse.ArgumentTypeError(f"expected an integer below 2^63, got '{value}'")
    return number


def episode_count(value: str) -> int:
    """Episodes to play (`evaluate`, `record`): at most what a config's evaluation may have."""
    number = positive_int(value)
    if number > MAX_EVAL_EPISODES:
        raise argparse.ArgumentTypeError(
            f"expected at most {MAX_EVAL_EPISODES:,} episodes, got '{value}'"
        )
    return number


def suffix_kind(out: Path, kinds: dict[str, str]) -> str | None:
    """The kind of output (`kinds`: suffix -> kind) that the suffix of `out` names, in any case;
    None for another suffix. `plot`, `record` and `export` refuse an --out whose suffix names
    another kind than the one they write."""
    return kinds.get(out.suffix.lower())


# -- options several commands take ---------------------------------------------------------------
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


def add_preset_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset", type=text("--preset"), help=f"preset to start from ({', '.join(PRESETS)})"
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """RUN_DIR, --model and --seed: which trained policy to run, on which start states."""
    parser.add_argument("run_dir", type=path_arg, metavar="RUN_DIR")
    parser.add_argument(
        "--model", choices=("best", "final"), default="best", help="which model (default: best)"
    )
    parser.add_argument("--seed", type=seed_arg, help="seed (default: the run's)")


def add_force_option(parser: argparse.ArgumentParser, what: str = "an --out file") -> None:
    parser.add_argument("--force", action="store_true", help=f"replace {what} of any kind")


# -- reading them ----------------------------------------------------------------------------------
def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields given as options, typed."""
    names = {f.name for f in fields(Config)}
    return {
        name: parse_value(name, value) if isinstance(value, str) else value
        for name, value in vars(args).items()
        if name in names
    }


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


def model_file(run_dir: Path, model: str) -> Path:
    """RUN_DIR/model_{best,final}.safetensors of a run directory of this library, or one line
    saying why `run_dir` is not one (or holds a symbolic link out of it)."""
    from ddpg.links import read_run_config

    read_run_config(run_dir)
    return run_dir / f"model_{model}.safetensors"
