"""Terminated vs truncated: only termination stops bootstrapping.

The learning tests use a tiny "clock" environment: reward 1 every step whatever the action, and an
observation that encodes the step within the current ten-step cycle. Cut by a 10-step TimeLimit
(truncated) the task is infinite-horizon and every state is worth 1 / (1 - gamma) = 10; if
instead the episode terminates at step 10, the start state is worth sum_{k<10} gamma^k = 6.51.
Treating truncation as termination (the original notebook's bug) would give 6.51 in both cases.
"""

from __future__ import annotations

import types

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import make_agent, make_config
from gymnasium.wrappers import TimeLimit

import ddpg.agent
from ddpg.api import DDPG
from ddpg.buffer import Batch
from ddpg.train import Trainer

GAMMA = 0.9
INFINITE_VALUE = 1 / (1 - GAMMA)  # 10
TEN_STEP_VALUE = sum(GAMMA**k for k in range(10))  # 6.5132


class ClockEnv(gym.Env):
    """Reward 1 per step; observation (t mod 10) / 10; terminates at `terminate_at` if given."""

    def __init__(self, terminate_at: int | None = None, render_mode: str | None = None) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.terminate_at = terminate_at
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action, dtype=np.float32))
        self.t += 1
        terminated = self.terminate_at is not None and self.t >= self.terminate_at
        return np.array([(self.t % 10) / 10], dtype=np.float32), 1.0, terminated, False, {}


# Learns the clock's values within 2,000 steps: 200 episodes of 10 steps.
CLOCK = dict(
    total_steps=2000,
    hidden_size=32,
    batch_norm=False,
    gamma=GAMMA,
    actor_lr=3e-3,
    critic_lr=3e-3,
    weight_decay=0.0,
    batch_size=64,
    buffer_size=10_000,
    tau=0.1,
    learning_starts=64,
)


def q_values(agent) -> np.ndarray:
    """Q(s_t, mu(s_t)) for the ten states of a cycle."""
    obs = torch.arange(10, dtype=torch.float32).reshape(10, 1) / 10
    with torch.no_grad():
        return agent.critic(obs, agent.actor(obs)).numpy()


def test_truncation_bootstraps_to_the_infinite_horizon_value():
    env = TimeLimit(ClockEnv(terminate_at=None), max_episode_steps=10)
    trainer = Trainer(make_config(CLOCK), env=env)
    trainer.run()
    assert trainer.state.step == 2000 and trainer.state.episode == 200
    # Every episode was truncated; nothing was stored as terminal.
    assert trainer.buffer.storage["terminated"][: len(trainer.buffer)].sum().item() == 0
    q = q_values(trainer.agent)
    assert abs(q[0] - INFINITE_VALUE) < 0.5, q  # not the truncated sum 6.51
    assert np.all(np.abs(q - INFINITE_VALUE) < 0.5), q


def test_termination_stops_bootstrapping():
    env = TimeLimit(ClockEnv(terminate_at=10), max_episode_steps=1000)
    model = DDPG(env, make_config(CLOCK))
    model.learn(2000)
    assert model.num_steps == 2000 and model.trainer.state.episode == 200
    terminated = model.trainer.buffer.storage["terminated"][:2000]
    assert terminated.sum().item() == 200  # one terminal transition per episode
    q = q_values(model.agent)
    assert abs(q[0] - TEN_STEP_VALUE) < 0.4, q
    assert abs(q[9] - 1.0) < 0.3, q  # the last step's value is its reward alone
    assert np.all(np.diff(q) < 0), q  # value falls as the end approaches


# -- the target itself ---------------------------------------------------------------------------
def constant_critic(critic: torch.nn.Module, value: float) -> None:
    """Make `critic` output `value` for every input."""
    with torch.no_grad():
        critic.net[-1].weight.zero_()
        critic.net[-1].bias.fill_(value)


@pytest.mark.parametrize(
    ("terminated", "expected_target"),
    [
        (0.0, 2.0 + 0.9 * 5.0),  # r + gamma * Q'(s', mu'(s'))
        (1.0, 2.0),  # r
    ],
)
def test_critic_target(monkeypatch, terminated, expected_target):
    agent = make_agent(obs_dim=2, gamma=0.9, batch_norm=False)
    constant_critic(agent.critic_target, 5.0)
    constant_critic(agent.critic, 1.0)
    captured = []

    def capture(input, target):
        captured.append(target.clone())
        return torch.nn.functional.mse_loss(input, target)

    monkeypatch.setattr(ddpg.agent, "F", types.SimpleNamespace(mse_loss=capture))
    batch = Batch(
        obs=torch.zeros(4, 2),
        action=torch.zeros(4, 3),
        reward=torch.full((4,), 2.0),
        next_obs=torch.randn(4, 2),
        terminated=torch.full((4,), terminated),
    )
    metrics = agent.update(batch)
    assert len(captured) == 1
    assert torch.equal(captured[0], torch.full((4,), expected_target))
    # The online critic predicted 1.0 everywhere, so the loss is (1 - target)^2.
    assert metrics.critic_loss.item() == pytest.approx((1.0 - expected_target) ** 2, rel=1e-6)
    assert metrics.q_mean.item() == pytest.approx(1.0)


def test_critic_target_mixed_batch_without_monkeypatching():
    agent = make_agent(obs_dim=2, gamma=0.5, batch_norm=False)
    constant_critic(agent.critic_target, 4.0)
    constant_critic(agent.critic, 0.0)
    batch = Batch(
        obs=torch.zeros(2, 2),
        action=torch.zeros(2, 3),
        reward=torch.tensor([1.0, 3.0]),
        next_obs=torch.zeros(2, 2),
        terminated=torch.tensor([0.0, 1.0]),
    )
    # targets: 1 + 0.5 * 4 = 3 (bootstrapped) and 3 (terminal): loss (9 + 9) / 2 = 9.
    assert agent.update(batch).critic_loss.item() == pytest.approx(9.0)
    batch = batch._replace(reward=torch.tensor([1.0, 1.0]))
    constant_critic(agent.critic, 0.0)
    constant_critic(agent.critic_target, 4.0)
    # targets 3 and 1: loss (9 + 1) / 2 = 5.
    assert agent.update(batch).critic_loss.item() == pytest.approx(5.0)
