"""Exploration noise in the normalised action space [-1, 1].

The scale is relative to the action range: std 0.1 perturbs an action by 10% of its half range,
whatever the environment's units. Each process owns a NumPy generator whose state is plain JSON,
so a checkpoint restores the exact noise sequence.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class GaussianNoise:
    """Independent N(0, std^2) noise every step."""

    def __init__(self, act_dim: int, std: float, seed: int) -> None:
        self.act_dim = act_dim
        self.std = std
        self.rng = np.random.Generator(np.random.PCG64(seed))

    def sample(self) -> np.ndarray:
        return (self.std * self.rng.standard_normal(self.act_dim)).astype(np.float32)

    def reset(self) -> None:
        """Called at each episode start; Gaussian noise has no memory to clear."""

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


class OrnsteinUhlenbeckNoise(GaussianNoise):
    """Temporally correlated noise: x <- x + theta * (0 - x) + std * N(0, 1), reset each episode."""

    def __init__(self, act_dim: int, std: float, seed: int, theta: float = 0.15) -> None:
        super().__init__(act_dim, std, seed)
        self.theta = theta
        self.x = np.zeros(act_dim, dtype=np.float64)

    def sample(self) -> np.ndarray:
        self.x = self.x - self.theta * self.x + self.std * self.rng.standard_normal(self.act_dim)
        return self.x.astype(np.float32)

    def reset(self) -> None:
        self.x = np.zeros(self.act_dim, dtype=np.float64)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "x": self.x.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.x = np.asarray(state["x"], dtype=np.float64)


def make_noise(kind: str, act_dim: int, std: float, seed: int, theta: float) -> GaussianNoise:
    if kind == "ou":
        return OrnsteinUhlenbeckNoise(act_dim, std, seed, theta)
    return GaussianNoise(act_dim, std, seed)
