"""Reading run directories, for `ddpg report` and `ddpg plot` alike: find them, read each one's
config and evaluations, and group them by configuration.

It reads only files that `ddpg train` wrote (config.json, evaluations.csv, evaluation.json), so
it works on finished, running and interrupted runs, on any machine, without the model or
checkpoint formats. Which directories are runs and which runs share a configuration is defined
in docs/report.md ("Which runs", "Configurations").
"""

from __future__ import annotations

import json
import os
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from ddpg.config import Config, field_types
from ddpg.errors import DDPGError, RunDirError
from ddpg.links import read_run_config
from ddpg.loggers import finite_number, read_curve
from ddpg.runconfig import read_config

# Fields that change how a run is computed or logged but not what it learns: runs that differ
# only in these (and the seed) are seeds of one configuration, in a report and in a plot alike.
# `ddpg report --split-by FIELD` keeps one apart. torch_threads, device and update_mode change
# the floating-point summation order, so such runs are not bit-identical, but they run the same
# algorithm on the same data. Budgets (total_steps, episodes) are not among them: a final
# evaluation after another number of steps is another measurement.
IGNORED_FIELDS = (
    "seed",
    "log_every",
    "tensorboard",
    "checkpoint_every",
    "render_from",
    "torch_threads",
    "device",
    "update_mode",
)
# What a run is scored by: its name in ddpg report --metric -> the column of evaluations.csv and
# the key of evaluation.json's policies (success_rate: where the env reports info["is_success"]).
METRICS = {"return": "mean_return", "success_rate": "success_rate"}
RUN_FILES = ("metrics.csv", "evaluations.csv", "evaluation.json", "checkpoints")  # by ddpg train


# -- one run ------------------------------------------------------------------------------------
@dataclass
class RunRecord:
    """A run directory's configuration and periodic evaluations: what every reader of runs
    needs, and what runs are grouped by."""

    run_dir: Path
    config: dict[str, Any]  # every Config field, defaults filled in for older runs
    preset: str | None
    eval_steps: np.ndarray  # periodic evaluations (evaluations.csv), by step
    eval_means: np.ndarray

    @property
    def seed(self) -> int:
        return int(self.config["seed"])

    @property
    def env_id(self) -> str:
        return str(self.config["env_id"])


@dataclass
class Run(RunRecord):
    """A run with its score: the final evaluation (evaluation.json), or, for a run not finished
    yet, its periodic evaluations."""

    finished: bool  # evaluation.json exists: final evaluation done
    final: float
    best: float
    steps: int

    def score(self, which: str) -> float:
        return self.final if which == "final" else self.best

    def steps_to(self, threshold: float) -> int | None:
        """Step of the first periodic evaluation whose mean return reaches `threshold`."""
        hits = np.flatnonzero(self.eval_means >= threshold)
        return int(self.eval_steps[hits[0]]) if hits.size else None


def normalized_config(values: dict[str, Any]) -> dict[str, Any]:
    """Every Config field, validated, with defaults for fields an older run lacks, and an int
    given for a float field made a float (so 1 and 1.0 are one configuration)."""
    config = Config.from_dict(values).to_dict()
    for name, hint in field_types().items():
        kinds = typing.get_args(hint) or (hint,)
        value = config[name]
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            config[name] = float(value)
    return config


def read_record(run_dir: Path, metric: str = "return") -> RunRecord:
    """config.json and the periodic evaluations' `metric` (a key of METRICS) of one run
    directory; RunDirError says what is damaged, an OSError (a permission, say) goes through."""
    run_dir = Path(run_dir)
    try:
        data = read_run_config(run_dir)
    except DDPGError as exc:
        raise RunDirError(str(exc)) from None
    try:
        config = normalized_config(data["config"])
    except DDPGError as exc:
        raise RunDirError(f"{run_dir / 'config.json'}: {exc}") from None
    key = METRICS[metric]
    steps, means = read_curve(run_dir / "evaluations.csv", key, missing_ok=key != "mean_return")
    preset = data.get("preset")
    return RunRecord(run_dir, config, preset if isinstance(preset, str) else None, steps, means)


def _text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise RunDirError(f"{path} is not UTF-8 text") from None


def _read_final_evaluation(path: Path, key: str) -> tuple[float, float, int]:
    """Final and best policies' `key` (mean_return, success_rate), and the step count, from
    evaluation.json."""
    try:
        data = json.loads(_text(path))
    except ValueError:
        raise RunDirError(f"{path} is damaged (not JSON)") from None
    try:
        if key != "mean_return" and key not in data["final"]:
            raise RunDirError(f"{path} has no {key} (the env reports no info['is_success'])")
        final = finite_number(path, f"final.{key}", data["final"][key])
        best = finite_number(path, f"best.{key}", data["best"][key])
        steps = int(finite_number(path, "steps", data["steps"]))
    except (KeyError, TypeError):
        raise RunDirError(f"{path} is not a final evaluation written by ddpg train") from None
    return final, best, steps


def load_run(run_dir: Path, metric: str = "return") -> Run:
    """Read one run directory, scored by `metric` (a key of METRICS); a damaged or empty one
    raises RunDirError saying why, one that cannot be read the OSError (a permission, say)."""
    record = read_record(run_dir, metric)
    steps, means = record.eval_steps, record.eval_means
    finished = (record.run_dir / "evaluation.json").exists()
    if finished:
        final, best, total = _read_final_evaluation(
            record.run_dir / "evaluation.json", METRICS[metric]
        )
    elif steps.size:
        final, best, total = float(means[-1]), float(means.max()), int(steps[-1])
    else:
        raise RunDirError(f"{record.run_dir} has no evaluations yet")
    return Run(**vars(record), finished=finished, final=final, best=best, steps=total)


# -- finding runs -------------------------------------------------------------------------------
def is_run_dir(path: Path) -> bool:
    """A directory whose config.json is a run config, or a damaged one beside files that only
    `ddpg train` makes (then the report names the damage). A config.json of another shape with
    no run files beside it (a sweep's own settings, say) is not a run directory."""
    if not (path / "config.json").is_file():
        return False
    try:
        read_config(path)
        return True
    except OSError:  # a config.json that cannot be read: load_run says why
        return True
    except DDPGError:
        return any((path / name).exists() for name in RUN_FILES)


def find_run_dirs(paths: Sequence[Path]) -> list[Path]:
    """Every run directory among `paths` and below them (a run directory's own subdirectories
    are not searched; symbolic links are not followed)."""
    found: dict[Path, Path] = {}
    for path in map(Path, paths):
        if not path.exists():
            raise RunDirError(f"{path} does not exist")
        if not path.is_dir():
            raise RunDirError(f"{path} is not a directory")
        for root, dirs, _ in os.walk(path):
            if is_run_dir(Path(root)):
                found.setdefault(Path(root).resolve(), Path(root))
                dirs.clear()
            else:
                dirs.sort()
    if not found:
        shown = ", ".join(map(str, paths))
        raise RunDirError(f"no run directories (with a config.json) in {shown}")
    return sorted(found.values())


def load_runs(
    paths: Sequence[Path], metric: str = "return"
) -> tuple[list[Run], list[tuple[Path, str]]]:
    """The readable runs under `paths`, and (run_dir, reason) for each one skipped. When none is
    readable: the one run's own error (RunDirError, or the OSError of a permission), or a
    RunDirError naming the first reason of several."""
    runs: list[Run] = []
    errors: list[tuple[Path, RunDirError | OSError]] = []
    for run_dir in find_run_dirs(paths):
        try:
            runs.append(load_run(run_dir, metric))
        except (RunDirError, OSError) as exc:
            errors.append((run_dir, exc))
    if not runs and len(errors) == 1:
        raise errors[0][1]
    skipped = [(run_dir, _reason(exc)) for run_dir, exc in errors]
    if not runs:
        first = skipped[0][1]
        raise RunDirError(f"none of {len(skipped)} run directories is readable; first: {first}")
    return runs, skipped


def _reason(exc: RunDirError | OSError) -> str:
    if isinstance(exc, OSError):  # permission denied and the like, named as such
        return f"{exc.filename}: {(exc.strerror or str(exc)).lower()}"
    return str(exc)


# -- grouping -----------------------------------------------------------------------------------
def format_value(value: Any) -> str:
    """A config value as it is written on the command line (`--field VALUE`)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, value)
    return (2, format_value(value))


R = TypeVar("R", bound=RunRecord)


@dataclass
class Group(Generic[R]):
    """Runs of one configuration: equal in every field but the seed and IGNORED_FIELDS."""

    config: dict[str, Any]
    runs: list[R]
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        if self.overrides:
            return ", ".join(f"{k}={format_value(v)}" for k, v in self.overrides.items())
        presets = {r.preset for r in self.runs}
        only = presets.pop() if len(presets) == 1 else None
        return only or self.config["env_id"]


def group_runs(runs: Iterable[R], split_by: Sequence[str] = ()) -> list[Group[R]]:
    """Group runs by configuration; name each group by the fields whose values differ between
    groups, in Config's field order; sort groups by those values, and each group's runs by seed
    and directory."""
    ignored = set(IGNORED_FIELDS) - set(split_by)
    groups: dict[str, Group[R]] = {}
    for run in runs:
        key_config = {k: v for k, v in run.config.items() if k not in ignored}
        key = json.dumps(key_config, sort_keys=True)
        groups.setdefault(key, Group(key_config, [])).runs.append(run)
    names = [f.name for f in fields(Config)]
    differing = [
        n
        for n in names
        if n not in ignored and len({json.dumps(g.config[n]) for g in groups.values()}) > 1
    ]
    for group in groups.values():
        group.overrides = {n: group.config[n] for n in differing}
        group.runs.sort(key=lambda r: (r.seed, str(r.run_dir)))
    return sorted(
        groups.values(), key=lambda g: [_sort_key(g.config[n]) for n in differing] + [g.name]
    )


def duplicate_seeds(group: Group[Any]) -> list[tuple[int, list[Path]]]:
    """Seeds that more than one run of the group used (each such run counts as a seed)."""
    by_seed: dict[int, list[Path]] = {}
    for run in group.runs:
        by_seed.setdefault(run.seed, []).append(run.run_dir)
    return [(s, dirs) for s, dirs in sorted(by_seed.items()) if len(dirs) > 1]
