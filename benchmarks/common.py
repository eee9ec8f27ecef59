"""What the benchmark scripts share: the machine and versions, a pausable clock, JSON-lines
records, and one markdown table helper."""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("torch", "gymnasium", "numpy", "mujoco", "stable-baselines3", "ddpg")


# -- machine and versions ----------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_count() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


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
        return subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()

    try:
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--", "src")
        bench_dirty = git("status", "--porcelain", "--", "benchmarks/*.py")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "src_modified": bool(dirty), "benchmarks_modified": bool(bench_dirty)}


def command(argv: Sequence[str]) -> str:
    import shlex

    return "python " + shlex.join(argv)


# -- a pausable clock --------------------------------------------------------------------------
class Clock:
    """Wall and CPU seconds accumulated over the intervals between start() and stop()."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self._since: tuple[float, float] | None = None

    @property
    def running(self) -> bool:
        return self._since is not None

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


# -- records -----------------------------------------------------------------------------------
def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line under an exclusive lock, so parallel runs never interleave."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, allow_nan=False) + "\n"
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            f.write(line)
            f.flush()
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_records(paths: Iterable[Path], script: str = "benchmarks") -> list[dict[str, Any]]:
    """Every JSON line of `paths`; a line that is not JSON (a run cut mid-write) is skipped."""
    records = []
    for path in paths:
        with open(path) as f:
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
    if x is None or (isinstance(x, float) and x != x):
        return "-"
    if isinstance(x, float) and abs(x) == float("inf"):
        return inf if x > 0 else "-" + inf
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return f"{x:,.{digits}f}"
    return str(x)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], left: int = 1) -> list[str]:
    """A markdown table: the first `left` columns left-aligned, the others right-aligned; cells
    that are not strings go through `fmt`."""
    out = ["| " + " | ".join(header) + " |"]
    out.append("|" + "".join("---|" if i < left else "---:|" for i in range(len(header))))
    for row in rows:
        out.append("| " + " | ".join(c if isinstance(c, str) else fmt(c) for c in row) + " |")
    return out
