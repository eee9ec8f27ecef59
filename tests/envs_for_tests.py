"""Tiny custom Gymnasium environments for the robustness tests.

Importing this module registers them under the `ddpgtest/` namespace, so that `gym.make` (and
therefore `ddpg.envs.make_env`, the Trainer and the in-process CLI) can build them by id.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

EPISODE_STEPS = 50


class FlakyEnv(gym.Env):
    """A 3-dim point that drifts with a 1-dim action; it can be told to misbehave.

    nan_obs_at / nan_reward_at: the env step (counted over the instance's whole life, across
    episodes, starting at 1) whose observation / reward is NaN.
    nan_on_reset: the reset (counted from 1) that returns a NaN observation.
    reward_scale: multiplies every reward (1e38 makes the critic loss overflow float32; 1e40
        gives rewards that are finite as Python floats but overflow float32).
    obs_scale: multiplies the observations of step(), returned as float64 (1e40: finite in
        float64, infinite in float32).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        nan_obs_at: int | None = None,
        nan_reward_at: int | None = None,
        nan_on_reset: int | None = None,
        reward_scale: float = 1.0,
        obs_scale: float = 1.0,
        render_mode: str | None = None,
    ) -> None:
        self.observation_space = gym.spaces.Box(-10.0, 10.0, (3,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.nan_obs_at = nan_obs_at
        self.nan_reward_at = nan_reward_at
        self.nan_on_reset = nan_on_reset
        self.reward_scale = reward_scale
        self.obs_scale = obs_scale
        self.render_mode = render_mode
        self.total_steps = 0
        self.resets = 0
        self.state = np.zeros(3, dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.resets += 1
        self.state = self.np_random.uniform(-1.0, 1.0, 3).astype(np.float32)
        obs = self.state.copy()
        if self.nan_on_reset is not None and self.resets == self.nan_on_reset:
            obs[:] = np.nan
        return obs, {}

    def step(self, action):
        self.total_steps += 1
        a = float(np.clip(np.asarray(action, dtype=np.float32)[0], -1.0, 1.0))
        noise = self.np_random.normal(0.0, 0.01, 3)
        self.state = np.clip(self.state + 0.1 * a + noise, -10.0, 10.0).astype(np.float32)
        # In [-1, 0] times the scale, so a scale of 1e38 stays finite even in float32.
        reward = -float(np.mean(np.minimum(self.state**2, 1.0))) * self.reward_scale
        obs = (
            self.state.copy() if self.obs_scale == 1.0 else self.state * np.float64(self.obs_scale)
        )
        if self.nan_obs_at is not None and self.total_steps == self.nan_obs_at:
            obs[1] = np.nan
        if self.nan_reward_at is not None and self.total_steps == self.nan_reward_at:
            reward = float("nan")
        return obs, reward, False, False, {}


class DictObsEnv(FlakyEnv):
    """Continuous actions but a Dict observation space."""

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(render_mode=render_mode)
        self.observation_space = gym.spaces.Dict(
            {"position": gym.spaces.Box(-10.0, 10.0, (3,), np.float32)}
        )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = super().reset(seed=seed, options=options)
        return {"position": obs}, info

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return {"position": obs}, reward, terminated, truncated, info


class BadDictObsEnv(DictObsEnv):
    """A Dict observation with a part DDPG cannot take (a nested Dict or a Discrete)."""

    def __init__(self, part: str = "dict", render_mode: str | None = None) -> None:
        super().__init__(render_mode=render_mode)
        inner = (
            gym.spaces.Dict({"x": gym.spaces.Box(-1.0, 1.0, (2,), np.float32)})
            if part == "dict"
            else gym.spaces.Discrete(3)
        )
        self.observation_space = gym.spaces.Dict(
            {"position": gym.spaces.Box(-10.0, 10.0, (3,), np.float32), "inner": inner}
        )


class PointGoalEnv(gym.Env):
    """A goal-conditioned task: a point in [-1, 1]^3 must reach a random goal within
    `threshold`. Sparse reward (-1 until there, 0 there), `info["is_success"]`, and a
    vectorised `compute_reward`, as gymnasium-robotics' tasks have. With
    `terminate_on_success` the episode ends at the goal, and `compute_terminated` says so."""

    metadata = {"render_modes": []}
    threshold = 0.1
    speed = 0.2

    def __init__(
        self,
        terminate_on_success: bool = False,
        dims: int = 3,
        render_mode: str | None = None,
    ) -> None:
        box = gym.spaces.Box(-1.0, 1.0, (dims,), np.float64)
        self.observation_space = gym.spaces.Dict(
            {"achieved_goal": box, "desired_goal": box, "observation": box}
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (dims,), np.float32)
        self.terminate_on_success = terminate_on_success
        self.render_mode = render_mode
        self.dims = dims
        self.position = np.zeros(dims)
        self.goal = np.zeros(dims)
        if terminate_on_success:
            self.compute_terminated = self._reached

    def _obs(self) -> dict[str, np.ndarray]:
        return {
            "observation": self.position.copy(),
            "achieved_goal": self.position.copy(),
            "desired_goal": self.goal.copy(),
        }

    def _reached(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray:
        distance = np.linalg.norm(np.asarray(achieved_goal) - desired_goal, axis=-1)
        return distance <= self.threshold

    def compute_reward(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray:
        return self._reached(achieved_goal, desired_goal, info).astype(np.float32) - 1.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.position = self.np_random.uniform(-1.0, 1.0, self.dims)
        self.goal = self.np_random.uniform(-1.0, 1.0, self.dims)
        return self._obs(), {"is_success": float(self._reached(self.position, self.goal, None))}

    def step(self, action):
        move = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0) * self.speed
        self.position = np.clip(self.position + move, -1.0, 1.0)
        success = bool(self._reached(self.position, self.goal, None))
        reward = float(success) - 1.0
        terminated = success and self.terminate_on_success
        return self._obs(), reward, terminated, False, {"is_success": float(success)}


class GoalNoRewardEnv(PointGoalEnv):
    """Goals in its observations, but no compute_reward to score a relabelled one."""

    compute_reward = None  # type: ignore[assignment]


class ImageObsEnv(FlakyEnv):
    """Continuous actions but 16x16 RGB image observations."""

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(render_mode=render_mode)
        self.observation_space = gym.spaces.Box(0, 255, (16, 16, 3), np.uint8)

    def _image(self) -> np.ndarray:
        return np.zeros((16, 16, 3), dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed, options=options)
        return self._image(), {}

    def step(self, action):
        _, reward, terminated, truncated, info = super().step(action)
        return self._image(), reward, terminated, truncated, info


class InfBoundsEnv(FlakyEnv):
    """A Box action space without finite bounds."""

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(render_mode=render_mode)
        self.action_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)


ENVS: dict[str, tuple[str, dict[str, Any]]] = {
    "ddpgtest/Good-v0": ("FlakyEnv", {}),
    "ddpgtest/NanObs-v0": ("FlakyEnv", {"nan_obs_at": 130}),
    "ddpgtest/NanReward-v0": ("FlakyEnv", {"nan_reward_at": 130}),
    "ddpgtest/NanReset-v0": ("FlakyEnv", {"nan_on_reset": 2}),
    "ddpgtest/HugeReward-v0": ("FlakyEnv", {"reward_scale": 1e38}),
    "ddpgtest/Float32OverflowReward-v0": ("FlakyEnv", {"reward_scale": 1e40}),
    "ddpgtest/Float32OverflowObs-v0": ("FlakyEnv", {"obs_scale": 1e40}),
    "ddpgtest/DictObs-v0": ("DictObsEnv", {}),
    "ddpgtest/NestedDictObs-v0": ("BadDictObsEnv", {"part": "dict"}),
    "ddpgtest/DiscreteDictObs-v0": ("BadDictObsEnv", {"part": "discrete"}),
    "ddpgtest/PointGoal-v0": ("PointGoalEnv", {}),
    "ddpgtest/GoalNoReward-v0": ("GoalNoRewardEnv", {}),
    "ddpgtest/PointGoalTerminating-v0": ("PointGoalEnv", {"terminate_on_success": True}),
    "ddpgtest/ImageObs-v0": ("ImageObsEnv", {}),
    "ddpgtest/InfBounds-v0": ("InfBoundsEnv", {}),
}


def register_all() -> None:
    for env_id, (cls, kwargs) in ENVS.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=f"{__name__}:{cls}",
                max_episode_steps=EPISODE_STEPS,
                kwargs=kwargs,
                disable_env_checker=True,
            )


register_all()
