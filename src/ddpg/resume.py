"""Saving a run to a checkpoint and restoring it exactly.

A checkpoint holds the `TrainState` whole, the networks (four, six for TD3), both optimisers'
states, the best actor, the replay buffer with its sampler, the noise processes, the warm-up
generator, TD3's target-smoothing generator, torch's RNG and the byte offsets of the metrics
files (file layout: ddpg.checkpoints).

Environments cannot be serialised, so each training episode k starts from
`reset(seed=episode_seed(seed, TRAIN_STREAM, k))`; on resume the episode in progress in each
environment is rebuilt by resetting with its seed and replaying its actions, and must end on the
saved observation bit for bit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ddpg import __version__
from ddpg.checkpoints import (
    latest_checkpoint,
    network_tensors,
    optimizer_from_files,
    optimizer_to_files,
    save_checkpoint,
    subtree,
)
from ddpg.config import RESUMABLE_FIELDS, Config
from ddpg.envs import TRAIN_STREAM, episode_seed
from ddpg.errors import CheckpointError, NonFiniteError, RunDirError
from ddpg.state import TrainState

if TYPE_CHECKING:
    from ddpg.train import Trainer


def write_checkpoint(trainer: Trainer) -> Path:
    """Checkpoint `trainer` into RUN_DIR/checkpoints/step-N/ (atomically)."""
    assert trainer.run_dir is not None
    agent = trainer.agent
    bad = agent.non_finite_weights()
    if bad is not None:
        raise NonFiniteError(f"weights became non-finite ({bad}); the last checkpoint is kept")
    tensors = network_tensors(agent.networks())
    optimizers = {}
    for name, optimizer in agent.optimizers().items():
        flat, optimizers[name] = optimizer_to_files(name, optimizer)
        tensors.update(flat)
    if agent.best_actor is not None:
        tensors.update({f"best_actor.{k}": v for k, v in agent.best_actor.items()})
    if agent.best_obs_norm is not None:
        tensors.update({f"best_obs_norm.{k}": v for k, v in agent.best_obs_norm.items()})
    values, arrays = trainer.state.to_files()
    arrays.update({f"replay_{k}": v for k, v in trainer.buffer.state_dict().items()})
    arrays["torch_rng"] = torch.get_rng_state().numpy()
    arrays["target_noise_rng"] = agent.target_noise_rng.get_state().numpy()
    values |= {
        "elapsed_s": trainer.elapsed(),  # this session's time too
        "library_version": __version__,
        "config": trainer.config.to_dict(),
        "optimizers": optimizers,
        "noise": agent.noise.state_dict(),
        "rng": trainer.rng.bit_generator.state,
        "log_positions": trainer.log.positions(),
    }
    directory = trainer.run_dir / "checkpoints"
    return save_checkpoint(directory, trainer.state.step, tensors, arrays, values)


def restore_checkpoint(trainer: Trainer) -> tuple[Path, list[str]]:
    """Load the newest valid checkpoint of `trainer`'s run; return it and what was skipped.
    Damaged newer checkpoints are renamed `damaged-step-N`: kept for a look, and out of the
    way of the retention of good ones."""
    assert trainer.run_dir is not None
    path, (tensors, arrays, values), skipped = latest_checkpoint(trainer.run_dir / "checkpoints")
    _check_same_run(trainer, path, values)
    try:
        _restore(trainer, tensors, arrays, values)
    except CheckpointError:
        raise
    except Exception as exc:  # checksums passed, so the contents are foreign or hand-made
        raise CheckpointError(f"{path}: does not match this run ({exc})") from None
    reasons = []
    for damaged, reason in skipped:
        aside = damaged.with_name(f"damaged-{damaged.name}")
        os.replace(damaged, aside)
        reasons.append(f"{reason} (kept as {aside})")
    return path, reasons


def _check_same_run(trainer: Trainer, path: Path, values: dict[str, Any]) -> None:
    """The run's config.json must be the config the checkpoint was made with (budgets aside):
    a hand edit would silently change a run halfway."""
    try:
        saved = Config.from_dict(values["config"]).to_dict()
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: holds no valid config ({exc})") from None
    current = trainer.config.to_dict()
    if current["algo"] != saved["algo"]:
        raise RunDirError(
            f"{path} is a checkpoint of a {saved['algo']} run; it cannot be resumed as "
            f"{current['algo']}"
        )
    changed = [k for k in current if k not in RESUMABLE_FIELDS and current[k] != saved[k]]
    if changed:
        k = changed[0]
        raise RunDirError(
            f"config.json of {trainer.run_dir} differs from its checkpoint in {k} "
            f"({current[k]!r} in config.json, {saved[k]!r} in {path.name}): a run's settings "
            "cannot change halfway; undo the edit (budgets change with --total-steps/--episodes)"
        )


def _restore(
    trainer: Trainer,
    tensors: dict[str, torch.Tensor],
    arrays: dict[str, np.ndarray],
    values: dict[str, Any],
) -> None:
    agent, info, config = trainer.agent, trainer.info, trainer.config
    state = TrainState.from_files(values, arrays, config.num_envs, info.obs_dim, info.act_dim)
    for name, net in agent.networks().items():
        net.load_state_dict(subtree(tensors, name))
    for name, optimizer in agent.optimizers().items():
        flat = optimizer_from_files(name, optimizer, tensors, values["optimizers"][name])
        agent.load_optimizer_state(name, flat)
    agent.best_actor = subtree(tensors, "best_actor") or None
    agent.best_obs_norm = subtree(tensors, "best_obs_norm") or None
    agent.noise.load_state_dict(values["noise"])
    trainer.buffer.load_state_dict(
        {k[len("replay_") :]: v for k, v in arrays.items() if k.startswith("replay_")}
    )
    torch.set_rng_state(torch.as_tensor(arrays["torch_rng"], dtype=torch.uint8))
    if "target_noise_rng" in arrays:  # checkpoints before TD3 have none (and DDPG uses none)
        rng_state = torch.as_tensor(arrays["target_noise_rng"], dtype=torch.uint8)
        agent.target_noise_rng.set_state(rng_state)
    trainer.rng.bit_generator.state = values["rng"]
    trainer.log.rewind(values["log_positions"], state.step)
    _replay_episodes(trainer, state)
    trainer.restart_clock(state)
    if trainer.graphed is not None:
        trainer.graphed.invalidate()  # the optimisers' state tensors were replaced


def _replay_episodes(trainer: Trainer, state: TrainState) -> None:
    """Rebuild each environment's episode in progress: reset the environment with the episode's
    seed and replay its actions, checking that it ends where it was."""
    if not state.in_episode.any():
        return
    # A first reset of every environment readies the vector env for partial resets later; each
    # episode still starts from its own seed below or when the loop starts it.
    trainer.env.reset()
    for i in np.flatnonzero(state.in_episode):
        env = trainer.env.envs[i]
        seed = episode_seed(trainer.config.seed, TRAIN_STREAM, int(state.episode_ids[i]))
        replayed, _ = env.reset(seed=seed)
        for action in state.episode_actions[i]:
            replayed, *_ = env.step(action)
        if not np.array_equal(np.asarray(replayed, dtype=np.float32), state.obs[i]):
            raise CheckpointError(
                "the environment did not replay the interrupted episode identically "
                "(non-deterministic environment); cannot resume mid-episode"
            )
