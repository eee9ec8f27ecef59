"""A checkpoint streams the replay buffer to disk: writing one must not hold a second copy of the
buffer in memory, and reading one must hold no more than the arrays it returns (a 1M-transition
HalfCheetah buffer is 160 MiB; doubling it at every checkpoint was the run's peak memory)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import torch

from ddpg.checkpoints import read_checkpoint, save_checkpoint

MIB = 1 << 20


def test_checkpoint_write_and_read_do_not_copy_large_arrays(tmp_path):
    big = np.random.default_rng(0).random((64 * MIB // 8,))  # 64 MiB of float64
    tensors = {"w": torch.zeros(3)}
    tracemalloc.start()
    try:
        path = save_checkpoint(tmp_path, 5, tensors, {"replay_obs": big}, {"step": 5})
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        _, arrays, state = read_checkpoint(path)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert state == {"step": 5}
    np.testing.assert_array_equal(arrays["replay_obs"], big)
    # NumPy writes to a file-like object in chunks of at most 16 MiB.
    assert write_peak < 24 * MIB, f"writing used {write_peak / MIB:.0f} MiB"
    # Reading: the 64 MiB array returned, plus small change.
    assert read_peak < 72 * MIB, f"reading used {read_peak / MIB:.0f} MiB"
