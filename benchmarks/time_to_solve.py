"""Time to solve: wall-clock seconds of training until a policy reaches the task's return.

One invocation trains one library on one env for one or more seeds in turn, appending each
finished run as one JSON line to --results (runs can go side by side in separate processes).
Solved: the first evaluation (every --eval-every env steps over --eval-episodes deterministic
episodes, clocks paused: runner.py) whose mean return reaches the threshold (Pendulum-v1 -200,
LunarLanderContinuous-v3 200). `--summarize` writes the report (time_to_solve_report.py).
  ours: our `Trainer` with a preset (by default the env's tuned one) and --set overrides.
  sb3:  SB3's DDPG with the RL Zoo's hyperparameters (ZOO_DDPG); needs the `bench` extra.

    python benchmarks/time_to_solve.py --lib ours --env Pendulum-v1 --seeds 0 1 2
    python benchmarks/time_to_solve.py --lib ours --env Pendulum-v1 --seeds 0 1 2 \\
        --set num_envs=4 updates_per_step=0.5 --variant num_envs=4,utd=0.5
    python benchmarks/time_to_solve.py --summarize benchmarks/results/time_to_solve.jsonl \\
        --out docs/time-to-solve.md
"""

from __future__ import annotations

import argparse
import copy
import difflib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from common import append_record, command, invocation
from runner import Spec, Tracker, our_config, run_one, run_ours, run_sb3

from ddpg.config import check_keys, parse_value
from ddpg.errors import ConfigError
from ddpg.presets import PRESETS

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results" / "time_to_solve.jsonl"


class EnvDefaults(NamedTuple):
    threshold: float
    eval_every: int
    max_steps: int  # the RL Zoo's n_timesteps for DDPG on the task
    preset: str


ENVS = {
    "Pendulum-v1": EnvDefaults(-200.0, 1_000, 20_000, "pendulum"),
    "LunarLanderContinuous-v3": EnvDefaults(200.0, 5_000, 300_000, "lunarlander"),
}

# RL Baselines3 Zoo's tuned DDPG hyperparameters, from DLR-RM/rl-baselines3-zoo,
# hyperparams/ddpg.yml (the version with Gymnasium ids, as of commit 208b6fdf3a9a). Fields the
# file leaves out take SB3's DDPG defaults (batch_size 256, tau 0.005). Older versions of the file
# (keys Pendulum-v0 and LunarLanderContinuous-v2, e.g. commit 1159e2840a3d, and the sb3/ddpg-*
# models on the Hugging Face Hub) had the same values except train_freq [1, "episode"] with
# gradient_steps -1 (all of an episode's updates at its end).
ZOO_SOURCE = "DLR-RM/rl-baselines3-zoo hyperparams/ddpg.yml @ "
ZOO_SOURCE += "208b6fdf3a9aa24de44b2e068c6e5f6a07d97fcc"
_ZOO_SHARED: dict[str, Any] = {  # the file gives both tasks these same values
    "policy": "MlpPolicy",
    "gamma": 0.98,
    "buffer_size": 200_000,
    "learning_starts": 10_000,
    "noise_type": "normal",
    "noise_std": 0.1,
    "gradient_steps": 1,
    "train_freq": 1,
    "learning_rate": 1e-3,
    "policy_kwargs": {"net_arch": [400, 300]},
}
ZOO_DDPG: dict[str, dict[str, Any]] = {
    "Pendulum-v1": {"n_timesteps": 20_000, **_ZOO_SHARED},
    "LunarLanderContinuous-v3": {"n_timesteps": 300_000, **_ZOO_SHARED},
}
# SB3 DDPG defaults the zoo entries rely on, recorded so that the report shows every value.
SB3_DEFAULTS = {"batch_size": 256, "tau": 0.005}
# Config fields the benchmark sets itself; --set may not touch them.
FORCED_FIELDS = ("env_id", "seed", "total_steps", "episodes", "eval_every", "target_return")
FORCED_FIELDS += ("checkpoint_every", "tensorboard", "torch_threads")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="time_to_solve.py", description=__doc__.split("\n\n")[0])
    add = p.add_argument
    add("--lib", choices=("ours", "sb3"), help="library to train")
    add("--env", default="Pendulum-v1", help=f"env id ({', '.join(ENVS)})")
    add("--seeds", type=int, nargs="+", default=[0], help="seeds, run in turn (0)")
    add("--threshold", type=float, help="mean evaluation return that counts as solved (per env)")
    add("--eval-every", type=int, help="env steps between evaluations (per env: 1000, 5000)")
    add("--eval-episodes", type=int, default=10, help="episodes per evaluation (10)")
    add("--max-steps", type=int, help="step budget (per env: the zoo's n_timesteps)")
    add("--max-seconds", type=float, help="stop at the first evaluation after this much training")
    add("--torch-threads", type=int, default=1, help="for both libraries (1; 0: torch's default)")
    add("--preset", help="ours: preset to start from (per env: pendulum, lunarlander)")
    add("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="FIELD=VALUE",
        help="ours: config overrides, e.g. --set num_envs=4 updates_per_step=0.5")  # fmt: skip
    add("--variant", help="label in the report (ours: 'preset' or the overrides; sb3: 'zoo')")
    add("--results", type=Path, default=DEFAULT_RESULTS, help="JSON-lines file runs append to")
    add("--summarize", type=Path, nargs="+", metavar="RESULTS", help="report these results files")
    add("--out", type=Path, help="with --summarize: also write the report here")
    args = p.parse_args(argv)
    if args.summarize is None and args.lib is None:
        p.error("give --lib (to train) or --summarize (to report)")
    if args.summarize is not None:
        return args
    if args.env not in ENVS and None in (args.threshold, args.eval_every, args.max_steps):
        p.error(f"{args.env}: not one of {', '.join(ENVS)}; give --threshold, --eval-every and "
                "--max-steps")  # fmt: skip
    if args.lib == "sb3" and (args.preset or args.overrides):
        p.error("--preset and --set configure ours; sb3 runs use the zoo's hyperparameters")
    for name in ("eval_every", "eval_episodes", "max_steps"):
        if (getattr(args, name) or 1) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.torch_threads < 0:
        p.error("--torch-threads must be >= 0")
    return args


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """`FIELD=VALUE` strings to typed config values, with the CLI's parser (never evaluated)."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise SystemExit(f"time_to_solve.py: --set expects FIELD=VALUE, got '{item}'")
        check_keys({name: None})
        if name in FORCED_FIELDS:
            raise SystemExit(
                f"time_to_solve.py: --set {name}: the benchmark sets this field itself "
                f"({', '.join(FORCED_FIELDS)}); use --env, --seeds, --max-steps, --torch-threads"
            )
        out[name] = parse_value(name, text)
    return out


def zoo_hyperparameters(env_id: str) -> tuple[dict[str, Any], str | None]:
    """The zoo's entry for `env_id`, or the closest one with a note saying so."""
    if env_id in ZOO_DDPG:
        return copy.deepcopy(ZOO_DDPG[env_id]), None
    close = difflib.get_close_matches(env_id, list(ZOO_DDPG), n=1, cutoff=0.0)
    note = f"the zoo has no DDPG entry for {env_id}; used the one for {close[0]}"
    return copy.deepcopy(ZOO_DDPG[close[0]]), note


def default_variant(lib: str, preset: str | None, env_id: str, overrides: list[str]) -> str:
    if lib == "sb3":
        return "zoo"
    parts = []
    if preset and (env_id not in ENVS or preset != ENVS[env_id].preset):
        parts.append(f"preset={preset}")
    return ",".join(parts + overrides) or "preset"


def trainer(spec: Spec, preset: str, overrides: dict) -> Callable[[Tracker], dict[str, Any]]:
    """The run function of `spec`'s library, its settings bound and recorded."""
    if spec.lib == "ours":
        config = our_config(preset, overrides, spec)
        extra = {"preset": preset, "overrides": overrides}
        return lambda tracker: run_ours(spec, config, tracker) | extra
    zoo, note = zoo_hyperparameters(spec.env_id)
    hp = {**SB3_DEFAULTS, **zoo}
    extra = {"hyperparameters_source": ZOO_SOURCE, "hyperparameters_note": note}
    return lambda tracker: run_sb3(spec, hp, tracker) | extra


def train_main(args: argparse.Namespace, argv: list[str]) -> int:
    env = ENVS.get(args.env)
    preset = args.preset or (env.preset if env else None)
    if args.lib == "ours" and preset not in PRESETS:
        print(f"time_to_solve.py: give --preset (one of {', '.join(PRESETS)})", file=sys.stderr)
        return 2
    variant = args.variant or default_variant(args.lib, args.preset, args.env, args.overrides)
    threshold = args.threshold if args.threshold is not None else env.threshold
    every, budget = args.eval_every or env.eval_every, args.max_steps or env.max_steps
    specs = [Spec(args.lib, variant, args.env, seed, threshold, every, args.eval_episodes, budget,
                  args.max_seconds, args.torch_threads) for seed in args.seeds]  # fmt: skip
    try:  # refuse bad overrides and invalid configs before any run starts
        runs = [trainer(spec, preset, parse_overrides(args.overrides)) for spec in specs]
    except ConfigError as exc:
        print(f"time_to_solve.py: {exc}", file=sys.stderr)
        return 2
    for spec, train in zip(specs, runs, strict=True):
        record = run_one(spec, train) | {"argv": argv, "command": command(argv)}
        append_record(args.results, record)
        outcome = (
            f"solved at step {record['steps_to_solve']} after {record['wall_s_to_solve']:.1f} s "
            f"wall, {record['cpu_s_to_solve']:.1f} s CPU"
            if record["solved"]
            else f"not solved ({record['stop_reason']})"
        )
        print(
            f"{spec.lib}/{variant} {spec.env_id} seed {spec.seed}: {outcome}; "
            f"{record['steps_per_s']:.0f} steps/s; appended to {args.results}",
            flush=True,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    full_argv = invocation(__file__, argv)
    args = parse_args(full_argv[1:])
    if args.summarize is None:
        return train_main(args, full_argv)
    from time_to_solve_report import report_main

    return report_main(args.summarize, args.out, full_argv)


if __name__ == "__main__":
    raise SystemExit(main())
