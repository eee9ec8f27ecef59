"""`ddpg sweep`: validate everything, create SWEEP_DIR, then hand over to Ray Tune.

Each sweep option is written once, in `OPTIONS`: the parser takes it from there, the options
that define a sweep go to `sweep.spec.build_spec` under their own names, and `--resume` refuses
every one of them but `--address`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ddpg.commands.options import (
    add_config_options,
    config_overrides,
    count_arg,
    path_arg,
    positive_int,
    seed_arg,
    text,
    train_config,
)
from ddpg.config import option_name
from ddpg.errors import RunDirError
from ddpg.links import SWEEP, check_links
from ddpg.loggers import Console
from ddpg.outputs import check_outside_runs
from ddpg.presets import PRESETS
from ddpg.sweep import cluster
from ddpg.sweep.spec import (
    DEFAULT_METRIC,
    METRICS,
    SCHEDULERS,
    SEARCHES,
    SPEC_FILE,
    TRIALS_DIR,
    SweepSpec,
    build_spec,
    parse_grid,
    parse_seeds,
    parse_space,
    read_spec,
    write_spec,
)

HELP = "train many runs over seeds and hyperparameters on Ray Tune"
DESCRIPTION = (
    "Run every point of a grid or a search with every seed on Ray Tune (the `ray` extra), "
    "each trial an ordinary run directory under SWEEP_DIR/trials/, resumable with `ddpg "
    "train --resume`. Starts a local Ray unless --address names a cluster. Trials report "
    "at each periodic evaluation (--eval-every). See docs/scale-out.md."
)

# Every option of `ddpg sweep` but the config fields, in --help's order: its argparse keywords.
OPTIONS: dict[str, dict[str, Any]] = {
    "preset": dict(type=text("--preset"), help=f"preset to start from ({', '.join(PRESETS)})"),
    "out": dict(
        type=path_arg,
        metavar="SWEEP_DIR",
        help="sweep directory, which must not exist (default: sweeps/PRESET-TIME)",
    ),
    "resume": dict(
        type=path_arg,
        metavar="SWEEP_DIR",
        help="continue an interrupted sweep (only --address may change)",
    ),
    "seeds": dict(metavar="SEEDS", help="seeds, as 0-4 or 0,2,5 (default: the config's seed)"),
    "grid": dict(
        action="append",
        default=[],
        metavar="FIELD=V1,V2",
        help="values of a config field to try, repeatable: the grid is their product",
    ),
    "search": dict(
        choices=SEARCHES,
        help="draw --samples points from --space: random (drawn "
        "up front) or optuna (TPE, each suggestion trains every seed)",
    ),
    "samples": dict(type=positive_int, help="points a search tries"),
    "space": dict(
        action="append",
        default=[],
        metavar="FIELD=DIST",
        help="a searched field: uniform:LO:HI, loguniform:LO:HI or choice:A,B; repeatable",
    ),
    "search_seed": dict(type=seed_arg, help="seed of the search (default 0)"),
    "scheduler": dict(
        choices=SCHEDULERS,
        help="fifo (every trial runs to its end; the default) or asha (early stopping)",
    ),
    "grace_period": dict(
        type=positive_int,
        metavar="STEPS",
        help="ASHA: env steps before a "
        "trial can be stopped, >= learning_starts + eval_every (the default)",
    ),
    "reduction_factor": dict(type=positive_int, help="ASHA's reduction factor (default 3)"),
    "metric": dict(
        choices=tuple(METRICS),
        help="what trials report and schedulers rank, "
        f"higher is better (default {DEFAULT_METRIC}: the periodic evaluation's mean return)",
    ),
    "max_concurrent": dict(type=positive_int, help="trials at once (default: what fits)"),
    "cpus_per_trial": dict(
        type=positive_int,
        help="CPUs per trial, also its torch threads unless --torch-threads is given (default 1)",
    ),
    "gpus_per_trial": dict(type=float, help="GPUs per trial, fractions allowed (default 0)"),
    "max_failures": dict(
        type=count_arg,
        help="retries of a trial whose worker died, each from its last checkpoint (default 2)",
    ),
    "address": dict(
        type=text("--address"),
        help="join a running Ray cluster: auto or "
        "HOST:PORT (default: start a local Ray for the sweep)",
    ),
    "ray_temp_dir": dict(
        type=path_arg,
        metavar="DIR",
        help="a local Ray's temp dir (default SWEEP_DIR/ray; at most 40 bytes, for Ray's sockets)",
    ),
    "quiet": dict(action="store_true", help="print nothing but errors"),
}
# Options read here rather than passed to build_spec as they are.
_OWN = ("preset", "out", "resume", "seeds", "grid", "space", "address", "ray_temp_dir", "quiet")
# The options that define a sweep, fixed in sweep.json: on --resume only --address may change
# (named in this order when refused: where the sweep goes last).
SPEC_OPTIONS = (
    *(n for n in OPTIONS if n not in ("preset", "out", "resume", "address", "quiet")),
    "preset",
    "out",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for name, keywords in OPTIONS.items():
        parser.add_argument(option_name(name), **keywords)
    add_config_options(parser)


def run(args: argparse.Namespace) -> int:
    return run_command(args)


def run_command(args: argparse.Namespace) -> int:
    console = Console(quiet=args.quiet)
    if args.resume is not None:
        sweep_dir = args.resume
        check_links(sweep_dir, SWEEP, (SPEC_FILE,))
        spec = _resumed_spec(args)
        check_links(sweep_dir, SWEEP, (TRIALS_DIR,))  # its runs, resumed by the trials
    else:
        spec = _new_spec(args)
        sweep_dir = args.out or Path("sweeps") / (f"{spec.preset}-{time.strftime('%Y%m%d-%H%M%S')}")
        if sweep_dir.exists() or sweep_dir.is_symlink():
            raise RunDirError(
                f"sweep directory {sweep_dir} exists; give a new --out, or continue it with "
                f"--resume {sweep_dir}"
            )
        check_outside_runs(sweep_dir)
    cluster.require_ray(spec.search)
    cluster.prepare_environment(local=spec.address is None)  # read by Ray when it is imported
    address = cluster.resolve_address(spec.address) if spec.address is not None else None
    _check_envs(spec)  # a resumed plan is checked as a new one is
    from ddpg.sweep.driver import SweepInterrupted, format_summary, run_sweep

    with contextlib.ExitStack() as stack:
        joined = None
        if address is not None:  # joined before anything is created: a wrong address fails
            joined = stack.enter_context(cluster.ray_session(address, None, 0, 0))
        if args.resume is None:
            (sweep_dir / TRIALS_DIR).mkdir(parents=True)
            write_spec(sweep_dir, spec)
            console.print(f"sweep of {spec.num_trials()} trials into {sweep_dir}")
        try:
            rows = run_sweep(spec, sweep_dir, console, args.resume is not None, joined)
        except SweepInterrupted as stop:
            print(
                f"ddpg: sweep stopped by {stop.signal_name}; its state is saved\n"
                f"resume with: {stop.resume_command}",
                file=sys.stderr,
            )
            return stop.exit_code
    console.print(format_summary(rows, spec.metric))
    console.print(
        f"files: {sweep_dir}/ (sweep.json, results.json, trials/); `ddpg report {sweep_dir}`"
    )
    return 0


def _new_spec(args: argparse.Namespace) -> SweepSpec:
    fixed = config_overrides(args)
    base, preset, notes = train_config(args.preset, fixed)  # exactly what `ddpg train` runs
    for line in notes:
        print(f"ddpg: warning: {line}", file=sys.stderr)
    given = {name: getattr(args, name) for name in OPTIONS if name not in _OWN}
    return build_spec(
        base=base,
        preset=preset,
        fixed=fixed,
        seeds=parse_seeds(args.seeds) if args.seeds is not None else None,
        grid=parse_grid(args.grid),
        space=parse_space(args.space),
        address=args.address,
        ray_temp_dir=str(args.ray_temp_dir) if args.ray_temp_dir is not None else None,
        **{name: value for name, value in given.items() if value is not None},
    )


def _resumed_spec(args: argparse.Namespace) -> SweepSpec:
    from ddpg.config import field_names

    given = [name for name in SPEC_OPTIONS if getattr(args, name, None) not in (None, [])]
    given += [name for name in field_names() if hasattr(args, name)]
    if given:
        names = ", ".join(option_name(n) for n in given)
        raise RunDirError(f"{names} cannot be given with --resume; the sweep keeps its {SPEC_FILE}")
    spec = read_spec(args.resume)
    if args.address is not None:
        spec = replace(spec, address=args.address)
    return spec


def _check_envs(spec: SweepSpec) -> None:
    """Every environment of the sweep can be made and driven, before anything is created; and
    what each point will cost, as `ddpg train` warns of it (costs.py), once per distinct line."""
    from ddpg.costs import cost_warnings, episode_limit
    from ddpg.envs import EnvInfo, check_env, make_env

    infos: dict[tuple[str, int | None], EnvInfo] = {}
    points = [(p.name, p.overrides) for p in spec.points] or [("", {})]
    warnings: dict[str, list[str]] = {}
    for name, overrides in points:
        c = spec.config(overrides, spec.seeds[0])
        key = (c.env_id, c.max_episode_steps)
        if key not in infos:
            env = make_env(c.env_id, c.max_episode_steps)
            try:
                infos[key] = check_env(env, c.env_id)
            finally:
                env.close()
        info = infos[key]
        for line in cost_warnings(c, info.obs_dim, info.act_dim, episode_limit(c)):
            warnings.setdefault(line, []).append(name)
    for line, names in warnings.items():
        where = f" (sweep point {names[0]})" if len(names) == 1 and len(points) > 1 else ""
        if len(names) > 1 and len(names) < len(points):
            where = f" ({len(names)} of the {len(points)} sweep points, {names[0]} first)"
        print(f"ddpg: warning: {line}{where}", file=sys.stderr)
