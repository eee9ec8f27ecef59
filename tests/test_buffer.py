"""The replay buffer: circular storage, batch writes, uniform seeded sampling, persistence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ddpg.buffer import Batch, ReplayBuffer

OBS_DIM, ACT_DIM = 3, 2


def transition(i: int):
    """Transition number i, every field derived from i so that storage can be checked."""
    obs = np.full(OBS_DIM, i, dtype=np.float32)
    action = np.full(ACT_DIM, -i, dtype=np.float32)
    next_obs = np.full(OBS_DIM, i + 0.5, dtype=np.float32)
    return obs, action, float(10 * i), next_obs, i % 2 == 1


def transitions(ids):
    parts = [transition(i) for i in ids]
    return (
        np.stack([p[0] for p in parts]),
        np.stack([p[1] for p in parts]),
        np.array([p[2] for p in parts], dtype=np.float32),
        np.stack([p[3] for p in parts]),
        np.array([p[4] for p in parts]),
    )


def stored_ids(buffer: ReplayBuffer) -> list[int]:
    """The id of each stored slot, after checking that all five fields agree on it."""
    ids = []
    for slot in range(buffer.size):
        i = buffer.storage["obs"][slot, 0].item()
        assert buffer.storage["obs"][slot].tolist() == [i] * OBS_DIM
        assert buffer.storage["action"][slot].tolist() == [-i] * ACT_DIM
        assert buffer.storage["reward"][slot].item() == 10 * i
        assert buffer.storage["next_obs"][slot].tolist() == [i + 0.5] * OBS_DIM
        assert buffer.storage["terminated"][slot].item() == float(int(i) % 2 == 1)
        ids.append(int(i))
    return ids


def test_wrap_around_overwrites_the_oldest():
    buffer = ReplayBuffer(5, OBS_DIM, ACT_DIM)
    for i in range(7):
        buffer.add(*transition(i))
    assert len(buffer) == 5
    assert buffer.pos == 2
    # Slots 0 and 1 were overwritten by transitions 5 and 6; 2..4 still hold 2..4.
    assert stored_ids(buffer) == [5, 6, 2, 3, 4]


def test_partial_fill_position_and_size():
    buffer = ReplayBuffer(5, OBS_DIM, ACT_DIM)
    for i in range(3):
        buffer.add(*transition(i))
    assert (len(buffer), buffer.pos) == (3, 3)
    assert stored_ids(buffer) == [0, 1, 2]
    # Unwritten slots stay zero.
    assert torch.count_nonzero(buffer.storage["obs"][3:]) == 0


def test_batch_add_across_the_wrap_boundary():
    buffer = ReplayBuffer(5, OBS_DIM, ACT_DIM)
    buffer.add(*transitions([0, 1, 2]))
    assert (len(buffer), buffer.pos) == (3, 3)
    buffer.add(*transitions([3, 4, 5, 6]))  # slots 3, 4, 0, 1
    assert (len(buffer), buffer.pos) == (5, 2)
    assert stored_ids(buffer) == [5, 6, 2, 3, 4]
    buffer.add(*transitions([7, 8, 9]))  # slots 2, 3, 4: exactly up to the end
    assert buffer.pos == 0
    assert stored_ids(buffer) == [5, 6, 7, 8, 9]


def test_batch_add_equals_single_adds():
    one, many = ReplayBuffer(5, OBS_DIM, ACT_DIM), ReplayBuffer(5, OBS_DIM, ACT_DIM)
    for i in range(8):
        one.add(*transition(i))
    many.add(*transitions(range(4)))
    many.add(*transitions(range(4, 8)))
    assert (one.pos, one.size) == (many.pos, many.size) == (3, 5)
    for name in one.storage:
        assert torch.equal(one.storage[name], many.storage[name])


def test_sample_returns_only_stored_transitions():
    buffer = ReplayBuffer(100, OBS_DIM, ACT_DIM, seed=3)
    for i in range(1, 8):  # ids 1..7; slots 7..99 are zeros and must never be drawn
        buffer.add(*transition(i))
    batch = buffer.sample(500)
    assert isinstance(batch, Batch)
    assert batch.obs.shape == (500, OBS_DIM)
    assert batch.action.shape == (500, ACT_DIM)
    assert batch.reward.shape == (500,)
    assert batch.next_obs.shape == (500, OBS_DIM)
    assert batch.terminated.shape == (500,)
    ids = batch.obs[:, 0]
    assert set(ids.tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0}
    # Fields of a sampled row belong to the same transition.
    assert torch.equal(batch.reward, 10 * ids)
    assert torch.equal(batch.action[:, 0], -ids)
    assert torch.equal(batch.next_obs[:, 0], ids + 0.5)
    assert torch.equal(batch.terminated, (ids.long() % 2).float())


def test_sampling_is_roughly_uniform():
    buffer = ReplayBuffer(10, OBS_DIM, ACT_DIM, seed=0)
    buffer.add(*transitions(range(10)))
    counts = torch.bincount(buffer.sample(20_000).obs[:, 0].long(), minlength=10)
    assert counts.sum() == 20_000
    # Expected 2000 each; the std of a count is about 42, so +-10% is about 5 sigma.
    assert counts.min() > 1800, counts
    assert counts.max() < 2200, counts


def test_same_seed_same_samples_and_different_seed_differs():
    def sampled(seed):
        buffer = ReplayBuffer(50, OBS_DIM, ACT_DIM, seed=seed)
        buffer.add(*transitions(range(50)))
        return [buffer.sample(32).obs[:, 0].tolist() for _ in range(3)]

    assert sampled(7) == sampled(7)
    assert sampled(7) != sampled(8)


def test_sample_from_empty_buffer_raises():
    buffer = ReplayBuffer(5, OBS_DIM, ACT_DIM)
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(1)


def test_nbytes_is_the_raw_size_of_the_transitions():
    for obs_dim, act_dim, capacity in [(3, 2, 5), (8, 2, 1000), (24, 4, 12_345)]:
        buffer = ReplayBuffer(capacity, obs_dim, act_dim)
        assert buffer.nbytes == (2 * obs_dim + act_dim + 2) * 4 * capacity


@pytest.mark.parametrize("n_added", [3, 5, 7, 13])
def test_state_dict_round_trip_gives_the_same_future_samples(n_added):
    source = ReplayBuffer(5, OBS_DIM, ACT_DIM, seed=11)
    for i in range(n_added):
        source.add(*transition(i))
    source.sample(4)  # advance the sampler so that its state is not the seed's
    state = source.state_dict()
    assert state["obs"].shape == (min(n_added, 5), OBS_DIM)
    assert state["position"].tolist() == [n_added % 5]

    restored = ReplayBuffer(5, OBS_DIM, ACT_DIM, seed=999)
    restored.load_state_dict(state)
    assert (restored.pos, restored.size) == (source.pos, source.size)
    for _ in range(3):
        a, b = source.sample(16), restored.sample(16)
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y)
    # And the same future writes land in the same slots.
    source.add(*transition(100))
    restored.add(*transition(100))
    assert stored_ids(source) == stored_ids(restored)


def test_load_state_dict_rejects_inconsistent_state():
    source = ReplayBuffer(5, OBS_DIM, ACT_DIM)
    for i in range(3):
        source.add(*transition(i))
    state = source.state_dict()
    with pytest.raises(ValueError, match="does not fit"):
        ReplayBuffer(2, OBS_DIM, ACT_DIM).load_state_dict(state)  # too many transitions
    bad = dict(state, position=np.array([1], dtype=np.int64))  # not full, yet pos != size
    with pytest.raises(ValueError, match="does not fit"):
        ReplayBuffer(5, OBS_DIM, ACT_DIM).load_state_dict(bad)
    with pytest.raises(ValueError, match="replay field 'obs'"):
        ReplayBuffer(5, OBS_DIM + 1, ACT_DIM).load_state_dict(state)
