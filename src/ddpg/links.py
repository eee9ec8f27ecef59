"""Symbolic links inside a run (or sweep) directory: none may lead out of it.

A run's files are read on resume and by every command that loads a run, and deleted by
`--overwrite`; a link that leads elsewhere would make the library read, rewrite or delete
files that are not the run's. Such a link, at any depth, is refused with one line naming it,
before anything is read. A link that stays inside the directory is followed like the file it
names. Only links inside the directory count: the path to it is the user's own, and may pass
through links (`/home -> /data/home`). Nothing is followed while looking: folders are listed
without entering links.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ddpg.errors import RunDirError

RUN, SWEEP = "run directory", "sweep directory"


def check_links(root: Path, what: str = RUN, names: Iterable[str] | None = None) -> None:
    """Refuse a symbolic link in `root` (at any depth; with `names`, only those entries of
    `root` and what lies below them) whose target lies outside `root`. A missing `root` holds
    none (the caller says what is missing); a folder that cannot be listed raises its OSError,
    named by the path the user gave."""
    root = Path(root)
    try:
        real = root.resolve(strict=True)
    except (OSError, RuntimeError):
        return
    wanted = None if names is None else set(names)
    for shown, link in _links(real, root, wanted):
        target = Path(os.path.realpath(link))
        if not target.is_relative_to(real):
            raise RunDirError(
                f"{shown} is a symbolic link out of the {what} {root} (to {target}); ddpg does "
                "not read or delete through such links: replace it with a copy of what it "
                "points to"
            )


def _links(folder: Path, shown: Path, names: set[str] | None) -> Iterator[tuple[Path, Path]]:
    """(path as the user would write it, real path) of every link below `folder`."""
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        exc.filename, exc.filename2 = str(shown), None
        raise
    for entry in entries:
        if names is not None and entry.name not in names:
            continue
        if entry.is_symlink():
            yield shown / entry.name, Path(entry.path)
        elif entry.is_dir(follow_symlinks=False):
            yield from _links(Path(entry.path), shown / entry.name, None)


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """RUN_DIR/config.json (`runconfig.read_config`), read only once neither it nor anything
    else in the run is a link out of the run. A folder that is no run is not searched."""
    from ddpg.runconfig import read_config

    check_links(run_dir, RUN, ("config.json",))
    data = read_config(run_dir)
    check_links(run_dir, RUN)
    return data


def check_model_file(path: Path) -> None:
    """A model file inside a run directory (RUN_DIR/model_best.safetensors, say) is loaded
    only if the run holds no link out of it; a model file anywhere else is the user's own."""
    from ddpg.outputs import is_run

    folder = Path(path).parent
    if is_run(folder):
        check_links(folder, RUN)
