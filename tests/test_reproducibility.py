"""Reproducibility: a run is a function of its config. The same config gives a bit-identical run
(another seed, another run), a run trained in chunks learns what one call does, and a run
interrupted (mid-episode, after learning started) and resumed from its checkpoint ends
bit-identical to the same run done in one go.

Everything runs in-process with `ddpg.train.Trainer`: `run(max_steps=K)` writes a checkpoint at
step K; a fresh Trainer on the same run directory restores it and runs to the end of the budget.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import torch
from conftest import SHORT_PENDULUM, make_config

from ddpg.checkpoints import latest_checkpoint, list_checkpoints, read_checkpoint
from ddpg.config import Config
from ddpg.runs import save_models
from ddpg.train import Trainer

WALL = "wall_time_s"


# Long enough to interrupt an episode after learning started: 8 Pendulum episodes of 200 steps.
RESUME = dict(
    env_id="Pendulum-v1",  # 200-step episodes, deterministic dynamics
    total_steps=1600,
    learning_starts=300,
    hidden_size=32,
    batch_norm=False,
    batch_size=32,
    buffer_size=10_000,
    eval_episodes=1,
    seed=3,
)


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


# -- the same config twice ------------------------------------------------------------------------
def test_same_config_gives_bit_identical_runs(tmp_path: Path) -> None:
    config = make_config(SHORT_PENDULUM)
    runs = {}
    for name, run_config in (("a", config), ("b", config), ("c", config.replace(seed=1))):
        trainer = Trainer(run_config, tmp_path / name)
        trainer.run()
        trainer.close()
        runs[name] = trainer, csv_rows(tmp_path / name / "metrics.csv")
    (a, rows_a), (b, rows_b), (c, rows_c) = runs["a"], runs["b"], runs["c"]

    assert a.state.step == b.state.step == 300
    assert a.state.episode == 6 and len(rows_a) == 6
    assert a.state.updates == 251  # one update per step from step 50 on
    assert rows_a == rows_b
    assert all(row["critic_loss"] != "" for row in rows_a[1:])
    for name, net in a.agent.networks().items():
        other = b.agent.networks()[name].state_dict()
        for key, value in net.state_dict().items():
            assert torch.equal(value, other[key]), f"{name}.{key}"
    for name in a.buffer.storage:
        assert torch.equal(a.buffer.storage[name], b.buffer.storage[name])

    # Another seed: other exploration, other start states, other weights.
    assert not torch.equal(a.agent.actor.net[0].weight, c.agent.actor.net[0].weight)
    assert not torch.equal(a.agent.actor.net[-1].weight, c.agent.actor.net[-1].weight)
    assert rows_a != rows_c


def test_chunked_run_equals_one_run() -> None:
    """Training in chunks (`run(max_steps=...)` called again, as the benchmarks do between
    their evaluations) learns exactly what one call does."""
    config = make_config(RESUME, total_steps=300, learning_starts=50, buffer_size=300, batch_size=8)
    whole, chunked = Trainer(config), Trainer(config)
    whole.run(max_steps=250)
    for stop in (100, 200, 250):
        chunked.run(max_steps=stop)
    assert whole.state.step == chunked.state.step == 250
    for key, value in whole.agent.actor.state_dict().items():
        assert torch.equal(value, chunked.agent.actor.state_dict()[key]), key
    whole.close()
    chunked.close()


# -- interrupted and resumed --------------------------------------------------------------------
def test_resume_mid_episode_is_bit_identical(tmp_path: Path) -> None:
    # 250: before learning starts, mid-episode; 1234: learning, mid-episode; 1400: episode end.
    whole, _ = check_exact_resume(
        tmp_path, make_config(RESUME), [250, 1234, 1400], [True, True, False]
    )
    rows = csv_rows(tmp_path / "whole" / "metrics.csv")
    assert len(rows) == 8 and rows[-1]["step"] == "1600"
    assert rows[-1]["critic_loss"] != ""  # learning really happened


def test_resume_after_buffer_wrapped_is_bit_identical(tmp_path: Path) -> None:
    # 300 transitions: full from step 300; at 600 the write position is 0, at 834 it is 234.
    config = make_config(RESUME, buffer_size=300, total_steps=1000)
    whole, _ = check_exact_resume(tmp_path, config, [600, 834], [False, True])
    assert len(whole.buffer) == 300 and whole.buffer.pos == 1000 % 300


def test_resume_with_ou_noise_is_bit_identical(tmp_path: Path) -> None:
    # OU noise has memory (its state x) that must survive mid-episode.
    config = make_config(RESUME, noise="ou", noise_std=0.3, total_steps=1000)
    check_exact_resume(tmp_path, config, [734], [True])


def test_resume_with_periodic_evaluation_is_bit_identical(tmp_path: Path) -> None:
    # Stop right after the evaluation at 800, and mid-episode between evaluations.
    config = make_config(RESUME, eval_every=400, eval_episodes_during=2, total_steps=1000)
    whole, resumed = check_exact_resume(tmp_path, config, [800, 934], [False, True])
    rows = csv_rows(tmp_path / "whole" / "evaluations.csv")
    assert [r["step"] for r in rows] == ["400", "800"]
    assert whole.state.best_step == resumed.state.best_step is not None


def test_resume_lunarlander_mid_episode_is_bit_identical(tmp_path: Path) -> None:
    # Box2D physics and the env's np_random (engine dispersion) are used inside step(): the
    # replayed episode must reproduce both.
    config = make_config(
        RESUME,
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
    config = make_config(RESUME, checkpoint_every=350, total_steps=1000)
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


def trainer_state(trainer: Trainer) -> dict[str, Any]:
    """What a restore must bring back: counters, episodes in progress, buffer, recent returns."""
    return {
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


def test_restore_latest_checkpoint_state_matches(tmp_path: Path) -> None:
    """The restored Trainer holds exactly the state the checkpoint recorded."""
    config = make_config(RESUME, total_steps=700)
    trainer = Trainer(config, tmp_path / "run")
    trainer.run(max_steps=650)
    expected = trainer_state(trainer)
    trainer.close()
    restored = Trainer(config, tmp_path / "run")
    restored.restore()
    got = trainer_state(restored)
    restored.close()
    assert got == expected
    _, (_, _, state), _ = latest_checkpoint(tmp_path / "run" / "checkpoints")
    assert state["in_episode"] == [True]
