"""Evaluation loop: deterministic actions on a separately seeded environment."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from ddpg.envs import episode_seed
from ddpg.errors import NonFiniteError


@dataclass(frozen=True)
class EvalResult:
    returns: list[float]
    lengths: list[int]
    successes: list[float] | None = None
    """`info["is_success"]` at each episode's last step (None: the env does not report it)."""

    @property
    def success_rate(self) -> float | None:
        return float(np.mean(self.successes)) if self.successes is not None else None

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))

    def to_dict(self) -> dict[str, float | int | list[float] | list[int] | None]:
        success = {} if self.successes is None else {"success_rate": self.success_rate}
        return success | {
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
    successes: list[float] = []
    for i in range(episodes):
        obs, info = env.reset(seed=episode_seed(seed, stream, i))
        total, length, done = 0.0, 0, False
        while not done:
            if not _finite(obs):
                raise NonFiniteError(f"evaluation episode {i} gave a non-finite observation")
            obs, reward, terminated, truncated, info = env.step(act(obs))
            total += float(reward)
            length += 1
            done = terminated or truncated
        if not np.isfinite(total):
            raise NonFiniteError(f"evaluation episode {i} returned a non-finite return ({total})")
        returns.append(total)
        lengths.append(length)
        if "is_success" in info:
            successes.append(float(info["is_success"]))
    # The success rate counts only where every episode reported one.
    return EvalResult(returns, lengths, successes if len(successes) == episodes else None)


def _finite(obs: Any) -> bool:
    """Whether an observation (an array, or a dict of arrays) holds only finite values."""
    parts = obs.values() if isinstance(obs, Mapping) else [obs]
    return all(np.isfinite(np.asarray(part, dtype=np.float32)).all() for part in parts)
