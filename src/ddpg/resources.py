"""Will a run fit in memory? Estimated before anything is allocated or created."""

from __future__ import annotations

import os

import torch

from ddpg.config import Config
from ddpg.errors import ConfigError

GIB = 1024**3
# Copies of the network weights that live at once: online and target networks, AdamW's two
# moments, gradients, the best actor's snapshot (rounded up).
WEIGHT_COPIES = 8


def required_bytes(config: Config, obs_dim: int, act_dim: int) -> tuple[int, int]:
    """Bytes of (replay buffer, networks with their optimiser state and one update's
    activations) for `config` on spaces of these sizes."""
    transition = (2 * obs_dim + act_dim + 2) * 4  # ReplayBuffer: five float32 fields
    h1 = config.hidden_size
    h2 = config.hidden_size_2 or h1
    actor = (obs_dim + 1) * h1 + (h1 + 1) * h2 + 4 * h2 + (h2 + 1) * act_dim
    critic = (obs_dim + act_dim + 1) * h1 + (h1 + 1) * h2 + h2 + 1
    activations = config.batch_size * (h1 + h2) * 4 * 12  # forward and backward, both nets
    networks = (actor + critic) * 4 * WEIGHT_COPIES + activations
    return config.buffer_size * transition, networks


def available_bytes(device: torch.device) -> int | None:
    """Memory free for a new run on `device`, or None where it cannot be told."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(config: Config, obs_dim: int, act_dim: int, device: torch.device) -> None:
    """Refuse a run whose replay buffer and networks cannot fit in the available memory."""
    buffer, networks = required_bytes(config, obs_dim, act_dim)
    free = available_bytes(device)
    if free is None or buffer + networks <= free:
        return
    raise ConfigError(
        f"this run needs about {(buffer + networks) / GIB:.1f} GiB on {device} (replay buffer "
        f"{buffer / GIB:.1f} GiB for {config.buffer_size:,} transitions, networks and updates "
        f"{networks / GIB:.1f} GiB) but {free / GIB:.1f} GiB are available; lower --buffer-size "
        "or --hidden-size"
    )
