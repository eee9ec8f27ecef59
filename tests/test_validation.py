"""Input validation through the CLI: every mistake a user can make is reported as one line on
stderr with a non-zero exit code, before anything is created or overwritten on disk."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import envs_for_tests  # noqa: F401 (registers the ddpgtest/ environments)
import pytest
import torch

from ddpg.checkpoints import write_config
from ddpg.cli import main
from ddpg.config import Config
from ddpg.errors import ConfigError

FAST = [
    "--preset",
    "pendulum",
    "--total-steps",
    "60",
    "--learning-starts",
    "20",
    "--batch-size",
    "8",
    "--hidden-size",
    "8",
    "--eval-every",
    "0",
    "--eval-episodes",
    "1",
    "--checkpoint-every",
    "0",
    "--torch-threads",
    "1",
    "--quiet",
]


def cli(argv: list[str | Path], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run `ddpg` in-process; an escaping exception fails the test (it would be a traceback)."""
    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        rc = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc: int, err: str, *fragments: str) -> str:
    assert rc != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ddpg: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` with its content (None for directories)."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


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
    "discrete-actions": (["--env", "CartPole-v1"], ("Discrete action space", "Box")),
    "dict-observations": (["--env", "ddpgtest/DictObs-v0"], ("Dict observation space",)),
    "image-observations": (["--env", "ddpgtest/ImageObs-v0"], ("(16, 16, 3)", "no images")),
    "image-observations-carracing": (["--env", "CarRacing-v3"], ("(96, 96, 3)",)),
    "infinite-action-bounds": (["--env", "ddpgtest/InfBounds-v0"], ("non-finite action bounds",)),
    "negative-actor-lr": (["--actor-lr", "-0.001"], ("actor_lr must be > 0",)),
    "negative-critic-lr": (["--critic-lr=-1e-3"], ("critic_lr must be > 0",)),
    "zero-lr": (["--actor-lr", "0"], ("actor_lr must be > 0",)),
    "nan-lr": (["--actor-lr", "nan"], ("actor_lr",)),
    "tau-zero": (["--tau", "0"], ("tau must be in (0, 1]",)),
    "tau-too-big": (["--tau", "1.5"], ("tau must be in (0, 1]",)),
    "batch-larger-than-buffer": (
        ["--batch-size", "512", "--buffer-size", "100"],
        ("batch_size (512) is larger than buffer_size (100)",),
    ),
    "gamma-one": (["--gamma", "1"], ("gamma",)),
    "not-a-number": (["--batch-size", "lots"], ("--batch-size", "lots")),
    "fractional-int": (["--batch-size", "8.5"], ("--batch-size",)),
    "unknown-noise": (["--noise", "pink"], ("noise must be one of",)),
    "unknown-preset": (["--preset", "pendulumm"], ("unknown preset", "pendulum")),
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
def test_train_refuses_bad_input(
    case: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args, fragments = BAD_TRAIN_ARGS[case]
    run_dir = workdir / "run"
    base = ["train", "--env", "Pendulum-v1", *FAST, "--run-dir", run_dir]
    rc, _, err = cli([*base, *args], capsys)
    assert_one_line_error(rc, err, *fragments)
    assert snapshot(workdir) == {}, "something was created"


def test_train_refuses_bad_input_without_run_dir(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the default run directory (runs/...) nothing is created either."""
    rc, _, err = cli(["train", "--env", "CartPole-v1", "--quiet"], capsys)
    assert_one_line_error(rc, err, "CartPole-v1")
    assert snapshot(workdir) == {}


def test_subprocess_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ddpg.cli", "train", "--env", "CartPole-v1", "--run-dir", "r"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert_one_line_error(result.returncode, result.stderr, "Discrete action space")
    assert list(tmp_path.iterdir()) == []


def test_config_from_dict_rejects_unknown_key_with_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'bath_size'.*'batch_size'"):
        Config.from_dict({"env_id": "Pendulum-v1", "bath_size": 64})
    with pytest.raises(ConfigError, match=r"unknown config key 'zzz'"):
        Config.from_dict({"zzz": 1})
    with pytest.raises(ConfigError):
        Config().replace(learning_rate=1e-3)


@pytest.mark.parametrize(
    "changes",
    [
        {"actor_lr": -1e-3},
        {"critic_lr": float("inf")},
        {"tau": 0.0},
        {"tau": 1.5},
        {"batch_size": 512, "buffer_size": 100},
        {"gamma": 1.0},
        {"batch_size": True},
        {"hidden_size": 8.0},
        {"seed": "0"},
        {"noise_std": -0.1},
        {"buffer_size": 0},
        {"learning_starts": -1},
    ],
)
def test_config_rejects_invalid_values(changes: dict) -> None:
    with pytest.raises(ConfigError):
        Config(**changes)


# -- run directories ---------------------------------------------------------------------------
def test_existing_run_dir_refused_without_overwrite(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = workdir / "run"
    run_dir.mkdir()
    (run_dir / "precious.txt").write_text("keep me")
    before = snapshot(workdir)
    rc, _, err = cli(["train", "--env", "Pendulum-v1", *FAST, "--run-dir", run_dir], capsys)
    assert_one_line_error(rc, err, "exists", "--overwrite", "--resume")
    assert snapshot(workdir) == before


def test_overwrite_of_existing_run_dir_with_bad_config_keeps_it(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--overwrite with an invalid config must fail before the old run is deleted."""
    run_dir = workdir / "run"
    run_dir.mkdir()
    (run_dir / "precious.txt").write_text("keep me")
    before = snapshot(workdir)
    for bad in (["--tau", "0"], ["--env", "CartPole-v1"]):
        rc, _, err = cli(
            ["train", "--env", "Pendulum-v1", *FAST, "--run-dir", run_dir, "--overwrite", *bad],
            capsys,
        )
        assert_one_line_error(rc, err)
        assert snapshot(workdir) == before


@pytest.fixture
def finished_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    run_dir = tmp_path / "run"
    rc, _, err = cli(["train", "--env", "Pendulum-v1", *FAST, "--run-dir", run_dir], capsys)
    assert rc == 0, err
    return run_dir


def test_resume_of_dir_without_checkpoints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = Config(
        env_id="Pendulum-v1", total_steps=60, hidden_size=8, batch_size=8, buffer_size=1000
    )
    write_config(run_dir, config.to_dict(), {"preset": None})
    (run_dir / "metrics.csv").write_text("step,episode\n1,2\n")
    before = snapshot(run_dir)
    rc, _, err = cli(["train", "--resume", run_dir], capsys)
    assert_one_line_error(rc, err, "no valid checkpoint")
    assert snapshot(run_dir) == before, "a file was created or changed"


def test_resume_of_missing_or_foreign_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _, err = cli(["train", "--resume", tmp_path / "nope"], capsys)
    assert_one_line_error(rc, err, "not a run directory")
    assert not (tmp_path / "nope").exists()
    (tmp_path / "empty").mkdir()
    rc, _, err = cli(["train", "--resume", tmp_path / "empty"], capsys)
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
def test_resume_with_changed_hyperparameter_refused(
    changed: list[str], finished_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(finished_run)
    rc, _, err = cli(["train", "--resume", finished_run, *changed], capsys)
    assert_one_line_error(rc, err, "cannot be changed when resuming")
    assert snapshot(finished_run) == before
    assert not Path("elsewhere").exists()


def test_resume_with_larger_budget_is_allowed(
    finished_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = cli(["train", "--resume", finished_run, "--total-steps", "80"], capsys)
    assert rc == 0, err
    assert (finished_run / "checkpoints" / "step-0000000080").is_dir()


def test_evaluate_refuses_bad_episodes(
    finished_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _, err = cli(["evaluate", finished_run, "--episodes", "-3"], capsys)
    assert_one_line_error(rc, err, "--episodes")
