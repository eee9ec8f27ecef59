"""Everyday use: progress output, TensorBoard, periodic evaluation, plot, record, evaluate."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ddpg.cli import main
from ddpg.loggers import Console, format_progress
from ddpg.presets import preset_config
from ddpg.train import Trainer

SMALL = [
    "--preset", "pendulum", "--total-steps", "1200", "--learning-starts", "300",
    "--hidden-size", "32", "--eval-every", "400", "--eval-episodes-during", "2",
    "--eval-episodes", "2", "--log-every", "2", "--torch-threads", "1",
]  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "small"
    assert main(["train", *SMALL, "--run-dir", str(out), "--quiet"]) == 0
    return out


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


def test_plain_periodic_lines_when_not_a_terminal(tmp_path: Path, capsys) -> None:
    assert main(["train", *SMALL, "--run-dir", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "\r" not in out
    assert out.count("eval at step") == 3
    assert "episode     2 | step      400" in out
    assert "done: 1,200 steps, 6 episodes" in out
    assert "best policy" in out and "final policy" in out and "files:" in out


def test_tensorboard_events_load(run_dir: Path) -> None:
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


def test_best_model_is_chosen_by_periodic_evaluation(run_dir: Path) -> None:
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


def test_plot_writes_a_png_that_decodes(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "curve.png"
    assert main(["plot", str(run_dir), str(run_dir), "--out", str(out)]) == 0
    with Image.open(out) as image:
        image.load()
        assert image.format == "PNG"
        assert image.size == (1200, 450)
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 10  # something was drawn


def test_record_writes_a_gif_with_frames(run_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "agent.gif"
    assert main(["record", str(run_dir), "--out", str(out), "--frame-skip", "4"]) == 0
    with Image.open(out) as gif:
        assert gif.size == (500, 500)
        # Pillow merges identical consecutive frames (the pendulum hangs still at first) and
        # adds up their durations: 51 frames (reset + 200 steps / 4) at round(30 / 4) fps.
        assert gif.n_frames > 10
        total_ms = 0
        for i in range(gif.n_frames):
            gif.seek(i)
            total_ms += gif.info["duration"]
    # 8 fps in GIF's 10 ms units; Pillow rounds merged durations up a little.
    assert total_ms == pytest.approx(51 * 120, rel=0.03)
    assert "51 frames" in capsys.readouterr().out


def test_evaluate_prints_a_table_and_writes_json(run_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(run_dir), "--episodes", "3", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "episode" in text and "return" in text and "mean" in text
    data = json.loads(out.read_text())
    assert data["episodes"] == 3 and len(data["returns"]) == 3
    assert data["mean_return"] == pytest.approx(np.mean(data["returns"]))


def test_record_writes_an_mp4_when_ffmpeg_is_installed(run_dir: Path, tmp_path: Path) -> None:
    # MP4 is the optional 'video' extra (imageio-ffmpeg ships a 165 MB ffmpeg), so CI skips this.
    iio = pytest.importorskip("imageio.v3")
    pytest.importorskip("imageio_ffmpeg")
    out = tmp_path / "agent.mp4"
    assert main(["record", str(run_dir), "--out", str(out), "--frame-skip", "4"]) == 0
    frames = iio.imread(out)
    assert frames.shape == (51, 500, 500, 3)


def test_record_refuses_other_suffixes(run_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["record", str(run_dir), "--out", str(tmp_path / "agent.avi")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ".gif or .mp4" in err[0]
