"""The `ddpg` command, in-process through `ddpg.cli.main` and as a real subprocess."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ddpg.checkpoints import load_model
from ddpg.cli import main
from ddpg.presets import PRESETS

DDPG_EXE = Path(sys.executable).with_name("ddpg")

TRAIN_ARGS = [
    "train",
    "--preset",
    "pendulum",
    "--total-steps",
    "600",
    "--learning-starts",
    "200",
    "--eval-every",
    "300",
    "--eval-episodes",
    "2",
    "--eval-episodes-during",
    "2",
    "--checkpoint-every",
    "300",
    "--torch-threads",
    "1",
]


def run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def run_exe(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    assert DDPG_EXE.exists(), DDPG_EXE
    env = dict(os.environ, PYTHONWARNINGS="")  # the user's default warning filters
    return subprocess.run(
        [str(DDPG_EXE), *map(str, argv)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    assert err.startswith("ddpg: error: "), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


# -- presets -------------------------------------------------------------------------------------
def test_presets_in_process():
    code, out, err = run_main(["presets"])
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == list(PRESETS)
    assert "1000 episodes" in lines[0] and "LunarLanderContinuous-v3" in lines[0]
    for line, name in zip(lines[1:], list(PRESETS)[1:], strict=True):
        values = PRESETS[name]["values"]
        assert f"{values['total_steps']:,} steps" in line
        assert values["env_id"] in line and PRESETS[name]["description"] in line


def test_presets_subprocess(tmp_path):
    result = run_exe(["presets"], tmp_path)
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == list(PRESETS)
    assert result.stderr == ""


# -- train and evaluate --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> tuple[Path, int, str, str]:
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    code, out, err = run_main([*TRAIN_ARGS, "--run-dir", run_dir, "--quiet"])
    return run_dir, code, out, err


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_train_writes_the_run_directory(trained_run):
    run_dir, code, out, err = trained_run
    assert (code, out, err) == (0, "", "")  # --quiet: nothing printed
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


def test_evaluate_writes_json(trained_run, tmp_path):
    run_dir = trained_run[0]
    out_json = tmp_path / "out.json"
    code, out, err = run_main(["evaluate", run_dir, "--episodes", "2", "--json", out_json])
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
    lines = out.splitlines()
    assert lines[0].startswith("Pendulum-v1, best model of")
    assert len(lines) == 2 + 2 + 1  # title, header, two episodes, mean


def test_evaluate_final_model_and_bad_episodes(trained_run, tmp_path):
    run_dir = trained_run[0]
    summary = json.loads((run_dir / "evaluation.json").read_text())
    out_json = tmp_path / "final.json"
    code, _, err = run_main(
        ["evaluate", run_dir, "--model", "final", "--episodes", "2", "--json", out_json]
    )
    assert code == 0, err
    returns = json.loads(out_json.read_text())["returns"]
    assert returns == pytest.approx(summary["final"]["returns"], rel=1e-6)
    code, _, err = run_main(["evaluate", run_dir, "--episodes", "-1"])
    assert_one_line_error(code, err, "--episodes: expected an integer >= 1")


def test_evaluate_zero_episodes_is_an_error(trained_run):
    """`--episodes 0` is silently replaced by the config's eval_episodes (`args.episodes or
    config.eval_episodes`) instead of being refused like any other value below 1."""
    code, _, err = run_main(["evaluate", trained_run[0], "--episodes", "0"])
    assert_one_line_error(code, err, "--episodes: expected an integer >= 1")


def test_evaluate_missing_run_dir(tmp_path):
    code, _, err = run_main(["evaluate", tmp_path / "missing"])
    assert_one_line_error(code, err, "is not a run directory")


def test_train_with_batch_norm_writes_models(tmp_path):
    """batch_norm=True (the seed-lunarlander preset) must survive writing the model files."""
    run_dir = tmp_path / "bn"
    code, _, err = run_main(
        [
            "train",
            "--preset",
            "pendulum",
            "--batch-norm",
            "true",
            "--total-steps",
            "250",
            "--learning-starts",
            "200",
            "--hidden-size",
            "16",
            "--eval-episodes",
            "1",
            "--checkpoint-every",
            "0",
            "--torch-threads",
            "1",
            "--run-dir",
            run_dir,
            "--quiet",
        ]
    )
    assert code == 0, err
    assert (run_dir / "model_best.safetensors").is_file()


# -- one-line errors -----------------------------------------------------------------------------
def test_unknown_env_suggests_close_names(tmp_path):
    run_dir = tmp_path / "run"
    code, _, err = run_main(["train", "--env", "Pendulum-v0", "--run-dir", run_dir, "--quiet"])
    assert_one_line_error(code, err, "unknown environment 'Pendulum-v0'", "Pendulum-v1")
    assert not run_dir.exists()  # the env is checked before anything touches the disk


def test_unknown_env_subprocess_prints_one_line(tmp_path):
    """As a real process the user sees stderr as is: Gymnasium's DeprecationWarning for
    'Pendulum-v0' is printed (two lines) before the error line."""
    result = run_exe(["train", "--env", "Pendulum-v0", "--run-dir", "run", "--quiet"], tmp_path)
    assert_one_line_error(result.returncode, result.stderr, "did you mean Pendulum-v1")
    assert result.stdout == ""
    assert not (tmp_path / "run").exists()


def test_discrete_action_space_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    code, _, err = run_main(["train", "--env", "CartPole-v1", "--run-dir", run_dir, "--quiet"])
    assert_one_line_error(code, err, "'CartPole-v1' has a Discrete action space", "Box")
    assert not run_dir.exists()


def test_discrete_action_space_subprocess(tmp_path):
    result = run_exe(["train", "--env-id", "CartPole-v1", "--run-dir", "run"], tmp_path)
    assert_one_line_error(result.returncode, result.stderr, "Discrete action space")
    assert result.returncode == 2
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--tau", "2"], ["invalid config: tau must be in (0, 1], got 2.0"]),
        (["--gamma", "1"], ["gamma must be in [0, 1)"]),
        (["--tau", "abc"], ["--tau: expected float, got 'abc'"]),
        (["--batch-size", "64", "--buffer-size", "32"], ["larger than buffer_size"]),
        (["--noise", "pink"], ["noise must be one of gaussian, ou"]),
        (["--preset", "nope"], ["unknown preset 'nope'", "ddpg presets"]),
        (["--preset", "pendullum"], ["did you mean 'pendulum'"]),
    ],
)
def test_bad_config_is_a_one_line_error(tmp_path, args, fragments):
    run_dir = tmp_path / "run"
    code, out, err = run_main(["train", *args, "--run-dir", run_dir, "--quiet"])
    assert_one_line_error(code, err, *fragments)
    assert code == 2 and out == ""
    assert not run_dir.exists()


def test_existing_run_dir_is_not_touched(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "keep.txt").write_text("precious")
    code, _, err = run_main([*TRAIN_ARGS, "--run-dir", run_dir, "--quiet"])
    assert_one_line_error(code, err, "exists", "--overwrite", "--resume")
    assert sorted(p.name for p in run_dir.iterdir()) == ["keep.txt"]
    assert (run_dir / "keep.txt").read_text() == "precious"


def test_run_dir_that_is_a_file_is_a_one_line_error(tmp_path):
    """`any(run_dir.iterdir())` raises NotADirectoryError (a traceback) when --run-dir names an
    existing file."""
    path = tmp_path / "afile"
    path.write_text("precious")
    try:
        code, _, err = run_main([*TRAIN_ARGS, "--run-dir", path, "--quiet"])
    except OSError as exc:
        pytest.fail(f"uncaught {type(exc).__name__}: {exc}")
    assert_one_line_error(code, err, str(path))
    assert path.read_text() == "precious"
