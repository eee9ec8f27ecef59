"""The whole DDPG (or TD3) update captured once in a CUDA graph and replayed.

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

A delayed update (TD3: the actor and the targets move every `policy_delay`-th update) has two
variants, the critic step alone and the full update; `agent.actor_due(index)` says which one an
update is. Each variant is warmed up, captured and replayed as a graph of its own, so a replay
never has a branch to take. DDPG has one variant (every update is a full one), hence one graph.
The agent's target-smoothing generator is registered with each graph, so every replay draws
fresh noise from it, as the eager update would.

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
    """`agent.update` on a uniformly sampled batch of `buffer`, as replayed CUDA graphs (one per
    variant of the update: see the module's docstring).

    Each call performs one real update (the warm-up calls included) and returns that update's
    metrics as fresh tensors that later calls do not overwrite. The arithmetic is
    `agent.update`'s own: each graph is a recording of it.
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
        """How many graphs were captured (one per variant, plus one per recapture)."""
        self._device = device
        self._stream = torch.cuda.Stream(device=device)  # warm-up and capture stream
        self._idx = torch.zeros(batch_size, dtype=torch.long, device=device)  # static input
        # Per variant (True: the full update, False: the critic step alone): its graph, its
        # static output (the stacked metrics) and the eager calls it has left before capture.
        self._graphs: dict[bool, torch.cuda.CUDAGraph] = {}
        self._metrics: dict[bool, Tensor] = {}
        self._eager_left = {True: warmup, False: warmup}
        self._bound: tuple[Any, ...] = ()  # the objects whose tensors the graphs point at

    @property
    def captured(self) -> bool:
        """Whether every variant the agent's updates take is captured (the next calls replay)."""
        variants = {True} if self.agent.policy_delay == 1 else {True, False}
        return variants <= self._graphs.keys()

    def invalidate(self) -> None:
        """Drop the graphs: each variant's next `warmup` calls run eagerly, then it is captured
        again.

        Needed after anything replaces tensors the graphs use; `Optimizer.load_state_dict` and
        new optimiser, network or storage objects are detected by the next call without it.
        """
        if self._graphs:
            torch.cuda.current_stream(self._device).synchronize()  # no replay still running
        self._graphs, self._metrics = {}, {}
        self._bound = ()
        self._eager_left = {True: self.warmup, False: self.warmup}

    def __call__(self, index: int = 0) -> UpdateMetrics:
        """Update number `index` (`TrainState.updates`) on a fresh uniform batch; the metrics
        are this update's."""
        if self._graphs and not self._still_bound():
            self.invalidate()
        full = self.agent.actor_due(index)
        # ReplayBuffer.sample's own draw, written into the graphs' static input.
        self.buffer.sample_indices(self.batch_size, out=self._idx)
        if full not in self._graphs:
            if self._eager_left[full] > 0:
                self._eager_left[full] -= 1
                return self._eager_update(index)
            self._capture(full, index)
        self._graphs[full].replay()
        # A copy, so that the next replay does not overwrite what this call returned.
        return UpdateMetrics(*self._metrics[full].clone())

    # -- internals -------------------------------------------------------------------------------
    def _update(self, index: int) -> Tensor:
        """Gather the batch selected by the static indices and run `agent.update` on it."""
        return torch.stack(self.agent.update(self.buffer.gather(self._idx), index))

    def _eager_update(self, index: int) -> UpdateMetrics:
        """A real update on the side stream, as the capture recipe warms up."""
        with torch.cuda.device(self._device):
            current = torch.cuda.current_stream()
            self._stream.wait_stream(current)  # the indices and the buffer's writes come first
            with torch.cuda.stream(self._stream):
                metrics = self._update(index)
            current.wait_stream(self._stream)
            metrics.record_stream(current)  # allocated on the side stream, read on this one
        return UpdateMetrics(*metrics)

    def _capture(self, full: bool, index: int) -> None:
        """Record `_update` of one variant (that of update `index`) into a new graph; nothing
        runs until the graph is replayed."""
        agent = self.agent
        for optimizer in agent.optimizers().values():
            if not all(group["capturable"] for group in optimizer.param_groups):
                raise ConfigError("CUDA-graph updates need optimisers built with capturable=True")
            # Gradients allocated inside the capture live in the graph's pool at fixed addresses,
            # and backward writes them instead of adding to stale ones. Each graph has its own
            # pool: a gradient the other graph's capture freed is never handed out again.
            optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.device(self._device):
            # Registered before capture: each replay advances the generator's offset and so
            # draws new target-smoothing noise, as the eager update would.
            graph.register_generator_state(agent.target_noise_rng)
            self._stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.graph(graph, stream=self._stream):
                metrics = self._update(index)
        self._graphs[full], self._metrics[full] = graph, metrics
        self._bound = self._referents()
        self.captures += 1

    def _referents(self) -> tuple[Any, ...]:
        """The objects whose tensors a captured graph reads and writes. Holding them keeps that
        memory alive; comparing them by identity tells when the graphs have gone stale."""
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
