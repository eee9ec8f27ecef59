"""Exploration noise in the normalised action space [-1, 1].

The scale is relative to the action range: std 0.1 perturbs an action by 10% of its half range,
whatever the environment's units. There is one noise process per environment of a vectorised run
(rows of the sampled array). Each process owns a NumPy generator whose state is plain JSON, so a
checkpoint restores the exact noise sequence.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class GaussianNoise:
    """Independent N(0, std^2) noise every step."""

    def __init__(self, act_dim: int, std: float, seed: int, num_envs: int = 1) -> None:
        self.act_dim = act_dim
        self.num_envs = num_envs
        self.std = std
        self.rng = np.random.Generator(np.random.PCG64(seed))

    def sample(self) -> np.ndarray:
        """Noise for every environment, shape (num_envs, act_dim)."""
        return (self.std * self.rng.standard_normal((self.num_envs, self.act_dim))).astype(
            np.float32
        )

    def reset(self, env_index: int | None = None) -> None:
        """Called when an episode starts (in environment `env_index`, or in all of them);
        Gaussian noise has no memory to clear."""

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


class OrnsteinUhlenbeckNoise(GaussianNoise):
    """Temporally correlated noise: x <- x + theta * (0 - x) + std * N(0, 1), reset each episode."""

    def __init__(
        self, act_dim: int, std: float, seed: int, theta: float = 0.15, num_envs: int = 1
    ) -> None:
        super().__init__(act_dim, std, seed, num_envs)
        self.theta = theta
        self.x = np.zeros((num_envs, act_dim), dtype=np.float64)

    def sample(self) -> np.ndarray:
        step = self.std * self.rng.standard_normal((self.num_envs, self.act_dim))
        self.x = self.x - self.theta * self.x + step
        return self.x.astype(np.float32)

    def reset(self, env_index: int | None = None) -> None:
        if env_index is None:
            self.x[:] = 0.0
        else:
            self.x[env_index] = 0.0

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "x": self.x.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        x = np.asarray(state["x"], dtype=np.float64)
        if x.shape != self.x.shape:
            raise ValueError(f"OU noise state has shape {x.shape}, expected {self.x.shape}")
        self.rng.bit_generator.state = state["rng"]
        self.x = x


def make_noise(
    kind: str, act_dim: int, std: float, seed: int, theta: float, num_envs: int = 1
) -> GaussianNoise:
    if kind == "ou":
        return OrnsteinUhlenbeckNoise(act_dim, std, seed, theta, num_envs)
    return GaussianNoise(act_dim, std, seed, num_envs)
