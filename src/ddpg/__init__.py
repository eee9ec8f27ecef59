"""DDPG (Deep Deterministic Policy Gradient) for Gymnasium continuous-control environments."""

__version__ = "0.1.0"

from ddpg.api import DDPG  # noqa: E402
from ddpg.config import Config  # noqa: E402
from ddpg.policy import Policy  # noqa: E402
from ddpg.presets import PRESETS, preset_config  # noqa: E402

__all__ = ["DDPG", "Config", "PRESETS", "Policy", "preset_config", "__version__"]
