"""Shared helpers and fixtures.

Configs: every Config a test trains with comes from `make_config(*bases, **values)`: HARNESS (how
tests run, not what they test), then each base in order, then `values`, later ones winning. A base
is a plain dict of the values a group of tests depends on (update and episode counts,
bit-identical comparisons); it sits in the test file that uses it, or here when several files
share it.

The command line: `flags` spells config values as options, `run_cli` runs `ddpg` in-process and
`run_exe` the installed command, `assert_one_line_error` checks what a user error prints, and
`snapshot` records a directory tree to show that nothing changed. Runs: `finished_run`, a FAST run
per test, and `quiet_run` and `small_run`, each trained once per session for the tests that only
read a run directory.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch

from ddpg.agent import DDPGAgent
from ddpg.cli import main
from ddpg.config import Config
from ddpg.envs import EnvInfo

# Tests press Ctrl-C by sending SIGINT to a run. A shell that starts pytest in the background
# (`... &`, nohup) leaves SIGINT ignored, which the library rightly respects and which the
# children of this process would inherit: give the tests a terminal's default instead.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Asymmetric, per-dimension action bounds used throughout the tests.
LOW = np.array([-1.0, 0.0, -5.0], dtype=np.float32)
HIGH = np.array([3.0, 2.0, -1.0], dtype=np.float32)

# One intra-op thread (fast and deterministic on a busy machine), no checkpoints unless asked.
HARNESS: dict[str, Any] = dict(torch_threads=1, checkpoint_every=0)

# `ddpg train` of a tiny Pendulum run for report and plot tests: 300 steps, 100 updates, three
# evaluations of 2 episodes, no checkpoints, about a second.
TINY_TRAIN = [
    "train", "--preset", "pendulum", "--total-steps", "300", "--learning-starts", "200",
    "--eval-every", "100", "--eval-episodes-during", "2", "--eval-episodes", "2",
    "--max-episode-steps", "50", "--hidden-size", "16", "--batch-size", "16",
    "--checkpoint-every", "0", "--tensorboard", "false", "--torch-threads", "1", "--quiet",
]  # fmt: skip

# Small enough for unit tests of the agent and the policy (no learning budget of note).
TINY: dict[str, Any] = dict(
    total_steps=100,
    hidden_size=16,
    batch_norm=True,
    batch_size=8,
    buffer_size=64,
    learning_starts=8,
    eval_episodes=1,
    eval_episodes_during=1,
)

# Pendulum cut to 50-step episodes: 300 steps are 6 episodes and, from step 50 on, 251 updates.
SHORT_PENDULUM: dict[str, Any] = dict(
    env_id="Pendulum-v1",
    total_steps=300,
    max_episode_steps=50,
    hidden_size=32,
    batch_norm=True,
    batch_size=32,
    buffer_size=1000,
    learning_starts=50,
    eval_episodes=1,
)


def make_config(*bases: Mapping[str, Any], **values: Any) -> Config:
    """Config(HARNESS, then each base, then values): make_config(TINY, batch_norm=False)."""
    merged = dict(HARNESS)
    for base in bases:
        merged.update(base)
    merged.update(values)
    return Config(**merged)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests run on busy machines: one intra-op thread keeps them fast and deterministic."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_agent(obs_dim: int = 4, low=LOW, high=HIGH, **overrides) -> DDPGAgent:
    info = EnvInfo(
        obs_dim=obs_dim,
        action_low=np.asarray(low, dtype=np.float32),
        action_high=np.asarray(high, dtype=np.float32),
    )
    return DDPGAgent(info, make_config(TINY, **overrides))


# -- the command line ------------------------------------------------------------------------------
def flags(**values: object) -> list[str]:
    """Command-line options for config values, in order: flags(total_steps=60, batch_norm="true")
    gives ["--total-steps", "60", "--batch-norm", "true"]."""
    return [
        part
        for name, value in values.items()
        for part in (f"--{name.replace('_', '-')}", str(value))
    ]


# `ddpg train` small and fast: a finished run in a few seconds.
FAST = [
    *flags(
        preset="pendulum",
        total_steps=60,
        learning_starts=20,
        batch_size=8,
        hidden_size=8,
        eval_every=0,
        eval_episodes=1,
        checkpoint_every=0,
        torch_threads=1,
    ),
    "--quiet",
]


def run_cli(argv: Sequence[str | Path]) -> tuple[int, str, str]:
    """Run `ddpg` in-process: (exit code, stdout, stderr). An escaping exception fails the test
    (it would be a traceback); argparse's usage errors exit with their code."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
    return rc, out.getvalue(), err.getvalue()


DDPG_EXE = Path(sys.executable).with_name("ddpg")


def run_exe(argv: Sequence[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed `ddpg` command in `cwd`, with the user's default warning filters."""
    assert DDPG_EXE.exists(), DDPG_EXE
    env = dict(os.environ, PYTHONWARNINGS="")
    return subprocess.run(
        [str(DDPG_EXE), *map(str, argv)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(rc: int, err: str, *fragments: str) -> str:
    """A user error: non-zero exit, no traceback, exactly one line `ddpg: error: ...` on stderr
    holding every fragment. Returns the line."""
    assert rc != 0
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    assert err.startswith("ddpg: error: "), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err[:-1]


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` with its content (None for directories)."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def finished_run(tmp_path: Path) -> Path:
    """A run directory that `ddpg train` FAST finished."""
    run_dir = tmp_path / "run"
    rc, _, err = run_cli(["train", "--env", "Pendulum-v1", *FAST, "--run-dir", run_dir])
    assert rc == 0, err
    return run_dir


# -- two finished runs, each trained once per session for the tests that read run directories ----
class CliRun(NamedTuple):
    dir: Path
    code: int
    out: str
    err: str


# 600 steps (3 episodes), evaluations and checkpoints at 300 and 600, nothing printed.
QUIET_RUN = [
    *flags(
        preset="pendulum",
        total_steps=600,
        learning_starts=200,
        eval_every=300,
        eval_episodes=2,
        eval_episodes_during=2,
        checkpoint_every=300,
        torch_threads=1,
    ),
    "--quiet",
]

# 1200 steps (6 episodes), evaluations at 400, 800 and 1200, a console line every 2 episodes.
SMALL_RUN = flags(
    preset="pendulum",
    total_steps=1200,
    learning_starts=300,
    hidden_size=32,
    eval_every=400,
    eval_episodes_during=2,
    eval_episodes=2,
    log_every=2,
    torch_threads=1,
)


def train_once(tmp_path_factory: pytest.TempPathFactory, args: list[str]) -> CliRun:
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    run = CliRun(run_dir, *run_cli(["train", *args, "--run-dir", run_dir]))
    assert run.code == 0, run.err
    return run


@pytest.fixture(scope="session")
def quiet_run(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    return train_once(tmp_path_factory, QUIET_RUN)


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    return train_once(tmp_path_factory, SMALL_RUN)
