"""What `ddpg train` leaves behind and prints: the run directory (config, CSV logs, TensorBoard
events, model files, checkpoints, evaluation.json), progress on the console, periodic evaluation
choosing the best model, and the early stop at target_return."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
from conftest import CliRun, flags, run_cli

from ddpg.checkpoints import load_model
from ddpg.loggers import Console, format_progress
from ddpg.presets import PRESETS, preset_config
from ddpg.train import Trainer


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# -- the run directory -----------------------------------------------------------------------------
def test_train_writes_the_run_directory(quiet_run):
    run_dir = quiet_run.dir
    assert (quiet_run.code, quiet_run.out, quiet_run.err) == (0, "", "")  # --quiet: no output
    for name in (
        "config.json",
        "metrics.csv",
        "evaluations.csv",
        "model_final.safetensors",
        "model_best.safetensors",
        "evaluation.json",
    ):
        assert (run_dir / name).is_file(), name

    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["preset"] == "pendulum"
    config = saved["config"]
    assert (config["total_steps"], config["learning_starts"], config["eval_every"]) == (
        600,
        200,
        300,
    )
    preset = PRESETS["pendulum"]["values"]
    for key in ("hidden_size", "gamma", "batch_size", "tau"):  # from the preset
        assert config[key] == preset[key], key
    assert config["torch_threads"] == 1

    assert config["max_episode_steps"] is None  # Pendulum's own limit: 200-step episodes
    metrics = read_csv(run_dir / "metrics.csv")
    assert [int(r["step"]) for r in metrics] == [200, 400, 600]
    assert [int(r["episode"]) for r in metrics] == [1, 2, 3]
    # Updates start after step 200, so even episode 1 (which ends there) reports a loss.
    assert all(float(r["critic_loss"]) > 0 for r in metrics)
    assert all(float(r["length"]) == 200 for r in metrics)

    evaluations = read_csv(run_dir / "evaluations.csv")
    assert [int(r["step"]) for r in evaluations] == [300, 600]
    assert all(float(r["mean_length"]) == 200 for r in evaluations)

    summary = json.loads((run_dir / "evaluation.json").read_text())
    assert summary["steps"] == 600 and summary["episodes"] == 3
    assert summary["best_selection"] == "periodic evaluation"
    assert summary["best_step"] in (300, 600)
    for which in ("best", "final"):
        assert summary[which]["episodes"] == 2
        assert len(summary[which]["returns"]) == 2
        assert summary[which]["lengths"] == [200, 200]

    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert checkpoints == ["step-0000000300", "step-0000000600"]
    _, meta = load_model(run_dir / "model_final.safetensors")
    assert meta["step"] == 600 and meta["config"] == config


def test_train_with_batch_norm_writes_models(tmp_path):
    """batch_norm=True (the seed-lunarlander preset) must survive writing the model files."""
    run_dir = tmp_path / "bn"
    code, _, err = run_cli(
        [
            "train",
            *flags(
                preset="pendulum",
                batch_norm="true",
                total_steps=250,
                learning_starts=200,
                hidden_size=16,
                eval_episodes=1,
                checkpoint_every=0,
                torch_threads=1,
            ),
            "--run-dir",
            run_dir,
            "--quiet",
        ]
    )
    assert code == 0, err
    assert (run_dir / "model_best.safetensors").is_file()


def test_tensorboard_events_load(small_run: CliRun) -> None:
    run_dir = small_run.dir
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for tag in (
        "train/episode_return",
        "train/critic_loss",
        "train/actor_loss",
        "train/q_mean",
        "perf/steps_per_s",
        "eval/mean_return",
    ):
        assert tag in tags
    assert [e.step for e in acc.Scalars("eval/mean_return")] == [400, 800, 1200]
    returns = [e.value for e in acc.Scalars("train/episode_return")]
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(returns) == len(rows) == 6
    assert np.allclose(returns, [float(r["return"]) for r in rows], rtol=1e-6)


# -- console output --------------------------------------------------------------------------------
def test_format_progress_shows_steps_rate_return_and_eta() -> None:
    line = format_progress(150, 300, 50.0, -12.34)
    assert "[############............]" in line
    assert "50%" in line and "150/300 steps" in line
    assert "50 steps/s" in line and "avg return -12.3" in line
    assert "ETA 00:00:03" in line
    assert "avg return -" in format_progress(0, None, 0.0, None)


def test_console_bar_only_on_a_terminal_and_quiet_prints_nothing() -> None:
    plain = io.StringIO()
    Console(stream=plain).progress(10, 100, 5.0, None)
    assert plain.getvalue() == ""  # not a terminal: no bar
    bar = io.StringIO()
    console = Console(stream=bar, bar=True)
    console.progress(100, 100, 5.0, 1.0)
    console.print("episode line")
    assert "100/100 steps" in bar.getvalue()
    assert bar.getvalue().endswith("episode line\n")
    quiet = io.StringIO()
    q = Console(quiet=True, stream=quiet, bar=True)
    q.progress(1, 2, 1.0, None)
    q.print("x")
    assert quiet.getvalue() == ""


def test_plain_periodic_lines_when_not_a_terminal(small_run: CliRun) -> None:
    out = small_run.out
    assert "\r" not in out
    assert out.count("eval at step") == 3
    assert "episode     2 | step      400" in out
    assert "done: 1,200 steps, 6 episodes" in out
    assert "best policy" in out and "final policy" in out and "files:" in out


# -- periodic evaluation ---------------------------------------------------------------------------
def test_best_model_is_chosen_by_periodic_evaluation(small_run: CliRun) -> None:
    run_dir = small_run.dir
    with open(run_dir / "evaluations.csv") as f:
        evals = [(int(r["step"]), float(r["mean_return"])) for r in csv.DictReader(f)]
    summary = json.loads((run_dir / "evaluation.json").read_text())
    best_step = max(evals, key=lambda e: e[1])[0]
    assert summary["best_step"] == best_step
    assert summary["best_selection"] == "periodic evaluation"


def test_periodic_evaluation_picks_the_best_snapshot() -> None:
    config = preset_config(
        "pendulum", total_steps=600, learning_starts=200, hidden_size=16, eval_every=200,
        eval_episodes_during=1, torch_threads=1,
    )  # fmt: skip
    trainer = Trainer(config)
    scores: list[float] = []
    weights = []
    original = trainer.periodic_evaluation

    def spy():
        result = original()
        scores.append(result.mean)
        weights.append(trainer.agent.actor.net[0].weight.detach().clone())
        return result

    trainer.periodic_evaluation = spy  # type: ignore[method-assign]
    trainer.run()
    best = int(np.argmax(scores))
    assert trainer.state.best_score == scores[best]
    assert trainer.state.best_step == 200 * (best + 1)
    assert trainer.agent.best_actor is not None
    assert np.array_equal(trainer.agent.best_actor["net.0.weight"].numpy(), weights[best].numpy())
    trainer.close()


def test_target_return_stops_training_early() -> None:
    config = preset_config(
        "pendulum", total_steps=2000, learning_starts=200, hidden_size=16, eval_every=200,
        eval_episodes_during=1, target_return=-1e9, torch_threads=1,
    )  # fmt: skip
    trainer = Trainer(config)
    trainer.run()
    assert trainer.state.step == 200 and trainer.state.target_reached
    trainer.close()
