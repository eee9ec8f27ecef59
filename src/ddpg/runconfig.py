"""RUN_DIR/config.json: the resolved config a run was started with, the preset it came from and
the library version. Written when a run starts (and when a resume changes its budget); read by
resume, by the commands that take a run directory, and by the run reader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ddpg import __version__
from ddpg.atomic import atomic_write_json
from ddpg.errors import CheckpointError


def write_config(run_dir: Path, config_dict: dict[str, Any], extra: dict[str, Any]) -> None:
    """RUN_DIR/config.json: the resolved config, the preset it came from, the library version."""
    atomic_write_json(
        Path(run_dir) / "config.json",
        {"config": config_dict, **extra, "library_version": __version__},
    )


def read_config(run_dir: Path) -> dict[str, Any]:
    """RUN_DIR/config.json as written by `write_config`; CheckpointError if it is not one."""
    path = Path(run_dir) / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        raise CheckpointError(f"{run_dir} is not a run directory (no config.json)") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a directory, not a run config") from None
    except ValueError:  # not UTF-8, not JSON
        raise CheckpointError(f"{path} is damaged (not JSON)") from None
    # Other OSErrors (permission denied, I/O error) are no damage: they propagate as they are.
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise CheckpointError(f"{path} is not a run config")
    return data
