"""Errors a user can cause. The CLI prints their message on one line and exits non-zero."""

from __future__ import annotations


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
