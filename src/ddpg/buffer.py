"""Replay buffer: preallocated tensors, circular, uniform sampling.

It stores `terminated` rather than `done`, and the true next observation of every transition, so a
transition cut by a time limit still bootstraps from Q(s', mu(s')). Storage is five dense tensors,
so memory is the raw bytes of the transitions: (2 * obs_dim + act_dim + 2) * 4 bytes each.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class Batch(NamedTuple):
    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor


FIELDS = Batch._fields


class ReplayBuffer:
    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        act_dim: int,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        self.capacity = capacity
        self.device = torch.device(device)
        shapes = {
            "obs": (capacity, obs_dim),
            "action": (capacity, act_dim),
            "reward": (capacity,),
            "next_obs": (capacity, obs_dim),
            "terminated": (capacity,),
        }
        self.storage = {
            name: torch.zeros(shape, dtype=torch.float32, device=self.device)
            for name, shape in shapes.items()
        }
        # On the CPU, NumPy views of the same memory make single-transition writes cheap.
        self._host = (
            {name: t.numpy() for name, t in self.storage.items()}
            if self.device.type == "cpu"
            else None
        )
        self.pos = 0
        self.size = 0
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)

    def __len__(self) -> int:
        return self.size

    @property
    def host(self) -> dict[str, np.ndarray]:
        """NumPy views of the storage (a buffer on the CPU only)."""
        if self._host is None:
            raise ValueError("the storage of a replay buffer on a GPU has no host view")
        return self._host

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.storage.values())

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float | np.ndarray,
        next_obs: np.ndarray,
        terminated: bool | np.ndarray,
    ) -> None:
        """Store one transition, or a batch of them when the arguments have a leading batch axis."""
        values = {
            "obs": obs,
            "action": action,
            "reward": reward,
            "next_obs": next_obs,
            "terminated": terminated,
        }
        n = 1 if np.ndim(obs) == 1 else len(obs)
        if self.pos + n <= self.capacity:
            idx: slice | np.ndarray = slice(self.pos, self.pos + n)
        else:
            idx = (self.pos + np.arange(n)) % self.capacity
        if self._host is not None:  # CPU: write straight into the tensors' memory through NumPy
            for name, value in values.items():
                self._host[name][idx] = np.reshape(value, self._host[name][idx].shape)
        else:
            for name, value in values.items():
                target = self.storage[name]
                tensor = torch.as_tensor(np.asarray(value, dtype=np.float32), device=self.device)
                target[idx] = tensor.reshape(target[idx].shape)
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def end_episode(self, env: int) -> None:
        """Uniform replay needs no episode boundaries (HER's buffer does)."""

    def sample(self, batch_size: int) -> Batch:
        """Uniformly sample `batch_size` stored transitions (with replacement)."""
        return self.gather(self.sample_indices(batch_size))

    def sample_indices(self, batch_size: int, out: torch.Tensor | None = None) -> torch.Tensor:
        """`batch_size` uniform indices of stored transitions, drawn on this buffer's generator
        (into `out` when given: a CUDA graph's static input)."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        shape = (batch_size,)
        if out is not None:
            return torch.randint(0, self.size, shape, generator=self.generator, out=out)
        return torch.randint(0, self.size, shape, generator=self.generator, device=self.device)

    def gather(self, idx: torch.Tensor) -> Batch:
        """The transitions at `idx`."""
        return Batch(*(torch.index_select(self.storage[name], 0, idx) for name in FIELDS))

    # -- persistence: plain arrays, never pickles -------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """The filled part of the storage as laid out in memory, the write position and the
        sampler state: loading it gives back the very same future samples."""
        state = {name: t[: self.size].cpu().numpy() for name, t in self.storage.items()}
        state["position"] = np.array([self.pos], dtype=np.int64)
        state["generator"] = self.generator.get_state().cpu().numpy()
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        n = int(state["obs"].shape[0])
        pos = int(state["position"][0])
        full = n == self.capacity
        if n > self.capacity or not (0 <= pos < n if full else pos == n):
            raise ValueError(
                f"replay state of {n} transitions at {pos} does not fit {self.capacity}"
            )
        for name, t in self.storage.items():
            array = state[name]
            if array.shape != (n,) + tuple(t.shape[1:]):
                raise ValueError(f"replay field '{name}' has shape {array.shape}")
            t.zero_()
            t[:n] = torch.as_tensor(array, dtype=torch.float32, device=self.device)
        self.size = n
        self.pos = pos
        self.generator.set_state(torch.as_tensor(state["generator"], dtype=torch.uint8))
