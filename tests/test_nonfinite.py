"""The non-finite guard: a NaN or infinity from the environment, the losses or the weights stops
training with a NonFiniteError that names its source, the CLI prints one line and exits non-zero,
and the last good checkpoint stays loadable."""

from __future__ import annotations

from pathlib import Path

import envs_for_tests  # noqa: F401 (registers the ddpgtest/ environments)
import numpy as np
import pytest
import torch
from conftest import flags, make_config, run_cli

from ddpg.checkpoints import list_checkpoints, read_checkpoint, read_config
from ddpg.config import Config
from ddpg.errors import NonFiniteError
from ddpg.train import Trainer

EPISODE = envs_for_tests.EPISODE_STEPS  # 50
NAN_AT = 130  # the step at which NanObs-v0 / NanReward-v0 misbehave


# 400 steps of 50-step episodes, learning from step 20, a checkpoint after every episode.
NONFINITE = dict(
    total_steps=400,
    learning_starts=20,
    batch_size=16,
    buffer_size=1000,
    hidden_size=8,
    batch_norm=False,
    checkpoint_every=EPISODE,
    eval_episodes=1,
)


def cli_args(env_id: str, run_dir: Path, *extra: str) -> list[str]:
    """`ddpg train` with the NONFINITE values."""
    return [
        "train",
        *flags(
            preset="pendulum",
            env=env_id,
            total_steps=400,
            learning_starts=20,
            batch_size=16,
            hidden_size=8,
            checkpoint_every=EPISODE,
            eval_every=0,
            eval_episodes=1,
            torch_threads=1,
        ),
        "--quiet",
        "--run-dir",
        str(run_dir),
        *extra,
    ]


def assert_last_checkpoint_good(run_dir: Path, cfg: Config, step: int) -> None:
    """The newest checkpoint verifies and restores, at the last checkpoint step before `step`."""
    newest = list_checkpoints(run_dir / "checkpoints")[0]
    expected = (step - 1) // cfg.checkpoint_every * cfg.checkpoint_every
    assert newest.name == f"step-{expected:010d}"
    tensors, arrays, _ = read_checkpoint(newest)
    assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())
    assert all(np.isfinite(a).all() for k, a in arrays.items() if k.startswith("replay_"))
    trainer = Trainer(cfg, run_dir)
    path, skipped = trainer.restore()
    trainer.close()
    assert path == newest and skipped == [] and trainer.state.step == expected


# -- the environment -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("env_id", "what"), [("ddpgtest/NanObs-v0", "observation"), ("ddpgtest/NanReward-v0", "reward")]
)
def test_trainer_stops_on_nan_from_env(env_id: str, what: str, tmp_path: Path) -> None:
    cfg = make_config(NONFINITE, env_id=env_id)
    trainer = Trainer(cfg, tmp_path / "run")
    with pytest.raises(NonFiniteError, match=rf"non-finite {what} at step {NAN_AT}\b"):
        trainer.run()
    trainer.close()
    # Nothing non-finite reached the replay buffer, the counters stopped before the bad step.
    assert trainer.state.step == NAN_AT - 1
    assert len(trainer.buffer) == NAN_AT - 1
    assert all(torch.isfinite(t).all() for t in trainer.buffer.storage.values())
    assert_last_checkpoint_good(tmp_path / "run", cfg, NAN_AT)


@pytest.mark.parametrize(
    ("env_id", "what"), [("ddpgtest/NanObs-v0", "observation"), ("ddpgtest/NanReward-v0", "reward")]
)
def test_cli_reports_nan_from_env_in_one_line(env_id: str, what: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    rc, _, err = run_cli(cli_args(env_id, run_dir))
    assert rc == NonFiniteError.exit_code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ddpg: error: "), err
    assert f"non-finite {what}" in lines[0] and str(NAN_AT) in lines[0]
    assert not (run_dir / "model_final.safetensors").exists()
    saved = Config.from_dict(read_config(run_dir)["config"])
    assert_last_checkpoint_good(run_dir, saved, NAN_AT)
    # The interrupted run can be resumed from its last good checkpoint (it fails again at the
    # same environment fault, with the same one-line message, and keeps that checkpoint).
    rc, _, err = run_cli(["train", "--resume", str(run_dir), "--quiet"])
    assert rc == NonFiniteError.exit_code
    assert len(err.strip().splitlines()) == 1 and f"non-finite {what}" in err


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize(
    ("env_id", "what"),
    [
        ("ddpgtest/Float32OverflowObs-v0", "observation"),
        ("ddpgtest/Float32OverflowReward-v0", "reward"),
    ],
)
def test_values_that_overflow_float32_are_non_finite(env_id: str, what: str) -> None:
    """1e40 is a finite float64 but infinite in the float32 replay buffer: it must be caught
    as the environment's fault before it is stored, not later as a diverged loss."""
    trainer = Trainer(make_config(NONFINITE, env_id=env_id), None)
    with pytest.raises(NonFiniteError, match=f"non-finite {what}"):
        trainer.run()
    trainer.close()
    assert trainer.state.step < 5
    assert all(torch.isfinite(t).all() for t in trainer.buffer.storage.values())


def test_nan_observation_on_reset_is_named(tmp_path: Path) -> None:
    """NanReset-v0 returns a NaN observation from its second reset (step 50, before any NaN
    could come from the agent): the error must name the observation, not a later symptom."""
    trainer = Trainer(make_config(NONFINITE, env_id="ddpgtest/NanReset-v0"), tmp_path / "run")
    with pytest.raises(NonFiniteError, match="observation") as info:
        trainer.run()
    trainer.close()
    assert "loss" not in str(info.value) and "reward" not in str(info.value)
    assert trainer.state.step == EPISODE  # stopped at the reset, nothing after it was trained on
    assert all(torch.isfinite(t).all() for t in trainer.buffer.storage.values())


# -- the learner ---------------------------------------------------------------------------------
def test_huge_rewards_make_the_loss_non_finite_and_the_error_names_it(tmp_path: Path) -> None:
    """Rewards of -1e38 are finite (even in float32), but the squared TD error overflows: the
    error must name the loss, not blame the environment for what the agent then does."""
    cfg = make_config(NONFINITE, env_id="ddpgtest/HugeReward-v0")
    trainer = Trainer(cfg, tmp_path / "run")
    with pytest.raises(NonFiniteError, match="loss") as info:
        trainer.run()
    trainer.close()
    assert "environment" not in str(info.value)
    # The checkpoints written before the divergence are finite and loadable; none after it.
    for path in list_checkpoints(tmp_path / "run" / "checkpoints"):
        tensors, _, state = read_checkpoint(path)
        assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())
        assert state["step"] <= trainer.state.step


def test_huge_learning_rate_is_caught_and_not_blamed_on_the_env(tmp_path: Path) -> None:
    cfg = make_config(
        NONFINITE, env_id="Pendulum-v1", actor_lr=1e12, critic_lr=1e12, total_steps=600
    )
    trainer = Trainer(cfg, tmp_path / "run")
    with pytest.raises(NonFiniteError) as info:
        trainer.run()
    trainer.close()
    message = str(info.value)
    assert "environment" not in message, message
    assert any(word in message for word in ("loss", "weights", "action")), message


def test_cli_reports_divergence_in_one_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    rc, _, err = run_cli(cli_args("ddpgtest/HugeReward-v0", run_dir))
    assert rc == NonFiniteError.exit_code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ddpg: error: "), err
    assert "loss" in lines[0]
    assert not (run_dir / "model_final.safetensors").exists()


def test_non_finite_weights_refuse_checkpoint_and_keep_the_last(tmp_path: Path) -> None:
    cfg = make_config(NONFINITE, env_id="Pendulum-v1", total_steps=200, checkpoint_every=100)
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.run(max_steps=100)
    before = {
        p.name: (p / "manifest.json").read_bytes()
        for p in list_checkpoints(trainer.run_dir / "checkpoints")
    }
    with torch.no_grad():
        trainer.agent.critic.net[0].weight[0, 0] = float("inf")
    trainer.state.step += 1  # a new step, so a new checkpoint would be written
    with pytest.raises(NonFiniteError, match=r"critic\.net\.0\.weight"):
        trainer.save_checkpoint()
    trainer.close()
    after = {
        p.name: (p / "manifest.json").read_bytes()
        for p in list_checkpoints(trainer.run_dir / "checkpoints")
    }
    assert after == before
    leftovers = [p.name for p in (trainer.run_dir / "checkpoints").iterdir()]
    assert sorted(leftovers) == sorted(before)  # no half-written temporary directory either
