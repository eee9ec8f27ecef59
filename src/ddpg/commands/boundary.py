"""The error boundary every `ddpg` command ends through: one line on stderr and an exit code.

    0 success          2 usage or input error (bad option or value, unknown env, foreign or
    1 unexpected error   damaged file, existing output, run in use)
    3 NaN or infinity  4 file-system error (permission denied, no space, read-only, ...)
    130 Ctrl-C (SIGINT)  143 SIGTERM

An unexpected error also writes its traceback to a file (in the run directory, or the system's
temporary directory) and names it; `--debug` prints the traceback instead. Python warnings are
printed as one line each (`ddpg: warning: ...`); other libraries' deprecation notices are not.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shlex
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from ddpg.errors import DDPGError
from ddpg.loggers import silence_stdout

EXIT_UNEXPECTED, EXIT_FILESYSTEM = 1, 4
EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}
# Where an unexpected error's traceback goes: the run directory once a command has one
# ("run_dir"); a run stopped at once, without a checkpoint ("no_checkpoint").
context: dict[str, Path] = {}


class Terminated(Exception):
    """SIGTERM before training started (raised by the handler, caught by the boundary)."""


def raise_terminated(_signum: int, _frame: Any) -> NoReturn:
    raise Terminated


def guarded(command: Callable[[], int], debug: bool) -> int:
    """Run `command` and return its exit code; every failure becomes one line (never raises,
    but with `debug`)."""
    with warnings.catch_warnings():
        # Deprecations inside PyTorch, SWIG and friends say nothing a user of this command can
        # act on; Gymnasium's ("environment X is out of date") do.
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.simplefilter("ignore", category)
        warnings.filterwarnings("default", category=DeprecationWarning, module=r"^gymnasium\.")
        warnings.showwarning = _show_warning
        return _guarded(command, debug)


def _guarded(command: Callable[[], int], debug: bool) -> int:
    context.clear()
    try:
        return command()
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except DDPGError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"ddpg: interrupted{_resume_hint()}", file=sys.stderr)
        return EXIT_SIGNAL["SIGINT"]
    except Terminated:
        print(f"ddpg: terminated{_resume_hint()}", file=sys.stderr)
        return EXIT_SIGNAL["SIGTERM"]
    except BrokenPipeError:  # stdout's reader went away (`ddpg presets | head -1`): done
        silence_stdout()
        return 0
    except OSError as exc:
        if debug:
            raise
        _error(describe_os_error(exc))
        return EXIT_FILESYSTEM
    except MemoryError:
        _error("out of memory; lower --buffer-size, --batch-size or --hidden-size")
        return 2
    except Exception as exc:
        if debug:
            raise
        where = _save_traceback()
        _error(
            f"unexpected error: {type(exc).__name__}: {exc} ({where}; rerun with --debug to "
            "print it; please report it)"
        )
        return EXIT_UNEXPECTED


_LINE_BREAKS = re.compile(r" *[\r\n\t]\s*")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colour codes in Gymnasium's warnings


def _error(message: str) -> None:
    """One line: line breaks (of a library's multi-line message) become spaces; other spaces
    stay, as they may be part of a path."""
    print(f"ddpg: error: {_LINE_BREAKS.sub(' ', message).strip()}", file=sys.stderr)


def _show_warning(message: Warning | str, *_args: Any, **_kwargs: Any) -> None:
    """A Python warning (Gymnasium's "environment is out of date", say) as one line."""
    text = " ".join(_ANSI.sub("", str(message)).split())
    text = text.removeprefix("WARN: ")
    with contextlib.suppress(OSError, ValueError):  # stderr gone: nothing to tell
        print(f"ddpg: warning: {text}", file=sys.stderr)


def _resume_hint() -> str:
    """After a stop without a checkpoint: where the run can be resumed from."""
    from ddpg.checkpoints import list_checkpoints

    run_dir = context.get("no_checkpoint")
    if run_dir is None:
        return ""
    if not list_checkpoints(run_dir / "checkpoints"):
        return " at once, before the run's first checkpoint"
    return (
        " at once, without a checkpoint; resume from the last one with: ddpg train --resume "
        f"{shlex.quote(str(run_dir))}"
    )


def describe_os_error(exc: OSError) -> str:
    """'permission denied: PATH' and the like, in words."""
    reason = (exc.strerror or errno.errorcode.get(exc.errno or 0, "") or str(exc)).lower()
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{reason}: {' -> '.join(paths)}" if paths else reason


def _save_traceback() -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = context.get("run_dir")
    candidates = [folder] if folder is not None and folder.is_dir() else []
    candidates.append(Path(tempfile.gettempdir()))
    for place in candidates:
        path = place / f"error-{stamp}-{os.getpid()}.log"
        if place != folder:
            path = place / f"ddpg-error-{stamp}-{os.getpid()}.log"
        try:
            path.write_text(traceback.format_exc())
            return f"traceback in {path}"
        except OSError:
            continue
    return "the traceback could not be written"
