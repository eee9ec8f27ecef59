"""Real signals: `ddpg train` stopped by SIGTERM / SIGINT writes a checkpoint, says how to resume,
exits 143 / 130, and `ddpg train --resume` then finishes bit-identical to an uninterrupted run."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import flags
from safetensors.torch import load_file

from ddpg.checkpoints import list_checkpoints, read_checkpoint

TRAIN_ARGS = [
    "train",
    *flags(
        preset="pendulum",
        total_steps=3000,
        learning_starts=200,
        checkpoint_every=1_000_000,
        torch_threads=1,
        hidden_size=32,
        eval_every=0,  # the preset's 5000 is above this budget (a warning line)
    ),
]
TIMEOUT = 240


def ddpg(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "ddpg.cli", *map(str, args)]


def start(run_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ddpg(*TRAIN_ARGS, "--run-dir", run_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_rows(proc: subprocess.Popen[str], metrics: Path, rows: int) -> None:
    """Wait until metrics.csv holds `rows` episode rows (header excluded)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) - 1 >= rows:
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"training ended (rc {proc.returncode}) before the signal: {err}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("timed out waiting for metrics rows")


def interrupt(run_dir: Path, signum: int, rows: int = 2) -> tuple[int, str, str]:
    proc = start(run_dir)
    try:
        wait_for_rows(proc, run_dir / "metrics.csv", rows)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


def rows_without_wall_time(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in csv.DictReader(f)]


def check_interrupted(run_dir: Path, rc: int, err: str, expected_rc: int, name: str) -> Path:
    assert rc == expected_rc, err
    assert "Traceback" not in err
    assert f"stopped by {name}" in err
    assert "checkpoint written to" in err
    assert f"ddpg train --resume {run_dir}" in err
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    assert checkpoints, "no checkpoint written on the signal"
    newest = checkpoints[0]
    assert str(newest) in err
    _, _, state = read_checkpoint(newest)  # verifies every checksum
    assert 0 < state["step"] < 3000
    assert f"step {state['step']}" in err
    assert not (run_dir / "model_final.safetensors").exists()
    return newest


def test_sigterm_then_resume_is_bit_identical(tmp_path: Path) -> None:
    whole_dir, stopped_dir = tmp_path / "whole", tmp_path / "stopped"
    whole = start(whole_dir)  # the reference run, in parallel with the interrupted one
    try:
        rc, _, err = interrupt(stopped_dir, signal.SIGTERM)
        check_interrupted(stopped_dir, rc, err, 143, "SIGTERM")

        resumed = subprocess.run(
            ddpg("train", "--resume", stopped_dir),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert resumed.returncode == 0, resumed.stderr
        assert "resumed from" in resumed.stdout

        _, whole_err = whole.communicate(timeout=TIMEOUT)
        assert whole.returncode == 0, whole_err
    finally:
        if whole.poll() is None:
            whole.kill()
            whole.communicate()

    for name in ("model_final.safetensors", "model_best.safetensors"):
        a, b = load_file(whole_dir / name), load_file(stopped_dir / name)
        assert sorted(a) == sorted(b)
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}: {key} differs"
    for name in ("metrics.csv", "evaluations.csv"):
        assert rows_without_wall_time(whole_dir / name) == rows_without_wall_time(
            stopped_dir / name
        ), name
    summaries = [json.loads((d / "evaluation.json").read_text()) for d in (whole_dir, stopped_dir)]
    for summary in summaries:
        summary.pop("wall_time_s")
    assert summaries[0] == summaries[1]
    assert summaries[0]["steps"] == 3000


def test_sigint_writes_checkpoint_and_exits_130(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    rc, _, err = interrupt(run_dir, signal.SIGINT, rows=1)
    newest = check_interrupted(run_dir, rc, err, 130, "SIGINT")
    assert len(err.strip().splitlines()) == 2  # the stop line and the resume line
    leftovers = [p.name for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")]
    assert leftovers == []
    assert newest.name.startswith("step-")
