"""`ddpg sweep`: validate everything, create SWEEP_DIR, then hand over to Ray Tune."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import replace
from pathlib import Path

from ddpg.cli import _overrides, option_name, train_config
from ddpg.errors import RunDirError
from ddpg.loggers import Console
from ddpg.sweep import cluster
from ddpg.sweep.spec import (
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

# Options that define a sweep (fixed in sweep.json); on --resume only --address may change.
SPEC_OPTIONS = (
    "seeds",
    "grid",
    "search",
    "samples",
    "space",
    "search_seed",
    "scheduler",
    "grace_period",
    "reduction_factor",
    "metric",
    "max_concurrent",
    "cpus_per_trial",
    "gpus_per_trial",
    "max_failures",
    "ray_temp_dir",
    "preset",
    "out",
)


def run_command(args: argparse.Namespace) -> int:
    console = Console(quiet=args.quiet)
    if args.resume is not None:
        sweep_dir = args.resume
        spec = _resumed_spec(args)
    else:
        spec = _new_spec(args)
        sweep_dir = args.out or Path("sweeps") / (f"{spec.preset}-{time.strftime('%Y%m%d-%H%M%S')}")
        if sweep_dir.exists() or sweep_dir.is_symlink():
            raise RunDirError(
                f"sweep directory {sweep_dir} exists; give a new --out, or continue it with "
                f"--resume {sweep_dir}"
            )
    cluster.require_ray(spec.search)
    cluster.prepare_environment(local=spec.address is None)  # read by Ray when it is imported
    address = cluster.resolve_address(spec.address) if spec.address is not None else None
    if args.resume is None:
        _check_envs(spec)
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
    fixed = _overrides(args)
    base, preset, notes = train_config(args.preset, fixed)  # exactly what `ddpg train` runs
    for line in notes:
        print(f"ddpg: warning: {line}", file=sys.stderr)
    options = {
        "search_seed": args.search_seed,
        "scheduler": args.scheduler,
        "grace_period": args.grace_period,
        "reduction_factor": args.reduction_factor,
        "metric": args.metric,
        "max_concurrent": args.max_concurrent,
        "cpus_per_trial": args.cpus_per_trial,
        "gpus_per_trial": args.gpus_per_trial,
        "max_failures": args.max_failures,
    }
    return build_spec(
        base=base,
        preset=preset,
        fixed=fixed,
        seeds=parse_seeds(args.seeds) if args.seeds is not None else None,
        grid=parse_grid(args.grid),
        search=args.search,
        samples=args.samples,
        space=parse_space(args.space),
        address=args.address,
        ray_temp_dir=str(args.ray_temp_dir) if args.ray_temp_dir is not None else None,
        **{k: v for k, v in options.items() if v is not None},
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
    """Every environment of the sweep can be made and driven, before anything is created."""
    from ddpg.envs import check_env, make_env

    seen = set()
    configs = [spec.config(p.overrides, spec.seeds[0]) for p in spec.points] or [
        spec.config({}, spec.seeds[0])
    ]
    for c in configs:
        key = (c.env_id, c.max_episode_steps)
        if key not in seen:
            seen.add(key)
            env = make_env(c.env_id, c.max_episode_steps)
            try:
                check_env(env, c.env_id)
            finally:
                env.close()
