"""Run directories: starting, resuming and finishing a run (of `ddpg train` or a sweep trial).

A run directory holds config.json, the metrics files, TensorBoard events, checkpoints/, and at
the end model_final.safetensors, model_best.safetensors and evaluation.json.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

from ddpg.agent import resolve_device
from ddpg.atomic import atomic_write_json
from ddpg.checkpoints import list_checkpoints, model_meta, network_tensors, save_model
from ddpg.config import RESUMABLE_FIELDS, Config, option_name
from ddpg.envs import FINAL_EVAL_STREAM, check_env, check_her, make_env
from ddpg.errors import CheckpointError, RunDirError
from ddpg.evaluation import evaluate
from ddpg.links import read_run_config
from ddpg.lock import LOCK_NAME, RunLock
from ddpg.loggers import Console
from ddpg.outputs import foreign_entries
from ddpg.policy import Policy
from ddpg.resources import check_memory
from ddpg.runconfig import write_config
from ddpg.train import Trainer


def start_run(
    config: Config, run_dir: Path, preset: str | None, console: Console, overwrite: bool = False
) -> Trainer:
    """Check the environment, the device and the memory the run needs; then (with `overwrite`,
    after emptying an earlier run there) create the run directory and its config.json, and
    return a Trainer writing into it. A start that fails leaves no run directory behind."""
    env = make_env(config.env_id, config.max_episode_steps)
    info = check_env(env)
    if config.her:
        check_her(env, info, config.env_id)
    env.close()
    check_memory(config, info.obs_dim, info.act_dim, resolve_device(config.device))
    if overwrite and run_dir.exists():
        clear_run_dir(run_dir)
    created = not run_dir.exists()
    trainer = None
    try:
        trainer = Trainer(config, run_dir, console=console)
        write_config(run_dir, config.to_dict(), {"preset": preset})
    except BaseException:
        if trainer is not None:
            trainer.close()
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return trainer


def clear_run_dir(run_dir: Path, check_only: bool = False) -> None:
    """Empty `run_dir` for --overwrite. Only a run of this library that holds nothing but the
    files it made, at any depth (no symbolic link, no run or sweep nested in it), is not in
    use, and is not the current directory, one of its parents or the home directory;
    `check_only` checks all that and removes nothing."""
    resolved = run_dir.resolve()
    cwd = Path.cwd().resolve()
    if resolved in (cwd, Path.home().resolve(), *cwd.parents):
        raise RunDirError(
            f"refusing to overwrite {run_dir}: it is the current directory, one of its parents "
            "or the home directory"
        )
    try:
        read_run_config(run_dir)
    except CheckpointError:
        raise RunDirError(
            f"{run_dir} is not a run directory of this library (no valid config.json); "
            "--overwrite only replaces runs"
        ) from None
    foreign = foreign_entries(run_dir)
    if foreign:
        raise RunDirError(
            f"{run_dir} holds files this library did not make ({', '.join(foreign[:3])}"
            f"{', ...' if len(foreign) > 3 else ''}); move them or choose another --run-dir"
        )
    lock = RunLock(run_dir)  # refuses a run that is in use
    try:
        for entry in [] if check_only else list(run_dir.iterdir()):
            if entry.name == LOCK_NAME:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    finally:
        lock.release()


def resume_run(
    run_dir: Path, overrides: dict[str, Any], console: Console
) -> tuple[Trainer, Path, list[str]]:
    """A Trainer restored from the newest valid checkpoint of `run_dir`, with budget
    `overrides`; also the checkpoint used and the reasons newer ones were skipped."""
    saved = read_run_config(run_dir)
    changed = sorted(set(overrides) - set(RESUMABLE_FIELDS))
    if changed:
        names = ", ".join(option_name(name) for name in changed)
        raise RunDirError(f"{names} cannot be changed when resuming; only budgets can")
    try:
        config = Config.from_dict(saved["config"])
    except (TypeError, ValueError) as exc:
        raise RunDirError(f"{run_dir}/config.json holds no valid config ({exc})") from None
    config = config.replace(**overrides)  # an invalid budget is the option's fault
    if not list_checkpoints(run_dir / "checkpoints"):
        raise RunDirError(f"{run_dir} has no valid checkpoint to resume from")
    trainer = Trainer(config, run_dir, console=console)
    try:
        path, skipped = trainer.restore()
        _check_budget(trainer, overrides)
        if overrides:  # config.json follows the new budget
            write_config(run_dir, config.to_dict(), {"preset": saved.get("preset")})
    except BaseException:
        trainer.close()
        raise
    return trainer, path, skipped


def _check_budget(trainer: Trainer, overrides: dict[str, Any]) -> None:
    """A new budget on resume must lie beyond where the run is: a smaller one would only
    rewrite config.json with a budget the run has already passed."""
    state = trainer.state
    for name, done in (("total_steps", state.step), ("episodes", state.episode)):
        budget = overrides.get(name)
        if budget is not None and budget <= done:
            raise RunDirError(
                f"{option_name(name)} {budget} does not continue the run: it is at "
                f"{name.replace('_', ' ')} {done} already"
            )


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
    tensors |= agent.best_policy()
    score = state.best_score if math.isfinite(state.best_score) else None
    save_model(best, tensors, meta | {"best_step": state.best_step, "best_score": score})
    return final, best


def final_evaluation(trainer: Trainer) -> dict[str, Any]:
    """Evaluate the best and the final policy on fresh start states; write evaluation.json."""
    c, s, info = trainer.config, trainer.state, trainer.info
    best = Policy.from_tensors(
        c,
        info.obs_layout,
        info.action_low,
        info.action_high,
        trainer.agent.best_policy(),
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
        info.obs_layout.to_meta(),
    )
