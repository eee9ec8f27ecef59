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
from ddpg.networks import Actor, Critic, action_scale_bias, to_env
from ddpg.noise import make_noise
from ddpg.normalizer import ObsNormalizer


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
    """The tensors Polyak averaging moves: the parameters and the BatchNorm running statistics.
    Constant buffers (the actor's action bounds) and BatchNorm's integer batch counter are not
    learned and stay as they are."""
    pairs = list(zip(target.parameters(), online.parameters(), strict=True))
    for t, o in zip(target.modules(), online.modules(), strict=True):
        if isinstance(t, nn.modules.batchnorm._BatchNorm) and t.track_running_stats:
            pairs += [(t.running_mean, o.running_mean), (t.running_var, o.running_var)]
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
        self.actor = Actor.for_config(config, info.obs_dim, info.action_low, info.action_high)
        self.actor.to(self.device)
        self.critic = Critic.for_config(config, info.obs_dim, info.act_dim).to(self.device)
        # Targets start equal to the online networks and only ever move by Polyak averaging.
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        # The actor acts in eval mode (BatchNorm uses running statistics) and only switches to
        # train mode inside `update`; the targets are always in eval mode.
        for net in (self.actor, self.actor_target, self.critic_target):
            net.eval()
        # One normaliser in front of every network (None: observations are used as they are).
        self.obs_norm = (
            ObsNormalizer(info.obs_layout, config.obs_clip).to(self.device)
            if config.normalize_obs
            else None
        )
        self.actor_optimizer = torch.optim.AdamW(
            self.actor.parameters(), lr=config.actor_lr, **self.optimizer_options()
        )
        self.critic_optimizer = torch.optim.AdamW(
            self.critic.parameters(), lr=config.critic_lr, **self.optimizer_options()
        )
        self.noise = make_noise(
            config.noise,
            info.act_dim,
            config.noise_std,
            config.seed + 1,
            config.ou_theta,
            config.num_envs,
        )
        self._scale, self._bias = action_scale_bias(info.action_low, info.action_high)
        # Tensors that Polyak averaging moves, gathered once: load_state_dict copies in place, so
        # these stay the live storage of the networks.
        t_critic, o_critic = polyak_pairs(self.critic_target, self.critic)
        t_actor, o_actor = polyak_pairs(self.actor_target, self.actor)
        self._targets, self._onlines = t_critic + t_actor, o_critic + o_actor
        self._actor_has_batch_norm = any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.actor.modules()
        )
        self.best_actor: dict[str, torch.Tensor] | None = None
        self.best_obs_norm: dict[str, torch.Tensor] | None = None
        """The normaliser's statistics when the best actor was kept (with normalize_obs)."""

    def optimizer_options(self) -> dict[str, Any]:
        """AdamW's options, the one place they are chosen. Fused: one kernel per step for all
        parameters, on the CPU as on CUDA. On CUDA also capturable: the step counter lives on
        the GPU (no host sync per step) and CUDA graphs can capture the optimiser step."""
        return {
            "weight_decay": self.config.weight_decay,
            "fused": True,
            "capturable": self.device.type == "cuda",
        }

    def load_optimizer_state(self, name: str, state: dict[str, Any]) -> None:
        """Load optimiser `name`'s state dict, keeping this agent's options (a checkpoint made
        on another device brings its own `capturable`)."""
        optimizer = self.optimizers()[name]
        optimizer.load_state_dict(state)
        for group in optimizer.param_groups:
            group["capturable"] = self.optimizer_options()["capturable"]

    # -- acting ------------------------------------------------------------------------------
    @torch.no_grad()
    def policy(self, obs: np.ndarray, explore: bool = False) -> np.ndarray:
        """Normalised action(s) in [-1, 1] for one observation or a batch of them; with
        `explore`, exploration noise is added and the result clipped back into [-1, 1] (a batch
        must then hold one observation per environment: each has its own noise process)."""
        single = np.ndim(obs) == 1
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        action = self.actor(self.normalize(obs_t.reshape(-1, self.info.obs_dim))).cpu().numpy()
        if explore:
            action = np.clip(action + self.noise.sample(), -1.0, 1.0)
        return action[0] if single else action

    def act(self, obs: np.ndarray, explore: bool = False) -> np.ndarray:
        """Action(s) in environment units for one observation or a batch of them."""
        return self.to_env(self.policy(obs, explore))

    def to_env(self, normalised: np.ndarray) -> np.ndarray:
        """Normalised actions onto the environment's bounds (as float32)."""
        low, high = self.info.action_low, self.info.action_high
        return to_env(normalised.astype(np.float32), self._scale, self._bias, low, high)

    # -- observations --------------------------------------------------------------------------
    def observe(self, obs: np.ndarray) -> None:
        """Collected observations (N, obs_dim) update the normaliser (if there is one)."""
        if self.obs_norm is not None:
            self.obs_norm.update(obs)

    def normalize(self, obs: Tensor) -> Tensor:
        return obs if self.obs_norm is None else self.obs_norm(obs)

    def normalized(self, batch: Batch) -> Batch:
        """`batch` with its observations as the networks see them."""
        if self.obs_norm is None:
            return batch
        return batch._replace(
            obs=self.normalize(batch.obs), next_obs=self.normalize(batch.next_obs)
        )

    # -- learning ----------------------------------------------------------------------------
    def critic_loss(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """MSE of Q(s, a) against r + gamma * (1 - terminated) * Q'(s', mu'(s')), and Q(s, a).
        Only termination stops bootstrapping; a time-limit cut still bootstraps."""
        with torch.no_grad():
            next_q = self.critic_target(batch.next_obs, self.actor_target(batch.next_obs))
            target_q = batch.reward + self.config.gamma * (1.0 - batch.terminated) * next_q
        q = self.critic(batch.obs, batch.action)
        return F.mse_loss(q, target_q), q

    def actor_loss(self, batch: Batch) -> Tensor:
        """-Q(s, mu(s)): the actor climbs the critic's estimate."""
        return -self.critic(batch.obs, self.actor(batch.obs)).mean()

    def update(self, batch: Batch) -> UpdateMetrics:
        """One DDPG update: critic step, actor step through a frozen critic, Polyak averaging."""
        batch = self.normalized(batch)  # the observations as the networks see them
        # 1. Critic step.
        critic_loss, q = self.critic_loss(batch)
        _step(self.critic_optimizer, critic_loss)

        # 2. Actor step; the critic is frozen so it gets no gradient from this. With BatchNorm
        #    the actor learns in train mode (batch statistics) and acts in eval mode.
        with frozen(self.critic), self._actor_training():
            actor_loss = self.actor_loss(batch)
            _step(self.actor_optimizer, actor_loss)

        # 3. Targets follow the online networks slowly.
        polyak_update(self._targets, self._onlines, self.config.tau)
        return UpdateMetrics(critic_loss.detach(), actor_loss.detach(), q.detach().mean())

    @contextmanager
    def _actor_training(self) -> Iterator[None]:
        if not self._actor_has_batch_norm:  # nothing changes with the mode: skip the switch
            yield
            return
        self.actor.train()
        try:
            yield
        finally:
            self.actor.eval()

    # -- best weights ------------------------------------------------------------------------
    def snapshot_best(self) -> None:
        """Keep a copy of the current actor (the original kept a live reference, which silently
        followed every later update)."""
        self.best_actor = {k: v.detach().clone() for k, v in self.actor.state_dict().items()}
        if self.obs_norm is not None:
            self.best_obs_norm = {k: v.clone() for k, v in self.obs_norm.state_dict().items()}

    def best_or_current_actor(self) -> dict[str, torch.Tensor]:
        return self.best_actor if self.best_actor is not None else self.actor.state_dict()

    def best_policy(self) -> dict[str, torch.Tensor]:
        """What the best policy is made of, as a model file names it: `actor.*` and, with
        normalize_obs, the normaliser's statistics of that moment (`obs_norm.*`)."""
        tensors = {f"actor.{k}": v for k, v in self.best_or_current_actor().items()}
        if self.obs_norm is not None:
            norm = self.best_obs_norm if self.best_actor is not None else None
            norm = norm or self.obs_norm.state_dict()
            tensors |= {f"obs_norm.{k}": v for k, v in norm.items()}
        return tensors

    # -- persistence -------------------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        """Every module whose tensors model files and checkpoints hold (the normaliser too)."""
        networks: dict[str, nn.Module] = {
            "actor": self.actor,
            "critic": self.critic,
            "actor_target": self.actor_target,
            "critic_target": self.critic_target,
        }
        if self.obs_norm is not None:
            networks["obs_norm"] = self.obs_norm
        return networks

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor_optimizer": self.actor_optimizer, "critic_optimizer": self.critic_optimizer}

    def non_finite_weights(self) -> str | None:
        """Name of the first network holding a NaN or inf, or None."""
        for name, net in self.networks().items():
            for key, value in net.state_dict().items():
                if value.is_floating_point() and not torch.isfinite(value).all():
                    return f"{name}.{key}"
        return None


def _step(optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
