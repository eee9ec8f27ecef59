"""Files the CLI writes where the user asks (--json, --out, exports, reports) and the files a
run directory is made of.

An output path is checked before any work is done: it must not be a directory, its folder must
be creatable, it never replaces a file that a run needs, and it replaces an existing file only
if that file is the same kind of output (a PNG by a PNG, our JSON by our JSON) or with --force.
No output (a file, a new run or sweep directory) goes inside another run's or sweep's
directory: only straight into the run or sweep directory the command works on.
"""

from __future__ import annotations

import errno
import json
import os
import zipfile
from collections.abc import Callable, Iterable
from fnmatch import fnmatch
from pathlib import Path

from ddpg.errors import RunDirError

# What this library writes into a run directory; anything else there is the user's.
RUN_DIR_ENTRIES = (
    "config.json",
    "metrics.csv",
    "evaluations.csv",
    "evaluation.json",
    "model_final.safetensors",
    "model_best.safetensors",
    "checkpoints",
    "tensorboard",
    ".lock",
    "error-*.log",
    "trial.json",  # a sweep trial's attempts (ddpg sweep)
    # outputs of other commands, at their default paths
    "learning_curve.png",
    "agent.gif",
    "agent.mp4",
    "policy_best.onnx",
    "policy_final.onnx",
    "policy_best.pt",
    "policy_final.pt",
    "report.md",  # `ddpg report RUN_DIR` writes into the run directory
    "report.json",
    "report.png",
)
# Of those, what the run itself needs (never replaced by an output, even with --force).
RUN_NEEDS = RUN_DIR_ENTRIES[:9]
# The folders of a run directory (by the pattern of their path in it) and what this library
# writes into each: checkpoints (also while being written, set aside as damaged, or installed
# by a sweep trial) and TensorBoard's event files. Everything else in a run is a regular file.
RUN_FOLDERS: dict[str, tuple[str, ...]] = {
    "checkpoints": ("step-*", "damaged-step-*", ".tmp-step-*", ".tmp-sweep-*"),
    "checkpoints/*": (
        "manifest.json",
        "state.json",
        "weights.safetensors",
        "*.npy",
        ".manifest.json.tmp-*",
    ),
    "tensorboard": ("events.out.tfevents.*",),
}


def library_made(name: str) -> bool:
    return any(fnmatch(name, pattern) for pattern in RUN_DIR_ENTRIES)


def foreign_entries(run_dir: Path) -> list[str]:
    """What this library did not make in `run_dir`, at any depth, as paths relative to it: at
    the top, the names not in RUN_DIR_ENTRIES (sorted); if there are none, what lies where the
    library writes nothing of its kind, in the order of a sorted walk. A symbolic link is never
    the library's, nor a folder where it writes files, nor a file where it makes a folder. A
    foreign folder is named, not searched; one that cannot be listed raises its OSError."""
    run_dir = Path(run_dir)
    top = sorted(
        entry.name
        for entry in run_dir.iterdir()
        if not library_made(entry.name) or entry.is_symlink()
    )
    return top or _foreign_in(run_dir, (), RUN_DIR_ENTRIES)


def _foreign_in(folder: Path, parts: tuple[str, ...], patterns: tuple[str, ...]) -> list[str]:
    foreign: list[str] = []
    for entry in sorted(folder.iterdir()):
        path = (*parts, entry.name)
        inner = _folder_patterns(path)
        ours = not entry.is_symlink() and any(fnmatch(entry.name, p) for p in patterns)
        if ours and inner is not None and entry.is_dir():
            foreign += _foreign_in(entry, path, inner)
        elif not (ours and inner is None and entry.is_file()):
            foreign.append("/".join(path))
    return foreign


def _folder_patterns(parts: tuple[str, ...]) -> tuple[str, ...] | None:
    """What the library writes into the run's folder at `parts` (None: it is no such folder)."""
    for key, patterns in RUN_FOLDERS.items():
        keys = key.split("/")
        if len(keys) == len(parts) and all(map(fnmatch, parts, keys)):
            return patterns
    return None


def _json_with(*keys: str) -> Callable[[Path], bool]:
    def check(path: Path) -> bool:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and all(key in data for key in keys)

    return check


def _starts_with(*magic: bytes, offset: int = 0) -> Callable[[Path], bool]:
    def check(path: Path) -> bool:
        with open(path, "rb") as f:
            head = f.read(64)[offset:]
        return any(head.startswith(m) for m in magic)

    return check


def _torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(name.endswith("extra/ddpg.json") for name in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _onnx(path: Path) -> bool:
    with open(path, "rb") as f:
        return b"\x12\x04ddpg" in f.read(256)  # producer_name "ddpg" near the start


def _ddpg_model(path: Path) -> bool:
    from ddpg.checkpoints import MODEL_FORMAT, _safetensors_metadata

    try:
        return _safetensors_metadata(path.read_bytes()).get("format") == MODEL_FORMAT
    except (ValueError, UnicodeDecodeError):
        return False


# Recognisers of each kind of output: does the existing file hold this kind?
KINDS: dict[str, Callable[[Path], bool]] = {
    "evaluation JSON": _json_with("run_dir", "model", "mean_return", "returns"),
    "report JSON": _json_with("configs"),
    "report markdown": _starts_with(b"# ddpg report"),
    "PNG image": _starts_with(b"\x89PNG\r\n\x1a\n"),
    "SVG image": _starts_with(b"<?xml", b"<svg"),
    "PDF document": _starts_with(b"%PDF"),
    "GIF": _starts_with(b"GIF87a", b"GIF89a"),
    "MP4 video": _starts_with(b"ftyp", offset=4),
    "ONNX model": _onnx,
    "TorchScript model": _torchscript,
    "DDPG model": _ddpg_model,
}


def check_output(
    path: Path, kind: str, force: bool = False, to_force: str = "pass --force to replace it"
) -> Path:
    """Check that an output of `kind` (a key of KINDS) may be written to `path`; raise
    RunDirError with the reason if not (`to_force`: how to replace a foreign file anyway).
    Nothing is created."""
    path = Path(path)
    if not path.name or path.name in (".", ".."):
        raise RunDirError(f"output path '{path}' names no file")
    if path.is_dir():
        raise RunDirError(f"{path} is a directory; give a file path")
    if _needed_by_run(path):
        raise RunDirError(f"{path} belongs to its run directory and is never replaced")
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise RunDirError(f"{path} exists and is not a regular file")
        if not force and not _holds(kind, path):
            article = "an" if kind[0].lower() in "aeiou" else "a"
            raise RunDirError(
                f"{path} exists and is not {article} {kind} written by ddpg; {to_force}"
            )
    check_folder(path.parent)
    return path


def check_folder(folder: Path) -> None:
    """Refuse a folder that files cannot be written into (or, if it is missing, created in),
    with the OSError that writing would raise (exit code 4), before any work is done."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
    if not _writable(folder):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(folder))


def _holds(kind: str, path: Path) -> bool:
    """Whether `path` holds an output of `kind`; an unreadable file holds none."""
    try:
        return KINDS[kind](path)
    except OSError:
        return False


def _writable(folder: Path) -> bool:
    """Whether entries can be created in `folder` (by this process's effective user)."""
    effective = os.access in os.supports_effective_ids
    return os.access(folder, os.W_OK | os.X_OK, effective_ids=effective)


def write_output(path: Path, data: bytes) -> None:
    """Write a checked output atomically, creating its folder."""
    from ddpg.atomic import atomic_write_bytes

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(Path(path), data)


def _needed_by_run(path: Path) -> bool:
    """Whether `path` is (or is inside) one of the entries a run directory needs."""
    try:
        resolved = path.resolve()
    except OSError:
        return False
    for parent in resolved.parents:
        relative = resolved.relative_to(parent)
        if (parent / "config.json").is_file() and relative.parts[0] in RUN_NEEDS:
            return is_run(parent)
    return False


def is_run(folder: Path) -> bool:
    """Whether `folder` is a run directory of this library (its config.json is a run config)."""
    from ddpg.errors import CheckpointError
    from ddpg.runconfig import read_config

    try:
        read_config(folder)
    except (CheckpointError, OSError):
        return False
    return True


def is_sweep(folder: Path) -> bool:
    """Whether `folder` is a sweep directory: its sweep.json names the sweep format (its plan
    need not be valid)."""
    from ddpg.sweep.spec import SPEC_FILE, SPEC_FORMAT

    try:
        data = json.loads((Path(folder) / SPEC_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == SPEC_FORMAT


def check_outside_runs(path: Path, own: Iterable[Path] = ()) -> None:
    """Refuse `path` (an output file, or a run or sweep directory to create) inside a run or a
    sweep directory, unless straight inside one of `own`: the run or sweep directories the
    command works on (`ddpg record RUN` writes RUN/agent.gif). The innermost such directory
    above `path` decides. Nothing is created; a folder that cannot be looked into is none (the
    write says why it fails)."""
    try:
        target = Path(path).resolve()
        mine = {Path(folder).resolve() for folder in own}
    except (OSError, RuntimeError):  # a loop of links: the write says so
        return
    for depth, folder in enumerate(target.parents):
        kind = "run" if is_run(folder) else "sweep" if is_sweep(folder) else None
        if kind is None:
            continue
        if folder == target.parent and folder in mine:
            return
        raise RunDirError(
            f"{path} is inside the {kind} directory {_as_given(Path(path), depth, folder)}, "
            "which holds only its own files; choose a path outside it"
        )


def _as_given(path: Path, depth: int, folder: Path) -> Path:
    """`folder` (the real path of the `depth`-th parent of `path`) as the user spelt it, where
    that spelling leads there."""
    given = path.parents[depth] if depth < len(path.parents) else None
    try:
        return given if given is not None and given.resolve() == folder else folder
    except (OSError, RuntimeError):
        return folder
