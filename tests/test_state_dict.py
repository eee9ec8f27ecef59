"""The parts of a run give and take their state as `CheckpointContents` (`state_dict()` /
`load_state_dict()`): an agent or a Trainer loaded from another's state dict continues exactly as
that one does, shares no storage with it, and a checkpoint made of them holds the files, tensors,
arrays and values that checkpoints have always held (so older checkpoints still load)."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import envs_for_tests  # noqa: F401 (registers the ddpgtest/ environments)
import numpy as np
import pytest
import torch
from conftest import SHORT_PENDULUM, make_agent, make_config
from test_agent import random_batch

import ddpg.resume
from ddpg.checkpoints import CheckpointContents, list_checkpoints, read_checkpoint
from ddpg.train import Trainer


def assert_same_contents(a: CheckpointContents, b: CheckpointContents) -> None:
    """Bit for bit, but the wall-clock time of training."""
    assert sorted(a.tensors) == sorted(b.tensors)
    for key, tensor in a.tensors.items():
        assert tensor.dtype == b.tensors[key].dtype, key
        assert torch.equal(tensor, b.tensors[key]), f"tensor {key} differs"
    assert sorted(a.arrays) == sorted(b.arrays)
    for key, array in a.arrays.items():
        assert array.dtype == b.arrays[key].dtype, key
        assert array.tobytes() == b.arrays[key].tobytes(), f"array {key} differs"
    values_a, values_b = dict(a.values), dict(b.values)
    values_a.pop("elapsed_s", None)
    values_b.pop("elapsed_s", None)
    assert values_a == values_b


def assert_no_shared_storage(a: CheckpointContents, b: CheckpointContents) -> None:
    """Loading copied: training one cannot change the other."""
    for key, tensor in a.tensors.items():
        if tensor.numel():
            assert tensor.untyped_storage().data_ptr() != (
                b.tensors[key].untyped_storage().data_ptr()
            ), f"tensor {key} is shared"
    for key, array in a.arrays.items():
        assert not np.shares_memory(array, b.arrays[key]), f"array {key} is shared"


# -- the agent ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides",
    [dict(), dict(algo="td3", noise="ou", normalize_obs=True)],
    ids=["ddpg", "td3-ou-normalised"],
)
def test_agent_round_trip_gives_the_same_actions_and_the_same_next_updates(overrides):
    obs = np.random.default_rng(0).normal(size=(4,)).astype(np.float32)
    source = make_agent(**overrides)
    for index in range(3):
        source.observe(random_batch(seed=index).obs.numpy())
        source.update(random_batch(seed=index), index)
    source.snapshot_best()
    source.policy(obs, explore=True)  # the noise has moved on from its seed
    copy = make_agent(seed=7, **overrides)
    assert not np.array_equal(copy.policy(obs), source.policy(obs))

    copy.load_state_dict(source.state_dict())
    assert_no_shared_storage(copy.state_dict(), source.state_dict())
    assert np.array_equal(copy.policy(obs), source.policy(obs))
    assert np.array_equal(copy.policy(obs, explore=True), source.policy(obs, explore=True))
    assert copy.best_actor is not None
    # The next updates (TD3: a delayed one, then a critic step alone). The source updates first:
    # had the copy adopted its tensors, the source's steps would have moved the copy's too.
    for index in (3, 4):
        batch = random_batch(seed=10 + index)
        expected = source.update(batch, index)
        got = copy.update(batch, index)
        for name, value in expected._asdict().items():
            assert torch.equal(getattr(got, name), value), name
    assert_same_contents(copy.state_dict(), source.state_dict())
    assert np.array_equal(copy.policy(obs, explore=True), source.policy(obs, explore=True))


def test_agent_state_dict_holds_what_the_agent_learns_and_draws():
    agent = make_agent(algo="td3", normalize_obs=True)
    agent.update(random_batch(), index=1)  # an actor step: both optimisers hold moments
    tensors, arrays, values = agent.state_dict()
    assert {key.split(".")[0] for key in tensors} == {
        *agent.networks(),
        "actor_optimizer",
        "critic_optimizer",
    }
    assert sorted(arrays) == ["target_noise_rng"]
    assert sorted(values) == ["noise", "optimizers"]
    agent.snapshot_best()
    prefixes = Counter(key.split(".")[0] for key in agent.state_dict().tensors)
    assert prefixes["best_actor"] == len(agent.actor.state_dict())
    assert prefixes["best_obs_norm"] == len(agent.obs_norm.state_dict())


# -- the Trainer ----------------------------------------------------------------------------------
# TD3 with OU noise, the normaliser and two environments; at step 170 both 50-step episodes are
# in progress, learning started at 50 and the evaluation at 100 kept a best actor.
CONTINUATION = dict(
    SHORT_PENDULUM,
    algo="td3",
    noise="ou",
    normalize_obs=True,
    num_envs=2,
    eval_every=100,
    eval_episodes_during=1,
)


def test_trainer_state_dict_into_a_fresh_trainer_continues_bit_identically():
    config = make_config(CONTINUATION)
    source = Trainer(config)
    source.run(max_steps=170)
    assert source.state.in_episode.all() and source.agent.best_actor is not None
    fresh = Trainer(config)
    fresh.load_state_dict(source.state_dict())
    assert_no_shared_storage(fresh.state_dict(), source.state_dict())
    assert fresh.state.step == 170 and fresh.state.updates == source.state.updates
    assert np.array_equal(fresh.state.obs, source.state.obs)  # the episodes were replayed
    source.run()
    fresh.run()
    assert fresh.state.step == source.state.step == 300
    assert fresh.state.updates == source.state.updates > 200
    assert_same_contents(fresh.state_dict(), source.state_dict())
    for trainer in (source, fresh):
        trainer.close()


# -- the files on disk ----------------------------------------------------------------------------
# A checkpoint of each run below, as written before the parts gave their own state dicts: its
# files, its tensors counted by the part they belong to, and its JSON values.
REPLAY = ["action", "generator", "next_obs", "obs", "position", "reward", "terminated"]
HER_REPLAY = ["episode_length", "episode_start", "open_length", "open_start"]
VALUES = [
    "best_score",
    "best_step",
    "config",
    "elapsed_s",
    "episode",
    "episode_ids",
    "episode_lengths",
    "episode_returns",
    "episodes_started",
    "in_episode",
    "learning_transitions",
    "library_version",
    "log_positions",
    "loss_sums",
    "noise",
    "optimizers",
    "recent_returns",
    "rng",
    "step",
    "target_reached",
    "updates",
]
FORMAT = {
    "td3-normalised": (
        dict(CONTINUATION, total_steps=150),
        REPLAY,
        {
            "actor": 13,
            "actor_optimizer": 24,
            "actor_target": 13,
            "best_actor": 13,
            "best_obs_norm": 5,
            "critic": 6,
            "critic2": 6,
            "critic2_target": 6,
            "critic_optimizer": 36,
            "critic_target": 6,
            "obs_norm": 5,
        },
    ),
    "her": (
        dict(
            SHORT_PENDULUM,
            env_id="ddpgtest/PointGoal-v0",
            her=True,
            max_episode_steps=None,
            total_steps=150,
            batch_norm=False,
        ),
        REPLAY + HER_REPLAY,
        {
            "actor": 8,
            "actor_optimizer": 18,
            "actor_target": 8,
            "critic": 6,
            "critic_optimizer": 18,
            "critic_target": 6,
        },
    ),
}


@pytest.mark.parametrize("name", FORMAT)
def test_checkpoints_hold_what_they_always_held(tmp_path: Path, name: str) -> None:
    base, replay, tensor_counts = FORMAT[name]
    trainer = Trainer(make_config(base), tmp_path / "run")
    trainer.run()
    trainer.close()
    path = list_checkpoints(tmp_path / "run" / "checkpoints")[0]
    arrays = sorted(
        ["episode_actions", "episode_obs", "target_noise_rng", "torch_rng"]
        + [f"replay_{k}" for k in replay]
    )
    files = sorted([f"{k}.npy" for k in arrays] + ["manifest.json", "state.json"])
    assert sorted(p.name for p in path.iterdir()) == sorted(files + ["weights.safetensors"])
    tensors, got_arrays, values = read_checkpoint(path)
    assert dict(Counter(key.split(".")[0] for key in tensors)) == tensor_counts
    assert sorted(got_arrays) == arrays
    assert sorted(values) == VALUES


def test_resume_knows_nothing_of_the_trainer():
    """Not even for type checking: resume turns state dicts into files and back."""
    tree = ast.parse(Path(ddpg.resume.__file__).read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported & {"ddpg.train", "ddpg.runs", "ddpg.api"} == set()
    assert "Trainer" not in {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
