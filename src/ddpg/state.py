"""`TrainState`: every counter of a run and the episodes in progress, in one place.

A checkpoint saves a `TrainState` whole and a resume restores it whole: `to_files` and
`from_files` walk the dataclass fields, so adding a counter is a one-line change here. What
else a checkpoint holds (weights, optimiser moments, replay buffer, random generators) belongs to
the objects that own it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from ddpg.envs import TRAIN_STREAM, episode_seed

# Running average of training returns over this many episodes.
RECENT_EPISODES = 100


@dataclass
class TrainState:
    """Counters, scores and the episode in progress in each of `num_envs` environments."""

    step: int = 0
    """Env steps taken, over all environments."""
    episode: int = 0
    """Training episodes finished."""
    episodes_started: int = 0
    """Training episodes started; episode k resets with the seed (seed, TRAIN_STREAM, k)."""
    learning_transitions: int = 0
    """Transitions stored since learning started: they earn updates at updates_per_step."""
    updates: int = 0
    """Gradient updates made."""
    recent_returns: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_EPISODES))
    """Returns of the latest training episodes."""
    best_score: float = -math.inf
    """Score of the best policy so far (evaluation return, or running average)."""
    best_step: int | None = None
    """Env step at which the best policy was kept."""
    target_reached: bool = False
    """A periodic evaluation reached config.target_return: training stops."""
    elapsed_s: float = 0.0
    """Wall-clock seconds of training in the earlier sessions of a resumed run (a checkpoint
    records the total up to itself)."""
    loss_sums: dict[str, Any] = field(default_factory=dict)
    """Sums of the update metrics since the last episode ended (tensors: no host sync)."""
    # -- the episode in progress in each environment (arrays of length num_envs) -----------------
    in_episode: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=bool))
    """Whether each environment is inside an episode."""
    obs: np.ndarray = field(default_factory=lambda: np.zeros((1, 0), dtype=np.float32))
    """Each environment's current observation, as stored in the replay buffer."""
    episode_ids: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    """The number of the episode each environment is playing."""
    episode_returns: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.float64))
    """Return so far of each environment's episode."""
    episode_actions: list[list[np.ndarray]] = field(default_factory=lambda: [[]])
    """Env-unit actions taken so far in each environment's episode (replayed on resume)."""

    @classmethod
    def new(cls, num_envs: int, obs_dim: int) -> TrainState:
        return cls(
            in_episode=np.zeros(num_envs, dtype=bool),
            obs=np.zeros((num_envs, obs_dim), dtype=np.float32),
            episode_ids=np.zeros(num_envs, dtype=np.int64),
            episode_returns=np.zeros(num_envs, dtype=np.float64),
            episode_actions=[[] for _ in range(num_envs)],
        )

    @property
    def running_return(self) -> float | None:
        return float(np.mean(self.recent_returns)) if self.recent_returns else None

    # -- the counting the loop does --------------------------------------------------------------
    def record_step(self, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray) -> None:
        """One step of every environment: `actions` in env units, one row per environment."""
        self.step += len(actions)
        self.episode_returns += rewards
        for taken, action in zip(self.episode_actions, actions, strict=True):
            taken.append(action)
        self.obs = next_obs

    def earn_updates(self, transitions: int, ratio: float) -> int:
        """Updates earned by `transitions` more learning transitions: after t of them the learner
        has made floor(t * ratio) updates (the epsilon keeps ratios such as 0.1 from losing one
        to rounding: 10 * 0.1 < 1)."""
        before = math.floor(self.learning_transitions * ratio + 1e-9)
        self.learning_transitions += transitions
        return math.floor(self.learning_transitions * ratio + 1e-9) - before

    def add_update(self, metrics: Any) -> None:
        """Count an update and add its metrics (tensors: the hot loop never waits on them)."""
        self.updates += 1
        sums = self.loss_sums
        sums["updates"] = sums.get("updates", 0) + 1
        for key, value in zip(metrics._fields, metrics, strict=True):
            sums[key] = value + sums.get(key, 0.0)

    def start_episodes(self, mask: np.ndarray, seed: int) -> list[int | None]:
        """Number the episodes the environments in `mask` start; return their reset seeds
        (None for the other environments)."""
        seeds: list[int | None] = [None] * len(mask)
        for i in np.flatnonzero(mask):
            self.episode_ids[i] = self.episodes_started
            seeds[i] = episode_seed(seed, TRAIN_STREAM, self.episodes_started)
            self.episodes_started += 1
            self.episode_returns[i] = 0.0
            self.episode_actions[i] = []
        self.in_episode[mask] = True
        return seeds

    def end_episode(self, i: int) -> tuple[float, int]:
        """Environment `i`'s episode ended: count it; return its return and length."""
        self.episode += 1
        self.recent_returns.append(float(self.episode_returns[i]))
        length = len(self.episode_actions[i])
        self.in_episode[i] = False
        self.episode_actions[i] = []
        return self.recent_returns[-1], length

    # -- checkpoint files: JSON values plus NumPy arrays ------------------------------------------
    def to_files(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON values, and the arrays of the episodes in progress (kept bit for bit)."""
        values: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ARRAY_FIELDS:
                continue
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, deque):
                value = list(value)
            elif isinstance(value, dict):
                value = {k: float(v) for k, v in value.items()}
            elif isinstance(value, float) and not math.isfinite(value):
                value = None  # JSON has no infinity: -inf (no best yet) is null
            values[f.name] = value
        values["episode_lengths"] = [len(actions) for actions in self.episode_actions]
        flat = [a for actions in self.episode_actions for a in actions]
        arrays = {
            "episode_obs": self.obs,
            "episode_actions": np.stack(flat).astype(np.float32)
            if flat
            else np.zeros((0, 0), dtype=np.float32),
        }
        return values, arrays

    @classmethod
    def from_files(
        cls,
        values: dict[str, Any],
        arrays: dict[str, np.ndarray],
        num_envs: int,
        obs_dim: int,
        act_dim: int,
    ) -> TrainState:
        """The state `to_files` wrote; ValueError, KeyError or TypeError if it does not fit."""
        s = cls.new(num_envs, obs_dim)
        for f in fields(s):
            if f.name in ARRAY_FIELDS:
                continue
            old, value = getattr(s, f.name), values[f.name]
            if isinstance(old, np.ndarray):
                value = np.asarray(value, dtype=old.dtype)
                if value.shape != old.shape:
                    raise ValueError(f"{f.name} has shape {value.shape}, expected {old.shape}")
            elif isinstance(old, deque):
                value = deque((float(x) for x in value), maxlen=old.maxlen)
            elif isinstance(old, dict):
                value = {str(k): float(v) for k, v in value.items()}
            elif f.name == "best_score":
                value = -math.inf if value is None else float(value)
            elif not _fits(value, f.type):
                raise TypeError(f"{f.name} is {value!r}")
            setattr(s, f.name, value)
        # Checkpoints of earlier versions had no episode arrays when no episode was in progress.
        obs = arrays.get("episode_obs", s.obs)  # copied: the loop writes into it on resets
        s.obs = np.array(obs, dtype=np.float32).reshape(num_envs, obs_dim)
        lengths = [int(n) for n in values["episode_lengths"]]
        actions = arrays.get("episode_actions", np.zeros((0, act_dim), dtype=np.float32))
        actions = np.asarray(actions, dtype=np.float32).reshape(-1, act_dim)
        if len(lengths) != num_envs or min(lengths) < 0 or len(actions) != sum(lengths):
            raise ValueError(f"episode actions of shape {actions.shape} do not fit {lengths}")
        s.episode_actions = [list(a) for a in np.split(actions, np.cumsum(lengths)[:-1])]
        return s


# Fields saved as arrays (episode_obs.npy, episode_actions.npy) rather than in state.json.
ARRAY_FIELDS = ("obs", "episode_actions")


def _fits(value: Any, annotation: str) -> bool:
    """Whether a JSON value fits a scalar field's annotation ('int', 'bool', 'int | None'...)."""
    kinds = {"int": int, "float": (int, float), "bool": bool, "None": type(None)}
    allowed = [kinds[name.strip()] for name in annotation.split("|")]
    if isinstance(value, bool) and bool not in allowed:
        return False
    return any(isinstance(value, kind) for kind in allowed)
