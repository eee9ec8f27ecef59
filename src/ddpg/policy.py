"""`Policy`: a trained actor for inference, with its action mapping and observation checks.

Loading one reads a model file and builds the actor alone: no environment, replay buffer,
optimiser or training loop is created or imported.

    >>> policy = Policy.load("runs/pendulum-s0-.../model_best.safetensors")
    >>> action = policy(obs)          # env units, inside the action bounds; batches work too

A goal-conditioned policy takes the env's dict observation as it comes (or a dict of batched
parts, or a list of dicts); its parts are concatenated in the order `ObsLayout` defines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddpg.checkpoints import load_model, subtree
from ddpg.config import DEVICE_PATTERN, Config
from ddpg.errors import CheckpointError, ConfigError
from ddpg.networks import Actor, EnvUnitsActor
from ddpg.normalizer import ObsNormalizer
from ddpg.observations import ObsLayout


class Policy:
    """Observations in, deterministic actions in environment units out."""

    def __init__(
        self,
        actor: Actor,
        config: Config,
        normalizer: ObsNormalizer | None = None,
        layout: ObsLayout | None = None,
    ) -> None:
        self.net = EnvUnitsActor(actor, normalizer)
        self.config = config
        self.obs_dim = actor.net[0].in_features
        self.layout = layout or ObsLayout.flat(self.obs_dim)
        self.device = actor.action_scale.device

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> Policy:
        """The best or final policy of a run (`RUN_DIR/model_*.safetensors`) or a model saved by
        `DDPG.save`. CheckpointError if the file is not a valid model file, RunDirError if it
        lies in a run directory that holds a symbolic link out of it."""
        from ddpg.links import check_model_file

        check_model_file(Path(path))
        tensors, meta = load_model(Path(path))
        config, layout, low, high = read_model_meta(path, meta)
        return cls.from_tensors(config, layout, low, high, tensors, device)

    @classmethod
    def from_tensors(
        cls,
        config: Config,
        layout: ObsLayout,
        low: np.ndarray,
        high: np.ndarray,
        tensors: dict[str, torch.Tensor],
        device: str | torch.device = "cpu",
    ) -> Policy:
        """A policy with its own copy of the tensors named as in a model file: `actor.*` and,
        for a run with normalize_obs, `obs_norm.*`."""
        actor = Actor.for_config(config, layout.dim, low, high)
        normalizer = ObsNormalizer(layout, config.obs_clip) if config.normalize_obs else None
        try:
            actor.load_state_dict(subtree(tensors, "actor"))
            if normalizer is not None:
                normalizer.load_state_dict(subtree(tensors, "obs_norm"))
        except (RuntimeError, KeyError) as exc:
            raise CheckpointError(f"policy weights do not fit the config ({exc})") from None
        target = _device(device)
        if normalizer is not None:
            normalizer = normalizer.to(target)
        return cls(actor.to(target).eval(), config, normalizer, layout)

    @property
    def action_low(self) -> np.ndarray:
        return self.net.actor.action_low.cpu().numpy()

    @property
    def action_high(self) -> np.ndarray:
        return self.net.actor.action_high.cpu().numpy()

    def check(self, obs: Any) -> np.ndarray:
        """`obs` as float32 of shape (obs_dim,) or (N, obs_dim); ValueError naming what is wrong.
        A dict observation (or a list of them) is flattened in the policy's layout first."""
        obs = self.layout.flatten(obs)
        try:
            raw = np.asarray(obs)
        except ValueError:  # ragged nested sequences
            raw = np.asarray(None)
        if raw.dtype.kind not in "biuf":
            raise ValueError(
                f"observation must be numbers of shape ({self.obs_dim},) or (N, {self.obs_dim}), "
                f"got {type(obs).__name__}"
            )
        if raw.ndim not in (1, 2) or raw.shape[-1] != self.obs_dim or raw.size == 0:
            raise ValueError(
                f"observation must have shape ({self.obs_dim},) or (N, {self.obs_dim}), "
                f"got {raw.shape}"
            )
        with np.errstate(over="ignore"):  # beyond float32's range: named below
            array = raw.astype(np.float32, copy=False)
        if not np.isfinite(array).all():
            bad = np.argwhere(~np.isfinite(array))[0]
            what = "a value beyond float32's range" if np.isfinite(raw[tuple(bad)]) else None
            raise ValueError(
                f"observation holds {what or 'a non-finite value'} at index {bad.tolist()}"
            )
        return array

    @torch.no_grad()
    def __call__(self, obs: Any) -> np.ndarray:
        """Action(s) for one observation (obs_dim,) or a batch (N, obs_dim)."""
        array = self.check(obs)
        batch = torch.as_tensor(array.reshape(-1, self.obs_dim), device=self.device)
        action = self.net(batch).cpu().numpy()
        return action[0] if array.ndim == 1 else action


def _device(device: str | torch.device) -> torch.device:
    """A device this machine has: ConfigError for 'tpu', or for 'cuda' without a GPU."""
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string or a torch.device, got {device!r}")
    name = str(device)
    if name == "cpu":
        return torch.device("cpu")
    if not DEVICE_PATTERN.fullmatch(name):
        raise ConfigError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got '{name}'")
    from ddpg.agent import resolve_device  # only off the CPU path: it imports more

    return resolve_device(name)


def read_model_meta(path: str | Path, meta: dict[str, Any]) -> tuple[Config, ObsLayout, Any, Any]:
    """Config, observation layout and action bounds from a model file's metadata."""
    try:
        if not isinstance(meta.get("config"), dict):
            raise TypeError("no config mapping")
        config = Config.from_dict(meta["config"])
        obs_dim = int(meta["obs_dim"])
        low = np.asarray(meta["action_low"], dtype=np.float32)
        high = np.asarray(meta["action_high"], dtype=np.float32)
    except (TypeError, ValueError, KeyError, ConfigError) as exc:
        raise CheckpointError(f"{path}: metadata holds no valid config ({exc})") from None
    if obs_dim < 1 or low.ndim != 1 or low.shape != high.shape or low.size == 0:
        raise CheckpointError(f"{path}: metadata holds invalid spaces")
    try:
        layout = ObsLayout.from_meta(meta, obs_dim)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: metadata holds an invalid observation layout ({exc})"
        ) from None
    return config, layout, low, high
