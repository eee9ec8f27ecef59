"""What a valid run will cost, estimated before it starts: one warning line for each setting
that makes it very costly (evaluations, updates, an unfilled replay buffer). The bounds beyond
which a value is refused outright are in config.py."""

from __future__ import annotations

import math

import gymnasium as gym

from ddpg.config import Config
from ddpg.resources import GIB, required_bytes

# Env steps of evaluation worth a word: a million steps of the policy alone, and more than the
# training budget (below that, evaluating is part of an ordinary run: a 40-step test run that
# evaluates on 200-step episodes, say).
COSTLY_EVAL_STEPS = 10**6
# Gradient updates worth a word: a hundred times the million of a standard 1M-step run; at the
# 0.4 ms of a CUDA-graphed update on an H100 (docs/gpu.md), the fastest this library has, 10^8
# updates are 11 hours, and days on a CPU.
COSTLY_UPDATES = 10**8
FASTEST_UPDATE_S = 0.4e-3
# Replay buffer memory that is allocated and never filled, worth a word.
COSTLY_UNUSED_BYTES = GIB


def cost_warnings(
    config: Config, obs_dim: int, act_dim: int, episode_limit: int | None
) -> list[str]:
    """The warning lines for `config` on spaces of these sizes, with episodes of at most
    `episode_limit` steps (None: the environment sets no time limit)."""
    c = config
    steps = _step_budget(c, episode_limit)
    warnings = []
    if steps is not None and episode_limit is not None:
        evaluations = steps // c.eval_every if c.eval_every else 0
        periodic = evaluations * c.eval_episodes_during
        final = 2 * c.eval_episodes  # the best and the final policy
        eval_steps = (periodic + final) * episode_limit
        if eval_steps > max(steps, COSTLY_EVAL_STEPS):
            warnings.append(
                f"evaluation will take up to {eval_steps:,} env steps ({evaluations:,} periodic "
                f"evaluations x {c.eval_episodes_during:,} episodes and the final 2 x "
                f"{c.eval_episodes:,}, up to {episode_limit:,} steps each), "
                f"{eval_steps / steps:,.0f}x the {steps:,} training steps; lower "
                "--eval-episodes-during, --eval-episodes or raise --eval-every"
            )
    if steps is not None:
        updates = math.floor(c.updates_per_step * max(0, steps - c.learning_starts))
        if updates > COSTLY_UPDATES:
            hours = updates * FASTEST_UPDATE_S / 3600
            warnings.append(
                f"updates_per_step {c.updates_per_step:g} x {steps - c.learning_starts:,} "
                f"learning steps is {updates:,} gradient updates, {hours:,.0f} hours even at "
                "the 0.4 ms of a CUDA-graphed update on an H100"
            )
        buffer_bytes, _ = required_bytes(c, obs_dim, act_dim)
        unused = buffer_bytes * max(0, c.buffer_size - steps) // c.buffer_size
        if unused > COSTLY_UNUSED_BYTES:
            warnings.append(
                f"buffer_size {c.buffer_size:,} holds more than the {steps:,} steps of the run: "
                f"{unused / GIB:.1f} GiB of replay buffer are allocated and never filled; lower "
                "--buffer-size"
            )
    return warnings


def _step_budget(config: Config, episode_limit: int | None) -> int | None:
    """The most env steps the run takes, if that can be told."""
    budgets = [config.total_steps] if config.total_steps is not None else []
    if config.episodes is not None and episode_limit is not None:
        budgets.append(config.episodes * episode_limit)
    return min(budgets) if budgets else None


def episode_limit(config: Config) -> int | None:
    """The time limit of the run's episodes: its own, or its registered environment's."""
    if config.max_episode_steps is not None:
        return config.max_episode_steps
    try:
        return gym.spec(config.env_id).max_episode_steps
    except gym.error.Error:
        return None
