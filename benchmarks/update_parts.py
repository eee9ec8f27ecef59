"""What one update costs, DDPG against TD3, by parts, measured in one alternating run.

On a fixed batch (hidden 256x256, batch 256, the settings of throughput.py), per repeat in turn:
our whole update (over consecutive update numbers, so TD3 steps its actor on every second), the
critic step (TD target, every critic's MSE, backward, optimiser step), the actor step with Polyak
averaging, and the TD target alone. Because both algorithms are timed back to back in one
process, their ratio holds even on a machine whose speed drifts between runs.

    python benchmarks/update_parts.py [--env HalfCheetah-v5] [--threads 1] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable

import common
import gymnasium as gym
import torch
from common import OTHER_LOAD, Timer, table
from throughput import BATCH, fixed_batch, our_config

from ddpg.agent import DDPGAgent, _step
from ddpg.envs import check_env

PARTS = ("whole update", "critic step", "actor step + Polyak", "TD target")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = p.add_argument
    add("--env", default="HalfCheetah-v5", help="environment id (its obs and action sizes)")
    add("--iters", type=int, default=200, help="calls per timed section (200)")
    add("--repeats", type=int, default=5, help="alternations of the two algorithms (5)")
    add("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    add("--out", help="also write the markdown report to this file")
    return p.parse_args(argv)


def ms_per_call(label: str, fn: Callable[[], object], iters: int) -> float:
    for _ in range(20):
        fn()
    with Timer(label) as timer:
        for _ in range(iters):
            fn()
    return timer.elapsed / iters * 1e3


def parts(agent: DDPGAgent, env_id: str, iters: int, start: int) -> dict[str, float]:
    batch = fixed_batch(agent.info.obs_dim, agent.info.act_dim)
    index = iter(range(start, 1 << 62))
    algo = agent.config.algo

    def critic_step() -> None:
        _step(agent.critic_optimizer, agent.critic_loss(batch)[0])

    def target() -> None:
        with torch.no_grad():
            agent.td_target(agent, batch)

    fns = (lambda: agent.update(batch, next(index)), critic_step,
           lambda: agent.delayed_step(batch), target)  # fmt: skip
    timed = zip(PARTS, fns, strict=True)
    return {part: ms_per_call(f"{algo} {part} {env_id}", fn, iters) for part, fn in timed}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    env = gym.make(args.env)
    info = check_env(env)
    env.close()
    algos = ("ddpg", "td3")
    agents = {algo: DDPGAgent(info, our_config(args.env, 0, BATCH, algo)) for algo in algos}
    times: dict[str, dict[str, list[float]]] = {a: {p: [] for p in PARTS} for a in agents}
    for r in range(args.repeats):
        for algo, agent in agents.items():
            for part, ms in parts(agent, args.env, args.iters, r * 10_000).items():
                times[algo][part].append(ms)
    rows = []
    for part in PARTS:
        d, t = (statistics.median(times[a][part]) for a in ("ddpg", "td3"))
        runs = [", ".join(f"{x:.2f}" for x in times[a][part]) for a in ("ddpg", "td3")]
        rows.append([part, f"{d:.2f}", f"{t:.2f}", f"{t / d:.2f}x", *runs])
    share = [s for _, s in OTHER_LOAD] or [float("nan")]
    header = ["part", "DDPG ms", "TD3 ms", "TD3/DDPG", "DDPG, all repeats", "TD3, all repeats"]
    lines = [
        f"## Update cost by parts, {args.env}", "",
        *table(header, rows), "",
        f"- command: `{common.command(common.invocation('benchmarks/update_parts.py', argv))}`",
        f"- torch threads: {torch.get_num_threads()}; machine: {common.machine()}",
        f"- versions: {common.versions()}; load average at the end: {common.load_average()}",
        "- other processes' share of the machine's CPU time during the timed sections: median "
        f"{statistics.median(share):.0%}, max {max(share):.0%}",
    ]  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
