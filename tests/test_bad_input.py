"""Bad and unusual input, as a new user would type it, to the `ddpg` command and the Python API.

Every command-line case checks the exit code, that stderr holds one line (two where a warning
line comes first, said at the case), no traceback, and that every file that existed before (in
the case's working directory, the shared trained run and any input) is byte-for-byte unchanged,
with nothing created where the command fails. API cases check the exception type and message.

The commands run in-process (`ddpg.cli.main`); subprocesses only where a real pipe or a signal
during start-up is the point. One tiny trained run is shared; a case that damages a run works
on its own copy.

Permission cases: root ignores file permissions, so where the tests run as root each such case
runs the command with the real and effective user and group ids of `nobody` (65534, saved ids
kept at 0 to switch back), which the kernel checks permissions for like any user. The
immutable-directory case needs root and `chattr`; it skips, saying so, where either is missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import envs_for_tests
import gymnasium as gym
import numpy as np
import pytest
from conftest import flags, run_cli

from ddpg import DDPG, Config, Policy, preset_config
from ddpg.checkpoints import list_checkpoints
from ddpg.config import parse_value
from ddpg.errors import CheckpointError, ConfigError, EnvError, RunDirError
from ddpg.lock import RunLock

NOBODY = 65534
REPO = Path(__file__).resolve().parents[1]

# A run small enough to train in about a second: 40 steps, 20-step episodes.
QUICK = flags(
    total_steps=40,
    max_episode_steps=20,
    hidden_size=8,
    batch_size=4,
    buffer_size=100,
    learning_starts=10,
    eval_every=20,
    eval_episodes_during=1,
    eval_episodes=1,
    checkpoint_every=20,
    torch_threads=1,
    tensorboard="false",
)
TRAIN = ["train", "--preset", "pendulum", *QUICK]


# -- environments that misbehave on cue ----------------------------------------------------------
ARMED: dict[str, int] = {}  # signal name -> how many more times an env may send it


class SignalEnv(envs_for_tests.FlakyEnv):
    """Sends itself `signals` (while ARMED) at training step `at` of its life: a real signal,
    arriving in the middle of the loop as a user's Ctrl-C or a `kill` would."""

    def __init__(
        self,
        signals: tuple[str, ...] = (),
        at: int = 25,
        on_create: bool = False,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode)
        self.signals, self.at = signals, at
        if on_create:
            self._fire()

    def _fire(self) -> None:
        for name in self.signals:
            if ARMED.get(name, 0) > 0:
                ARMED[name] -= 1
                os.kill(os.getpid(), getattr(signal, name))

    def step(self, action):
        result = super().step(action)
        if self.total_steps == self.at:
            self._fire()
        return result


class CrashEnv(envs_for_tests.FlakyEnv):
    """A bug in someone's environment: RuntimeError on creation or at step `at`."""

    def __init__(self, at: int | None = None, render_mode: str | None = None) -> None:
        if at is None:
            raise RuntimeError("the simulator's licence file is missing")
        super().__init__(render_mode=render_mode)
        self.at = at

    def step(self, action):
        if self.total_steps + 1 == self.at:
            raise RuntimeError("the simulator diverged")
        return super().step(action)


for _id, _entry, _kwargs in (
    ("badinput/Sigint-v0", SignalEnv, {"signals": ("SIGINT",)}),
    ("badinput/Sigterm-v0", SignalEnv, {"signals": ("SIGTERM",)}),
    ("badinput/DoubleSigint-v0", SignalEnv, {"signals": ("SIGINT", "SIGINT")}),
    ("badinput/SigintInFinalEvaluation-v0", SignalEnv, {"signals": ("SIGINT",), "at": 45}),
    ("badinput/SigtermOnCreate-v0", SignalEnv, {"signals": ("SIGTERM",), "on_create": True}),
    ("badinput/CrashOnCreate-v0", CrashEnv, {}),
    ("badinput/CrashAtStep-v0", CrashEnv, {"at": 25}),
):
    if _id not in gym.registry:
        gym.register(_id, entry_point=_entry, kwargs=_kwargs, max_episode_steps=50)


# -- helpers -------------------------------------------------------------------------------------
@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.err.splitlines()


def cli(*argv: Any) -> Result:
    """`ddpg ARGV` in-process; an exception escaping `main` fails the test (a traceback)."""
    return Result(*run_cli(argv))


def expect_error(result: Result, code: int, *fragments: str, lines: int = 1) -> None:
    """Exit `code`; stderr is `lines` lines (the last the error, any before it warnings); no
    traceback; every fragment in the error line."""
    assert result.code == code, result
    assert "Traceback" not in result.err and "Traceback" not in result.out, result
    assert len(result.lines) == lines, result
    *warnings, error = result.lines
    assert all(line.startswith("ddpg: warning: ") for line in warnings), result
    assert error.startswith("ddpg: error: "), result
    for fragment in fragments:
        assert fragment in error, (fragment, error)


def fingerprint(*roots: Path) -> dict[str, str]:
    """Every file, directory and link under `roots` (themselves included) with its content's
    SHA-256 ('dir' for directories, the target for links)."""
    seen: dict[str, str] = {}
    for root in roots:
        paths = [root, *root.rglob("*")] if root.is_dir() and not root.is_symlink() else [root]
        for path in paths:
            if path.is_symlink():
                seen[str(path)] = "link:" + os.readlink(path)
            elif path.is_dir():
                seen[str(path)] = "dir"
            elif path.exists():
                seen[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return seen


def assert_kept(before: dict[str, str], after: dict[str, str]) -> None:
    """Everything in `before` is still there, unchanged."""
    changed = {p: (h, after.get(p)) for p, h in before.items() if after.get(p) != h}
    assert not changed, changed


@contextlib.contextmanager
def unprivileged() -> Iterator[None]:
    """Run as `nobody` if this process is root (whom permissions do not stop)."""
    if os.geteuid() != 0:
        yield
        return
    groups = os.getgroups()
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, 0)
    os.setresuid(NOBODY, NOBODY, 0)
    try:
        yield
    finally:
        os.setresuid(0, 0, 0)
        os.setresgid(0, 0, 0)
        os.setgroups(groups)


def open_up(root: Path) -> None:
    """Make `root` writable by anyone, so that an unprivileged case fails only where it is
    meant to."""
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o777 if path.is_dir() else 0o666)


def warm_imports() -> None:
    """Load what the commands import lazily, while the interpreter's files are readable (they
    may live in root's home, which `nobody` cannot read)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch._dynamo  # noqa: F401 (the optimisers import it on first use)

    import ddpg.export  # noqa: F401
    import ddpg.plots  # noqa: F401
    import ddpg.report  # noqa: F401
    import ddpg.runs  # noqa: F401

    figure = plt.figure()
    figure.savefig(io.BytesIO(), format="png")
    plt.close(figure)


# -- the shared run and each case's working directory -------------------------------------------
@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    """A folder anyone may enter (pytest's own temporary folders are private to their owner)."""
    folder = Path(tempfile.mkdtemp(prefix="ddpg-bad-input-"))
    folder.chmod(0o755)
    yield folder
    for path in [folder, *folder.rglob("*")]:  # the permission cases may leave modes behind
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    if shutil.which("chattr"):
        subprocess.run(["chattr", "-R", "-i", str(folder)], capture_output=True)
    shutil.rmtree(folder)


@pytest.fixture(scope="module")
def run(base: Path) -> Path:
    """One tiny trained Pendulum run: two checkpoints, both model files, evaluations."""
    run_dir = base / "shared-run"
    result = cli(
        "train", "--preset", "pendulum", "--total-steps", "200", "--learning-starts", "50",
        "--hidden-size", "16", "--batch-size", "16", "--eval-every", "100",
        "--eval-episodes-during", "1", "--eval-episodes", "1", "--checkpoint-every", "100",
        "--torch-threads", "1", "--tensorboard", "false", "--quiet", "--run-dir", run_dir,
    )  # fmt: skip
    assert (result.code, result.err) == (0, ""), result
    assert [p.name for p in list_checkpoints(run_dir / "checkpoints")] == [
        "step-0000000200",
        "step-0000000100",
    ]
    warm_imports()
    return run_dir


@dataclass
class Work:
    """A case's working directory (the current directory), with the shared run."""

    dir: Path
    shared: Path
    monkeypatch: pytest.MonkeyPatch
    undo: list[Callable[[], None]] = field(default_factory=list)

    def copy_run(self, name: str = "run") -> Path:
        target = self.dir / name
        shutil.copytree(self.shared, target)
        return target

    def chmod(self, path: Path, mode: int) -> None:
        old = stat.S_IMODE(path.lstat().st_mode)
        path.chmod(mode)
        self.undo.append(lambda: path.chmod(old))


@pytest.fixture
def work(base: Path, run: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Work]:
    folder = Path(tempfile.mkdtemp(dir=base))
    folder.chmod(0o777)
    (folder / "afile").write_text("hello\n")
    (folder / "mydata").mkdir()
    (folder / "mydata" / "thesis.txt").write_text("four years of work\n")
    monkeypatch.chdir(folder)
    (folder / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder / "tmp"))  # traceback files land here
    w = Work(folder, run, monkeypatch)
    yield w
    for undo in reversed(w.undo):
        undo()


# -- command-line cases that must fail: a table --------------------------------------------------
@dataclass
class Case:
    argv: list[str]  # {run}: the shared run, or the case's copy with copy=True
    code: int
    fragments: tuple[str, ...] = ()
    setup: Callable[[Work, Path], None] | None = None
    copy: bool = False  # work on a copy of the run (the case damages it)
    unprivileged: bool = False
    lines: int = 1
    out_empty: bool = True  # nothing printed on stdout (the work was not done)
    absent: tuple[str, ...] = ()  # fragments the message must not hold


def chmod(template: str, mode: int) -> Callable[[Work, Path], None]:
    """Setup: chmod the path `template` ({run}: the run) to `mode` (restored afterwards)."""

    def setup(w: Work, run_dir: Path) -> None:
        w.chmod(Path(template.format(run=run_dir)), mode)

    return setup


def make_ro(w: Work, _run: Path) -> None:
    (w.dir / "ro").mkdir()
    w.chmod(w.dir / "ro", 0o555)


def edit_config(change: Callable[[dict], None]) -> Callable[[Work, Path], None]:
    def setup(_w: Work, run_dir: Path) -> None:
        data = json.loads((run_dir / "config.json").read_text())
        change(data)
        (run_dir / "config.json").write_text(json.dumps(data))

    return setup


def write(template: str, content: bytes | str) -> Callable[[Work, Path], None]:
    def setup(_w: Work, run_dir: Path) -> None:
        path = Path(template.format(run=run_dir))
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        path.write_bytes(data)

    return setup


def flip_byte(template: str) -> Callable[[Work, Path], None]:
    def setup(_w: Work, run_dir: Path) -> None:
        path = Path(template.format(run=run_dir))
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))

    return setup


def both(*setups: Callable[[Work, Path], None]) -> Callable[[Work, Path], None]:
    def setup(w: Work, run_dir: Path) -> None:
        for s in setups:
            s(w, run_dir)

    return setup


def hold_lock(w: Work, run_dir: Path) -> None:
    lock = RunLock(run_dir)  # another "process" training in it (flock: per open file)
    w.undo.append(lock.release)


def home_is(template: str) -> Callable[[Work, Path], None]:
    def setup(w: Work, run_dir: Path) -> None:
        w.monkeypatch.setenv("HOME", template.format(run=run_dir))

    return setup


def dangling(w: Work, _run: Path) -> None:
    (w.dir / "link").symlink_to(w.dir / "nowhere")


def empty_csvs(_w: Work, run_dir: Path) -> None:
    for name in ("metrics.csv", "evaluations.csv"):
        (run_dir / name).write_text("")


def no_checkpoints(_w: Work, run_dir: Path) -> None:
    shutil.rmtree(run_dir / "checkpoints")


def all_checkpoints_damaged(_w: Work, run_dir: Path) -> None:
    for path in list_checkpoints(run_dir / "checkpoints"):
        (path / "manifest.json").write_text("{")


LONG = "x" * 300  # a file name longer than any file system allows (255 bytes)
C = Case
CASES: dict[str, Case] = {
    # -- file system: refused up front or reported as the OSError it is (exit 4) ----------------
    "run-dir-under-a-file": C([*TRAIN, "--run-dir", "afile/run"], 4, ("not a directory: afile",)),
    "run-dir-unwritable-parent": C(
        [*TRAIN, "--run-dir", "ro/run"],
        4,
        ("permission denied: ro/run",),
        make_ro,
        unprivileged=True,
    ),
    "run-dir-name-too-long": C([*TRAIN, "--run-dir", LONG], 4, ("file name too long",)),
    "run-dir-in-proc": C([*TRAIN, "--run-dir", "/proc/1/ddpg-run"], 4, ("/proc/1/ddpg-run",)),
    "run-dir-is-a-file": C([*TRAIN, "--run-dir", "afile"], 2, ("afile exists and is not a dir",)),
    "run-dir-is-dev-null": C([*TRAIN, "--run-dir", "/dev/null"], 2, ("is not a directory",)),
    "run-dir-dangling-link": C(
        [*TRAIN, "--run-dir", "link"], 2, ("broken symbolic link",), dangling
    ),
    "resume-unreadable-checkpoints": C(
        ["train", "--resume", "{run}"],
        4,
        ("permission denied: ", "checkpoints"),
        chmod("{run}/checkpoints", 0o000),
        copy=True,
        unprivileged=True,
    ),
    "resume-unreadable-checkpoint-file": C(
        ["train", "--resume", "{run}"],
        4,
        ("permission denied: ", "step-0000000200/weights.safetensors"),
        chmod("{run}/checkpoints/step-0000000200/weights.safetensors", 0o000),
        copy=True,
        unprivileged=True,
    ),
    "resume-read-only-run-dir": C(
        ["train", "--resume", "{run}", "--total-steps", "300"],
        4,
        ("permission denied: ",),
        both(chmod("{run}", 0o555), chmod("{run}/.lock", 0o444)),
        copy=True,
        unprivileged=True,
    ),
    "evaluate-unreadable-model": C(
        ["evaluate", "{run}"],
        4,
        ("permission denied: ", "model_best.safetensors"),
        chmod("{run}/model_best.safetensors", 0o000),
        copy=True,
        unprivileged=True,
    ),
    "evaluate-unreadable-config": C(
        ["evaluate", "{run}"],
        4,
        ("permission denied: ", "config.json"),
        chmod("{run}/config.json", 0o000),
        copy=True,
        unprivileged=True,
    ),
    "export-unreadable-model-file": C(
        ["export", "{run}/model_final.safetensors", "--format", "torchscript", "--out", "p.pt"],
        4,
        ("permission denied: ",),
        chmod("{run}/model_final.safetensors", 0o000),
        copy=True,
        unprivileged=True,
    ),
    "plot-unreadable-metrics": C(
        ["plot", "{run}", "--out", "curve.png"],
        4,
        ("permission denied: ", "metrics.csv"),
        chmod("{run}/metrics.csv", 0o000),
        copy=True,
        unprivileged=True,
    ),
    "report-unreadable-config": C(
        ["report", "{run}", "--out", "rep"],
        4,
        ("permission denied: ", "config.json"),
        chmod("{run}/config.json", 0o000),
        copy=True,
        unprivileged=True,
    ),
    "evaluate-json-is-a-directory": C(
        ["evaluate", "{run}", "--json", "mydata"], 2, ("mydata is a directory",)
    ),
    "evaluate-json-under-a-file": C(
        ["evaluate", "{run}", "--json", "afile/e.json"],
        4,
        ("not a directory: afile",),
    ),
    "evaluate-json-unwritable-folder": C(
        ["evaluate", "{run}", "--json", "ro/e.json"],
        4,
        ("permission denied: ro",),
        make_ro,
        unprivileged=True,
    ),
    "evaluate-json-uncreatable-folder": C(
        ["evaluate", "{run}", "--json", "ro/new/e.json"],
        4,
        ("permission denied: ro",),
        make_ro,
        unprivileged=True,
    ),
    "evaluate-json-dev-full": C(
        ["evaluate", "{run}", "--json", "/dev/full"], 2, ("not a regular file",)
    ),
    "evaluate-json-proc-file": C(
        ["evaluate", "{run}", "--json", "/proc/version"],
        2,
        ("not an evaluation JSON", "--force"),
    ),
    "plot-out-is-a-directory": C(
        ["plot", "{run}", "--out", "mydata.png"],
        2,
        ("is a directory",),
        lambda w, r: (w.dir / "mydata.png").mkdir(),
    ),
    "plot-out-unwritable-folder": C(
        ["plot", "{run}", "--out", "ro/c.png"],
        4,
        ("permission denied: ro",),
        make_ro,
        unprivileged=True,
    ),
    "plot-default-out-in-read-only-run": C(
        ["plot", "{run}"],
        4,
        ("permission denied: ",),
        chmod("{run}", 0o555),
        copy=True,
        unprivileged=True,
    ),
    "export-out-is-a-directory": C(
        ["export", "{run}", "--format", "torchscript", "--out", "mydata"],
        2,
        ("is a directory",),
    ),
    "export-out-under-a-file": C(
        ["export", "{run}", "--format", "onnx", "--out", "afile/p.onnx"],
        4,
        ("not a directory",),
    ),
    "export-out-unwritable-folder": C(
        ["export", "{run}", "--format", "onnx", "--out", "ro/p.onnx"],
        4,
        ("permission denied",),
        make_ro,
        unprivileged=True,
    ),
    "report-out-unwritable": C(
        ["report", "{run}", "--out", "ro/rep"],
        4,
        ("permission denied: ro",),
        make_ro,
        unprivileged=True,
    ),
    "report-out-under-a-file": C(
        ["report", "{run}", "--out", "afile/rep"], 4, ("not a directory: afile",)
    ),
    "report-out-is-a-file": C(["report", "{run}", "--out", "afile"], 2, ("not a directory",)),
    "evaluate-a-file": C(["evaluate", "afile"], 2, ("afile is not a run directory",)),
    "evaluate-config-json-is-a-directory": C(
        ["evaluate", "mydata"],
        2,
        ("is a directory, not a run config",),
        lambda w, r: (w.dir / "mydata" / "config.json").mkdir(),
    ),
    # -- values that used to pass validation and crash later (exit 2, nothing created) --------
    "train-seed-negative": C(
        [*TRAIN, "--seed", "-1", "--run-dir", "r"], 2, ("seed must be an integer in [0, 2^63)",)
    ),
    "train-seed-2^63": C([*TRAIN, "--seed", str(2**63), "--run-dir", "r"], 2, ("[0, 2^63)",)),
    "train-seed-fraction": C(
        [*TRAIN, "--seed", "1.5", "--run-dir", "r"], 2, ("--seed: expected int, got '1.5'",)
    ),
    "train-seed-1e30": C([*TRAIN, "--seed", "1e30", "--run-dir", "r"], 2, ("[0, 2^63)",)),
    "train-seed-empty": C([*TRAIN, "--seed", "", "--run-dir", "r"], 2, ("--seed: expected int",)),
    "evaluate-seed-negative": C(["evaluate", "{run}", "--seed", "-1"], 2, ("--seed", "[0, 2^63)")),
    "evaluate-seed-2^63": C(["evaluate", "{run}", "--seed", str(2**63)], 2, ("[0, 2^63)",)),
    "evaluate-seed-fraction": C(["evaluate", "{run}", "--seed", "0.5"], 2, ("'0.5'",)),
    "evaluate-episodes-zero": C(["evaluate", "{run}", "--episodes", "0"], 2, ("integer >= 1",)),
    "evaluate-episodes-negative": C(
        ["evaluate", "{run}", "--episodes", "-3"], 2, ("integer >= 1",)
    ),
    # -- valid, but endless or absurd: refused before anything starts (exit 2) -----------------
    "total-steps-1e400": C(
        [*TRAIN, "--total-steps", "1e400", "--run-dir", "r"],
        2,
        ("total_steps must be at most 10^10, got 1.00e+400",),
    ),
    "total-steps-beyond-checkpoint-names": C(
        [*TRAIN, "--total-steps", "2e10", "--run-dir", "r"], 2, ("at most 10^10",)
    ),
    "total-steps-a-million-digits": C(
        [*TRAIN, "--total-steps", "1e999999", "--run-dir", "r"],
        2,
        ("--total-steps: expected an integer below 2^63, got '1e999999'",),
    ),
    "episodes-1e11": C([*TRAIN, "--episodes", "1e11", "--run-dir", "r"], 2, ("at most 10^10",)),
    "eval-every-beyond-int64": C(
        [*TRAIN, "--eval-every", "1e30", "--run-dir", "r"], 2, ("eval_every must be at most",)
    ),
    "eval-episodes-1e9": C(
        [*TRAIN, "--eval-episodes", "1000000000", "--run-dir", "r"],
        2,
        ("eval_episodes must be at most 100,000, got 1000000000",),
    ),
    "eval-episodes-during-1e9": C(
        [*TRAIN, "--eval-episodes-during", "1e9", "--run-dir", "r"], 2, ("at most 100,000",)
    ),
    "updates-per-step-1e9": C(
        [*TRAIN, "--updates-per-step", "1e9", "--run-dir", "r"],
        2,
        ("updates_per_step must be at most 1000",),
    ),
    "noise-std-1e3": C([*TRAIN, "--noise-std", "1e3", "--run-dir", "r"], 2, ("at most 100",)),
    "actor-lr-beyond-float32": C(
        [*TRAIN, "--actor-lr", "1e39", "--run-dir", "r"], 2, ("float32's range",)
    ),
    "resume-with-total-steps-1e400": C(
        ["train", "--resume", "{run}", "--total-steps", "1e400"], 2, ("at most 10^10",)
    ),
    "evaluate-episodes-1e9": C(
        ["evaluate", "{run}", "--episodes", "1e9"], 2, ("at most 100,000 episodes",)
    ),
    "record-episodes-1e9": C(
        ["record", "{run}", "--episodes", "1000000000"], 2, ("at most 100,000 episodes",)
    ),
    "record-frame-skip-beyond-int64": C(
        ["record", "{run}", "--frame-skip", "1e19"], 2, ("below 2^63",)
    ),
    "device-malformed": C([*TRAIN, "--device", "cuda:x", "--run-dir", "r"], 2, ("'cuda:x'",)),
    "device-empty-index": C([*TRAIN, "--device", "cuda:", "--run-dir", "r"], 2, ("'cuda:'",)),
    "device-upper-case": C([*TRAIN, "--device", "CPU", "--run-dir", "r"], 2, ("'CPU'",)),
    "device-absent-gpu": C([*TRAIN, "--device", "cuda:99", "--run-dir", "r"], 2, ("cuda:99",)),
    "hidden-size-beyond-memory": C(
        [*TRAIN, "--hidden-size", "1e8", "--run-dir", "r"], 2, ("GiB", "available")
    ),
    "buffer-beyond-memory": C(
        [*TRAIN, "--buffer-size", "1e11", "--batch-size", "4", "--run-dir", "r"],
        2,
        ("replay buffer",),
    ),
    "buffer-beyond-a-float": C([*TRAIN, "--buffer-size", "1e400", "--run-dir", "r"], 2, ("10^",)),
    "num-envs-beyond-memory": C(
        [*TRAIN, "--num-envs", "1e30", "--run-dir", "r"], 2, ("environment(s)", "--num-envs")
    ),
    "torch-threads-huge": C(
        [*TRAIN, "--torch-threads", "100000", "--run-dir", "r"], 2, ("at most 1024",)
    ),
    "torch-threads-beyond-int64": C(
        [*TRAIN, "--torch-threads", "1e30", "--run-dir", "r"], 2, ("at most 1024",)
    ),
    "target-return-nan": C(
        [*TRAIN, "--target-return", "nan", "--run-dir", "r"], 2, ("target_return must be finite",)
    ),
    "target-return-inf": C(
        [*TRAIN, "--target-return", "inf", "--run-dir", "r"], 2, ("must be finite",)
    ),
    "target-return-minus-inf": C(
        [*TRAIN, "--target-return", "-inf", "--run-dir", "r"], 2, ("must be finite",)
    ),
    "negative-scientific-is-a-value": C(
        [*TRAIN, "--target-return", "-1e3", "--total-steps", "0", "--run-dir", "r"],
        2,
        ("total_steps must be >= 1",),
    ),
    "gamma-overflows-to-inf": C(
        [*TRAIN, "--gamma", "1e400", "--run-dir", "r"], 2, ("gamma must be finite",)
    ),
    "updates-per-step-inf": C(
        [*TRAIN, "--updates-per-step", "inf", "--run-dir", "r"], 2, ("finite",)
    ),
    "noise-std-negative": C([*TRAIN, "--noise-std", "-0.1", "--run-dir", "r"], 2, ("noise_std",)),
    "batch-size-fraction": C(
        [*TRAIN, "--batch-size", "8.5", "--run-dir", "r"], 2, ("--batch-size",)
    ),
    "total-steps-hex": C([*TRAIN, "--total-steps", "0x10", "--run-dir", "r"], 2, ("'0x10'",)),
    "bool-not-a-bool": C([*TRAIN, "--batch-norm", "maybe", "--run-dir", "r"], 2, ("'maybe'",)),
    "option-without-value": C([*TRAIN, "--batch-size"], 2, ("expected one argument",)),
    "option-misspelt": C([*TRAIN, "--learning-rate", "0.1"], 2, ("did you mean",)),
    "no-command": C([], 2, ("required",)),
    # -- environments ---------------------------------------------------------------------------
    "env-needs-jax-phys2d": C(
        ["train", "--env", "phys2d/Pendulum-v0", "--run-dir", "r"], 2, ("needs a missing package",)
    ),
    "env-needs-jax-tabular": C(
        ["train", "--env", "tabular/Blackjack-v0", "--run-dir", "r"],
        2,
        ("needs a missing package",),
    ),
    "env-needs-shimmy": C(
        ["train", "--env", "GymV26Environment-v0", "--run-dir", "r"], 2, ("shimmy",)
    ),
    "env-typo-hint-skips-mujoco-package": C(
        ["train", "--env", "Pendulum-v0", "--run-dir", "r"], 2, ("did you mean Pendulum-v1",)
    ),
    "env-hint-skips-jax-ids": C(
        ["train", "--env", "phys2d/Pendulum-v1", "--run-dir", "r"],
        2,
        ("did you mean Pendulum-v1",),
        absent=("phys2d/Pendulum-v0",),
    ),
    "env-leading-space": C(
        ["train", "--env", " Pendulum-v1", "--run-dir", "r"],
        2,
        ("unknown environment ' Pendulum-v1'",),
    ),
    "env-module-missing": C(
        ["train", "--env", "nosuchmodule:Foo-v0", "--run-dir", "r"], 2, ("nosuchmodule",)
    ),
    "env-module-without-env": C(
        ["train", "--env", "os:system", "--run-dir", "r"], 2, ("unknown environment 'os:system'",)
    ),
    "env-discrete": C(
        ["train", "--env", "CartPole-v1", "--run-dir", "r"], 2, ("Discrete action space",)
    ),
    "env-images": C(["train", "--env", "CarRacing-v3", "--run-dir", "r"], 2, ("no images",)),
    # -- outputs: never replace what ddpg did not write, nor what a run needs -------------------
    "evaluate-json-over-config": C(
        ["evaluate", "{run}", "--json", "{run}/config.json"], 2, ("belongs to its run directory",)
    ),
    "evaluate-json-over-config-forced": C(
        ["evaluate", "{run}", "--json", "{run}/config.json", "--force"],
        2,
        ("never replaced",),
    ),
    "evaluate-json-into-checkpoints": C(
        ["evaluate", "{run}", "--json", "{run}/checkpoints/e.json"],
        2,
        ("belongs to its run",),
    ),
    "evaluate-json-over-foreign-file": C(
        ["evaluate", "{run}", "--json", "afile"],
        2,
        ("not an evaluation JSON", "--force"),
    ),
    "export-out-over-model": C(
        ["export", "{run}", "--format", "onnx", "--out", "{run}/model_best.safetensors"],
        2,
        ("belongs to its run directory",),
    ),
    "export-out-over-foreign-file": C(
        ["export", "{run}", "--format", "torchscript", "--out", "afile"],
        2,
        ("not a TorchScript model",),
    ),
    "export-a-text-file": C(
        ["export", "afile", "--format", "onnx", "--out", "x.onnx"],
        2,
        ("not a readable safetensors",),
    ),
    "export-missing-model": C(
        ["export", "nope.safetensors", "--format", "onnx"], 2, ("no model file",)
    ),
    "export-onnx-into-pt": C(
        ["export", "{run}", "--format", "onnx", "--out", "p.pt"],
        2,
        ("--out p.pt names a TorchScript model but --format is onnx; end it in .onnx",),
    ),
    "export-torchscript-into-onnx": C(
        ["export", "{run}", "--format", "torchscript", "--out", "P.ONNX"],
        2,
        ("--out P.ONNX names a ONNX model but --format is torchscript; end it in .pt",),
    ),
    "export-run-dir-option": C(  # the run is export's argument: no hint at the very option
        ["export", "{run}", "--format", "onnx", "--run-dir", "x"],
        2,
        ("unrecognized arguments: --run-dir x",),
        absent=("did you mean",),
    ),
    "record-out-txt": C(["record", "{run}", "--out", "video.txt"], 2, (".gif or .mp4",)),
    "record-out-config": C(["record", "{run}", "--out", "{run}/config.json"], 2, (".gif or .mp4",)),
    "record-out-foreign-gif": C(
        ["record", "{run}", "--out", "notes.gif"],
        2,
        ("not a GIF",),
        write("notes.gif", "my notes\n"),
    ),
    "report-threshold-nan": C(["report", "{run}", "--threshold", "nan"], 2, ("finite",)),
    "report-split-by-typo": C(
        ["report", "{run}", "--split-by", "seeed"], 2, ("did you mean 'seed'",)
    ),
    "report-foreign-report-md": C(
        ["report", "{run}", "--out", "."],
        2,
        ("report.md exists", "--force"),
        write("report.md", "# my notes\n"),
    ),
    "report-missing-path": C(["report", "nowhere"], 2, ("nowhere does not exist",)),
    # -- --overwrite, run directories in use ----------------------------------------------------
    "overwrite-empty-run-dir": C([*TRAIN, "--run-dir", "", "--overwrite"], 2, ("empty path",)),
    "overwrite-blank-run-dir": C([*TRAIN, "--run-dir", "  ", "--overwrite"], 2, ("empty path",)),
    "overwrite-user-folder": C(
        [*TRAIN, "--run-dir", "mydata", "--overwrite"], 2, ("not a run directory of this library",)
    ),
    "overwrite-current-dir": C(
        [*TRAIN, "--run-dir", ".", "--overwrite"], 2, ("current directory",)
    ),
    "overwrite-parent-dir": C(
        [*TRAIN, "--run-dir", "..", "--overwrite"], 2, ("one of its parents",)
    ),
    "overwrite-home-dir": C(
        [*TRAIN, "--run-dir", "{run}", "--overwrite"],
        2,
        ("home directory",),
        home_is("{run}"),
        copy=True,
    ),
    "overwrite-run-with-user-file": C(
        [*TRAIN, "--run-dir", "{run}", "--overwrite"],
        2,
        ("did not make (notes.txt)",),
        write("{run}/notes.txt", "mine\n"),
        copy=True,
    ),
    "overwrite-run-in-use": C(
        [*TRAIN, "--run-dir", "{run}", "--overwrite"],
        2,
        ("in use by another ddpg process",),
        hold_lock,
        copy=True,
    ),
    "overwrite-run-with-damaged-config": C(
        [*TRAIN, "--run-dir", "{run}", "--overwrite"],
        2,
        ("not a run directory",),
        write("{run}/config.json", "{"),
        copy=True,
    ),
    "existing-run-dir-with-spaces": C(
        [*TRAIN, "--run-dir", "my  run"],
        2,
        ("run directory my  run exists", "--resume 'my  run'", "--overwrite"),
        lambda w, r: shutil.copytree(r, w.dir / "my  run"),
    ),
    "resume-run-in-use": C(["train", "--resume", "{run}"], 2, ("in use",), hold_lock, copy=True),
    # -- resume -----------------------------------------------------------------------------------
    "resume-hand-edited-gamma": C(
        ["train", "--resume", "{run}"],
        2,
        ("differs from its checkpoint in gamma",),
        edit_config(lambda d: d["config"].update(gamma=0.5)),
        copy=True,
    ),
    "resume-hand-edited-unknown-key": C(
        ["train", "--resume", "{run}"],
        2,
        ("unknown config key 'gama' (did you mean 'gamma'?)",),
        edit_config(lambda d: d["config"].update(gama=0.5)),
        copy=True,
    ),
    "resume-config-not-json": C(
        ["train", "--resume", "{run}"],
        2,
        ("damaged (not JSON)",),
        write("{run}/config.json", '{"config": {"env_id": "Pend'),
        copy=True,
    ),
    "resume-config-not-utf8": C(
        ["train", "--resume", "{run}"],
        2,
        ("damaged (not JSON)",),
        write("{run}/config.json", b'{"config": {"env_id": "\xff\xfe"}}'),
        copy=True,
    ),
    "resume-config-a-list": C(
        ["train", "--resume", "{run}"],
        2,
        ("not a run config",),
        write("{run}/config.json", "[]"),
        copy=True,
    ),
    "resume-no-checkpoints": C(
        ["train", "--resume", "{run}"], 2, ("no valid checkpoint",), no_checkpoints, copy=True
    ),
    "resume-all-checkpoints-damaged": C(
        ["train", "--resume", "{run}"],
        2,
        ("no valid checkpoint", "unreadable manifest"),
        all_checkpoints_damaged,
        copy=True,
    ),
    "resume-budget-already-passed": C(
        ["train", "--resume", "{run}", "--total-steps", "150"],
        2,
        ("--total-steps 150 does not continue the run", "200"),
        copy=True,
    ),
    "resume-episodes-zero": C(
        ["train", "--resume", "{run}", "--episodes", "0"], 2, ("episodes must be >= 1",)
    ),
    "resume-change-gamma": C(
        ["train", "--resume", "{run}", "--gamma", "0.5"], 2, ("--gamma cannot be changed",)
    ),
    "resume-with-preset": C(
        ["train", "--resume", "{run}", "--preset", "pendulum"],
        2,
        ("cannot be changed when resuming",),
    ),
    "resume-missing": C(["train", "--resume", "nowhere"], 2, ("nowhere is not a run directory",)),
    "resume-user-folder": C(["train", "--resume", "mydata"], 2, ("not a run directory",)),
    "resume-a-file": C(["train", "--resume", "afile"], 2, ("not a run directory",)),
    # -- plot -------------------------------------------------------------------------------------
    "plot-garbled-value": C(
        ["plot", "{run}", "--out", "c.png"],
        2,
        ("metrics.csv: line 2 running_avg_100 is 'abc', not a finite number",),
        write(
            "{run}/metrics.csv", "step,episode,return,length,running_avg_100\n200,1,-1,200,abc\n"
        ),
        copy=True,
    ),
    "plot-not-utf8": C(
        ["plot", "{run}", "--out", "c.png"],
        2,
        ("not UTF-8",),
        write("{run}/evaluations.csv", b"step,mean_return\n\xff\xfe,1\n"),
        copy=True,
    ),
    "plot-nan-in-evaluations": C(
        ["plot", "{run}", "--out", "c.png"],
        2,
        ("'nan'",),
        write("{run}/evaluations.csv", "step,episode,mean_return\n100,1,nan\n"),
        copy=True,
    ),
    "plot-foreign-csv": C(
        ["plot", "{run}", "--out", "c.png"],
        2,
        ("no step and running_avg_100 columns",),
        write("{run}/metrics.csv", 'a,b\n"unterminated\n'),
        copy=True,
    ),
    "plot-nothing-yet": C(
        ["plot", "{run}", "--out", "c.png"], 2, ("no metrics to plot yet",), empty_csvs, copy=True
    ),
    "plot-out-txt": C(
        ["plot", "{run}", "--out", "curve.txt"], 2, ("must end in .png, .svg, .pdf",)
    ),
    "plot-out-json": C(["plot", "{run}", "--out", "curve.json"], 2, ("'curve.json'",)),
    "plot-out-into-checkpoints": C(
        ["plot", "{run}", "--out", "{run}/checkpoints/c.png"], 2, ("belongs to its run",)
    ),
    "plot-out-over-foreign-png": C(
        ["plot", "{run}", "--out", "notes.png"],
        2,
        ("not a PNG image", "--force"),
        write("notes.png", "not an image\n"),
    ),
    "plot-user-folder": C(["plot", "mydata"], 2, ("not a run directory",)),
    "plot-a-file": C(["plot", "afile"], 2, ("not a run directory",)),
    # -- silent acceptance, now refused -----------------------------------------------------------
    "preset-empty": C(["train", "--preset", "", "--run-dir", "r"], 2, ("--preset is empty",)),
    "preset-blank": C(["train", "--preset", " ", "--run-dir", "r"], 2, ("--preset is empty",)),
    "preset-unknown": C(
        ["train", "--preset", "pendulumm", "--run-dir", "r"], 2, ("did you mean 'pendulum'",)
    ),
    "env-empty": C(["train", "--env", "", "--run-dir", "r"], 2, ("--env is empty",)),
    "run-dir-blank": C(["train", "--run-dir", " "], 2, ("empty path",)),
    "resume-empty": C(["train", "--resume", ""], 2, ("empty path",)),
    "plot-empty-path": C(["plot", ""], 2, ("empty path",)),
}

# Without MuJoCo, a MuJoCo task names the extra; an out-of-date version also gets Gymnasium's
# one-line warning first (two lines: the warning, then the error).
try:
    import mujoco  # noqa: F401

    HAVE_MUJOCO = True
except ImportError:
    HAVE_MUJOCO = False
if not HAVE_MUJOCO:
    CASES["env-needs-mujoco"] = C(
        ["train", "--env", "HalfCheetah-v5", "--run-dir", "r"], 2, ('"ddpg[mujoco]"',)
    )
    CASES["env-out-of-date-and-missing"] = C(
        ["train", "--env", "HalfCheetah-v4", "--run-dir", "r"],
        2,
        ("ddpg[mujoco]",),
        lines=2,
    )


@pytest.mark.parametrize("name", list(CASES))
def test_cli_refuses(name: str, work: Work) -> None:
    case = CASES[name]
    run_dir = work.copy_run() if case.copy else work.shared
    if case.unprivileged:
        open_up(work.dir)
    if case.setup is not None:
        case.setup(work, run_dir)
    argv = [a.format(run=run_dir) for a in case.argv]
    before = fingerprint(work.dir, work.shared)
    with unprivileged() if case.unprivileged else contextlib.nullcontext():
        result = cli(*argv)
    for undo in reversed(work.undo):
        undo()
    work.undo.clear()
    expect_error(result, case.code, *case.fragments, lines=case.lines)
    if case.out_empty:
        assert result.out == "", result
    for fragment in case.absent:
        assert fragment not in result.err, result
    assert fingerprint(work.dir, work.shared) == before  # unchanged, and nothing created


def test_immutable_parent(work: Work) -> None:
    """`chattr +i`: even root cannot create entries there."""
    if os.geteuid() != 0 or not shutil.which("chattr"):
        pytest.skip("chattr +i needs root and chattr (the unwritable-parent case covers users)")
    folder = work.dir / "frozen"
    folder.mkdir()
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("this file system or container does not allow chattr +i")
    try:
        before = fingerprint(work.dir)
        result = cli(*TRAIN, "--run-dir", folder / "run")
        assert fingerprint(work.dir) == before
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    expect_error(result, 4, "operation not permitted: ", "frozen/run")


# -- command-line cases that work (the better answer) or warn -----------------------------------
def test_evaluate_json_into_missing_folder(work: Work) -> None:
    before = fingerprint(work.dir, work.shared)
    result = cli("evaluate", work.shared, "--episodes", "1", "--json", "new/deeper/e.json")
    assert (result.code, result.err) == (0, ""), result
    data = json.loads((work.dir / "new" / "deeper" / "e.json").read_text())
    assert data["episodes"] == 1 and data["model"] == "best"
    assert_kept(before, fingerprint(work.dir, work.shared))


def test_evaluate_json_replaces_its_own_kind(work: Work) -> None:
    assert cli("evaluate", work.shared, "--episodes", "1", "--json", "e.json").code == 0
    result = cli("evaluate", work.shared, "--episodes", "2", "--json", "e.json")
    assert (result.code, result.err) == (0, "")
    assert json.loads((work.dir / "e.json").read_text())["episodes"] == 2


def test_exact_seeds_are_not_rounded() -> None:
    assert parse_value("seed", "9007199254740993") == 9007199254740993  # 2^53 + 1
    assert parse_value("seed", "1e3") == 1000 and parse_value("total_steps", "1_000") == 1000


def test_plot_out_without_suffix_says_what_it_wrote(work: Work) -> None:
    before = fingerprint(work.dir, work.shared)
    result = cli("plot", work.shared, "--out", "name")
    assert (result.code, result.err, result.out) == (0, "", f"wrote {Path('name.png')}\n")
    assert (work.dir / "name.png").read_bytes().startswith(b"\x89PNG")
    assert_kept(before, fingerprint(work.dir, work.shared))


def test_plot_force_replaces_a_foreign_file(work: Work) -> None:
    (work.dir / "notes.png").write_text("not an image\n")
    result = cli("plot", work.shared, "--out", "notes.png", "--force")
    assert (result.code, result.err) == (0, "")
    assert (work.dir / "notes.png").read_bytes().startswith(b"\x89PNG")


def test_export_into_missing_folder(work: Work) -> None:
    before = fingerprint(work.dir, work.shared)
    result = cli("export", work.shared, "--format", "torchscript", "--out", "out/p.pt")
    assert (result.code, result.err) == (0, ""), result
    assert (work.dir / "out" / "p.pt").stat().st_size > 0
    assert_kept(before, fingerprint(work.dir, work.shared))


def test_env_without_preset_uses_defaults_and_warns_about_budget(work: Work) -> None:
    """`--env X` alone: the generic defaults, said on the first line; learning_starts at the
    budget gives one warning line (the run is valid, only probably not what was meant)."""
    result = cli(
        "train", "--env", "Pendulum-v1", *QUICK, "--learning-starts", "40", "--run-dir", "r"
    )
    assert result.code == 0, result
    assert result.lines == [
        "ddpg: warning: learning_starts (40) >= total_steps (40): the run will only take random "
        "actions and make no update"
    ]
    assert result.out.splitlines()[0].startswith("training Pendulum-v1 (defaults) into r;")
    saved = json.loads((work.dir / "r" / "config.json").read_text())
    assert saved["preset"] == "defaults" and saved["config"]["target_return"] is None
    assert saved["config"]["hidden_size"] == 8 and saved["config"]["gamma"] == Config().gamma


def test_preset_on_another_env_drops_its_target_and_warns(work: Work) -> None:
    result = cli(
        "train", "--preset", "lunarlander", "--env", "Pendulum-v1", *QUICK, "--eval-every", "80",
        "--run-dir", "r",
    )  # fmt: skip
    assert result.code == 0, result
    assert result.lines == [  # two warnings: each a line of its own
        "ddpg: warning: target_return 230.0 of preset lunarlander is for "
        "LunarLanderContinuous-v3, not Pendulum-v1: unset",
        "ddpg: warning: eval_every (80) > total_steps (40): no periodic evaluation will run",
    ]
    assert (
        json.loads((work.dir / "r" / "config.json").read_text())["config"]["target_return"] is None
    )


def test_overwrite_replaces_a_run_of_ours(work: Work) -> None:
    """Including the files other commands wrote into it at their default paths."""
    run_dir = work.copy_run()
    assert cli("report", run_dir).code == 0 and cli("plot", run_dir).code == 0
    assert (run_dir / "report.md").is_file() and (run_dir / "learning_curve.png").is_file()
    result = cli(*TRAIN, "--run-dir", run_dir, "--overwrite", "--quiet")
    assert (result.code, result.err) == (0, ""), result
    config = json.loads((run_dir / "config.json").read_text())["config"]
    assert config["total_steps"] == 40 and config["hidden_size"] == 8
    assert [p.name for p in list_checkpoints(run_dir / "checkpoints")] == [
        "step-0000000040",
        "step-0000000020",
    ]
    assert not (run_dir / "report.md").exists()


def test_stale_lock_of_a_killed_process_does_not_block(work: Work) -> None:
    run_dir = work.copy_run()
    (run_dir / ".lock").write_text("999999999\n")  # a pid that holds no flock
    result = cli("train", "--resume", run_dir, "--total-steps", "220", "--quiet")
    assert (result.code, result.err) == (0, ""), result
    assert list_checkpoints(run_dir / "checkpoints")[0].name == "step-0000000220"


def test_damaged_newest_checkpoint_is_set_aside_and_the_good_one_kept(work: Work) -> None:
    run_dir = work.copy_run()
    flip_byte("{run}/checkpoints/step-0000000200/weights.safetensors")(work, run_dir)
    damaged = fingerprint(run_dir / "checkpoints" / "step-0000000200")
    result = cli("train", "--resume", run_dir, "--total-steps", "250")
    assert (result.code, result.err) == (0, ""), result
    assert "skipped a damaged checkpoint" in result.out and "resumed from" in result.out
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    # Resumed from step 100; the newest good checkpoints are kept, the damaged one set aside.
    assert names == ["damaged-step-0000000200", "step-0000000200", "step-0000000250"]
    aside = fingerprint(run_dir / "checkpoints" / "damaged-step-0000000200")
    assert sorted(aside.values()) == sorted(damaged.values())


# -- signals and unexpected errors ---------------------------------------------------------------
def test_sigint_mid_run_prints_a_pasteable_resume_command(work: Work) -> None:
    """Ctrl-C: a checkpoint, exit 130 and two lines: where it stopped, and the resume command
    (shell-quoted: the run directory has a space) which then works as printed."""
    ARMED["SIGINT"] = 1
    result = cli("train", "--env", "badinput/Sigint-v0", *QUICK, "--run-dir", "my run", "--quiet")
    assert result.code == 130, result
    stopped, resume = result.lines
    assert stopped.startswith("ddpg: stopped by SIGINT at step 25; checkpoint written to ")
    assert resume == "resume with: ddpg train --resume 'my run'"
    assert list_checkpoints(work.dir / "my run" / "checkpoints")[0].name == "step-0000000025"
    command = shlex.split(resume.split(": ", 1)[1])
    assert command[:3] == ["ddpg", "train", "--resume"]
    resumed = cli(*command[1:], "--quiet")
    assert (resumed.code, resumed.err) == (0, ""), resumed
    assert (work.dir / "my run" / "model_final.safetensors").is_file()


def test_a_costly_run_is_warned_of_before_it_starts_and_stops_like_any_other(work: Work) -> None:
    """10^10 steps evaluated every 20: valid, so it starts, after one line per cost (evaluation,
    then updates); Ctrl-C at step 25 stops it as it stops any run, and resuming warns again."""
    ARMED["SIGINT"] = 1
    argv = ["--env", "badinput/Sigint-v0", *QUICK, "--total-steps", "1e10", "--run-dir", "r"]
    result = cli("train", *argv, "--quiet")
    assert result.code == 130, result
    evaluation, updates, stopped, resume = result.lines
    assert evaluation.startswith("ddpg: warning: evaluation will take up to 10,000,000,040 env ")
    assert "(500,000,000 periodic evaluations x 1 episodes" in evaluation
    assert updates == (
        "ddpg: warning: updates_per_step 1 x 9,999,999,990 learning steps is 9,999,999,990 "
        "gradient updates, 1,111 hours even at the 0.4 ms of a CUDA-graphed update on an H100"
    )
    assert stopped.startswith("ddpg: stopped by SIGINT at step 25")
    assert resume == "resume with: ddpg train --resume r"
    ARMED["SIGINT"] = 1
    again = cli("train", "--resume", "r", "--quiet")
    assert again.code == 130 and again.lines[:2] == [evaluation, updates], again


def test_sigterm_mid_run_exits_143_with_a_checkpoint(work: Work) -> None:
    ARMED["SIGTERM"] = 1
    result = cli("train", "--env", "badinput/Sigterm-v0", *QUICK, "--run-dir", "r", "--quiet")
    assert result.code == 143 and len(result.lines) == 2 and "Traceback" not in result.err
    assert result.lines[0].startswith("ddpg: stopped by SIGTERM at step 25")
    assert list_checkpoints(work.dir / "r" / "checkpoints")[0].name == "step-0000000025"


def test_second_ctrl_c_stops_at_once(work: Work) -> None:
    """Two Ctrl-C in one step (a user who will not wait for a long update): exit 130 at once,
    no new checkpoint, the last one intact and resumable."""
    ARMED["SIGINT"] = 2
    result = cli("train", "--env", "badinput/DoubleSigint-v0", *QUICK, "--run-dir", "r", "--quiet")
    assert result.code == 130 and "Traceback" not in result.err, result
    assert result.lines == [
        "ddpg: interrupted at once, without a checkpoint; resume from the last one with: "
        "ddpg train --resume r"
    ]
    checkpoints = list_checkpoints(work.dir / "r" / "checkpoints")
    assert [p.name for p in checkpoints] == ["step-0000000020"]
    assert not [p for p in (work.dir / "r").rglob("*") if ".tmp" in p.name]
    assert cli("train", "--resume", "r", "--quiet").code == 0


def test_ctrl_c_in_the_final_evaluation_says_how_to_finish(work: Work) -> None:
    """The training env stops at step 40; the evaluation env passes its step 45 in the final
    evaluation (after 2 periodic evaluations of 20 steps): Ctrl-C there."""
    ARMED["SIGINT"] = 1
    env = "badinput/SigintInFinalEvaluation-v0"
    result = cli("train", "--env", env, *QUICK, "--eval-episodes", "3", "--run-dir", "r", "--quiet")
    assert (result.code, result.out) == (130, ""), result
    assert result.lines == [
        "ddpg: stopped by SIGINT after training, before the final evaluation was written; "
        "finish it with: ddpg train --resume r"
    ]
    assert not (work.dir / "r" / "evaluation.json").exists()
    assert not [p for p in (work.dir / "r").rglob("*") if ".tmp" in p.name]
    finished = cli("train", "--resume", "r", "--quiet")
    assert (finished.code, finished.err) == (0, ""), finished
    assert json.loads((work.dir / "r" / "evaluation.json").read_text())["steps"] == 40


def test_sigterm_while_the_env_is_made(work: Work) -> None:
    """SIGTERM before training starts: exit 143, one line, no run directory left."""
    ARMED["SIGTERM"] = 1
    before = fingerprint(work.dir)
    result = cli("train", "--env", "badinput/SigtermOnCreate-v0", *QUICK, "--run-dir", "r")
    assert (result.code, result.err, result.out) == (143, "ddpg: terminated\n", "")
    assert fingerprint(work.dir) == before


def test_unexpected_error_before_a_run_dir_names_its_traceback_file(work: Work) -> None:
    result = cli("train", "--env", "badinput/CrashOnCreate-v0", *QUICK, "--run-dir", "r")
    expect_error(result, 1, "unexpected error: RuntimeError: the simulator's licence file is")
    logs = list((work.dir / "tmp").glob("ddpg-error-*.log"))
    assert len(logs) == 1 and str(logs[0]) in result.err
    assert "Traceback" in logs[0].read_text() and "licence file" in logs[0].read_text()
    assert not (work.dir / "r").exists()


def test_unexpected_error_in_a_run_writes_its_traceback_there(work: Work) -> None:
    result = cli("train", "--env", "badinput/CrashAtStep-v0", *QUICK, "--run-dir", "r")
    expect_error(result, 1, "RuntimeError: the simulator diverged", "traceback in r/error-")
    (log,) = (work.dir / "r").glob("error-*.log")
    assert "the simulator diverged" in log.read_text()


def test_debug_prints_the_traceback(work: Work) -> None:
    with pytest.raises(RuntimeError, match="licence file"):
        cli("--debug", "train", "--env", "badinput/CrashOnCreate-v0", "--run-dir", "r")


def run_python(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, **kwargs)


CTRL_C_AT_IMPORT = """
import builtins, os, signal, sys
target, real_import = sys.argv[1], builtins.__import__
def hook(name, *args, **kwargs):
    if name == target:
        builtins.__import__ = real_import
        os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C, while `target` loads
    return real_import(name, *args, **kwargs)
builtins.__import__ = hook
sys.argv = ["ddpg", *sys.argv[2:]]
from ddpg.__main__ import run
run()
"""


@pytest.mark.parametrize(
    "module, argv",
    [("ddpg.config", ["presets"]), ("torch", ["train", "--preset", "pendulum"])],
    ids=["loading-the-command", "loading-torch"],
)
def test_ctrl_c_during_start_up(module: str, argv: list[str], tmp_path: Path) -> None:
    result = run_python(sys.executable, "-c", CTRL_C_AT_IMPORT, module, *argv, cwd=tmp_path)
    assert (result.returncode, result.stderr, result.stdout) == (130, "ddpg: interrupted\n", "")
    assert list(tmp_path.iterdir()) == []


def test_closed_stdout_does_not_stop_training(tmp_path: Path) -> None:
    """`ddpg train ... | head -1`: the reader leaves after one line; the run goes on quietly
    and ends normally, with its checkpoint and model files."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    argv = [sys.executable, "-m", "ddpg", *TRAIN, "--log-every", "1", "--run-dir", "r"]
    with subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        first = proc.stdout.readline()
        proc.stdout.close()  # what `head -1` does after its line
        err = proc.stderr.read()
        code = proc.wait(timeout=300)
    assert first.startswith("training Pendulum-v1 (pendulum) into r;")
    assert (code, err) == (0, "")
    run_dir = tmp_path / "r"
    assert list_checkpoints(run_dir / "checkpoints")[0].name == "step-0000000040"
    for name in ("model_final.safetensors", "model_best.safetensors", "evaluation.json"):
        assert (run_dir / name).is_file()


# -- the Python API ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model(run: Path) -> DDPG:
    return DDPG.load(run / "model_best.safetensors")


BAD_OBSERVATIONS: dict[str, tuple[Any, str]] = {
    "nan": ([np.nan, 0.0, 0.0], "non-finite value at index [0]"),
    "inf": ([0.0, 0.0, np.inf], "non-finite value at index [2]"),
    "nan-in-batch": ([[0.0, 0.0, 0.0], [0.0, np.nan, 0.0]], "index [1, 1]"),
    "beyond-float32": (np.array([1e300, 0.0, 0.0]), "beyond float32's range"),
    "none": (None, "got NoneType"),
    "nones": ([None, None, None], "must be numbers"),
    "string": ("0 0 0", "got str"),
    "dict": ({"obs": [0, 0, 0]}, "got dict"),
    "complex": (np.zeros(3, dtype=complex), "must be numbers"),
    "ragged": ([[0.0, 0.0, 0.0], [0.0, 0.0]], "must be numbers"),
    "twice-obs-dim": (np.zeros(6), "got (6,)"),
    "rank-3": (np.zeros((1, 1, 3)), "got (1, 1, 3)"),
    "too-short": (np.zeros(2), "got (2,)"),
    "scalar": (0.5, "got ()"),
    "empty-batch": (np.zeros((0, 3)), "got (0, 3)"),
    "batch-of-wrong-width": (np.zeros((4, 2)), "got (4, 2)"),
}


@pytest.mark.parametrize("name", list(BAD_OBSERVATIONS))
def test_predict_refuses(name: str, model: DDPG) -> None:
    obs, fragment = BAD_OBSERVATIONS[name]
    with pytest.raises(ValueError) as info:
        model.predict(obs)
    assert fragment in str(info.value)
    assert "(3,) or (N, 3)" in str(info.value) or "index" in str(info.value)


def test_predict_accepts_what_it_should(model: DDPG) -> None:
    one = model.predict([0.1, 0.2, 0.3])
    assert one.shape == (1,) and np.isfinite(one).all()
    assert model.predict(np.zeros((5, 3), dtype=np.float64)).shape == (5, 1)
    with pytest.raises(ValueError, match="one observation per environment"):
        model.predict(np.zeros((2, 3)), deterministic=False)


API_CASES: dict[str, tuple[Callable[[DDPG, Path, Path], Any], type[Exception], str]] = {
    "evaluate-zero-episodes": (lambda m, r, w: m.evaluate(episodes=0), ValueError, "episodes >= 1"),
    "evaluate-episodes-str": (
        lambda m, r, w: m.evaluate(episodes="3"),
        TypeError,
        "int number of episodes",
    ),
    "evaluate-episodes-float": (lambda m, r, w: m.evaluate(episodes=1.5), TypeError, "got 1.5"),
    "evaluate-episodes-bool": (lambda m, r, w: m.evaluate(episodes=True), TypeError, "got True"),
    "evaluate-env-id-string": (
        lambda m, r, w: m.evaluate(1, env="Pendulum-v1"),
        TypeError,
        "gymnasium.make",
    ),
    "learn-str": (lambda m, r, w: m.learn("100"), TypeError, "int number of steps, got '100'"),
    "learn-float": (lambda m, r, w: m.learn(100.0), TypeError, "got 100.0"),
    "learn-bool": (lambda m, r, w: m.learn(True), TypeError, "got True"),
    "learn-zero": (lambda m, r, w: m.learn(0), ValueError, "total_steps >= 1"),
    "learn-negative": (lambda m, r, w: m.learn(-5), ValueError, "got -5"),
    "learn-1e400": (
        lambda m, r, w: m.learn(10**400),
        ValueError,
        "(a run takes at most 10^10 steps), got 1.00e+400",
    ),
    "learn-past-the-bound": (
        lambda m, r, w: m.learn(10**10 + 1),
        ValueError,
        "learn() needs total_steps <= 10,000,000,000",
    ),
    "evaluate-episodes-1e9": (
        lambda m, r, w: m.evaluate(episodes=10**9),
        ValueError,
        "evaluate() needs episodes <= 100,000, got 1000000000",
    ),
    "ddpg-int-env": (lambda m, r, w: DDPG(123), TypeError, "environment id or a gymnasium.Env"),
    "ddpg-config-str": (
        lambda m, r, w: DDPG("Pendulum-v1", config="pendulum"),
        TypeError,
        "preset_config",
    ),
    "ddpg-config-dict": (
        lambda m, r, w: DDPG("Pendulum-v1", config={"gamma": 0.9}),
        TypeError,
        "ddpg.Config",
    ),
    "ddpg-unknown-key": (
        lambda m, r, w: DDPG("Pendulum-v1", gama=0.9),
        ConfigError,
        "did you mean 'gamma'",
    ),
    "ddpg-discrete-env": (lambda m, r, w: DDPG(gym.make("CartPole-v1")), EnvError, "Discrete"),
    "ddpg-env-needs-jax": (lambda m, r, w: DDPG("phys2d/Pendulum-v0"), EnvError, "missing package"),
    "ddpg-run-dir-holds-a-run": (
        lambda m, r, w: DDPG("Pendulum-v1", run_dir=r),
        RunDirError,
        "not empty",
    ),
    "ddpg-run-dir-empty": (
        lambda m, r, w: DDPG("Pendulum-v1", run_dir=""),
        ValueError,
        "run_dir is empty",
    ),
    "ddpg-run-dir-is-a-file": (
        lambda m, r, w: DDPG("Pendulum-v1", run_dir=r / "config.json"),
        RunDirError,
        "not a directory",
    ),
    "config-unknown-key": (lambda m, r, w: Config(gama=0.9), ConfigError, "did you mean 'gamma'"),
    "config-replace-unknown-key": (
        lambda m, r, w: Config().replace(learning_start=1),
        ConfigError,
        "'learning_starts'",
    ),
    "config-from-dict-list": (
        lambda m, r, w: Config.from_dict([1, 2]),
        TypeError,
        "needs a dict, got list",
    ),
    "config-seed-float": (
        lambda m, r, w: Config(seed=1.0),
        ConfigError,
        "seed must be int, got 1.0",
    ),
    "config-seed-2^63": (lambda m, r, w: Config(seed=2**63), ConfigError, "[0, 2^63)"),
    "config-seed-negative": (lambda m, r, w: Config(seed=-1), ConfigError, "[0, 2^63)"),
    "config-gamma-str": (
        lambda m, r, w: Config(gamma="0.9"),
        ConfigError,
        "gamma must be float, got '0.9'",
    ),
    "config-target-nan": (
        lambda m, r, w: Config(target_return=float("nan")),
        ConfigError,
        "finite",
    ),
    "config-device-malformed": (lambda m, r, w: Config(device="gpu0"), ConfigError, "'gpu0'"),
    "config-env-empty": (lambda m, r, w: Config(env_id=" "), ConfigError, "env_id is empty"),
    "config-torch-threads": (
        lambda m, r, w: Config(torch_threads=5000),
        ConfigError,
        "at most 1024",
    ),
    "preset-none": (lambda m, r, w: preset_config(None), TypeError, "must be a string"),
    "preset-empty": (lambda m, r, w: preset_config(""), ConfigError, "unknown preset ''"),
    "preset-unknown-override": (
        lambda m, r, w: preset_config("pendulum", gama=1),
        ConfigError,
        "'gamma'",
    ),
    "load-missing": (
        lambda m, r, w: DDPG.load(w / "nope.safetensors"),
        CheckpointError,
        "no model file",
    ),
    "load-directory": (lambda m, r, w: DDPG.load(r), CheckpointError, "no model file"),
    "load-config-json": (
        lambda m, r, w: DDPG.load(r / "config.json"),
        CheckpointError,
        "not a readable safetensors",
    ),
    "load-env-id-string": (
        lambda m, r, w: DDPG.load(r / "model_best.safetensors", env="Pendulum-v1"),
        TypeError,
        "gymnasium.Env",
    ),
    "load-env-other-spaces": (
        lambda m, r, w: DDPG.load(
            r / "model_best.safetensors", env=gym.make("MountainCarContinuous-v0")
        ),
        CheckpointError,
        "spaces that differ",
    ),
    "load-other-architecture": (
        lambda m, r, w: DDPG.load(r / "model_best.safetensors", hidden_size=64),
        ConfigError,
        "hidden_size cannot be changed when loading a model",
    ),
    "policy-device-unknown": (
        lambda m, r, w: Policy.load(r / "model_best.safetensors", device="tpu"),
        ConfigError,
        "'tpu'",
    ),
    "policy-device-absent-gpu": (
        lambda m, r, w: Policy.load(r / "model_best.safetensors", device="cuda:99"),
        ConfigError,
        "cuda:99",
    ),
    "policy-device-int": (
        lambda m, r, w: Policy.load(r / "model_best.safetensors", device=3),
        TypeError,
        "torch.device",
    ),
    "save-over-directory": (lambda m, r, w: m.save(w / "mydata"), RunDirError, "is a directory"),
    "save-over-run-config": (
        lambda m, r, w: m.save(r / "config.json"),
        RunDirError,
        "belongs to its run",
    ),
    "save-over-run-model": (
        lambda m, r, w: m.save(r / "model_best.safetensors"),
        RunDirError,
        "never replaced",
    ),
    "save-over-user-file": (
        lambda m, r, w: m.save(w / "afile"),
        RunDirError,
        "not a DDPG model written by ddpg; remove it first",
    ),
    "save-under-a-file": (
        lambda m, r, w: m.save(w / "afile" / "m.safetensors"),
        NotADirectoryError,
        "afile",
    ),
}


@pytest.mark.parametrize("name", list(API_CASES))
def test_api_refuses(name: str, model: DDPG, work: Work) -> None:
    call, error, fragment = API_CASES[name]
    before = fingerprint(work.dir, work.shared)
    with pytest.raises(error) as info:
        call(model, work.shared, work.dir)
    assert fragment in str(info.value)
    assert fingerprint(work.dir, work.shared) == before


def test_api_accepts_numpy_numbers_and_saves_into_new_folders(model: DDPG, work: Work) -> None:
    config = Config(seed=np.int64(7), gamma=np.float32(0.5), hidden_size=np.int32(8))
    assert (type(config.seed), type(config.gamma), config.hidden_size) == (int, float, 8)
    json.dumps(config.to_dict())  # plain JSON numbers
    model.save(work.dir / "new" / "m.safetensors")
    model.save(work.dir / "new" / "m.safetensors")  # its own kind: replaced
    again = DDPG.load(work.dir / "new" / "m.safetensors")
    obs = np.array([0.1, -0.2, 0.3])
    assert np.array_equal(again.predict(obs), model.predict(obs))
    assert not list((work.dir / "new").glob(".*"))  # no temporary file left
