"""DDPG (Deep Deterministic Policy Gradient) for Gymnasium continuous-control environments.

The public names are imported on first use, so that `import ddpg` (and the `ddpg` command's
start) stays quick and a Ctrl-C during start-up is handled by the command itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "DDPG": "ddpg.api",
    "Config": "ddpg.config",
    "Policy": "ddpg.policy",
    "PRESETS": "ddpg.presets",
    "preset_config": "ddpg.presets",
    "TrainingEvent": "ddpg.callbacks",
}
__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from ddpg.api import DDPG as DDPG
    from ddpg.callbacks import TrainingEvent as TrainingEvent
    from ddpg.config import Config as Config
    from ddpg.policy import Policy as Policy
    from ddpg.presets import PRESETS as PRESETS
    from ddpg.presets import preset_config as preset_config


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ddpg' has no attribute '{name}'")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
