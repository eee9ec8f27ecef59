"""Vectorised collection (num_envs > 1) and the update-to-data ratio (updates_per_step).

The counter environment makes every stored transition checkable: its observation is
(step within the episode, a tag of the reset seed), its episodes end after 3 to 7 steps depending
on that seed (terminated), or are cut at 6 steps by the time limit (truncated). So episodes of the
vectorised environments end at different times, which is what automatic resets get wrong.
"""

from __future__ import annotations

import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import make_config
from test_bootstrapping import CLOCK, INFINITE_VALUE, ClockEnv, q_values
from test_reproducibility import RESUME, check_exact_resume

from ddpg.envs import TRAIN_STREAM, episode_seed
from ddpg.errors import ConfigError
from ddpg.train import Trainer

TIME_LIMIT = 6


def episode_length(tag: int) -> int:
    """Steps until the counter env terminates: 3 to 7 (7 is never reached: the limit cuts at 6)."""
    return 3 + tag % 5


class CounterEnv(gym.Env):
    def __init__(self, render_mode: str | None = None) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.t = 0
        self.tag = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.tag = int(self.np_random.integers(0, 1000))
        return self._obs(), {}

    def _obs(self) -> np.ndarray:
        return np.array([self.t, self.tag], dtype=np.float32)

    def step(self, action):
        self.t += 1
        terminated = self.t >= episode_length(self.tag)
        return self._obs(), 1.0, terminated, False, {}


for _id, _entry, _steps in (
    ("ddpgtest/Counter-v0", CounterEnv, TIME_LIMIT),
    ("ddpgtest/Clock-v0", ClockEnv, 10),
):
    if _id not in gym.registry:
        gym.register(id=_id, entry_point=_entry, max_episode_steps=_steps)


# 3 counter environments, 300 steps (100 vector steps), learning from step 60.
COUNTER = dict(
    env_id="ddpgtest/Counter-v0",
    num_envs=3,
    total_steps=300,
    learning_starts=60,
    hidden_size=8,
    batch_norm=False,
    batch_size=16,
    buffer_size=1000,
    eval_episodes=1,
)


def test_vectorised_transitions_are_stored_with_their_true_final_observations():
    trainer = Trainer(make_config(COUNTER))
    trainer.run()
    n, size = 3, len(trainer.buffer)
    assert trainer.state.step == size == 300  # 100 vector steps of 3 transitions
    data = {k: v[:size].numpy() for k, v in trainer.buffer.storage.items()}
    tags_of_seeds = []
    for k in range(trainer.state.episodes_started):
        env = CounterEnv()
        env.reset(seed=episode_seed(0, TRAIN_STREAM, k))
        tags_of_seeds.append(env.tag)
    seen_tags, ends, terminals = [], 0, 0
    for i in range(n):  # transitions of environment i sit at i, i + n, i + 2n, ...
        obs, next_obs = data["obs"][i::n], data["next_obs"][i::n]
        terminated = data["terminated"][i::n]
        for k in range(len(obs)):
            t, tag = next_obs[k]
            assert t == obs[k][0] + 1 and tag == obs[k][1]
            if obs[k][0] == 0:
                seen_tags.append(int(tag))
            length = episode_length(int(tag))
            # Only a real end of the task is terminal; the time limit's cut is not.
            assert terminated[k] == (t == length and length <= TIME_LIMIT)
            ended = t == min(length, TIME_LIMIT)
            terminals += int(terminated[k])
            if k + 1 < len(obs):
                if ended:  # the next transition starts a fresh episode of that environment
                    ends += 1
                    assert obs[k + 1][0] == 0
                else:  # the episode goes on from the true next observation
                    np.testing.assert_array_equal(obs[k + 1], next_obs[k])
    assert ends > 50 and 0 < terminals < trainer.state.episode
    # Episodes are seeded in the order they start, whichever environment runs them.
    assert sorted(seen_tags) == sorted(tags_of_seeds)
    assert trainer.state.episode == trainer.state.episodes_started - int(
        trainer.state.in_episode.sum()
    )


def test_vectorised_time_limit_still_bootstraps():
    """The infinite-horizon test again, with 4 environments stepped together."""
    trainer = Trainer(make_config(CLOCK, env_id="ddpgtest/Clock-v0", num_envs=4, total_steps=2000))
    trainer.run()
    assert trainer.state.step == 2000 and trainer.state.episode == 200
    assert trainer.buffer.storage["terminated"][:2000].sum().item() == 0
    q = q_values(trainer.agent)
    assert np.all(np.abs(q - INFINITE_VALUE) < 0.5), q


def test_same_seed_same_vectorised_run():
    a, b = Trainer(make_config(COUNTER)), Trainer(make_config(COUNTER))
    a.run()
    b.run()
    for key, value in a.buffer.storage.items():
        assert value.equal(b.buffer.storage[key]), key
    for key, value in a.agent.actor.state_dict().items():
        assert value.equal(b.agent.actor.state_dict()[key]), key
    c = Trainer(make_config(COUNTER, seed=1))
    c.run()
    assert not a.buffer.storage["obs"].equal(c.buffer.storage["obs"])


@pytest.mark.parametrize("noise", ["gaussian", "ou"])
def test_vectorised_resume_mid_episodes_is_bit_identical(tmp_path: Path, noise: str) -> None:
    config = make_config(
        RESUME,
        env_id="ddpgtest/Counter-v0",
        num_envs=3,
        total_steps=600,
        learning_starts=90,
        noise=noise,
    )
    # At step 150 and 451 (rounded up to 453) some environments are mid-episode.
    whole, resumed = check_exact_resume(tmp_path, config, [150, 451], [True, True])
    assert whole.state.episodes_started == resumed.state.episodes_started


def test_vectorised_pendulum_resume_is_bit_identical(tmp_path: Path) -> None:
    config = make_config(RESUME, num_envs=2, total_steps=900, learning_starts=200)
    check_exact_resume(tmp_path, config, [300, 651], [True, True])


@pytest.mark.parametrize(
    ("ratio", "num_envs", "transitions", "updates"),
    [
        # 300 steps, the first update after step 60 (the 60th transition earns one already).
        (1.0, 1, 241, 241),  # one update per transition
        (0.25, 1, 241, 60),  # one update every 4 transitions
        (0.1, 1, 241, 24),  # 0.1 is inexact in binary; no update may be lost to rounding
        (2.0, 1, 241, 482),
        (0.5, 3, 243, 121),  # vector steps of 3 transitions: learning from step 60 (3 x 20)
        (1.0, 4, 244, 244),  # vector steps of 4: step 60 is the first at or past 60
    ],
)
def test_update_to_data_ratio(ratio: float, num_envs: int, transitions: int, updates: int):
    trainer = Trainer(
        make_config(COUNTER, updates_per_step=ratio, num_envs=num_envs, total_steps=300)
    )
    trainer.run()
    assert trainer.state.step == 300
    assert trainer.state.learning_transitions == transitions
    assert trainer.state.updates == updates == math.floor(transitions * ratio + 1e-9)


def test_update_to_data_ratio_spreads_updates_evenly():
    trainer = Trainer(make_config(COUNTER, updates_per_step=0.25, num_envs=1, total_steps=80))
    counts = []
    while trainer.state.step < 80:
        trainer.run(max_steps=trainer.state.step + 1)
        counts.append(trainer.state.updates)
    # Learning transitions are steps 60, 61, ...: an update after every 4th of them.
    assert counts == [max(0, step - 59) // 4 for step in range(1, 81)]


def test_environment_object_needs_num_envs_1():
    with pytest.raises(ConfigError, match="num_envs > 1 needs an environment id"):
        Trainer(make_config(COUNTER, num_envs=2), env=CounterEnv())
