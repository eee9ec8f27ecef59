"""What a sweep runs, decided and validated before Ray starts, and kept in SWEEP_DIR/sweep.json.

A sweep is a base config (a preset and fixed overrides), a list of seeds, and the points to try:
the product of a grid (`--grid FIELD=V1,V2`, repeatable) and, with `--search random`, samples
drawn here from a space (`--space FIELD=uniform:LO:HI|loguniform:LO:HI|choice:A,B`). Every
point runs every seed; each (point, seed) is one trial and one run directory,
SWEEP_DIR/trials/<point>-seed=<seed>/. Random samples are drawn by this module from
`search_seed`, so sweep.json lists every trial's values before anything runs.

With `--search optuna` the points are suggested while the sweep runs (Optuna's TPE through Ray
Tune), so a point cannot be known in advance: each suggestion is one trial that trains all the
seeds side by side (one run directory per seed) and reports their mean, so Optuna ranks
settings, not lucky seeds.

Every trial reports at each periodic evaluation (`eval_every`) with env steps as the time
attribute; the metric is a column of the run's CSV files (`mean_return` of evaluations.csv by
default).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import itertools
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ddpg import __version__
from ddpg.config import SEED_LIMIT, Config, field_names, field_types, option_name, parse_value
from ddpg.errors import ConfigError, RunDirError, check_format

SPEC_FILE = "sweep.json"
SPEC_FORMAT = "ddpg-sweep"
SPEC_VERSION = 1
TRIALS_DIR = "trials"
SEARCHES = ("random", "optuna")
SCHEDULERS = ("fifo", "asha")
DIMENSION_KINDS = ("uniform", "loguniform", "choice")
# Metrics: the column of a run's CSV file whose newest row a trial reports (higher is better).
METRICS = {
    "mean_return": ("evaluations.csv", "mean_return"),
    "running_avg_100": ("metrics.csv", "running_avg_100"),
    # Goal-conditioned envs: the periodic evaluation's share of successful episodes.
    "success_rate": ("evaluations.csv", "success_rate"),
}
DEFAULT_METRIC = "mean_return"
TIME_ATTR = "env_steps"
MAX_SEEDS = 10_000
# Trials of one sweep: each is a run directory and at least a minute of training, so 10^5 trials
# are ten weeks of one core; the grid's product and the samples are counted before any point is
# built (ten --grid options of ten values would otherwise build 10^10 points).
MAX_TRIALS = 100_000
# Retries of one trial: each restarts its worker from the trial's last checkpoint, so a trial that
# still fails after 100 has a cause that retrying does not fix (Ray's own default is 0).
MAX_FAILURES = 100


@dataclass(frozen=True)
class Dimension:
    """One field of a search space."""

    kind: str  # "uniform" | "loguniform" | "choice"
    low: float | None = None
    high: float | None = None
    values: tuple[Any, ...] = ()

    def bounds(self) -> tuple[Any, ...]:
        """The values that validation tries: both ends of a range, every choice."""
        return self.values if self.kind == "choice" else (self.low, self.high)

    def sample(self, rng: np.random.Generator) -> Any:
        if self.kind == "choice":
            return self.values[int(rng.integers(len(self.values)))]
        assert self.low is not None and self.high is not None
        if self.kind == "uniform":
            return float(rng.uniform(self.low, self.high))
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))


@dataclass(frozen=True)
class Point:
    """A set of overrides on the base config, named for its run directories."""

    name: str
    overrides: dict[str, Any]


@dataclass(frozen=True)
class Trial:
    """One Tune trial: a point and the seeds it trains, one run directory each."""

    point: str
    overrides: dict[str, Any]
    seeds: tuple[int, ...]

    @property
    def name(self) -> str:
        """The trial's name: its run directory's, when it trains one seed."""
        return run_dir_name(self.point, self.seeds[0]) if len(self.seeds) == 1 else self.point

    def run_dirs(self) -> list[str]:
        return [run_dir_name(self.point, s) for s in self.seeds]


@dataclass(frozen=True)
class SweepSpec:
    preset: str | None
    base: dict[str, Any]  # the resolved config: the preset (or defaults) and fixed overrides
    fixed: dict[str, Any]  # the overrides given as --field-name VALUE
    seeds: tuple[int, ...]
    grid: dict[str, tuple[Any, ...]]
    search: str | None
    samples: int
    space: dict[str, Dimension]
    search_seed: int
    points: tuple[Point, ...]  # known in advance (grid and random); empty with optuna
    scheduler: str
    grace_period: int | None  # ASHA only
    reduction_factor: int
    metric: str
    max_concurrent: int | None
    cpus_per_trial: int
    gpus_per_trial: float
    max_failures: int
    address: str | None  # None: a local Ray started for the sweep
    ray_temp_dir: str | None  # None: SWEEP_DIR/ray (or a short fallback, see cluster.py)
    max_t: int = 0  # the largest step budget of any trial (ASHA's horizon)
    library_version: str = __version__

    # -- what runs --------------------------------------------------------------------------
    def config(self, overrides: dict[str, Any], seed: int) -> Config:
        return Config.from_dict({**self.base, **overrides, "seed": seed})

    def trials(self) -> list[Trial]:
        """Every trial known in advance (all of them, except with optuna): point by point, seed
        by seed."""
        return [Trial(p.name, p.overrides, (s,)) for p in self.points for s in self.seeds]

    def num_trials(self) -> int:
        return self.samples if self.search == "optuna" else len(self.points) * len(self.seeds)

    # -- sweep.json --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        header = {"format": SPEC_FORMAT, "format_version": SPEC_VERSION, "time_attr": TIME_ATTR}
        return header | dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepSpec:
        values = {f.name: data[f.name] for f in dataclasses.fields(cls)}
        values["seeds"] = tuple(values["seeds"])
        values["grid"] = {k: tuple(v) for k, v in values["grid"].items()}
        values["space"] = {
            k: Dimension(d["kind"], d["low"], d["high"], tuple(d["values"]))
            for k, d in values["space"].items()
        }
        values["points"] = tuple(Point(p["name"], p["overrides"]) for p in values["points"])
        return cls(**values)


def write_spec(sweep_dir: Path, spec: SweepSpec) -> None:
    from ddpg.atomic import atomic_write_json

    atomic_write_json(Path(sweep_dir) / SPEC_FILE, spec.to_dict())


def read_spec(sweep_dir: Path) -> SweepSpec:
    path = Path(sweep_dir) / SPEC_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RunDirError(f"{sweep_dir} is not a sweep directory (no {SPEC_FILE})") from None
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path} is unreadable ({exc})") from None
    check_format(path, data, SPEC_FORMAT, SPEC_VERSION, "a sweep spec", RunDirError)
    try:
        stored = SweepSpec.from_dict(data)
        if not isinstance(data["seeds"], list):
            raise TypeError(f"seeds is {data['seeds']!r}, not a list")
        spec = rebuilt(stored)
    except ConfigError as exc:  # a value a new sweep would refuse (a hand-edited file)
        raise RunDirError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RunDirError(f"{path} is damaged ({exc})") from None
    if replace(spec, library_version=stored.library_version) != stored:
        raise RunDirError(f"{path} is damaged (its trials do not follow from its settings)")
    return stored


def rebuilt(spec: SweepSpec) -> SweepSpec:
    """`spec` built again from its settings by build_spec, so that a resumed sweep is validated
    exactly as a new one is. Every setting build_spec takes is the spec's field of that name."""
    taken = inspect.signature(build_spec).parameters
    settings = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if f.name in taken}
    settings["base"] = Config.from_dict(spec.base)
    settings["seeds"] = None if "seed" in spec.fixed else spec.seeds  # --seed N: seeds (N,)
    settings["samples"] = spec.samples if spec.search is not None else None
    return build_spec(**settings)


# -- names ------------------------------------------------------------------------------------
def format_value(value: Any) -> str:
    """A value as it appears in a run directory's name (config.json keeps it exactly)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return "".join(c if c.isalnum() or c in "._+-" else "_" for c in str(value))


def run_dir_name(point: str, seed: int) -> str:
    return f"{point}-seed={seed}" if point else f"seed={seed}"


# -- parsing the command line -------------------------------------------------------------------
def parse_seeds(text: str) -> tuple[int, ...]:
    """'0-4' -> 0..4; '0,2,5'; '0-2,7' (ranges inclusive)."""
    ranges: list[range] = []
    try:
        for part in text.split(","):
            lo, sep, hi = part.strip().partition("-")
            first = int(lo)
            last = int(hi) if sep else first
            if first < 0 or last < first:
                raise ValueError
            ranges.append(range(first, last + 1))
    except ValueError:
        raise ConfigError(
            f"--seeds: expected a list or ranges of seeds >= 0 such as 0-4 or 0,2,5, got '{text}'"
        ) from None
    count = sum(len(r) for r in ranges)  # counted before any list is built (0-99999999999)
    if count > MAX_SEEDS:
        raise ConfigError(f"--seeds: {count} seeds; at most {MAX_SEEDS}")
    seeds = [seed for r in ranges for seed in r]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds: a seed is listed twice in '{text}'")
    return tuple(seeds)


def check_field(name: str, option: str) -> None:
    """A field that a grid or a space may vary: a Config field, and not the seed."""
    names = field_names()
    if name == "seed":
        raise ConfigError(f"{option}: vary seeds with --seeds, not with {option} seed=...")
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"{option}: unknown config field '{name}'{hint}")


def _split_item(item: str, option: str, example: str) -> tuple[str, str]:
    name, sep, rest = item.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name or not rest.strip():
        raise ConfigError(f"{option}: expected {example}, got '{item}'")
    check_field(name, option)
    return name, rest


def parse_grid(items: list[str]) -> dict[str, tuple[Any, ...]]:
    """['actor_lr=1e-3,3e-4', ...] -> {'actor_lr': (0.001, 0.0003)}, typed like the CLI."""
    grid: dict[str, tuple[Any, ...]] = {}
    for item in items:
        name, rest = _split_item(item, "--grid", "FIELD=V1,V2")
        if name in grid:
            raise ConfigError(f"--grid: {name} is given twice; list all its values in one --grid")
        values = tuple(_typed(name, v, "--grid") for v in rest.split(","))
        if len(set(map(repr, values))) != len(values):
            raise ConfigError(f"--grid: a value of {name} is listed twice in '{item}'")
        grid[name] = values
    return grid


def parse_space(items: list[str]) -> dict[str, Dimension]:
    """['actor_lr=loguniform:1e-4:1e-2', 'noise=choice:gaussian,ou'] -> Dimensions."""
    space: dict[str, Dimension] = {}
    example = "FIELD=uniform:LO:HI, FIELD=loguniform:LO:HI or FIELD=choice:A,B"
    for item in items:
        name, rest = _split_item(item, "--space", example)
        if name in space:
            raise ConfigError(f"--space: {name} is given twice")
        kind, _, args = rest.partition(":")
        kind = kind.strip()
        if kind not in DIMENSION_KINDS:
            close = difflib.get_close_matches(kind, DIMENSION_KINDS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"--space {name}: unknown distribution '{kind}'{hint}; use {example}")
        if kind == "choice":
            values = tuple(_typed(name, v, "--space") for v in args.split(","))
            if len(values) < 2 or len(set(map(repr, values))) != len(values):
                raise ConfigError(f"--space {name}: choice needs two or more distinct values")
            space[name] = Dimension("choice", values=values)
            continue
        base = _base_type(name)
        if base is not float:
            kind_name = getattr(base, "__name__", str(base))
            raise ConfigError(
                f"--space {name}: {kind} needs a float field and {name} is {kind_name}; "
                f"use {name}=choice:A,B"
            )
        bounds = args.split(":")
        if len(bounds) != 2:
            raise ConfigError(f"--space {name}: expected {kind}:LO:HI, got '{rest}'")
        low, high = (_typed(name, b, "--space") for b in bounds)
        if low is None or high is None or not low < high:
            raise ConfigError(f"--space {name}: expected LO < HI, got '{rest}'")
        if kind == "loguniform" and low <= 0:
            raise ConfigError(f"--space {name}: loguniform needs LO > 0, got {low}")
        space[name] = Dimension(kind, float(low), float(high))
    return space


def _typed(name: str, text: str, option: str) -> Any:
    """A value for field `name`, parsed as its --field-name option would be."""
    try:
        return parse_value(name, text.strip())
    except ConfigError as exc:
        detail = str(exc).split(": ", 1)[-1]
        raise ConfigError(f"{option} {name}: {detail}") from None


def _base_type(name: str) -> Any:
    hint = field_types()[name]
    args = [a for a in getattr(hint, "__args__", ()) if a is not type(None)]
    return args[0] if args else hint


# -- building and validating a spec ---------------------------------------------------------------
def build_spec(
    *,
    base: Config,
    preset: str,
    fixed: dict[str, Any],
    seeds: tuple[int, ...] | None = None,
    grid: dict[str, tuple[Any, ...]] | None = None,
    search: str | None = None,
    samples: int | None = None,
    space: dict[str, Dimension] | None = None,
    search_seed: int = 0,
    scheduler: str = "fifo",
    grace_period: int | None = None,
    reduction_factor: int = 3,
    metric: str = DEFAULT_METRIC,
    max_concurrent: int | None = None,
    cpus_per_trial: int = 1,
    gpus_per_trial: float = 0.0,
    max_failures: int = 2,
    address: str | None = None,
    ray_temp_dir: str | None = None,
) -> SweepSpec:
    """Check everything a user can get wrong, then return the spec. Raises ConfigError."""
    grid = dict(grid or {})
    space = dict(space or {})
    if "seed" in fixed and seeds is not None:
        raise ConfigError("give either --seed or --seeds, not both")
    for name in (*grid, *space):
        if name in fixed:
            raise ConfigError(
                f"{name} is both fixed ({option_name(name)}) and varied (--grid/--space)"
            )
    both = sorted(set(grid) & set(space))
    if both:
        raise ConfigError(f"{both[0]} is in both --grid and --space")
    _check_search(search, samples, space, grid)
    _check_resources(max_concurrent, cpus_per_trial, gpus_per_trial, max_failures)
    if scheduler not in SCHEDULERS:
        raise ConfigError(f"--scheduler must be one of {', '.join(SCHEDULERS)}, got '{scheduler}'")
    if grace_period is not None and scheduler != "asha":
        raise ConfigError("--grace-period is an ASHA setting: add --scheduler asha")
    if reduction_factor < 2:
        raise ConfigError(f"--reduction-factor must be >= 2, got {reduction_factor}")
    if metric not in METRICS:
        close = difflib.get_close_matches(metric, METRICS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"--metric: unknown metric '{metric}'{hint}; one of {', '.join(METRICS)}")

    if "torch_threads" not in fixed:
        base = base.replace(torch_threads=cpus_per_trial)  # a trial's torch uses its CPUs
    if seeds is None:
        seeds = (base.seed,)
    _check_seeds(seeds)
    samples = samples if samples is not None else 0
    _check_size(grid, search, samples, len(seeds))
    points = _points(grid, space, search, samples, search_seed)
    spec = SweepSpec(
        preset=preset,
        base=base.to_dict(),
        fixed=dict(fixed),
        seeds=tuple(seeds),
        grid=grid,
        search=search,
        samples=samples,
        space=space,
        search_seed=search_seed,
        points=points,
        scheduler=scheduler,
        grace_period=grace_period,
        reduction_factor=reduction_factor,
        metric=metric,
        max_concurrent=max_concurrent,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        max_failures=max_failures,
        address=address,
        ray_temp_dir=ray_temp_dir,
    )
    configs = _every_config(spec)
    _check_configs(spec, configs)
    spec = replace(spec, max_t=max(int(c.total_steps or 0) for c in configs))
    if scheduler == "asha":
        spec = _with_grace_period(spec, configs)
    return spec


def _check_search(
    search: str | None,
    samples: int | None,
    space: dict[str, Dimension],
    grid: dict[str, tuple[Any, ...]],
) -> None:
    if search is None:
        if space:
            raise ConfigError("--space needs --search random or --search optuna")
        if samples is not None:
            raise ConfigError("--samples needs --search random or --search optuna")
        return
    if search not in SEARCHES:
        raise ConfigError(f"--search must be one of {', '.join(SEARCHES)}, got '{search}'")
    if not space:
        raise ConfigError(f"--search {search} needs a --space FIELD=DISTRIBUTION")
    if samples is None or samples < 1:
        raise ConfigError(f"--search {search} needs --samples N with N >= 1")
    if search == "optuna" and grid:
        raise ConfigError(
            "--grid cannot be combined with --search optuna; put the values in the space "
            "instead (--space FIELD=choice:A,B)"
        )


def _check_resources(
    max_concurrent: int | None, cpus_per_trial: int, gpus_per_trial: float, max_failures: int
) -> None:
    if max_concurrent is not None and max_concurrent < 1:
        raise ConfigError(f"--max-concurrent must be >= 1, got {max_concurrent}")
    if cpus_per_trial < 1:
        raise ConfigError(f"--cpus-per-trial must be >= 1, got {cpus_per_trial}")
    if not (math.isfinite(gpus_per_trial) and gpus_per_trial >= 0):
        raise ConfigError(f"--gpus-per-trial must be >= 0, got {gpus_per_trial}")
    if not 0 <= max_failures <= MAX_FAILURES:
        raise ConfigError(f"--max-failures must be in [0, {MAX_FAILURES}], got {max_failures}")


def _check_seeds(seeds: tuple[int, ...]) -> None:
    """What parse_seeds ensures, for seeds from elsewhere (a resumed sweep.json)."""
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"--seeds: {len(seeds)} seeds; at most {MAX_SEEDS}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError("--seeds: a seed is listed twice")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
            raise ConfigError(f"--seeds: a seed must be an integer in [0, 2^63), got {seed!r}")


def _check_size(
    grid: dict[str, tuple[Any, ...]], search: str | None, samples: int, seeds: int
) -> None:
    """At most MAX_TRIALS trials, counted without building them."""
    if search == "optuna":
        trials = samples
    else:
        trials = math.prod(len(v) for v in grid.values()) * (samples or 1) * seeds
    if trials > MAX_TRIALS:
        raise ConfigError(
            f"the sweep has {trials:,} trials; at most {MAX_TRIALS:,} (fewer --grid values, "
            "--samples or --seeds)"
        )


def _points(
    grid: dict[str, tuple[Any, ...]],
    space: dict[str, Dimension],
    search: str | None,
    samples: int,
    search_seed: int,
) -> tuple[Point, ...]:
    """The grid's product, times the random samples; names unique and readable."""
    if search == "optuna":
        return ()
    combos = itertools.product(*grid.values())
    grid_points = [dict(zip(grid, combo, strict=True)) for combo in combos]
    if search != "random":
        named = [("-".join(f"{k}={format_value(v)}" for k, v in p.items()), p) for p in grid_points]
    else:
        rng = np.random.Generator(np.random.PCG64(search_seed))
        drawn = [{k: d.sample(rng) for k, d in space.items()} for _ in range(samples)]
        width = len(str(samples - 1))
        named = [
            (
                "-".join(
                    [f"{k}={format_value(v)}" for k, v in g.items()] + [f"sample{i:0{width}d}"]
                ),
                {**g, **sample},
            )
            for g in grid_points
            for i, sample in enumerate(drawn)
        ]
    names = [n for n, _ in named]
    if len(set(names)) != len(names):  # values that print alike: number the points instead
        width = len(str(len(named) - 1))
        named = [(f"point{i:0{width}d}", p) for i, (_, p) in enumerate(named)]
    return tuple(Point(n, p) for n, p in named)


def _every_config(spec: SweepSpec) -> list[Config]:
    """The config of every trial known in advance; with optuna, of every bound of the space
    (one field at a time) for every seed."""
    variants: list[dict[str, Any]]
    if spec.search == "optuna":
        variants = [{}] + [{k: v} for k, d in spec.space.items() for v in d.bounds()]
    else:
        variants = [p.overrides for p in spec.points]
    return [_config_or_explain(spec, v, s) for v in variants for s in spec.seeds]


def _config_or_explain(spec: SweepSpec, overrides: dict[str, Any], seed: int) -> Config:
    try:
        return spec.config(overrides, seed)
    except ConfigError as exc:
        where = ", ".join(f"{k}={format_value(v)}" for k, v in overrides.items())
        raise ConfigError(f"{exc} (in the sweep point {where or 'base'}, seed {seed})") from None


def _check_configs(spec: SweepSpec, configs: list[Config]) -> None:
    for c in configs:
        if c.total_steps is None or c.episodes is not None:
            raise ConfigError(
                "ddpg sweep needs a step budget only: set --total-steps and --episodes none "
                "(trials report at env steps)"
            )
        if c.eval_every <= 0 or c.eval_every > c.total_steps:
            raise ConfigError(
                "ddpg sweep reports at each periodic evaluation: set --eval-every to a value in "
                f"1..total_steps ({c.total_steps}), got {c.eval_every}"
            )
        if spec.gpus_per_trial > 0 and c.device == "cpu":
            raise ConfigError("--gpus-per-trial needs --device cuda (or auto)")
        if spec.gpus_per_trial == 0 and c.device.startswith("cuda"):
            raise ConfigError(f"--device {c.device} needs --gpus-per-trial > 0")


def _with_grace_period(spec: SweepSpec, configs: list[Config]) -> SweepSpec:
    """ASHA judges a trial first at the grace period: that must come after learning started and
    one evaluation of the learning policy, or it would kill trials on an untrained policy."""
    needed = max(c.learning_starts + c.eval_every for c in configs)
    grace = spec.grace_period if spec.grace_period is not None else needed
    if grace < needed:
        raise ConfigError(
            f"--grace-period {grace} is too short: ASHA would judge trials before an evaluation "
            f"of a trained policy; it must be >= learning_starts + eval_every = {needed}"
        )
    horizon = spec.max_t
    if grace >= horizon:
        raise ConfigError(
            f"--grace-period {grace} is not below the step budget {horizon}: ASHA would never "
            "stop a trial; lower it, or raise --total-steps, or use --scheduler fifo"
        )
    return replace(spec, grace_period=grace)
