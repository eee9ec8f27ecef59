"""Shared fixtures and helpers for the unit tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ddpg.agent import DDPGAgent
from ddpg.config import Config
from ddpg.envs import EnvInfo

# Asymmetric, per-dimension action bounds used throughout the tests.
LOW = np.array([-1.0, 0.0, -5.0], dtype=np.float32)
HIGH = np.array([3.0, 2.0, -1.0], dtype=np.float32)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests run on busy machines: one intra-op thread keeps them fast and deterministic."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_config(**overrides) -> Config:
    """A config small enough for unit tests (no learning budget of note)."""
    values = dict(
        total_steps=100,
        hidden_size=16,
        batch_norm=True,
        batch_size=8,
        buffer_size=64,
        learning_starts=8,
        checkpoint_every=0,
        eval_episodes=1,
        eval_episodes_during=1,
        torch_threads=1,
    )
    values.update(overrides)
    return Config(**values)


def make_agent(obs_dim: int = 4, low=LOW, high=HIGH, **overrides) -> DDPGAgent:
    info = EnvInfo(
        obs_dim=obs_dim,
        action_low=np.asarray(low, dtype=np.float32),
        action_high=np.asarray(high, dtype=np.float32),
    )
    return DDPGAgent(info, tiny_config(**overrides))
