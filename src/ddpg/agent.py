"""The DDPG agent: online and target networks, optimisers, exploration and the update step.

The same agent runs TD3 (`Config.algo`, Fujimoto et al. 2018): the algorithm is chosen once, in
`DDPGAgent.__init__`, as three values the update reads: how many critics learn, the TD target
they regress on (`ddpg_target` or `td3_target`), and every how many updates the actor and the
targets move (`policy_delay`, 1 for DDPG).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ddpg.buffer import Batch
from ddpg.checkpoints import (
    CheckpointContents,
    network_tensors,
    optimizer_from_files,
    optimizer_to_files,
    subtree,
)
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
    """0 on an update without an actor step (TD3's delayed actor)."""
    q_mean: torch.Tensor
    actor_steps: torch.Tensor
    """1 if this update stepped the actor, else 0: actor_loss is averaged over these."""


def episode_means(sums: dict[str, float]) -> dict[str, float | None]:
    """The per-episode means of summed update metrics (`TrainState.loss_sums`): the critic loss
    and mean Q over the updates, the actor loss over the actor steps (None where there were
    none)."""
    updates = sums.get("updates", 0.0)
    actor_steps = sums.get("actor_steps", updates)  # checkpoints before TD3: one per update
    return {
        "critic_loss": sums["critic_loss"] / updates if updates else None,
        "actor_loss": sums["actor_loss"] / actor_steps if actor_steps else None,
        "q_mean": sums["q_mean"] / updates if updates else None,
    }


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


def ddpg_target(agent: DDPGAgent, batch: Batch) -> Tensor:
    """r + gamma * (1 - terminated) * Q'(s', mu'(s')). Only termination stops bootstrapping; a
    time-limit cut still bootstraps."""
    with torch.no_grad():
        next_q = agent.critic_target(batch.next_obs, agent.actor_target(batch.next_obs))
        return batch.reward + agent.config.gamma * (1.0 - batch.terminated) * next_q


def td3_target(agent: DDPGAgent, batch: Batch) -> Tensor:
    """r + gamma * (1 - terminated) * min(Q1'(s', a'), Q2'(s', a')) at the smoothed target action
    a' = clip(mu'(s') + clip(N(0, target_noise), -target_noise_clip, target_noise_clip), -1, 1):
    clipped double Q and target policy smoothing."""
    with torch.no_grad():
        next_action = smoothed_target_action(agent, batch.next_obs)
        next_q = torch.minimum(
            agent.critic_target(batch.next_obs, next_action),
            agent.critic2_target(batch.next_obs, next_action),
        )
        return batch.reward + agent.config.gamma * (1.0 - batch.terminated) * next_q


def smoothed_target_action(agent: DDPGAgent, next_obs: Tensor) -> Tensor:
    """mu'(s') plus clipped Gaussian noise, clipped back into [-1, 1]; the noise is drawn from
    the agent's own generator (`target_noise_rng`, saved in checkpoints)."""
    c = agent.config
    action = agent.actor_target(next_obs)
    noise = torch.randn(
        action.shape, generator=agent.target_noise_rng, device=action.device, dtype=action.dtype
    )
    noise = (noise * c.target_noise).clamp(-c.target_noise_clip, c.target_noise_clip)
    return (action + noise).clamp(-1.0, 1.0)


# What each algorithm changes: how many critics, which TD target they all regress on.
TD_TARGETS: dict[str, tuple[int, Callable[[DDPGAgent, Batch], Tensor]]] = {
    "ddpg": (1, ddpg_target),
    "td3": (2, td3_target),
}


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
        # The algorithm, chosen once: how many critics, the TD target they regress on, and every
        # how many updates the actor and the targets move.
        num_critics, self.td_target = TD_TARGETS[config.algo]
        self.policy_delay = config.policy_delay if config.algo == "td3" else 1
        self.actor = Actor.for_config(config, info.obs_dim, info.action_low, info.action_high)
        self.actor.to(self.device)
        self.critics = [
            Critic.for_config(config, info.obs_dim, info.act_dim).to(self.device)
            for _ in range(num_critics)
        ]
        # Targets start equal to the online networks and only ever move by Polyak averaging.
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_targets = [copy.deepcopy(c).requires_grad_(False) for c in self.critics]
        # The actor acts in eval mode (BatchNorm uses running statistics) and only switches to
        # train mode inside `update`; the targets are always in eval mode.
        for net in (self.actor, self.actor_target, *self.critic_targets):
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
        # One optimiser for all critics: each critic's gradient is that of its own loss term.
        self.critic_optimizer = torch.optim.AdamW(
            itertools.chain.from_iterable(c.parameters() for c in self.critics),
            lr=config.critic_lr,
            **self.optimizer_options(),
        )
        self.noise = make_noise(
            config.noise,
            info.act_dim,
            config.noise_std,
            config.seed + 1,
            config.ou_theta,
            config.num_envs,
        )
        # TD3's target-smoothing noise (unused by DDPG); its state goes into checkpoints.
        self.target_noise_rng = torch.Generator(device=self.device).manual_seed(config.seed + 4)
        self._scale, self._bias = action_scale_bias(info.action_low, info.action_high)
        # Tensors that Polyak averaging moves, gathered once: load_state_dict copies in place, so
        # these stay the live storage of the networks.
        pairs = [polyak_pairs(t, o) for t, o in zip(self.critic_targets, self.critics, strict=True)]
        pairs.append(polyak_pairs(self.actor_target, self.actor))
        self._targets = [t for targets, _ in pairs for t in targets]
        self._onlines = [o for _, onlines in pairs for o in onlines]
        self._actor_has_batch_norm = any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.actor.modules()
        )
        # The actor-step metrics of an update without one (created once: no allocation per update).
        self._zero = torch.zeros((), device=self.device)
        self._one = torch.ones((), device=self.device)
        self.best_actor: dict[str, torch.Tensor] | None = None
        self.best_obs_norm: dict[str, torch.Tensor] | None = None
        """The normaliser's statistics when the best actor was kept (with normalize_obs)."""

    # The first critic and its target: the actor learns from the first critic.
    @property
    def critic(self) -> Critic:
        return self.critics[0]

    @property
    def critic_target(self) -> Critic:
        return self.critic_targets[0]

    # TD3's second critic and its target.
    @property
    def critic2(self) -> Critic:
        return self.critics[1]

    @property
    def critic2_target(self) -> Critic:
        return self.critic_targets[1]

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
        on another device brings its own `capturable`). Its tensors are copied: the optimiser
        steps them in place, and `Optimizer.load_state_dict` would adopt them as they are."""
        optimizer = self.optimizers()[name]
        state = state | {
            "state": {
                pid: {k: v.clone() if isinstance(v, Tensor) else v for k, v in entry.items()}
                for pid, entry in state["state"].items()
            }
        }
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
        """Sum over the critics of MSE(Q_i(s, a), y), with y the algorithm's TD target
        (`ddpg_target` or `td3_target`); and Q_1(s, a)."""
        target_q = self.td_target(self, batch)
        qs = [critic(batch.obs, batch.action) for critic in self.critics]
        loss = sum((F.mse_loss(q, target_q) for q in qs[1:]), F.mse_loss(qs[0], target_q))
        return loss, qs[0]

    def actor_loss(self, batch: Batch) -> Tensor:
        """-Q_1(s, mu(s)): the actor climbs the first critic's estimate."""
        return -self.critic(batch.obs, self.actor(batch.obs)).mean()

    def actor_due(self, index: int) -> bool:
        """Whether update number `index` (0-based) moves the actor and the targets: every
        policy_delay-th one, so the first is update policy_delay - 1 (every update for DDPG)."""
        return (index + 1) % self.policy_delay == 0

    def update(self, batch: Batch, index: int = 0) -> UpdateMetrics:
        """One update: critic step; then, when `actor_due(index)`, actor step through a frozen
        critic and Polyak averaging. `index` is the number of updates made before this one
        (`TrainState.updates`): the delay is derived from it, the agent keeps no counter."""
        batch = self.normalized(batch)  # the observations as the networks see them
        # 1. Critic step: every critic regresses on the algorithm's TD target.
        critic_loss, q = self.critic_loss(batch)
        _step(self.critic_optimizer, critic_loss)
        # 2. Actor step and 3. Polyak averaging, every policy_delay-th update.
        if not self.actor_due(index):
            return UpdateMetrics(critic_loss.detach(), self._zero, q.detach().mean(), self._zero)
        actor_loss = self.delayed_step(batch)
        return UpdateMetrics(
            critic_loss.detach(), actor_loss.detach(), q.detach().mean(), self._one
        )

    def delayed_step(self, batch: Batch) -> Tensor:
        """The actor step, then the targets follow the online networks; returns the actor loss."""
        # The critic is frozen so it gets no gradient from the actor loss. With BatchNorm the
        # actor learns in train mode (batch statistics) and acts in eval mode.
        with frozen(self.critic), self._actor_training():
            actor_loss = self.actor_loss(batch)
            _step(self.actor_optimizer, actor_loss)
        # Targets (the actor's and every critic's) follow the online networks slowly.
        polyak_update(self._targets, self._onlines, self.config.tau)
        return actor_loss

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
        """Every module whose tensors checkpoints and model files hold, by the name they use
        (TD3 adds `critic2` and `critic2_target`; normalize_obs the normaliser, `obs_norm`)."""
        nets: dict[str, nn.Module] = {
            "actor": self.actor,
            "critic": self.critic,
            "actor_target": self.actor_target,
            "critic_target": self.critic_target,
        }
        for i in range(1, len(self.critics)):
            nets[f"critic{i + 1}"] = self.critics[i]
            nets[f"critic{i + 1}_target"] = self.critic_targets[i]
        if self.obs_norm is not None:
            nets["obs_norm"] = self.obs_norm
        return nets

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor_optimizer": self.actor_optimizer, "critic_optimizer": self.critic_optimizer}

    def state_dict(self) -> CheckpointContents:
        """Everything this agent has learned or drawn, as a checkpoint holds it: the networks'
        tensors (`networks()` names), the optimisers' moments (their tensors under
        `actor_optimizer.*`/`critic_optimizer.*`, the rest in `values["optimizers"]`), the best
        actor and its normaliser (`best_actor.*`, `best_obs_norm.*`), the exploration noise
        (`values["noise"]`) and TD3's target-smoothing generator (`target_noise_rng`). The
        tensors are the live ones, as `nn.Module.state_dict` gives them: save or load them
        before this agent learns on."""
        tensors = network_tensors(self.networks())
        optimizers = {}
        for name, optimizer in self.optimizers().items():
            flat, optimizers[name] = optimizer_to_files(name, optimizer)
            tensors.update(flat)
        best = {"best_actor": self.best_actor, "best_obs_norm": self.best_obs_norm}
        for prefix, kept in best.items():
            tensors.update({f"{prefix}.{k}": v for k, v in (kept or {}).items()})
        arrays = {"target_noise_rng": self.target_noise_rng.get_state().numpy()}
        values = {"optimizers": optimizers, "noise": self.noise.state_dict()}
        return CheckpointContents(tensors, arrays, values)

    def load_state_dict(self, contents: CheckpointContents) -> None:
        """Continue from what `state_dict` gave (extra keys, the rest of a checkpoint, are
        ignored), copying it: nothing of `contents` is kept. ValueError, KeyError or
        RuntimeError if it does not fit this agent."""
        tensors, arrays, values = contents
        for name, net in self.networks().items():
            net.load_state_dict(subtree(tensors, name))
        for name, optimizer in self.optimizers().items():
            flat = optimizer_from_files(name, optimizer, tensors, values["optimizers"][name])
            self.load_optimizer_state(name, flat)
        best = {k: v.clone() for k, v in subtree(tensors, "best_actor").items()}
        best_norm = {k: v.clone() for k, v in subtree(tensors, "best_obs_norm").items()}
        self.best_actor, self.best_obs_norm = best or None, best_norm or None
        self.noise.load_state_dict(values["noise"])
        if "target_noise_rng" in arrays:  # checkpoints before TD3 have none (and DDPG uses none)
            rng_state = torch.as_tensor(arrays["target_noise_rng"], dtype=torch.uint8)
            self.target_noise_rng.set_state(rng_state)

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
