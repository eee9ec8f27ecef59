"""Exact resume: a run interrupted (mid-episode, after learning started) and resumed from its
checkpoint ends bit-identical to the same run done in one go.

Everything runs in-process with `ddpg.train.Trainer`: `run(max_steps=K)` writes a checkpoint at
step K; a fresh Trainer on the same run directory restores it and runs to the end of the budget.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import torch

from ddpg.checkpoints import latest_checkpoint, list_checkpoints, read_checkpoint, write_config
from ddpg.cli import main
from ddpg.config import Config
from ddpg.runs import save_models
from ddpg.train import Trainer

WALL = "wall_time_s"


def small_config(**changes) -> Config:
    values = dict(
        env_id="Pendulum-v1",  # 200-step episodes, deterministic dynamics
        total_steps=1600,
        learning_starts=300,
        hidden_size=32,
        batch_norm=False,
        batch_size=32,
        buffer_size=10_000,
        checkpoint_every=0,
        eval_episodes=1,
        torch_threads=1,
        seed=3,
    )
    values.update(changes)
    return Config(**values)


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k != WALL} for row in csv.DictReader(f)]


def run_in_one_go(config: Config, run_dir: Path) -> Trainer:
    trainer = Trainer(config, run_dir)
    trainer.run()
    save_models(trainer)
    trainer.close()
    return trainer


def run_with_interruptions(
    config: Config,
    run_dir: Path,
    stops: list[int],
    mid_episode: list[bool],
    advance_to_mid_episode: bool = False,
) -> Trainer:
    """Stop (checkpoint, drop the Trainer) at each step in `stops`, then resume to the end.
    With `advance_to_mid_episode`, a stop that falls on an episode end moves on to the next
    step (for environments whose episode lengths vary)."""
    trainer = Trainer(config, run_dir)
    for stop, expect_mid in zip(stops, mid_episode, strict=True):
        trainer.run(max_steps=stop)
        while advance_to_mid_episode and not trainer.state.in_episode.any():
            trainer.run(max_steps=trainer.state.step + 1)
        stop = trainer.state.step
        assert trainer.state.in_episode.any() == expect_mid, (
            "the interruption is not where intended"
        )
        trainer.close()
        del trainer
        trainer = Trainer(config, run_dir)
        path, skipped = trainer.restore()
        assert skipped == []
        assert path.name == f"step-{stop:010d}"
        assert trainer.state.step == stop
    trainer.run()
    save_models(trainer)
    trainer.close()
    return trainer


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert torch.equal(a[key], b[key]), f"tensor {key} differs"


def assert_identical_runs(dir_a: Path, dir_b: Path) -> None:
    from safetensors.torch import load_file

    for name in ("model_final.safetensors", "model_best.safetensors"):
        assert_same_tensors(load_file(dir_a / name), load_file(dir_b / name))
    # The whole final checkpoint: optimiser moments, replay buffer, RNG states, counters.
    ckpt_a = list_checkpoints(dir_a / "checkpoints")[0]
    ckpt_b = list_checkpoints(dir_b / "checkpoints")[0]
    assert ckpt_a.name == ckpt_b.name
    tensors_a, arrays_a, state_a = read_checkpoint(ckpt_a)
    tensors_b, arrays_b, state_b = read_checkpoint(ckpt_b)
    assert_same_tensors(tensors_a, tensors_b)
    assert sorted(arrays_a) == sorted(arrays_b)
    for key in arrays_a:
        assert arrays_a[key].tobytes() == arrays_b[key].tobytes(), f"array {key} differs"
    for state in (state_a, state_b):
        state.pop("elapsed_s")  # wall time, and the CSV byte offsets that depend on its digits
        state.pop("log_positions")
    assert state_a == state_b
    for name in ("metrics.csv", "evaluations.csv"):
        rows_a, rows_b = csv_rows(dir_a / name), csv_rows(dir_b / name)
        assert rows_a == rows_b, f"{name} differs"


def check_exact_resume(
    tmp_path: Path,
    config: Config,
    stops: list[int],
    mid_episode: list[bool],
    advance_to_mid_episode: bool = False,
) -> tuple[Trainer, Trainer]:
    whole = run_in_one_go(config, tmp_path / "whole")
    resumed = run_with_interruptions(
        config, tmp_path / "resumed", stops, mid_episode, advance_to_mid_episode
    )
    assert whole.state.step == resumed.state.step == config.total_steps
    assert whole.state.episode == resumed.state.episode
    assert whole.state.updates == resumed.state.updates > 0
    assert_identical_runs(tmp_path / "whole", tmp_path / "resumed")
    return whole, resumed


def test_resume_mid_episode_is_bit_identical(tmp_path: Path) -> None:
    # 250: before learning starts, mid-episode; 1234: learning, mid-episode; 1400: episode end.
    whole, _ = check_exact_resume(tmp_path, small_config(), [250, 1234, 1400], [True, True, False])
    rows = csv_rows(tmp_path / "whole" / "metrics.csv")
    assert len(rows) == 8 and rows[-1]["step"] == "1600"
    assert rows[-1]["critic_loss"] != ""  # learning really happened


def test_resume_after_buffer_wrapped_is_bit_identical(tmp_path: Path) -> None:
    # 300 transitions: full from step 300; at 600 the write position is 0, at 834 it is 234.
    config = small_config(buffer_size=300, total_steps=1000)
    whole, _ = check_exact_resume(tmp_path, config, [600, 834], [False, True])
    assert len(whole.buffer) == 300 and whole.buffer.pos == 1000 % 300


def test_resume_with_ou_noise_is_bit_identical(tmp_path: Path) -> None:
    # OU noise has memory (its state x) that must survive mid-episode.
    config = small_config(noise="ou", noise_std=0.3, total_steps=1000)
    check_exact_resume(tmp_path, config, [734], [True])


def test_resume_with_periodic_evaluation_is_bit_identical(tmp_path: Path) -> None:
    # Stop right after the evaluation at 800, and mid-episode between evaluations.
    config = small_config(eval_every=400, eval_episodes_during=2, total_steps=1000)
    whole, resumed = check_exact_resume(tmp_path, config, [800, 934], [False, True])
    rows = csv_rows(tmp_path / "whole" / "evaluations.csv")
    assert [r["step"] for r in rows] == ["400", "800"]
    assert whole.state.best_step == resumed.state.best_step is not None


def test_resume_lunarlander_mid_episode_is_bit_identical(tmp_path: Path) -> None:
    # Box2D physics and the env's np_random (engine dispersion) are used inside step(): the
    # replayed episode must reproduce both.
    config = small_config(
        env_id="LunarLanderContinuous-v3",
        total_steps=700,
        learning_starts=200,
        max_episode_steps=400,
    )
    # Episode lengths vary; with seed 3 the 4th episode runs from 317 to 450, so 400 is
    # mid-episode after learning started (a stop on an episode end would move on a step).
    whole, _ = check_exact_resume(tmp_path, config, [400], [True], advance_to_mid_episode=True)
    assert whole.state.episode >= 3


def test_resume_from_older_checkpoint_truncates_logs(tmp_path: Path) -> None:
    """A crash after the periodic checkpoint at 700 (mid-episode) loses steps 701..934 and the
    metrics row of step 800: resuming from 700 must cut metrics.csv back and still end
    bit-identical."""
    config = small_config(checkpoint_every=350, total_steps=1000)
    run_in_one_go(config, tmp_path / "whole")
    run_dir = tmp_path / "resumed"
    trainer = Trainer(config, run_dir)
    trainer.run(max_steps=934)
    trainer.close()
    names = [p.name for p in list_checkpoints(run_dir / "checkpoints")]
    assert names == ["step-0000000934", "step-0000000700"]
    assert csv_rows(run_dir / "metrics.csv")[-1]["step"] == "800"
    shutil.rmtree(run_dir / "checkpoints" / names[0])  # as if the process died before it
    trainer = Trainer(config, run_dir)
    path, _ = trainer.restore()
    assert path.name == "step-0000000700"
    assert trainer.state.in_episode.all()  # mid-episode
    assert csv_rows(run_dir / "metrics.csv")[-1]["step"] == "600"
    trainer.run()
    save_models(trainer)
    trainer.close()
    assert_identical_runs(tmp_path / "whole", run_dir)


def test_restore_latest_checkpoint_state_matches(tmp_path: Path) -> None:
    """The restored Trainer holds exactly the state the checkpoint recorded."""
    config = small_config(total_steps=700)
    trainer = Trainer(config, tmp_path / "run")
    trainer.run(max_steps=650)
    expected = {
        "step": trainer.state.step,
        "episode": trainer.state.episode,
        "episode_returns": trainer.state.episode_returns.tolist(),
        "actions": [len(a) for a in trainer.state.episode_actions],
        "obs": trainer.state.obs.tobytes(),
        "episode_ids": trainer.state.episode_ids.tolist(),
        "started": trainer.state.episodes_started,
        "learning_transitions": trainer.state.learning_transitions,
        "buffer": (len(trainer.buffer), trainer.buffer.pos),
        "updates": trainer.state.updates,
        "recent": list(trainer.state.recent_returns),
    }
    trainer.close()
    restored = Trainer(config, tmp_path / "run")
    restored.restore()
    got = {
        "step": restored.state.step,
        "episode": restored.state.episode,
        "episode_returns": restored.state.episode_returns.tolist(),
        "actions": [len(a) for a in restored.state.episode_actions],
        "obs": restored.state.obs.tobytes(),
        "episode_ids": restored.state.episode_ids.tolist(),
        "started": restored.state.episodes_started,
        "learning_transitions": restored.state.learning_transitions,
        "buffer": (len(restored.buffer), restored.buffer.pos),
        "updates": restored.state.updates,
        "recent": list(restored.state.recent_returns),
    }
    restored.close()
    assert got == expected
    _, (_, _, state), _ = latest_checkpoint(tmp_path / "run" / "checkpoints")
    assert state["in_episode"] == [True]


def test_only_newest_checkpoints_are_kept(tmp_path: Path) -> None:
    config = small_config(total_steps=500, checkpoint_every=100, learning_starts=100)
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
    config = small_config(total_steps=500, checkpoint_every=150, learning_starts=100)
    run_dir = tmp_path / "run"
    trainer = Trainer(config, run_dir)
    write_config(run_dir, config.to_dict(), {"preset": None})
    trainer.run(max_steps=450)
    trainer.close()
    names = [p.name for p in list_checkpoints(run_dir / "checkpoints")]
    assert names == ["step-0000000450", "step-0000000300"]
    return config, run_dir


def resume_cli(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["train", "--resume", str(run_dir)])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_resume_skips_damaged_newest_checkpoint(
    corruption: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, run_dir = interrupted_run(tmp_path)
    CORRUPTIONS[corruption](run_dir / "checkpoints" / "step-0000000450")
    rc, out, err = resume_cli(run_dir, capsys)
    assert rc == 0, err
    assert "skipped a damaged checkpoint" in out and "step-0000000450" in out, out
    assert "resumed from" in out and "step-0000000300" in out and "at step 300" in out, out
    if corruption == "truncated-weights":
        # Falling back to the older checkpoint still ends bit-identical.
        run_in_one_go(config, tmp_path / "whole")
        assert_identical_runs(tmp_path / "whole", run_dir)


def test_resume_ignores_leftover_temporary_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run_dir = interrupted_run(tmp_path)
    checkpoints = run_dir / "checkpoints"
    # A newer checkpoint that was being written when the process died, complete or not.
    shutil.copytree(checkpoints / "step-0000000450", checkpoints / ".tmp-step-0000000480-4242")
    (checkpoints / ".tmp-step-0000000490-4243").mkdir()
    (checkpoints / ".tmp-step-0000000490-4243" / "weights.safetensors").write_bytes(b"\0" * 10)
    rc, out, err = resume_cli(run_dir, capsys)
    assert rc == 0, err
    assert "skipped" not in out
    assert "step-0000000450" in out and "at step 450" in out, out


def test_resume_with_all_checkpoints_damaged_fails_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run_dir = interrupted_run(tmp_path)
    corrupt_truncate_weights(run_dir / "checkpoints" / "step-0000000450")
    corrupt_delete_manifest(run_dir / "checkpoints" / "step-0000000300")
    before = {
        str(p.relative_to(run_dir)): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()
    }
    rc, _, err = resume_cli(run_dir, capsys)
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ddpg: error: "), err
    assert "no valid checkpoint" in lines[0]
    assert "Traceback" not in err
    after = {str(p.relative_to(run_dir)): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert after == before, "a failed resume changed the run directory"


def test_chunked_run_equals_one_run() -> None:
    """Training in chunks (`run(max_steps=...)` called again, as the benchmarks do between
    their evaluations) learns exactly what one call does."""
    config = small_config(total_steps=300, learning_starts=50, buffer_size=300, batch_size=8)
    whole, chunked = Trainer(config), Trainer(config)
    whole.run(max_steps=250)
    for stop in (100, 200, 250):
        chunked.run(max_steps=stop)
    assert whole.state.step == chunked.state.step == 250
    for key, value in whole.agent.actor.state_dict().items():
        assert torch.equal(value, chunked.agent.actor.state_dict()[key]), key
    whole.close()
    chunked.close()
