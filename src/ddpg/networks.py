"""Actor and critic networks.

The actor follows the original design (Linear, LeakyReLU, Linear, BatchNorm1d, LeakyReLU, Linear)
and adds what the original lacked: a tanh squashing and an affine map onto the environment's action
bounds, so actions are always legal whatever the bounds (asymmetric and per-dimension included).
The activation (`Config.activation`), the BatchNorm and the output layers' initialisation are
configurable; the layer indices, and so the weights' names in model files, never change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from ddpg.config import Config

Array = TypeVar("Array", np.ndarray, torch.Tensor)

# The DDPG paper initialises the output layers in [-3e-3, 3e-3] so that early actions and Q values
# start near zero instead of saturating the tanh.
FINAL_LAYER_INIT = 3e-3
ACTIVATIONS: dict[str, type[nn.Module]] = {"leaky_relu": nn.LeakyReLU, "relu": nn.ReLU}


def action_scale_bias(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale and bias of the affine map from [-1, 1] onto [low, high], per dimension (halved
    before subtracting, so that bounds near the float32 limits do not overflow)."""
    low, high = np.asarray(low, dtype=np.float32), np.asarray(high, dtype=np.float32)
    return high / 2 - low / 2, high / 2 + low / 2


def to_env(normalised: Array, scale: Array, bias: Array, low: Array, high: Array) -> Array:
    """The action mapping: normalised actions in [-1, 1] onto the environment's bounds. The one
    definition, for NumPy arrays (the training loop) and tensors (the actor, exported models)."""
    # Rounding can put +-1 one float32 step outside the bounds: clip it back.
    return (normalised * scale + bias).clip(low, high)  # type: ignore[return-value]


def _init_final(layer: nn.Linear, bound: float | None) -> nn.Linear:
    """The output layer, uniform in [-bound, bound] (None: left as PyTorch initialised it)."""
    if bound is not None:
        nn.init.uniform_(layer.weight, -bound, bound)
        nn.init.uniform_(layer.bias, -bound, bound)
    return layer


class Actor(nn.Module):
    """Deterministic policy mu(s). `forward` returns actions normalised to [-1, 1]."""

    def __init__(
        self,
        obs_dim: int,
        action_low: np.ndarray,
        action_high: np.ndarray,
        hidden_size: int = 256,
        batch_norm: bool = True,
        hidden_size_2: int | None = None,
        activation: str = "leaky_relu",
        final_layer_init: float | None = FINAL_LAYER_INIT,
    ) -> None:
        super().__init__()
        second = hidden_size_2 or hidden_size
        low = torch.as_tensor(np.asarray(action_low, dtype=np.float32))
        high = torch.as_tensor(np.asarray(action_high, dtype=np.float32))
        act_dim = low.numel()
        act = ACTIVATIONS[activation]
        self.net = nn.Sequential(
            nn.Linear(obs_dim, hidden_size),
            act(),
            nn.Linear(hidden_size, second),
            nn.BatchNorm1d(second) if batch_norm else nn.Identity(),
            act(),
            _init_final(nn.Linear(second, act_dim), final_layer_init),
        )
        # Affine map from [-1, 1] to [low, high], per dimension.
        scale, bias = action_scale_bias(low.numpy(), high.numpy())
        self.register_buffer("action_scale", torch.from_numpy(scale))
        self.register_buffer("action_bias", torch.from_numpy(bias))
        # Not saved (clamping only), so model files keep their keys.
        self.register_buffer("action_low", low, persistent=False)
        self.register_buffer("action_high", high, persistent=False)

    @classmethod
    def for_config(
        cls, config: Config, obs_dim: int, action_low: np.ndarray, action_high: np.ndarray
    ) -> Actor:
        """The actor a run with `config` trains (and a model file of it holds)."""
        return cls(
            obs_dim,
            action_low,
            action_high,
            config.hidden_size,
            config.batch_norm,
            config.hidden_size_2,
            config.activation,
            config.final_layer_init,
        )

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs))

    def to_env(self, normalised: torch.Tensor) -> torch.Tensor:
        """Map actions in [-1, 1] onto the environment's bounds."""
        return to_env(
            normalised, self.action_scale, self.action_bias, self.action_low, self.action_high
        )


class Critic(nn.Module):
    """Action-value function Q(s, a) on the concatenation of observation and normalised action."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_size: int = 256,
        hidden_size_2: int | None = None,
        activation: str = "leaky_relu",
        final_layer_init: float | None = FINAL_LAYER_INIT,
    ) -> None:
        super().__init__()
        second = hidden_size_2 or hidden_size
        act = ACTIVATIONS[activation]
        self.net = nn.Sequential(
            nn.Linear(obs_dim + act_dim, hidden_size),
            act(),
            nn.Linear(hidden_size, second),
            act(),
            _init_final(nn.Linear(second, 1), final_layer_init),
        )

    @classmethod
    def for_config(cls, config: Config, obs_dim: int, act_dim: int) -> Critic:
        """The critic a run with `config` trains."""
        return cls(
            obs_dim,
            act_dim,
            config.hidden_size,
            config.hidden_size_2,
            config.activation,
            config.final_layer_init,
        )

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, action], dim=-1)).squeeze(-1)


class EnvUnitsActor(nn.Module):
    """The deployed policy: observations in, actions in environment units out (bounds included),
    the observation normaliser first where the run had one. This is what `ddpg.Policy` runs and
    what `ddpg export` writes."""

    def __init__(self, actor: Actor, normalizer: nn.Module | None = None) -> None:
        super().__init__()
        self.normalizer = normalizer if normalizer is not None else nn.Identity()
        self.actor = actor

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor.to_env(self.actor(self.normalizer(obs)))
