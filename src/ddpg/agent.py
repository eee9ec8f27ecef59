"""The DDPG agent: online and target networks, optimisers, exploration and the update step."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ddpg.buffer import Batch
from ddpg.config import Config
from ddpg.envs import EnvInfo
from ddpg.errors import ConfigError
from ddpg.networks import Actor, Critic
from ddpg.noise import make_noise


class UpdateMetrics(NamedTuple):
    """Detached scalars of one update; kept as tensors so the hot loop never waits on them."""

    critic_loss: torch.Tensor
    actor_loss: torch.Tensor
    q_mean: torch.Tensor


def resolve_device(name: str) -> torch.device:
    """The torch device for a config's `device`; a CUDA device this machine lacks is refused."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(
                f"device '{name}' asked for, but this torch ({torch.__version__}) sees no CUDA "
                "GPU; use --device cpu or auto"
            )
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device '{name}' asked for, but this machine has {count} GPU(s)")
    return device


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Inside this block `module`'s parameters receive no gradient."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def polyak_pairs(target: nn.Module, online: nn.Module) -> tuple[list[Tensor], list[Tensor]]:
    """The floating-point tensors Polyak averaging moves: parameters and BatchNorm running
    statistics. Integer buffers (BatchNorm's batch counter) play no part in a forward pass."""
    pairs = [
        (t, o)
        for t, o in zip(target.state_dict().values(), online.state_dict().values(), strict=True)
        if t.is_floating_point()
    ]
    return [t for t, _ in pairs], [o for _, o in pairs]


@torch.no_grad()
def polyak_update(targets: list[Tensor], onlines: list[Tensor], tau: float) -> None:
    """target <- (1 - tau) * target + tau * online, in one fused call (exact for tau 0 and 1)."""
    torch._foreach_lerp_(targets, onlines, tau)


class DDPGAgent:
    """Networks, optimisers and exploration noise of one DDPG learner."""

    def __init__(self, info: EnvInfo, config: Config, device: torch.device | None = None) -> None:
        self.info = info
        self.config = config
        self.device = device or resolve_device(config.device)
        torch.manual_seed(config.seed)
        self.actor = Actor(
            info.obs_dim,
            info.action_low,
            info.action_high,
            config.hidden_size,
            config.batch_norm,
            config.hidden_size_2,
        ).to(self.device)
        self.critic = Critic(
            info.obs_dim, info.act_dim, config.hidden_size, config.hidden_size_2
        ).to(self.device)
        # Targets start equal to the online networks and only ever move by Polyak averaging.
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        # The actor acts in eval mode (BatchNorm uses running statistics) and only switches to
        # train mode inside `update`; the targets are always in eval mode.
        for net in (self.actor, self.actor_target, self.critic_target):
            net.eval()
        # Fused AdamW: one kernel per step for all parameters, on the CPU as on CUDA.
        opt_kwargs: dict[str, Any] = {"weight_decay": config.weight_decay, "fused": True}
        if self.device.type == "cuda":
            # The step counter lives on the GPU: no host sync per step, and CUDA graphs can
            # capture the optimiser step.
            opt_kwargs["capturable"] = True
        self.actor_optimizer = torch.optim.AdamW(
            self.actor.parameters(), lr=config.actor_lr, **opt_kwargs
        )
        self.critic_optimizer = torch.optim.AdamW(
            self.critic.parameters(), lr=config.critic_lr, **opt_kwargs
        )
        self.noise = make_noise(
            config.noise,
            info.act_dim,
            config.noise_std,
            config.seed + 1,
            config.ou_theta,
            config.num_envs,
        )
        self._scale = info.action_high / 2.0 - info.action_low / 2.0
        self._bias = info.action_high / 2.0 + info.action_low / 2.0
        # Tensors that Polyak averaging moves, gathered once: load_state_dict copies in place, so
        # these stay the live storage of the networks.
        t_critic, o_critic = polyak_pairs(self.critic_target, self.critic)
        t_actor, o_actor = polyak_pairs(self.actor_target, self.actor)
        self._targets, self._onlines = t_critic + t_actor, o_critic + o_actor
        self._actor_has_batch_norm = any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.actor.modules()
        )
        self.best_actor: dict[str, torch.Tensor] | None = None
        self.updates = 0

    # -- acting ------------------------------------------------------------------------------
    @torch.no_grad()
    def policy(self, obs: np.ndarray, explore: bool = False) -> np.ndarray:
        """Normalised action(s) in [-1, 1] for one observation or a batch of them; with
        `explore`, exploration noise is added and the result clipped back into [-1, 1] (a batch
        must then hold one observation per environment: each has its own noise process)."""
        single = np.ndim(obs) == 1
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        action = self.actor(obs_t.reshape(-1, self.info.obs_dim)).cpu().numpy()
        if explore:
            action = np.clip(action + self.noise.sample(), -1.0, 1.0)
        return action[0] if single else action

    def act(self, obs: np.ndarray, explore: bool = False) -> np.ndarray:
        """Action(s) in environment units for one observation or a batch of them."""
        return self.to_env(self.policy(obs, explore))

    def to_env(self, normalised: np.ndarray) -> np.ndarray:
        action = (normalised * self._scale + self._bias).astype(np.float32)
        # Rounding can put +-1 one float32 step outside the bounds: clip it back.
        return np.clip(action, self.info.action_low, self.info.action_high)

    def from_env(self, action: np.ndarray) -> np.ndarray:
        return ((np.asarray(action, dtype=np.float32) - self._bias) / self._scale).astype(
            np.float32
        )

    # -- learning ----------------------------------------------------------------------------
    def update(self, batch: Batch) -> UpdateMetrics:
        """One DDPG update: critic step, actor step through a frozen critic, Polyak averaging."""
        gamma = self.config.gamma

        # 1. Critic: regress Q(s, a) on r + gamma * (1 - terminated) * Q'(s', mu'(s')).
        #    Only termination stops bootstrapping; a time-limit cut still bootstraps.
        with torch.no_grad():
            next_q = self.critic_target(batch.next_obs, self.actor_target(batch.next_obs))
            target_q = batch.reward + gamma * (1.0 - batch.terminated) * next_q
        q = self.critic(batch.obs, batch.action)
        critic_loss = F.mse_loss(q, target_q)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()

        # 2. Actor: maximise Q(s, mu(s)); the critic is frozen so it gets no gradient from this.
        #    With BatchNorm the actor learns in train mode (batch statistics) and acts in eval mode.
        if self._actor_has_batch_norm:
            self.actor.train()
        with frozen(self.critic):
            actor_loss = -self.critic(batch.obs, self.actor(batch.obs)).mean()
            self.actor_optimizer.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_optimizer.step()
        if self._actor_has_batch_norm:
            self.actor.eval()

        # 3. Targets follow the online networks slowly.
        polyak_update(self._targets, self._onlines, self.config.tau)

        self.updates += 1
        return UpdateMetrics(critic_loss.detach(), actor_loss.detach(), q.detach().mean())

    # -- best weights ------------------------------------------------------------------------
    def snapshot_best(self) -> None:
        """Keep a copy of the current actor (the original kept a live reference, which silently
        followed every later update)."""
        self.best_actor = {k: v.detach().clone() for k, v in self.actor.state_dict().items()}

    def best_or_current_actor(self) -> dict[str, torch.Tensor]:
        return self.best_actor if self.best_actor is not None else self.actor.state_dict()

    # -- persistence -------------------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        return {
            "actor": self.actor,
            "critic": self.critic,
            "actor_target": self.actor_target,
            "critic_target": self.critic_target,
        }

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor_optimizer": self.actor_optimizer, "critic_optimizer": self.critic_optimizer}

    def weights_are_finite(self) -> str | None:
        """Name of the first network holding a NaN or inf, or None."""
        for name, net in self.networks().items():
            for key, value in net.state_dict().items():
                if value.is_floating_point() and not torch.isfinite(value).all():
                    return f"{name}.{key}"
        return None
