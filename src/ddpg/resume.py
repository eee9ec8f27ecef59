"""A run's state in checkpoint files and back: the config checks and the damaged checkpoints.

The state comes from the parts of a run, each of which gives and takes its own as
`CheckpointContents` (`state_dict()` / `load_state_dict()`; the Trainer composes them): the
`TrainState` whole, the networks (four, six for TD3), both optimisers' states, the best actor,
the replay buffer with its sampler, the noise processes, the warm-up generator, TD3's
target-smoothing generator, torch's RNG and the byte offsets of the metrics files. This module
adds the config and the library version, and leaves the file layout to ddpg.checkpoints. It
knows nothing of the Trainer.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ddpg import __version__
from ddpg.checkpoints import CheckpointContents, latest_checkpoint, save_checkpoint
from ddpg.config import RESUMABLE_FIELDS, Config
from ddpg.errors import CheckpointError, RunDirError


def write_checkpoint(run_dir: Path, config: Config, contents: CheckpointContents) -> Path:
    """Checkpoint a run of `config` into RUN_DIR/checkpoints/step-N/ (atomically), N being the
    step that `contents` hold."""
    tensors, arrays, values = contents
    values = values | {"library_version": __version__, "config": config.to_dict()}
    return save_checkpoint(run_dir / "checkpoints", values["step"], tensors, arrays, values)


def restore_checkpoint(
    run_dir: Path, config: Config, load: Callable[[CheckpointContents], object]
) -> tuple[Path, list[str]]:
    """Give `load` the contents of the newest valid checkpoint of the run of `config` in
    `run_dir`; return that checkpoint and what was skipped. Damaged newer checkpoints are
    renamed `damaged-step-N` once the load has worked: kept for a look, and out of the way of
    the retention of good ones."""
    path, contents, skipped = latest_checkpoint(run_dir / "checkpoints")
    _check_same_run(run_dir, config, path, contents.values)
    try:
        load(contents)
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


def _check_same_run(run_dir: Path, config: Config, path: Path, values: dict[str, Any]) -> None:
    """The run's config.json must be the config the checkpoint was made with (budgets aside):
    a hand edit would silently change a run halfway."""
    try:
        saved = Config.from_dict(values["config"]).to_dict()
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: holds no valid config ({exc})") from None
    current = config.to_dict()
    if current["algo"] != saved["algo"]:
        raise RunDirError(
            f"{path} is a checkpoint of a {saved['algo']} run; it cannot be resumed as "
            f"{current['algo']}"
        )
    changed = [k for k in current if k not in RESUMABLE_FIELDS and current[k] != saved[k]]
    if changed:
        k = changed[0]
        raise RunDirError(
            f"config.json of {run_dir} differs from its checkpoint in {k} "
            f"({current[k]!r} in config.json, {saved[k]!r} in {path.name}): a run's settings "
            "cannot change halfway; undo the edit (budgets change with --total-steps/--episodes)"
        )
