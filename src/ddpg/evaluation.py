"""Evaluation loop: deterministic actions on a separately seeded environment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from ddpg.envs import episode_seed
from ddpg.errors import NonFiniteError


@dataclass(frozen=True)
class EvalResult:
    returns: list[float]
    lengths: list[int]

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))

    def to_dict(self) -> dict[str, float | int | list[float] | list[int]]:
        return {
            "episodes": len(self.returns),
            "mean_return": self.mean,
            "std_return": self.std,
            "min_return": float(np.min(self.returns)),
            "max_return": float(np.max(self.returns)),
            "mean_length": float(np.mean(self.lengths)),
            "returns": self.returns,
            "lengths": self.lengths,
        }


def evaluate(
    act: Callable[[np.ndarray], np.ndarray],
    env: gym.Env,
    episodes: int,
    seed: int,
    stream: int,
) -> EvalResult:
    """Run `episodes` full episodes with `act` (no exploration); episode i starts from the reset
    seed (seed, stream, i), so two evaluations of the same policy see the same start states."""
    returns: list[float] = []
    lengths: list[int] = []
    for i in range(episodes):
        obs, _ = env.reset(seed=episode_seed(seed, stream, i))
        total, length, done = 0.0, 0, False
        while not done:
            if not np.isfinite(np.asarray(obs, dtype=np.float32)).all():
                raise NonFiniteError(f"evaluation episode {i} gave a non-finite observation")
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            total += float(reward)
            length += 1
            done = terminated or truncated
        if not np.isfinite(total):
            raise NonFiniteError(f"evaluation episode {i} returned a non-finite return ({total})")
        returns.append(total)
        lengths.append(length)
    return EvalResult(returns, lengths)
