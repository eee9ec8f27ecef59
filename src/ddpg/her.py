"""Hindsight Experience Replay (Andrychowicz et al., 2017): goals relabelled at sampling time.

The buffer stores each transition once, as the environment gave it (observation with its desired
goal, next observation with its achieved goal), in a `ReplayBuffer` laid out as rows of
`num_envs` columns: the loop adds one row per vector step, so the episode an environment plays
fills consecutive rows of its column. Each stored transition knows the row its episode starts at
and the episode's length, written when the episode ends (by termination or by a time limit: a
cut episode is complete for relabelling). Only transitions of finished episodes are sampled.

A sampled transition keeps its goal with probability 1/(k+1); otherwise its desired goal (in the
observation and the next observation) is replaced by the achieved goal of another transition of
the same episode: `future`, one at or after it; `final`, the last; `episode`, any. The reward is
recomputed for all relabelled transitions in one call of the env's `compute_reward`, and
`terminated` with its `compute_terminated` where the env has one. Bootstrapping follows the
library's rule: only termination stops it.

When the buffer wraps around, the first overwrite of an old episode drops the whole episode, so
a goal is never drawn from a transition that is gone. All random draws use the buffer's one
torch generator, so a checkpoint of `state_dict()` gives back the very same future batches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ddpg.buffer import Batch, ReplayBuffer
from ddpg.config import HER_STRATEGIES

RewardFn = Callable[[np.ndarray, np.ndarray, Any], Any]


class HerReplayBuffer:
    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        act_dim: int,
        num_envs: int,
        goals: tuple[slice, slice],
        compute_reward: RewardFn,
        compute_terminated: RewardFn | None,
        strategy: str = "future",
        k: int = 4,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        if strategy not in HER_STRATEGIES:
            raise ValueError(f"unknown HER strategy '{strategy}'")
        self.num_envs = num_envs
        self.rows = capacity // num_envs
        if self.rows < 1:
            raise ValueError(f"capacity {capacity} holds no row of {num_envs} environments")
        # Storage on the host: relabelling and compute_reward work on NumPy arrays.
        self.transitions = ReplayBuffer(self.rows * num_envs, obs_dim, act_dim, seed, "cpu")
        self.device = torch.device(device)
        self.desired, self.achieved = goals
        self.compute_reward = compute_reward
        self.compute_terminated = compute_terminated
        self.strategy = strategy
        self.relabel_share = k / (k + 1)
        shape = (self.rows, num_envs)
        self.episode_start = np.zeros(shape, dtype=np.int64)
        """Row at which each stored transition's episode starts."""
        self.episode_length = np.zeros(shape, dtype=np.int64)
        """Length in rows of each stored transition's episode (0: unfinished, or dropped)."""
        self.open_start = np.zeros(num_envs, dtype=np.int64)
        """Row at which each environment's unfinished episode starts."""
        self.open_length = np.zeros(num_envs, dtype=np.int64)
        """Transitions stored of each environment's unfinished episode."""
        self._sampleable = 0  # np.count_nonzero(episode_length), kept as episodes come and go

    def __len__(self) -> int:
        """Transitions that can be sampled: those of finished episodes still stored."""
        return self._sampleable

    @property
    def nbytes(self) -> int:
        return self.transitions.nbytes + self.episode_start.nbytes + self.episode_length.nbytes

    # -- storing -----------------------------------------------------------------------------------
    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
    ) -> None:
        """Store one vector step: one transition per environment, (num_envs, ...) each."""
        if np.shape(obs)[0] != self.num_envs or np.ndim(obs) != 2:
            raise ValueError(f"HER stores one row of {self.num_envs} transitions at a time")
        row = self.transitions.pos // self.num_envs
        for env in range(self.num_envs):
            if self.episode_length[row, env]:  # overwriting an old episode: drop all of it
                self._mark(env, self.episode_start[row, env], self.episode_length[row, env], 0)
            if self.open_length[env] == 0:
                self.open_start[env] = row
            elif self.open_length[env] == self.rows:  # an episode longer than the buffer
                self.open_start[env] = (self.open_start[env] + 1) % self.rows
                self.open_length[env] -= 1
            self.open_length[env] += 1
        self.transitions.add(obs, action, reward, next_obs, terminated)

    def end_episode(self, env: int) -> None:
        """Environment `env`'s episode ended (terminated or cut): its transitions can be
        sampled and relabelled from now on."""
        start, length = self.open_start[env], self.open_length[env]
        if length:
            self._mark(env, start, length, length)
        self.open_length[env] = 0

    def _mark(self, env: int, start: int, length: int, value: int) -> None:
        """Give the `length` rows of `env` from `start` on the episode length `value`
        (0: not sampleable)."""
        rows = (start + np.arange(length)) % self.rows
        self._sampleable += int(np.count_nonzero(value)) * length
        self._sampleable -= int(np.count_nonzero(self.episode_length[rows, env]))
        self.episode_start[rows, env] = start
        self.episode_length[rows, env] = value

    # -- sampling ----------------------------------------------------------------------------------
    def sample(self, batch_size: int) -> Batch:
        """`batch_size` transitions of finished episodes, uniformly, with goals relabelled."""
        if len(self) == 0:
            raise ValueError("cannot sample: no finished episode is stored")
        idx = self.sample_indices(batch_size)
        return self.relabelled(idx, *self.draw_goals(idx))

    def sample_indices(self, batch_size: int) -> np.ndarray:
        """Uniform flat indices of sampleable transitions (rejection sampling: the unfinished
        episodes, the only gaps, are a small part of the buffer)."""
        lengths, size = self.episode_length.reshape(-1), self.transitions.size
        chosen = np.zeros(0, dtype=np.int64)
        while len(chosen) < batch_size:
            draw = self._randint(size, batch_size)
            chosen = np.concatenate([chosen, draw[lengths[draw] > 0]])
        return chosen[:batch_size]

    def draw_goals(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which transitions of `idx` are relabelled, and the flat index of the transition
        whose achieved goal each would take."""
        row, env = np.divmod(idx, self.num_envs)
        start, length = self.episode_start[row, env], self.episode_length[row, env]
        offset = (row - start) % self.rows  # position within the episode
        u = self._uniform(len(idx))
        relabel = self._uniform(len(idx)) < self.relabel_share
        if self.strategy == "future":  # at or after the transition
            pick = offset + np.floor(u * (length - offset)).astype(np.int64)
        elif self.strategy == "final":
            pick = length - 1
        else:  # episode
            pick = np.floor(u * length).astype(np.int64)
        pick = np.minimum(pick, length - 1)
        goal_row = (start + pick) % self.rows
        return relabel, goal_row * self.num_envs + env

    def relabelled(self, idx: np.ndarray, relabel: np.ndarray, goal_idx: np.ndarray) -> Batch:
        """The transitions at `idx`, those in `relabel` with the achieved goal (of the next
        observation) of the transition at `goal_idx` as their desired goal."""
        host = self.transitions.host
        obs, next_obs = host["obs"][idx], host["next_obs"][idx]
        reward, terminated = host["reward"][idx], host["terminated"][idx]
        chosen = np.flatnonzero(relabel)
        if len(chosen):
            goal = host["next_obs"][goal_idx[chosen], self.achieved]
            obs[chosen, self.desired] = goal
            next_obs[chosen, self.desired] = goal
            achieved = next_obs[chosen, self.achieved]
            infos = np.array([{} for _ in chosen], dtype=object)
            reward[chosen] = self._per_row(self.compute_reward(achieved, goal, infos), chosen)
            if self.compute_terminated is not None:
                done = self.compute_terminated(achieved, goal, infos)
                terminated[chosen] = self._per_row(done, chosen)
        fields = (obs, host["action"][idx], reward, next_obs, terminated)
        return Batch(*(torch.as_tensor(f, device=self.device) for f in fields))

    @staticmethod
    def _per_row(values: Any, rows: np.ndarray) -> np.ndarray:
        """One float per relabelled row (an env's `compute_terminated` may give one bool)."""
        return np.broadcast_to(np.asarray(values, dtype=np.float32), rows.shape)

    def _randint(self, high: int, n: int) -> np.ndarray:
        return torch.randint(0, high, (n,), generator=self.transitions.generator).numpy()

    def _uniform(self, n: int) -> np.ndarray:
        return torch.rand(n, generator=self.transitions.generator, dtype=torch.float64).numpy()

    # -- persistence -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """The transitions (with the sampler), the episode bounds and the open episodes."""
        rows = self.transitions.size // self.num_envs
        return self.transitions.state_dict() | {
            "episode_start": self.episode_start[:rows].copy(),
            "episode_length": self.episode_length[:rows].copy(),
            "open_start": self.open_start.copy(),
            "open_length": self.open_length.copy(),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.transitions.load_state_dict(state)
        rows = self.transitions.size // self.num_envs
        for name in ("episode_start", "episode_length", "open_start", "open_length"):
            array = np.asarray(state[name], dtype=np.int64)
            target = getattr(self, name)
            expected = (rows, self.num_envs) if target.ndim == 2 else (self.num_envs,)
            if array.shape != expected:
                raise ValueError(f"HER field '{name}' has shape {array.shape}")
            if array.min(initial=0) < 0 or array.max(initial=0) > self.rows:
                raise ValueError(f"HER field '{name}' holds values outside the buffer")
            target[...] = 0
            target[: len(array)] = array
        self._sampleable = int(np.count_nonzero(self.episode_length))
