"""`ddpg evaluate`: a run's policy on fresh episodes, as a table (and JSON)."""

from __future__ import annotations

import argparse
import json

from ddpg.commands.options import (
    add_force_option,
    add_model_arguments,
    episode_count,
    model_file,
    path_arg,
)

HELP = "evaluate a run's model"
DESCRIPTION = "Evaluate a trained run's policy deterministically on fresh episodes."


def add_arguments(evaluate: argparse.ArgumentParser) -> None:
    add_model_arguments(evaluate)
    evaluate.add_argument("--episodes", type=episode_count, help="episodes (default: config)")
    evaluate.add_argument("--json", type=path_arg, help="also write the results as JSON")
    add_force_option(evaluate, "a --json file")


def run(args: argparse.Namespace) -> int:
    from ddpg.envs import FINAL_EVAL_STREAM, make_env
    from ddpg.evaluation import evaluate
    from ddpg.outputs import check_output, check_outside_runs, write_output
    from ddpg.policy import Policy

    if args.json is not None:
        check_output(args.json, "evaluation JSON", args.force)  # before the evaluation runs
        check_outside_runs(args.json, own=[args.run_dir])
    policy = Policy.load(model_file(args.run_dir, args.model))
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
