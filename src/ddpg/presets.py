"""Presets: named configs, as plain data. Each value says why it was chosen."""

from __future__ import annotations

import difflib
from typing import Any

from ddpg.config import Config
from ddpg.errors import ConfigError

DEFAULT_PRESET = "lunarlander"

PRESETS: dict[str, dict[str, Any]] = {
    # The original notebook's experiment, value for value (see docs/seed-differences.md for the
    # places where our library deliberately behaves differently).
    "seed-lunarlander": {
        "description": "The original notebook's LunarLander experiment, value for value.",
        "values": {
            "env_id": "LunarLanderContinuous-v3",  # the notebook's env, on Gymnasium's v3
            "total_steps": None,  # the notebook counts episodes, not steps
            "episodes": 1000,  # EPISODES_TO_TRAIN
            "max_episode_steps": 200,  # MAX_STEPS: episodes cut at 200 steps
            "hidden_size": 256,  # HIDDEN_SIZE
            "batch_norm": True,  # the notebook's actor has BatchNorm1d
            "gamma": 0.99,  # GAMMA
            "actor_lr": 1e-3,  # LEARNING_RATE, shared by both optimisers
            "critic_lr": 1e-3,  # LEARNING_RATE
            "weight_decay": 0.01,  # AdamW's default, which the notebook uses
            "batch_size": 100,  # BATCH_SIZE
            "buffer_size": 1_000_000,  # REPLAY_MEMORY_SIZE
            "tau": 0.005,  # POLYAK
            "noise": "gaussian",  # Normal(0, NOISE_STD_DEV) each step
            "noise_std": 0.1,  # NOISE_STD_DEV (the action range is [-1, 1], so no rescaling)
            "learning_starts": 100,  # updates begin once the memory holds one batch
            "log_every": 20,  # LOG_EVERY
            "eval_episodes": 20,  # EPISODES_TO_EVAL
        },
    },
    # Tuned to land: full-length episodes, periodic evaluation picks the best policy.
    "lunarlander": {
        "description": "LunarLanderContinuous-v3 tuned to land (>= 200) within 300k steps.",
        "values": {
            "env_id": "LunarLanderContinuous-v3",
            "total_steps": 300_000,  # the budget the landing target is judged on
            "hidden_size": 256,  # as the notebook; ample for an 8-dim observation
            "batch_norm": False,  # TBD
            "gamma": 0.98,  # as RL Zoo's DDPG: shorter horizon, less credit for hovering
            "actor_lr": 1e-3,
            "critic_lr": 1e-3,
            "weight_decay": 0.0,
            "batch_size": 128,
            "buffer_size": 300_000,  # keeps every transition of the run
            "tau": 0.005,
            "noise_std": 0.1,
            "learning_starts": 10_000,  # ten random episodes' worth of diverse data first
            "eval_every": 10_000,  # 30 evaluations over the run
            "eval_episodes_during": 20,
            "target_return": 230.0,
            "eval_episodes": 20,  # the landing criterion is judged on 20 episodes
            "log_every": 20,
        },
    },
    # A quick demo: Pendulum swings up within 15k steps in about a minute on a laptop CPU.
    "pendulum": {
        "description": "Pendulum-v1, a quick demo (about a minute on a laptop CPU).",
        "values": {
            "env_id": "Pendulum-v1",
            "total_steps": 15_000,  # 75 episodes of 200 steps; enough to swing up and hold
            "hidden_size": 128,  # small problem (3-dim obs, 1-dim action): faster updates
            "batch_norm": False,  # TBD
            "gamma": 0.98,  # short horizon suits a task rewarded every step
            "actor_lr": 1e-3,
            "critic_lr": 1e-3,
            "weight_decay": 0.0,
            "batch_size": 128,
            "buffer_size": 100_000,  # more than the whole run: nothing is ever overwritten
            "tau": 0.005,
            "noise_std": 0.1,
            "learning_starts": 1_000,  # five random episodes, then learn
            "eval_every": 5_000,
            "eval_episodes_during": 10,
            "eval_episodes": 10,
            "log_every": 10,
        },
    },
}


def preset_names() -> list[str]:
    return list(PRESETS)


def preset_config(name: str, **overrides: Any) -> Config:
    """The config of preset `name`, with `overrides` applied on top."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"unknown preset '{name}'{hint}; `ddpg presets` lists them")
    values = dict(PRESETS[name]["values"])
    values.update(overrides)
    return Config.from_dict(values)
