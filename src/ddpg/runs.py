"""Run directories: starting, resuming and finishing a run (of `ddpg train` or a sweep trial).

A run directory holds config.json, the metrics files, TensorBoard events, checkpoints/, and at
the end model_final.safetensors, model_best.safetensors and evaluation.json.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ddpg.checkpoints import (
    atomic_write_json,
    list_checkpoints,
    model_meta,
    network_tensors,
    read_config,
    save_model,
    write_config,
)
from ddpg.config import Config
from ddpg.envs import FINAL_EVAL_STREAM, make_env
from ddpg.errors import RunDirError
from ddpg.evaluation import evaluate
from ddpg.loggers import Console
from ddpg.policy import Policy
from ddpg.train import Trainer

# Fields that may change when a run is resumed: budgets and output only.
RESUMABLE_FIELDS = ("total_steps", "episodes", "log_every", "render_from")


def start_run(config: Config, run_dir: Path, preset: str | None, console: Console) -> Trainer:
    """Check that the environment can be made, then create the run directory and its
    config.json, and return a Trainer writing into it."""
    make_env(config.env_id, config.max_episode_steps).close()  # before anything is created
    trainer = Trainer(config, run_dir, console=console)
    write_config(run_dir, config.to_dict(), {"preset": preset})
    return trainer


def resume_run(
    run_dir: Path, overrides: dict[str, Any], console: Console
) -> tuple[Trainer, Path, list[str]]:
    """A Trainer restored from the newest valid checkpoint of `run_dir`, with budget
    `overrides`; also the checkpoint used and the reasons newer ones were skipped."""
    saved = read_config(run_dir)
    changed = sorted(set(overrides) - set(RESUMABLE_FIELDS))
    if changed:
        names = ", ".join("--" + name.replace("_", "-") for name in changed)
        raise RunDirError(f"{names} cannot be changed when resuming; only budgets can")
    config = Config.from_dict(saved["config"]).replace(**overrides)
    if not list_checkpoints(run_dir / "checkpoints"):
        raise RunDirError(f"{run_dir} has no valid checkpoint to resume from")
    trainer = Trainer(config, run_dir, console=console)
    try:
        path, skipped = trainer.restore()
    except BaseException:
        trainer.close()
        raise
    return trainer, path, skipped


def preset_of(run_dir: Path) -> str | None:
    preset = read_config(run_dir).get("preset")
    return preset if isinstance(preset, str) else None


def finish_run(trainer: Trainer) -> dict[str, Any]:
    """Write the model files, evaluate the best and the final policy on fresh start states and
    write evaluation.json; return its contents."""
    save_models(trainer)
    return final_evaluation(trainer)


def save_models(trainer: Trainer) -> tuple[Path, Path]:
    """RUN_DIR/model_final.safetensors and model_best.safetensors (the networks, with the best
    actor in the latter)."""
    assert trainer.run_dir is not None
    agent, state = trainer.agent, trainer.state
    meta = _meta(trainer)
    final, best = (
        trainer.run_dir / "model_final.safetensors",
        trainer.run_dir / "model_best.safetensors",
    )
    tensors = network_tensors(agent.networks())
    save_model(final, tensors, meta)
    tensors |= {f"actor.{k}": v for k, v in agent.best_or_current_actor().items()}
    score = state.best_score if math.isfinite(state.best_score) else None
    save_model(best, tensors, meta | {"best_step": state.best_step, "best_score": score})
    return final, best


def final_evaluation(trainer: Trainer) -> dict[str, Any]:
    """Evaluate the best and the final policy on fresh start states; write evaluation.json."""
    c, s, info = trainer.config, trainer.state, trainer.info
    best = Policy.from_weights(
        c,
        info.obs_dim,
        info.action_low,
        info.action_high,
        trainer.agent.best_or_current_actor(),
        trainer.agent.device,
    )
    results = {
        name: evaluate(policy, trainer.eval_env, c.eval_episodes, c.seed, FINAL_EVAL_STREAM)
        for name, policy in (("best", best), ("final", trainer.policy))
    }
    summary = {
        "env_id": c.env_id,
        "steps": s.step,
        "episodes": s.episode,
        "best_step": s.best_step,
        "best_selection": "periodic evaluation" if c.eval_every else "running average of 100",
        "target_reached": s.target_reached,
        "wall_time_s": trainer.elapsed(),
        **{name: result.to_dict() for name, result in results.items()},
    }
    if trainer.run_dir is not None:
        atomic_write_json(trainer.run_dir / "evaluation.json", summary)
    return summary


def _meta(trainer: Trainer) -> dict[str, Any]:
    info = trainer.info
    return model_meta(
        trainer.config.to_dict(),
        info.obs_dim,
        info.action_low,
        info.action_high,
        trainer.state.step,
    )
