"""`ddpg train --resume`: which checkpoint a run goes on from, and what it refuses.

It restores the newest checkpoint that verifies, skipping damaged and half-written ones (and a run
keeps only its two newest). It refuses, in one line and changing nothing on disk, a directory that
is not a run, a run without a valid checkpoint, and any changed hyperparameter; a larger budget is
allowed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import assert_one_line_error, make_config, run_cli, snapshot
from test_reproducibility import RESUME, assert_identical_runs, run_in_one_go

from ddpg.checkpoints import list_checkpoints, write_config
from ddpg.config import Config
from ddpg.train import Trainer


def test_only_newest_checkpoints_are_kept(tmp_path: Path) -> None:
    config = make_config(RESUME, total_steps=500, checkpoint_every=100, learning_starts=100)
    trainer = Trainer(config, tmp_path / "run")
    trainer.run()
    trainer.close()
    names = [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")]
    assert names == ["step-0000000500", "step-0000000400"]
    leftovers = [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()]
    assert sorted(leftovers) == sorted(names)  # no temporary directories left behind


# -- damaged checkpoints: `ddpg train --resume` falls back to the newest one that verifies --------
def corrupt_truncate_weights(ckpt: Path) -> None:
    weights = ckpt / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def corrupt_delete_manifest(ckpt: Path) -> None:
    (ckpt / "manifest.json").unlink()


def corrupt_truncate_replay(ckpt: Path) -> None:
    replay = ckpt / "replay_obs.npy"
    replay.write_bytes(replay.read_bytes()[:100])


def corrupt_empty_state(ckpt: Path) -> None:
    (ckpt / "state.json").write_bytes(b"")


CORRUPTIONS = {
    "truncated-weights": corrupt_truncate_weights,  # as if SIGKILLed mid-write
    "deleted-manifest": corrupt_delete_manifest,
    "truncated-replay": corrupt_truncate_replay,
    "empty-state": corrupt_empty_state,
}


def interrupted_run(tmp_path: Path) -> tuple[Config, Path]:
    """A run stopped at step 450 with checkpoints at 300 and 450 (both mid-episode)."""
    config = make_config(RESUME, total_steps=500, checkpoint_every=150, learning_starts=100)
    run_dir = tmp_path / "run"
    trainer = Trainer(config, run_dir)
    write_config(run_dir, config.to_dict(), {"preset": None})
    trainer.run(max_steps=450)
    trainer.close()
    names = [p.name for p in list_checkpoints(run_dir / "checkpoints")]
    assert names == ["step-0000000450", "step-0000000300"]
    return config, run_dir


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_resume_skips_damaged_newest_checkpoint(corruption: str, tmp_path: Path) -> None:
    config, run_dir = interrupted_run(tmp_path)
    CORRUPTIONS[corruption](run_dir / "checkpoints" / "step-0000000450")
    rc, out, err = run_cli(["train", "--resume", run_dir])
    assert rc == 0, err
    assert "skipped a damaged checkpoint" in out and "step-0000000450" in out, out
    assert "resumed from" in out and "step-0000000300" in out and "at step 300" in out, out
    if corruption == "truncated-weights":
        # Falling back to the older checkpoint still ends bit-identical.
        run_in_one_go(config, tmp_path / "whole")
        assert_identical_runs(tmp_path / "whole", run_dir)


def test_resume_ignores_leftover_temporary_checkpoint(tmp_path: Path) -> None:
    _, run_dir = interrupted_run(tmp_path)
    checkpoints = run_dir / "checkpoints"
    # A newer checkpoint that was being written when the process died, complete or not.
    shutil.copytree(checkpoints / "step-0000000450", checkpoints / ".tmp-step-0000000480-4242")
    (checkpoints / ".tmp-step-0000000490-4243").mkdir()
    (checkpoints / ".tmp-step-0000000490-4243" / "weights.safetensors").write_bytes(b"\0" * 10)
    rc, out, err = run_cli(["train", "--resume", run_dir])
    assert rc == 0, err
    assert "skipped" not in out
    assert "step-0000000450" in out and "at step 450" in out, out


def test_resume_with_all_checkpoints_damaged_fails_in_one_line(tmp_path: Path) -> None:
    _, run_dir = interrupted_run(tmp_path)
    corrupt_truncate_weights(run_dir / "checkpoints" / "step-0000000450")
    corrupt_delete_manifest(run_dir / "checkpoints" / "step-0000000300")
    before = snapshot(run_dir)
    rc, _, err = run_cli(["train", "--resume", run_dir])
    assert_one_line_error(rc, err, "no valid checkpoint")
    assert snapshot(run_dir) == before, "a failed resume changed the run directory"


# -- refusals ------------------------------------------------------------------------------------
def test_resume_of_dir_without_checkpoints(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = Config(
        env_id="Pendulum-v1", total_steps=60, hidden_size=8, batch_size=8, buffer_size=1000
    )
    write_config(run_dir, config.to_dict(), {"preset": None})
    (run_dir / "metrics.csv").write_text("step,episode\n1,2\n")
    before = snapshot(run_dir)
    rc, _, err = run_cli(["train", "--resume", run_dir])
    assert_one_line_error(rc, err, "no valid checkpoint")
    assert snapshot(run_dir) == before, "a file was created or changed"


def test_resume_of_missing_or_foreign_dir(tmp_path: Path) -> None:
    rc, _, err = run_cli(["train", "--resume", tmp_path / "nope"])
    assert_one_line_error(rc, err, "not a run directory")
    assert not (tmp_path / "nope").exists()
    (tmp_path / "empty").mkdir()
    rc, _, err = run_cli(["train", "--resume", tmp_path / "empty"])
    assert_one_line_error(rc, err, "not a run directory")
    assert list((tmp_path / "empty").iterdir()) == []


@pytest.mark.parametrize(
    "changed",
    [
        ["--gamma", "0.5"],
        ["--hidden-size", "16"],
        ["--seed", "1"],
        ["--env", "LunarLanderContinuous-v3"],
        ["--preset", "pendulum"],
        ["--run-dir", "elsewhere"],
        ["--overwrite"],
    ],
)
def test_resume_with_changed_hyperparameter_refused(changed: list[str], finished_run: Path) -> None:
    before = snapshot(finished_run)
    rc, _, err = run_cli(["train", "--resume", finished_run, *changed])
    assert_one_line_error(rc, err, "cannot be changed when resuming")
    assert snapshot(finished_run) == before
    assert not Path("elsewhere").exists()


def test_resume_with_larger_budget_is_allowed(finished_run: Path) -> None:
    rc, out, err = run_cli(["train", "--resume", finished_run, "--total-steps", "80"])
    assert rc == 0, err
    assert (finished_run / "checkpoints" / "step-0000000080").is_dir()
