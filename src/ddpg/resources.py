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
# Host memory of one environment copy, rounded up generously (Pendulum about 7 KiB, Box2D's
# LunarLander about 120 KiB measured; MuJoCo models more).
ENV_BYTES = 1024**2


def required_bytes(config: Config, obs_dim: int, act_dim: int) -> tuple[int, int]:
    """Bytes of (replay buffer, networks with their optimiser state and one update's
    activations, and the num_envs environments) for `config` on spaces of these sizes."""
    transition = (2 * obs_dim + act_dim + 2) * 4  # ReplayBuffer: five float32 fields
    h1 = config.hidden_size
    h2 = config.hidden_size_2 or h1
    actor = (obs_dim + 1) * h1 + (h1 + 1) * h2 + 4 * h2 + (h2 + 1) * act_dim
    critic = (obs_dim + act_dim + 1) * h1 + (h1 + 1) * h2 + h2 + 1
    activations = config.batch_size * (h1 + h2) * 4 * 12  # forward and backward, both nets
    critics = 2 if config.algo == "td3" else 1  # TD3's clipped double Q
    networks = (actor + critics * critic) * 4 * WEIGHT_COPIES + critics * activations
    networks += config.num_envs * (ENV_BYTES + 4 * (obs_dim + act_dim) * 4)
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
        f"this run needs about {_gib(buffer + networks)} GiB on {device} (replay buffer "
        f"{_gib(buffer)} GiB for {config.buffer_size:,} transitions, networks, updates and "
        f"{config.num_envs:,} environment(s) {_gib(networks)} GiB) but {_gib(free)} GiB "
        "are available; lower --buffer-size, --hidden-size or --num-envs"
    )


def _gib(n: int) -> str:
    """`n` bytes in GiB; sizes beyond a float (--buffer-size 1e400) as a power of ten."""
    return f"{n / GIB:.1f}" if n < 10**30 else f"10^{len(str(n // GIB)) - 1}"
