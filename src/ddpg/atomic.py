"""Atomic file writing: a file is written to a temporary name beside it, flushed to disk and
renamed into place, so a crash or an interrupt leaves either the old file or the new one, and a
failure leaves no temporary file behind.

Every file the library writes goes through here: run files, checkpoints' manifests, model
files, reports, plots, videos and exported policies. This module imports nothing of the
library, so writing a report or a plot does not load the model and checkpoint formats.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (a rename into it) to disk, where the system allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` for a writer to create; when the block ends, it replaces
    `path`. If the block fails (or is interrupted) the temporary file is removed, and an
    OSError names `path`, not its temporary twin. The temporary name keeps the suffix, for
    writers that choose a format by it (matplotlib, imageio)."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            exc.filename, exc.filename2 = str(path), None
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, its bytes on disk before the rename."""
    with replacing(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_json(path: Path, data: Any) -> None:
    """`data` as indented JSON (no NaN or infinity) with a final newline, atomically."""
    atomic_write_bytes(path, (json.dumps(data, indent=2, allow_nan=False) + "\n").encode())
