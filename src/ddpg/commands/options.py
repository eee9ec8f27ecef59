"""What the commands share: the one-line parser, argument types, the config options and the
config `ddpg train` and `ddpg sweep` run.

Every config field is a `--field-name VALUE` option (`config.option_name` spells it), parsed by
`config.parse_value`, so an option and `--grid FIELD=...` read a value alike.
"""

from __future__ import annotations

import argparse
import difflib
import re
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
    try:
        number = exact_int(value)
    except ValueError:
        number = 0
    except OverflowError:
        number = INT_LIMIT
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got '{value}'")
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
