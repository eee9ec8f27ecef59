"""Errors a user can cause. The CLI prints their message on one line and exits non-zero."""

from __future__ import annotations

from typing import Any


class DDPGError(Exception):
    """Base class for every error caused by user input rather than a bug in this library."""

    exit_code = 2


class ConfigError(DDPGError, ValueError):
    """An invalid hyperparameter, unknown config key or unknown preset (also a ValueError)."""


class EnvError(DDPGError):
    """An environment that does not exist or that DDPG cannot drive."""


class CheckpointError(DDPGError):
    """A model or checkpoint file that is missing, truncated, tampered with or foreign."""


class RunDirError(DDPGError):
    """A run directory that exists when it should not, or is missing when it should exist."""


class NonFiniteError(DDPGError):
    """A NaN or infinity appeared in observations, rewards, losses or weights."""

    exit_code = 3


def check_format(
    path: object, header: Any, fmt: str, version: object, what: str, error: type[DDPGError]
) -> None:
    """Raise `error` unless `header` (a file's JSON header) says format `fmt` at `version`: a
    foreign file is "not `what`", a file of another format version names both versions."""
    if not isinstance(header, dict) or header.get("format") != fmt:
        raise error(f"{path} is not {what}")
    if header.get("format_version") != version:
        raise error(
            f"{path} is {what} of format version {header.get('format_version')!r}; "
            f"this library reads version {version}"
        )
