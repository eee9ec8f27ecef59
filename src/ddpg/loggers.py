"""Metrics files and console output."""

from __future__ import annotations

import csv
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO


class CsvLogger:
    """Append-only CSV with a fixed header, flushed after every row. `position` and `truncate`
    let a resumed run cut the file back to exactly what its checkpoint had seen."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path = Path(path)
        self.columns = columns
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._file: TextIO = open(self.path, "a", newline="")  # noqa: SIM115 (kept open)
        self._writer = csv.DictWriter(self._file, fieldnames=columns, extrasaction="raise")
        if new:
            self._writer.writeheader()
            self._file.flush()

    def write(self, row: dict[str, Any]) -> None:
        self._writer.writerow({k: _fmt(v) for k, v in row.items()})
        self._file.flush()

    def position(self) -> int:
        self._file.flush()
        return self._file.tell()

    def truncate(self, position: int) -> None:
        self._file.flush()
        self._file.truncate(position)
        self._file.seek(position)

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


def _fmt(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return value


class Console:
    """What the user sees while a run goes.

    On a terminal: a progress bar redrawn in place (steps, steps/s, recent return, ETA) with
    periodic lines printed above it. Elsewhere (CI, log files): the periodic lines only. Quiet:
    nothing.
    """

    REDRAW_SECONDS = 0.25

    def __init__(
        self, quiet: bool = False, stream: TextIO | None = None, bar: bool | None = None
    ) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stdout
        isatty = getattr(self.stream, "isatty", lambda: False)()
        self.bar = (isatty if bar is None else bar) and not quiet
        self._last_draw = 0.0
        self._bar_shown = False

    def print(self, message: str) -> None:
        if self.quiet:
            return
        if self._bar_shown:
            self.stream.write("\r\033[K")
            self._bar_shown = False
        print(message, file=self.stream, flush=True)

    def progress(
        self, step: int, total: int | None, steps_per_s: float, recent_return: float | None
    ) -> None:
        """Redraw the bar, at most every REDRAW_SECONDS; a no-op without a terminal."""
        if not self.bar:
            return
        now = time.monotonic()
        if now - self._last_draw < self.REDRAW_SECONDS and step != total:
            return
        self._last_draw = now
        self.stream.write("\r\033[K" + format_progress(step, total, steps_per_s, recent_return))
        self.stream.flush()
        self._bar_shown = True

    def close(self) -> None:
        if self._bar_shown:
            self.stream.write("\n")
            self.stream.flush()
            self._bar_shown = False


def format_progress(
    step: int, total: int | None, steps_per_s: float, recent_return: float | None, width: int = 24
) -> str:
    ret = "-" if recent_return is None else f"{recent_return:.1f}"
    if not total:
        return f"{step:,} steps | {steps_per_s:,.0f} steps/s | avg return {ret}"
    fraction = min(step / total, 1.0)
    filled = int(width * fraction)
    left = (total - step) / steps_per_s if steps_per_s > 0 else float("inf")
    eta = "?" if not math.isfinite(left) else time.strftime("%H:%M:%S", time.gmtime(left))
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%} {step:,}/{total:,} steps"
        f" | {steps_per_s:,.0f} steps/s | avg return {ret} | ETA {eta}"
    )


class TensorBoardLogger:
    """Scalars for TensorBoard (`tensorboard --logdir RUN_DIR/tensorboard`). On resume, events
    written after the checkpoint are purged so the curves match a run done in one go."""

    def __init__(self, log_dir: Path, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def scalars(self, step: int, values: dict[str, float | None]) -> None:
        for tag, value in values.items():
            if value is not None:
                self.writer.add_scalar(tag, value, step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
