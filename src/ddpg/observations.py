"""Observations as the networks see them: one flat float vector per step.

A `Box` observation is used as it is. A `Dict` of flat `Box`es (the goal-conditioned tasks of
gymnasium-robotics: `observation`, `desired_goal`, `achieved_goal`) is concatenated in one fixed
order: `observation`, `desired_goal`, `achieved_goal` where present, then the other keys sorted.
`ObsLayout` is that order with each part's size; the training loop, `Policy`, HER relabelling
and the exported models all go through it, and model files record it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from ddpg.errors import EnvError

# The keys of a goal-conditioned observation, in the order they are concatenated.
LEADING_KEYS = ("observation", "desired_goal", "achieved_goal")


@dataclass(frozen=True)
class ObsLayout:
    """The parts of an observation in concatenation order (no keys: a flat Box)."""

    keys: tuple[str, ...]
    sizes: tuple[int, ...]

    @classmethod
    def flat(cls, dim: int) -> ObsLayout:
        return cls((), (dim,))

    @classmethod
    def of(cls, space: gym.Space, name: str) -> ObsLayout:
        """The layout of an observation space; EnvError naming the part DDPG cannot take."""
        if isinstance(space, gym.spaces.Box):
            if space.shape is None or len(space.shape) != 1:
                raise EnvError(
                    f"environment '{name}' has observations of shape {space.shape}; only flat "
                    "vector observations are supported (no images)"
                )
            return cls.flat(int(space.shape[0]))
        if not isinstance(space, gym.spaces.Dict):
            raise EnvError(
                f"environment '{name}' has a {type(space).__name__} observation space; only flat "
                "Box observations or a Dict of them are supported"
            )
        if not space.spaces:
            raise EnvError(f"environment '{name}' has an empty Dict observation space")
        keys = [k for k in LEADING_KEYS if k in space.spaces]
        keys += sorted(k for k in space.spaces if k not in LEADING_KEYS)
        sizes = []
        for key in keys:
            part = space.spaces[key]
            if not isinstance(part, gym.spaces.Box):
                raise EnvError(
                    f"environment '{name}' has a {type(part).__name__} observation part '{key}'; "
                    "only Dicts of flat Box parts are supported"
                )
            if part.shape is None or len(part.shape) != 1 or part.shape[0] < 1:
                raise EnvError(
                    f"environment '{name}' has an observation part '{key}' of shape "
                    f"{part.shape}; only flat vector parts are supported (no images)"
                )
            sizes.append(int(part.shape[0]))
        return cls(tuple(str(k) for k in keys), tuple(sizes))

    @property
    def dim(self) -> int:
        return sum(self.sizes)

    @property
    def is_dict(self) -> bool:
        return bool(self.keys)

    def part(self, key: str) -> slice:
        """Where part `key` lies in the flat vector."""
        start = sum(self.sizes[: self.keys.index(key)])
        return slice(start, start + self.sizes[self.keys.index(key)])

    @property
    def goals(self) -> tuple[slice, slice] | None:
        """Where the desired and the achieved goal lie (None unless both exist, same size)."""
        if not {"desired_goal", "achieved_goal"} <= set(self.keys):
            return None
        desired, achieved = self.part("desired_goal"), self.part("achieved_goal")
        if desired.stop - desired.start != achieved.stop - achieved.start:
            return None
        return desired, achieved

    def flatten(self, obs: Any) -> Any:
        """A dict observation (each part of shape (size,), or (N, size) for a batch), or a
        list of such dicts, as one array (dim,) or (N, dim) in the layout's order; anything
        else (an observation flattened already) is returned as it is. ValueError naming a
        missing, unknown or misshapen part."""
        if not self.is_dict:
            return obs
        if isinstance(obs, Sequence) and obs and all(isinstance(o, Mapping) for o in obs):
            rows = [self.flatten(o) for o in obs]
            if any(np.ndim(r) != 1 for r in rows):
                raise ValueError("a list of dict observations must hold single observations")
            return np.stack(rows)
        if not isinstance(obs, Mapping):
            return obs
        missing = [k for k in self.keys if k not in obs]
        unknown = sorted(str(k) for k in obs if k not in self.keys)
        if missing or unknown:
            what = f"lacks '{missing[0]}'" if missing else f"has an unknown key '{unknown[0]}'"
            raise ValueError(f"observation {what}; expected keys {', '.join(self.keys)}")
        parts = []
        for key, size in zip(self.keys, self.sizes, strict=True):
            try:
                value = np.asarray(obs[key])
            except ValueError:  # ragged nested sequences
                value = np.asarray(None)
            if value.dtype.kind not in "biuf":
                raise ValueError(f"observation part '{key}' must be numbers")
            if value.ndim not in (1, 2) or value.shape[-1] != size:
                raise ValueError(
                    f"observation part '{key}' must have shape ({size},) or (N, {size}), got "
                    f"{value.shape}"
                )
            parts.append(value)
        if len({p.shape[:-1] for p in parts}) != 1:
            shapes = ", ".join(f"{k} {p.shape}" for k, p in zip(self.keys, parts, strict=True))
            raise ValueError(f"observation parts disagree in batch size ({shapes})")
        return np.concatenate(parts, axis=-1)

    def to_meta(self) -> dict[str, Any]:
        return {"obs_keys": list(self.keys), "obs_sizes": list(self.sizes)}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], obs_dim: int) -> ObsLayout:
        """The layout a model file records (files without one hold flat observations);
        ValueError if it does not add up to `obs_dim`."""
        keys, sizes = meta.get("obs_keys") or [], meta.get("obs_sizes") or [obs_dim]
        if not isinstance(keys, list) or not isinstance(sizes, list):
            raise ValueError("obs_keys and obs_sizes must be lists")
        layout = cls(tuple(str(k) for k in keys), tuple(int(s) for s in sizes))
        if (keys and len(keys) != len(sizes)) or layout.dim != obs_dim or min(sizes) < 1:
            raise ValueError(f"observation layout {keys} {sizes} does not fit obs_dim {obs_dim}")
        return layout


class FlatObservation(gym.ObservationWrapper):
    """A Dict-observation environment seen through its `ObsLayout`: flat Box observations.
    Everything else (rewards, `info["is_success"]`, `compute_reward`) passes through."""

    def __init__(self, env: gym.Env, layout: ObsLayout) -> None:
        super().__init__(env)
        self.layout = layout
        parts = [env.observation_space[k] for k in layout.keys]  # type: ignore[index]
        self.observation_space = gym.spaces.Box(
            low=np.concatenate([p.low for p in parts]),
            high=np.concatenate([p.high for p in parts]),
            dtype=np.result_type(*(p.dtype for p in parts)),
        )

    def observation(self, observation: Any) -> np.ndarray:
        return self.layout.flatten(observation)


def layout_of(env: gym.Env, name: str) -> ObsLayout:
    """The layout of `env`'s observations (the original one, for an env already flattened)."""
    if isinstance(env, FlatObservation):
        return env.layout
    return ObsLayout.of(env.observation_space, name)


def as_flat(env: gym.Env, name: str) -> gym.Env:
    """`env` with flat observations: a Dict-observation env wrapped, any other as it is."""
    layout = layout_of(env, name)
    if not layout.is_dict or isinstance(env, FlatObservation):
        return env
    return FlatObservation(env, layout)
