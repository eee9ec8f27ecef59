"""One process at a time per run directory.

`RunLock` holds an exclusive `flock` on RUN_DIR/.lock. The kernel drops the lock when the process
ends, however it ends (SIGKILL included), so a killed run never leaves its directory locked; the
file only records the holder's pid for the error message.
"""

from __future__ import annotations

import os
from pathlib import Path

from ddpg.errors import RunDirError

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not locked there
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


class RunLock:
    """An exclusive lock on `run_dir` (which must exist), held until `release` or exit."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None  # set first: __del__ runs even if the open below fails
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip() or "unknown"
            self.release()
            raise RunDirError(
                f"{run_dir} is in use by another ddpg process (pid {holder}); "
                "wait for it to finish or stop it first"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    @classmethod
    def create(cls, run_dir: Path) -> RunLock:
        """Make `run_dir` (and its parents) if need be, then lock it."""
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        return cls(run_dir)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __del__(self) -> None:
        self.release()
