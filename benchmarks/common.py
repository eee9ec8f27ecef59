"""What the benchmark scripts share: machine and versions, clocks and timers, JSON-lines records,
and one markdown table helper."""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

import gymnasium as gym
import numpy as np

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("torch", "gymnasium", "numpy", "mujoco", "stable-baselines3", "ddpg")


# -- machine and versions ----------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        return next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    return platform.processor() or "unknown"


def cpu_count() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def versions() -> dict[str, str]:
    """Python's and the installed packages' versions ('not installed' where absent)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict[str, Any]:
    return {"cpu": cpu_model(), "cpu_count": cpu_count(), "hostname": platform.node()}


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def git_state() -> dict[str, Any] | None:
    """HEAD and whether src/ or benchmarks/ differ from it (read-only: no index refresh)."""

    def git(*args: str) -> str:
        run = subprocess.run(["git", "--no-optional-locks", *args], cwd=REPO, check=True,
                             capture_output=True, text=True, timeout=10)  # fmt: skip
        return run.stdout.strip()

    try:
        head, dirty = git("rev-parse", "HEAD"), git("status", "--porcelain", "--", "src")
        bench_dirty = git("status", "--porcelain", "--", "benchmarks/*.py")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "src_modified": bool(dirty), "benchmarks_modified": bool(bench_dirty)}


def invocation(script: str, argv: list[str] | None) -> list[str]:
    """The script's command line: sys.argv when run, else [its path, *argv] (tests)."""
    return sys.argv if argv is None else [os.path.relpath(script), *argv]


def command(argv: Sequence[str]) -> str:
    return "python " + shlex.join(argv)


# -- a pausable clock --------------------------------------------------------------------------
class Clock:
    """Wall and CPU seconds accumulated over the intervals between start() and stop()."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self._since: tuple[float, float] | None = None

    def start(self) -> None:
        if self._since is None:
            self._since = (time.perf_counter(), time.process_time())

    def stop(self) -> None:
        if self._since is not None:
            self.wall, self.cpu = self.read()
            self._since = None

    def read(self) -> tuple[float, float]:
        if self._since is None:
            return self.wall, self.cpu
        return (
            self.wall + time.perf_counter() - self._since[0],
            self.cpu + time.process_time() - self._since[1],
        )


class Timer:
    """Wall time of a block; also records in OTHER_LOAD how busy other processes kept the machine
    during it, so that a benchmark disturbed by other work says so."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __enter__(self) -> Timer:
        self._ticks, self._start = _busy_ticks(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.perf_counter() - self._start
        end = _busy_ticks()
        # Clock ticks are 10 ms: only sections of a second or more give a meaningful share.
        if self._ticks is not None and end is not None and self.elapsed >= 1.0:
            machine, mine = (b - a for a, b in zip(self._ticks, end, strict=True))
            capacity = self.elapsed * os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)
            OTHER_LOAD.append((self.label, max(machine - mine, 0) / capacity))


# (what a Timer timed, share of the machine's CPU time other processes used meanwhile)
OTHER_LOAD: list[tuple[str, float]] = []


def _busy_ticks() -> tuple[int, int] | None:
    """(busy clock ticks of the whole machine, of this process) from /proc; None off Linux."""
    try:
        with open("/proc/stat") as f:
            user, nice, system, _, _, irq, softirq, steal = map(int, f.readline().split()[1:9])
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return user + nice + system + irq + softirq + steal, int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None


def random_actions(env: gym.Env, steps: int, seed: int = 0) -> np.ndarray:
    """`steps` uniform random actions of `env`'s Box action space, float32."""
    low, high = env.action_space.low, env.action_space.high
    rng = np.random.default_rng(seed)
    return rng.uniform(low, high, size=(steps, low.size)).astype(np.float32)


def env_ms_per_step(env_id: str, steps: int, seed: int = 0) -> float:
    """ms per step of the environment alone, stepped with precomputed random actions."""
    env = gym.make(env_id)
    actions = random_actions(env, steps, seed)
    env.reset(seed=seed)
    with Timer(f"env {env_id}") as timer:
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
    env.close()
    return timer.elapsed / steps * 1e3


# -- records -----------------------------------------------------------------------------------
def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line under an exclusive lock, so parallel runs never interleave."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, allow_nan=False) + "\n"
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes, after the write
        f.write(line)


def exit_with(main: Callable[[], int]) -> NoReturn:
    """Exit with `main()`'s code; when stdout's reader went away (`suite.py --summarize | head
    -1`), quietly with 0, as `ddpg` does."""
    try:
        code = main()
        sys.stdout.flush()  # inside the try: a flush at exit would fail outside it
    except BrokenPipeError:
        from ddpg.loggers import silence_stdout

        silence_stdout()
        code = 0
    raise SystemExit(code)


def read_records(paths: Iterable[Path], script: str = "benchmarks") -> list[dict[str, Any]]:
    """Every JSON line of `paths`; a line that is not JSON (a run cut mid-write, bytes that are
    not UTF-8) is skipped."""
    records = []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except ValueError:
                        print(f"{script}: {path}:{n}: not JSON, skipped", file=sys.stderr)
    return records


# -- markdown ----------------------------------------------------------------------------------
def fmt(x: Any, digits: int = 1, inf: str = "inf") -> str:
    """A number for a table: thousands separators, '-' for None and NaN, `inf` for infinity."""
    if x is None or x != x:
        return "-"
    return f"{x:,.{digits}f}" if abs(x) != float("inf") else inf if x > 0 else "-" + inf


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str = "l") -> list[str]:
    """A markdown table. `align` has one letter per column, l(eft) or r(ight); columns past its
    end are right-aligned. Cells that are not strings go through `fmt`."""
    rule = ["---" if align[i : i + 1] == "l" else "---:" for i in range(len(header))]
    lines = [header, rule] + [[c if isinstance(c, str) else fmt(c) for c in r] for r in rows]
    return ["| " + " | ".join(cells) + " |" for cells in lines]
