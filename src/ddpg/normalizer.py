"""Observation normalisation: a running mean and std per dimension, with a clip range.

`ObsNormalizer` is a module: its forward, (obs - mean) / std clipped to [-clip, clip], runs in
the agent (acting and every update, online and target networks alike), in `Policy` and inside
the exported ONNX/TorchScript graph. Its statistics are buffers (float64 sums), so model files
and checkpoints carry them with the networks and a resumed run continues them bit for bit.

The statistics are updated from every observation the training loop collects. Goals are
normalised like observations, and the desired and the achieved goal share their statistics:
HER puts achieved goals into the desired goal's place, so both must be measured on one scale.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ddpg.observations import ObsLayout

# The std is at least this (OpenAI baselines' norm_eps for HER): a dimension that never moves
# is centred, not blown up.
MIN_STD = 1e-2


class ObsNormalizer(nn.Module):
    def __init__(self, layout: ObsLayout, clip: float) -> None:
        super().__init__()
        dim = layout.dim
        self.clip = float(clip)
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("total", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("total_sq", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        goals = layout.goals
        # Pairs of columns whose statistics are pooled: each desired-goal column with its
        # achieved-goal column (none without goals).
        columns = range(dim)
        pooled = (
            [] if goals is None else list(zip(columns[goals[0]], columns[goals[1]], strict=True))
        )
        self.register_buffer(
            "_pooled", torch.as_tensor(pooled, dtype=torch.long).reshape(-1, 2), persistent=False
        )

    def forward(self, obs: Tensor) -> Tensor:
        return ((obs - self.mean) / self.std).clamp(-self.clip, self.clip)

    @torch.no_grad()
    def update(self, obs: np.ndarray) -> None:
        """Add a batch of observations (N, dim) to the statistics."""
        x = torch.as_tensor(np.asarray(obs), dtype=torch.float64, device=self.total.device)
        x = x.reshape(-1, self.total.numel())
        self.count += x.shape[0]
        self.total += x.sum(0)
        self.total_sq += x.square().sum(0)
        total, total_sq, count = self.total.clone(), self.total_sq.clone(), self.count
        if len(self._pooled):  # a goal column's statistics: its desired and achieved values
            desired, achieved = self._pooled[:, 0], self._pooled[:, 1]
            for t in (total, total_sq):
                t[desired] = t[achieved] = (t[desired] + t[achieved]) / 2
        mean = total / count
        var = (total_sq / count - mean.square()).clamp(min=MIN_STD**2)
        self.mean.copy_(mean)  # in place: a captured CUDA graph keeps reading these
        self.std.copy_(var.sqrt())
