"""Callbacks of `DDPG.learn`: the event a callback receives, and the hooks that call them.

A callback is any callable taking one `TrainingEvent`. It is called after every finished
training episode and after every periodic evaluation. Returning `False` asks the run to stop
(as Ctrl-C does: after the current step, with a checkpoint); anything else lets it go on. An
exception raised by a callback stops the run the same way and is re-raised to the caller of
`learn` once the run is saved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

EventKind = Literal["episode", "evaluation"]


@dataclass(frozen=True)
class TrainingEvent:
    """What just happened in a run (read-only)."""

    kind: EventKind
    """"episode" (a training episode ended) or "evaluation" (a periodic evaluation ended)."""
    step: int
    """Environment steps taken so far (over every environment of the vector env)."""
    episode: int
    """Training episodes finished so far."""
    episode_return: float | None = None
    """The finished episode's return (episode events; None for evaluations)."""
    mean_return: float | None = None
    """The evaluation's mean return (evaluation events; None for episodes)."""
    std_return: float | None = None
    """The evaluation's standard deviation of returns (evaluation events)."""
    success_rate: float | None = None
    """The evaluation's success rate, where the env reports `info["is_success"]`; else None."""
    run_dir: Path | None = None
    """The run directory, or None for a model without one."""


Callback = Callable[[TrainingEvent], Any]


class Hooks:
    """The callbacks of one `learn()` call. `call` passes an event to each of them and says
    whether the run may go on; the first exception a callback raised is kept in `error` (the
    step still ends and the later events of that step still reach every callback, so that none
    of them misses an episode the run has recorded)."""

    def __init__(self, callbacks: Sequence[Callback] = ()) -> None:
        self.callbacks = tuple(callbacks)
        self.error: Exception | None = None

    @classmethod
    def of(cls, callback: Callback | Sequence[Callback] | None) -> Hooks:
        """The hooks of `learn(callback=...)`: None, a callable, or a list or tuple of them;
        TypeError naming anything that is not callable."""
        if callback is None:
            return cls()
        if callable(callback):
            return cls((callback,))
        if not isinstance(callback, (list, tuple)):
            raise TypeError(f"callback must be a callable or a list of callables, got {callback!r}")
        for i, item in enumerate(callback):
            if not callable(item):
                raise TypeError(f"callback[{i}] is not callable: {item!r}")
        return cls(callback)

    def call(self, event: TrainingEvent) -> bool:
        """Call every callback with `event`; False if one returned False or raised."""
        go_on = True
        for callback in self.callbacks:
            try:
                go_on = callback(event) is not False and go_on
            except Exception as exc:
                self.error = self.error or exc
                go_on = False
        return go_on
