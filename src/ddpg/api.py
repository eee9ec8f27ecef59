"""The Python API: construct, learn, predict, save, load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from ddpg.checkpoints import load_model, save_model
from ddpg.config import Config
from ddpg.envs import FINAL_EVAL_STREAM, check_env, make_env
from ddpg.errors import CheckpointError, ConfigError
from ddpg.evaluation import EvalResult, evaluate
from ddpg.loggers import Console
from ddpg.train import Trainer, load_network_tensors, network_tensors


class DDPG:
    """A DDPG learner for one environment.

    >>> model = DDPG("Pendulum-v1", learning_starts=1000)   # or DDPG(env, config)
    >>> model.learn(15_000)
    >>> action = model.predict(obs)                          # deterministic by default
    >>> model.save("pendulum.safetensors"); DDPG.load("pendulum.safetensors")
    """

    def __init__(
        self,
        env: str | gym.Env | None = None,
        config: Config | None = None,
        run_dir: str | Path | None = None,
        verbose: bool = False,
        **overrides: Any,
    ) -> None:
        config = config or Config()
        env_obj: gym.Env | None = None
        if isinstance(env, str):
            overrides["env_id"] = env
        elif env is not None:
            if env.spec is not None:
                overrides.setdefault("env_id", env.spec.id)
            env_obj = env
        if overrides:
            config = config.replace(**overrides)
        self.trainer = Trainer(config, run_dir, env=env_obj, console=Console(quiet=not verbose))

    @property
    def config(self) -> Config:
        return self.trainer.config

    @property
    def agent(self) -> Any:
        return self.trainer.agent

    @property
    def num_steps(self) -> int:
        return self.trainer.step

    def learn(self, total_steps: int) -> DDPG:
        """Train for `total_steps` more environment steps."""
        if total_steps < 1:
            raise ConfigError(f"learn() needs total_steps >= 1, got {total_steps}")
        self.trainer.run(max_steps=self.trainer.step + total_steps)
        return self

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Action(s) in environment units for one observation or a batch of them."""
        return self.agent.act(np.asarray(obs, dtype=np.float32), explore=not deterministic)

    def evaluate(self, episodes: int = 10, env: gym.Env | None = None) -> EvalResult:
        """Mean return of the deterministic policy over `episodes` fresh episodes."""
        env = env if env is not None else self.trainer.eval_env
        return evaluate(self.agent.act, env, episodes, self.config.seed, FINAL_EVAL_STREAM)

    def save(self, path: str | Path) -> None:
        """Write the four networks and the config to one safetensors file."""
        save_model(Path(path), network_tensors(self.agent), self.trainer.model_meta())

    @classmethod
    def load(cls, path: str | Path, env: gym.Env | None = None, **overrides: Any) -> DDPG:
        """A model saved by `save` (or a run's model_*.safetensors), ready to predict or learn."""
        tensors, meta = load_model(Path(path))
        try:
            if not isinstance(meta.get("config"), dict):
                raise TypeError("no config mapping")
            config = Config.from_dict(meta["config"])
        except (TypeError, ConfigError) as exc:
            raise CheckpointError(f"{path}: metadata holds no valid config ({exc})") from None
        config = config.replace(**overrides)
        if env is None:
            env = make_env(config.env_id, config.max_episode_steps)
        info = check_env(env)
        if (
            info.obs_dim != meta.get("obs_dim")
            or info.action_low.tolist() != meta.get("action_low")
            or info.action_high.tolist() != meta.get("action_high")
        ):
            raise CheckpointError(f"{path} was trained on spaces that differ from this environment")
        model = cls(env, config)
        try:
            load_network_tensors(model.agent, tensors)
        except (RuntimeError, KeyError) as exc:
            raise CheckpointError(f"{path}: weights do not fit the networks ({exc})") from None
        return model
