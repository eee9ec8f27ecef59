"""Bad input through the CLI: every mistake a user can make is reported as one line on stderr with
a non-zero exit code (2 for a bad option or value), before anything is created or overwritten on
disk. Refused resumes are in test_resume.py, damaged model files in test_damaged_files.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import envs_for_tests  # noqa: F401 (registers the ddpgtest/ environments)
import pytest
import torch
from conftest import DDPG_EXE, FAST, assert_one_line_error, run_cli, snapshot


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory, so the default run dir (runs/...) would show up in it."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


BAD_TRAIN_ARGS: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "unknown-env": (["--env", "Pendulum-v9"], ("unknown environment", "Pendulum-v1")),
    "unknown-env-typo": (["--env", "LunarLanderContinous-v3"], ("LunarLanderContinuous-v3",)),
    "unknown-env-old-version": (
        ["--env", "Pendulum-v0"],
        ("unknown environment 'Pendulum-v0'", "Pendulum-v1"),
    ),
    "discrete-actions": (
        ["--env", "CartPole-v1"],
        ("'CartPole-v1' has a Discrete action space", "Box"),
    ),
    # A Dict of flat Boxes trains (tests/test_her.py); a Dict with another part does not.
    "nested-dict-observations": (
        ["--env", "ddpgtest/NestedDictObs-v0"],
        ("Dict observation part 'inner'",),
    ),
    "image-observations": (["--env", "ddpgtest/ImageObs-v0"], ("(16, 16, 3)", "no images")),
    "image-observations-carracing": (["--env", "CarRacing-v3"], ("(96, 96, 3)",)),
    "infinite-action-bounds": (["--env", "ddpgtest/InfBounds-v0"], ("non-finite action bounds",)),
    "negative-actor-lr": (["--actor-lr", "-0.001"], ("actor_lr must be > 0",)),
    "negative-critic-lr": (["--critic-lr=-1e-3"], ("critic_lr must be > 0",)),
    "zero-lr": (["--actor-lr", "0"], ("actor_lr must be > 0",)),
    "nan-lr": (["--actor-lr", "nan"], ("actor_lr",)),
    "tau-zero": (["--tau", "0"], ("tau must be in (0, 1]",)),
    "tau-too-big": (["--tau", "2"], ("invalid config: tau must be in (0, 1], got 2.0",)),
    "batch-larger-than-buffer": (
        ["--batch-size", "512", "--buffer-size", "100"],
        ("batch_size (512) is larger than buffer_size (100)",),
    ),
    "gamma-one": (["--gamma", "1"], ("gamma must be in [0, 1)",)),
    "not-a-number": (["--batch-size", "lots"], ("--batch-size", "lots")),
    "fractional-int": (["--batch-size", "8.5"], ("--batch-size",)),
    "not-a-float": (["--tau", "abc"], ("--tau: expected float, got 'abc'",)),
    "unknown-noise": (["--noise", "pink"], ("noise must be one of gaussian, ou",)),
    "unknown-preset": (
        ["--preset", "pendulumm"],
        ("unknown preset 'pendulumm'", "did you mean 'pendulum'"),
    ),
    "unknown-preset-no-match": (["--preset", "nope"], ("unknown preset 'nope'", "ddpg presets")),
    "unknown-device": (["--device", "tpu"], ("device",)),
    "update-mode-cudagraph-on-cpu": (["--update-mode", "cudagraph"], ("needs a CUDA device",)),
    "no-budget": (["--total-steps", "none"], ("total_steps or episodes",)),
    "target-without-eval": (["--target-return", "100"], ("eval_every",)),
}


if not torch.cuda.is_available():  # on a machine without a GPU, asking for one is a user error
    BAD_TRAIN_ARGS["cuda-without-gpu"] = (["--device", "cuda"], ("sees no CUDA GPU",))
    BAD_TRAIN_ARGS["cudagraph-without-gpu"] = (
        ["--device", "cuda", "--update-mode", "cudagraph"],
        ("sees no CUDA GPU",),
    )
    BAD_TRAIN_ARGS["cudagraph-auto-without-gpu"] = (
        ["--device", "auto", "--update-mode", "cudagraph"],
        ("CUDA",),
    )


@pytest.mark.parametrize("case", sorted(BAD_TRAIN_ARGS))
def test_train_refuses_bad_input(case: str, workdir: Path) -> None:
    args, fragments = BAD_TRAIN_ARGS[case]
    run_dir = workdir / "run"
    base = ["train", "--env", "Pendulum-v1", *FAST, "--run-dir", run_dir]
    rc, out, err = run_cli([*base, *args])
    assert_one_line_error(rc, err, *fragments)
    assert rc == 2 and out == ""
    assert snapshot(workdir) == {}, "something was created"


def test_train_refuses_bad_input_without_run_dir(workdir: Path) -> None:
    """With the default run directory (runs/...) nothing is created either."""
    rc, _, err = run_cli(["train", "--env", "CartPole-v1", "--quiet"])
    assert_one_line_error(rc, err, "CartPole-v1")
    assert snapshot(workdir) == {}


@pytest.mark.parametrize(
    ("command", "args", "fragment"),
    [
        ([sys.executable, "-m", "ddpg.cli"], ["--env", "CartPole-v1"], "Discrete action space"),
        ([DDPG_EXE], ["--env-id", "CartPole-v1"], "Discrete action space"),
        # Gymnasium warns that Pendulum-v0 is deprecated: no line may come before the error.
        ([DDPG_EXE], ["--env", "Pendulum-v0", "--quiet"], "did you mean Pendulum-v1"),
    ],
    ids=["python-m-discrete", "ddpg-discrete-env-id", "ddpg-deprecated-env"],
)
def test_error_in_a_real_process_is_one_line(
    command: list[str | Path], args: list[str], fragment: str, tmp_path: Path
) -> None:
    """As a real process (the installed `ddpg` and `python -m ddpg.cli`), with the user's default
    warning filters: stderr holds the error line alone, and nothing is created."""
    assert DDPG_EXE.exists(), DDPG_EXE
    result = subprocess.run(
        [*map(str, command), "train", *args, "--run-dir", "run"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONWARNINGS=""),
        timeout=120,
    )
    assert_one_line_error(result.returncode, result.stderr, fragment)
    assert result.returncode == 2 and result.stdout == ""
    assert list(tmp_path.iterdir()) == []


# -- run directories ---------------------------------------------------------------------------
def test_existing_run_dir_refused_without_overwrite(workdir: Path) -> None:
    run_dir = workdir / "run"
    run_dir.mkdir()
    (run_dir / "precious.txt").write_text("keep me")
    before = snapshot(workdir)
    rc, _, err = run_cli(["train", "--env", "Pendulum-v1", *FAST, "--run-dir", run_dir])
    assert_one_line_error(rc, err, "exists", "--overwrite", "--resume")
    assert snapshot(workdir) == before


def test_overwrite_of_existing_run_dir_with_bad_config_keeps_it(workdir: Path) -> None:
    """--overwrite with an invalid config must fail before the old run is deleted."""
    run_dir = workdir / "run"
    run_dir.mkdir()
    (run_dir / "precious.txt").write_text("keep me")
    before = snapshot(workdir)
    for bad in (["--tau", "0"], ["--env", "CartPole-v1"]):
        rc, _, err = run_cli(
            ["train", "--env", "Pendulum-v1", *FAST, "--run-dir", run_dir, "--overwrite", *bad]
        )
        assert_one_line_error(rc, err)
        assert snapshot(workdir) == before


def test_run_dir_that_is_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    """A --run-dir that names an existing file is refused in one line (not a NotADirectoryError
    traceback) and the file is kept."""
    path = tmp_path / "afile"
    path.write_text("precious")
    rc, _, err = run_cli(["train", "--env", "Pendulum-v1", *FAST, "--run-dir", path])
    assert_one_line_error(rc, err, str(path))
    assert path.read_text() == "precious"


# -- evaluate ----------------------------------------------------------------------------------
@pytest.mark.parametrize("episodes", ["-3", "0"])
def test_evaluate_refuses_bad_episodes(episodes: str, finished_run: Path) -> None:
    """`--episodes 0` must be refused too, not replaced by the config's eval_episodes."""
    rc, _, err = run_cli(["evaluate", finished_run, "--episodes", episodes])
    assert_one_line_error(rc, err, "--episodes: expected an integer >= 1")


def test_evaluate_missing_run_dir(tmp_path: Path) -> None:
    rc, _, err = run_cli(["evaluate", tmp_path / "missing"])
    assert_one_line_error(rc, err, "is not a run directory")
