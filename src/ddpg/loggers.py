"""Metrics files and console output."""

from __future__ import annotations

import csv
import math
import os
import sys
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
    """Progress lines on stdout; silent when quiet."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stdout

    def print(self, message: str) -> None:
        if not self.quiet:
            print(message, file=self.stream, flush=True)
