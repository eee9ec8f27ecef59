"""The non-finite guard: a NaN or infinity stops the run with one line that names its source."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ddpg.errors import NonFiniteError

LOSS_KEYS = ("critic_loss", "actor_loss", "q_mean")
ADVICE = "lower the learning rate or check rewards"


def check_transition(next_obs: np.ndarray, reward: Any, step: int) -> None:
    """Observations as stored (float32: an overflow is inf) and rewards, after env step `step`."""
    reward_ok = np.isfinite(np.asarray(reward, dtype=np.float32)).all()  # stored as float32
    if not (reward_ok and np.isfinite(next_obs).all()):
        what = "observation" if reward_ok else "reward"
        raise NonFiniteError(f"the environment returned a non-finite {what} at step {step}")


def check_reset(obs: np.ndarray, episode: int, step: int) -> None:
    if not np.isfinite(obs).all():
        raise NonFiniteError(
            "the environment returned a non-finite observation on reset "
            f"(episode {episode}, step {step})"
        )


def check_losses(sums: dict[str, Any], episode: int, step: int) -> dict[str, float]:
    """Update-metric sums as floats (one host sync); a NaN or inf in any update shows here."""
    out = {key: float(value) for key, value in sums.items()}
    for key in LOSS_KEYS:
        if not math.isfinite(out.get(key, 0.0)):
            raise NonFiniteError(
                f"the {key.replace('_', ' ')} became non-finite during episode {episode} "
                f"(step {step}); {ADVICE}"
            )
    return out


def action_error(step: int, bad_weights: str | None) -> NonFiniteError:
    where = f" (non-finite weights in {bad_weights})" if bad_weights else ""
    return NonFiniteError(f"the actor produced a non-finite action at step {step}{where}; {ADVICE}")
