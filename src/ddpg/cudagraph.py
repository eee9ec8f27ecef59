"""The whole DDPG update captured once in a CUDA graph and replayed.

On a GPU the eager update is bound by the CPU: a hundred or so tiny kernels, each launched through
the dispatcher and autograd. `GraphedUpdate` records them once and then launches them all with one
call. Only the drawing of the batch indices stays outside the graph, on the replay buffer's own
generator, so the sampled transitions are exactly those `ReplayBuffer.sample` would give.

How it runs, per call:

1. Batch indices are drawn into a static index tensor by `ReplayBuffer.sample_indices`, on the
   buffer's generator, outside any graph.
2. The first `warmup` calls are real, eager updates on a side stream (what the capture recipe asks
   for: it initialises the optimiser state, cuBLAS handles and workspaces and autograd's threads
   before capture).
3. The next call captures `agent.update` on the batch `ReplayBuffer.gather` takes from the
   buffer's storage at the static indices. Capture records kernels without running them, so
   that call then replays the graph once: its update happens exactly once.
4. Every later call replays the graph.

The graph holds the addresses of everything it touches: the buffer's storage, the networks'
parameters and buffers, the gradients (allocated inside the graph's private memory pool, which is
why they are set to None before capture) and the optimisers' state. Loading weights with
`load_state_dict` and adding to or loading the buffer copy in place and keep the graph valid.
`Optimizer.load_state_dict` (a checkpoint restore) replaces the optimiser state with new tensors:
the graph would go on updating the old ones. `GraphedUpdate` notices that (and new optimiser,
network or storage objects) on its next call and recaptures; `invalidate` forces it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ddpg.agent import DDPGAgent, UpdateMetrics
from ddpg.buffer import ReplayBuffer
from ddpg.errors import ConfigError


class GraphedUpdate:
    """`agent.update` on a uniformly sampled batch of `buffer`, as a replayed CUDA graph.

    Each call performs one real update (the warm-up calls included) and returns that update's
    metrics as fresh tensors that later calls do not overwrite. The arithmetic is
    `agent.update`'s own: the graph is a recording of it.
    """

    def __init__(
        self, agent: DDPGAgent, buffer: ReplayBuffer, batch_size: int, warmup: int = 3
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if warmup < 1:
            # Adam creates its state on the first step: created inside a capture, every replay
            # would reset it. At least one eager step must come first.
            raise ValueError(f"warmup must be >= 1, got {warmup}")
        device = _cuda_device(agent, buffer)
        self.agent = agent
        self.buffer = buffer
        self.batch_size = batch_size
        self.warmup = warmup
        self.captures = 0
        """How many times the update was captured (1, plus one per recapture)."""
        self._device = device
        self._stream = torch.cuda.Stream(device=device)  # warm-up and capture stream
        self._idx = torch.zeros(batch_size, dtype=torch.long, device=device)  # static input
        self._graph: torch.cuda.CUDAGraph | None = None
        self._metrics: Tensor | None = None  # static output: critic loss, actor loss, mean Q
        self._bound: tuple[Any, ...] = ()  # the objects whose tensors the graph points at
        self._eager_left = warmup

    @property
    def captured(self) -> bool:
        """Whether a graph is captured and the next call replays it."""
        return self._graph is not None

    def invalidate(self) -> None:
        """Drop the graph: the next `warmup` calls run eagerly, then the update is captured again.

        Needed after anything replaces tensors the graph uses; `Optimizer.load_state_dict` and
        new optimiser, network or storage objects are detected by the next call without it.
        """
        if self._graph is not None:
            torch.cuda.current_stream(self._device).synchronize()  # no replay still running
        self._graph = None
        self._metrics = None
        self._bound = ()
        self._eager_left = self.warmup

    def __call__(self) -> UpdateMetrics:
        """One update on a fresh uniform batch; the metrics are this update's."""
        if self._graph is not None and not self._still_bound():
            self.invalidate()
        # ReplayBuffer.sample's own draw, written into the graph's static input.
        self.buffer.sample_indices(self.batch_size, out=self._idx)
        if self._graph is None:
            if self._eager_left > 0:
                self._eager_left -= 1
                return self._eager_update()
            self._capture()
        assert self._graph is not None and self._metrics is not None
        self._graph.replay()
        # A copy, so that the next replay does not overwrite what this call returned.
        return UpdateMetrics(*self._metrics.clone())

    # -- internals -------------------------------------------------------------------------------
    def _update(self) -> Tensor:
        """Gather the batch selected by the static indices and run `agent.update` on it."""
        return torch.stack(self.agent.update(self.buffer.gather(self._idx)))

    def _eager_update(self) -> UpdateMetrics:
        """A real update on the side stream, as the capture recipe warms up."""
        with torch.cuda.device(self._device):
            current = torch.cuda.current_stream()
            self._stream.wait_stream(current)  # the indices and the buffer's writes come first
            with torch.cuda.stream(self._stream):
                metrics = self._update()
            current.wait_stream(self._stream)
            metrics.record_stream(current)  # allocated on the side stream, read on this one
        return UpdateMetrics(*metrics)

    def _capture(self) -> None:
        """Record `_update` into a new graph; nothing runs until the graph is replayed."""
        agent = self.agent
        for optimizer in agent.optimizers().values():
            if not all(group["capturable"] for group in optimizer.param_groups):
                raise ConfigError("CUDA-graph updates need optimisers built with capturable=True")
            # Gradients allocated inside the capture live in the graph's pool at fixed addresses,
            # and backward writes them instead of adding to stale ones.
            optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.device(self._device):
            self._stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.graph(graph, stream=self._stream):
                metrics = self._update()
        self._graph, self._metrics = graph, metrics
        self._bound = self._referents()
        self.captures += 1

    def _referents(self) -> tuple[Any, ...]:
        """The objects whose tensors a captured graph reads and writes. Holding them keeps that
        memory alive; comparing them by identity tells when the graph has gone stale."""
        agent = self.agent
        optimizers = agent.optimizers().values()
        return (
            *optimizers,
            *(optimizer.state for optimizer in optimizers),
            *agent.networks().values(),
            *self.buffer.storage.values(),
        )

    def _still_bound(self) -> bool:
        return all(a is b for a, b in zip(self._referents(), self._bound, strict=True))


def _cuda_device(agent: DDPGAgent, buffer: ReplayBuffer) -> torch.device:
    """The CUDA device the agent's networks and the buffer's storage share."""
    device = next(agent.critic.parameters()).device
    if device.type != "cuda":
        raise ConfigError(
            f"CUDA-graph updates need the agent on a CUDA device, it is on '{device}'"
        )
    for name, tensor in buffer.storage.items():
        if tensor.device != device:
            raise ConfigError(
                f"replay buffer field '{name}' is on '{tensor.device}', the agent on '{device}'"
            )
    return device
