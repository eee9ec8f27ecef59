"""The commands that read a finished run: `ddpg evaluate` (a table and JSON, for the best or the
final model, on the same start states as training's final evaluation), `ddpg plot` (PNG) and
`ddpg record` (GIF, MP4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import CliRun, run_cli
from PIL import Image

from ddpg.cli import main


# -- evaluate --------------------------------------------------------------------------------------
def test_evaluate_prints_a_table_and_writes_json(quiet_run, tmp_path):
    run_dir = quiet_run.dir
    out_json = tmp_path / "out.json"
    code, out, err = run_cli(["evaluate", run_dir, "--episodes", "2", "--json", out_json])
    assert code == 0, err
    assert err == ""
    payload = json.loads(out_json.read_text())
    assert payload["model"] == "best"
    assert payload["episodes"] == 2
    assert len(payload["returns"]) == 2 and payload["lengths"] == [200, 200]
    assert payload["mean_return"] == pytest.approx(sum(payload["returns"]) / 2)
    # Same stream of start states and same weights as the final evaluation of training.
    summary = json.loads((run_dir / "evaluation.json").read_text())
    assert payload["returns"] == pytest.approx(summary["best"]["returns"], rel=1e-6)
    assert "episode" in out and "return" in out and "mean" in out
    lines = out.splitlines()
    assert lines[0].startswith("Pendulum-v1, best model of")
    assert len(lines) == 2 + 2 + 1  # title, header, two episodes, mean


def test_evaluate_final_model(quiet_run, tmp_path):
    run_dir = quiet_run.dir
    summary = json.loads((run_dir / "evaluation.json").read_text())
    out_json = tmp_path / "final.json"
    code, _, err = run_cli(
        ["evaluate", run_dir, "--model", "final", "--episodes", "2", "--json", out_json]
    )
    assert code == 0, err
    returns = json.loads(out_json.read_text())["returns"]
    assert returns == pytest.approx(summary["final"]["returns"], rel=1e-6)


# -- plot and record -------------------------------------------------------------------------------
def test_plot_writes_a_png_that_decodes(small_run: CliRun, tmp_path: Path) -> None:
    out = tmp_path / "curve.png"
    assert main(["plot", str(small_run.dir), str(small_run.dir), "--out", str(out)]) == 0
    with Image.open(out) as image:
        image.load()
        assert image.format == "PNG"
        assert image.size == (1200, 450)
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 10  # something was drawn


def test_record_writes_a_gif_with_frames(small_run: CliRun, tmp_path: Path, capsys) -> None:
    out = tmp_path / "agent.gif"
    assert main(["record", str(small_run.dir), "--out", str(out), "--frame-skip", "4"]) == 0
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


def test_record_writes_an_mp4_when_ffmpeg_is_installed(small_run: CliRun, tmp_path: Path) -> None:
    # MP4 is the optional 'video' extra (imageio-ffmpeg ships a 165 MB ffmpeg), so CI skips this.
    iio = pytest.importorskip("imageio.v3")
    pytest.importorskip("imageio_ffmpeg")
    out = tmp_path / "agent.mp4"
    assert main(["record", str(small_run.dir), "--out", str(out), "--frame-skip", "4"]) == 0
    frames = iio.imread(out)
    assert frames.shape == (51, 500, 500, 3)


def test_record_refuses_other_suffixes(small_run: CliRun, tmp_path: Path, capsys) -> None:
    assert main(["record", str(small_run.dir), "--out", str(tmp_path / "agent.avi")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ".gif or .mp4" in err[0]
