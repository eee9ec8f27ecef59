"""The Python API and the Trainer: determinism, learn/predict, save/load and damaged files."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from ddpg import DDPG, Config
from ddpg.checkpoints import load_model
from ddpg.errors import CheckpointError, EnvError
from ddpg.train import Trainer


def pendulum_config(**overrides) -> Config:
    values = dict(
        env_id="Pendulum-v1",
        total_steps=300,
        max_episode_steps=50,
        hidden_size=32,
        batch_norm=True,
        batch_size=32,
        buffer_size=1000,
        learning_starts=50,
        checkpoint_every=0,
        eval_episodes=1,
        torch_threads=1,
    )
    values.update(overrides)
    return Config(**values)


# -- determinism ---------------------------------------------------------------------------------
def train(config: Config, run_dir) -> tuple[Trainer, list[dict[str, str]]]:
    trainer = Trainer(config, run_dir)
    trainer.run()
    trainer.close()
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = [{k: v for k, v in row.items() if k != "wall_time_s"} for row in csv.DictReader(f)]
    return trainer, rows


def test_same_config_gives_bit_identical_runs(tmp_path):
    config = pendulum_config()
    a, rows_a = train(config, tmp_path / "a")
    b, rows_b = train(config, tmp_path / "b")
    c, rows_c = train(config.replace(seed=1), tmp_path / "c")

    assert a.state.step == b.state.step == 300
    assert a.state.episode == 6 and len(rows_a) == 6
    assert a.state.updates == 251  # one update per step from step 50 on
    assert rows_a == rows_b
    assert all(row["critic_loss"] != "" for row in rows_a[1:])
    for name, net in a.agent.networks().items():
        other = b.agent.networks()[name].state_dict()
        for key, value in net.state_dict().items():
            assert torch.equal(value, other[key]), f"{name}.{key}"
    for name in a.buffer.storage:
        assert torch.equal(a.buffer.storage[name], b.buffer.storage[name])

    # Another seed: other exploration, other start states, other weights.
    assert not torch.equal(a.agent.actor.net[0].weight, c.agent.actor.net[0].weight)
    assert not torch.equal(a.agent.actor.net[-1].weight, c.agent.actor.net[-1].weight)
    assert rows_a != rows_c


# -- learn / predict -----------------------------------------------------------------------------
def test_learn_predict_and_evaluate():
    model = DDPG("Pendulum-v1", config=pendulum_config(), batch_norm=False)
    assert model.config.batch_norm is False  # overrides apply on top of the config
    assert model.learn(120) is model
    assert model.num_steps == 120
    model.learn(30)
    assert model.num_steps == 150
    obs = np.random.default_rng(0).uniform(-1, 1, size=(16, 3)).astype(np.float32)
    actions = model.predict(obs)
    assert actions.shape == (16, 1)
    assert np.all(np.abs(actions) <= 2.0)
    assert np.array_equal(model.predict(obs), actions)
    assert model.predict(obs[0]).shape == (1,)
    result = model.evaluate(episodes=2)
    assert len(result.returns) == 2 and result.lengths == [50, 50]
    with pytest.raises(ValueError, match="total_steps >= 1"):
        model.learn(0)


def test_unknown_env_and_discrete_env_raise_env_error():
    with pytest.raises(EnvError, match="did you mean.*Pendulum-v1"):
        DDPG("Pendulum-v0")
    with pytest.raises(EnvError, match="Discrete action space"):
        DDPG("CartPole-v1")


# -- save / load ---------------------------------------------------------------------------------
def trained_model(batch_norm: bool) -> DDPG:
    model = DDPG(config=pendulum_config(batch_norm=batch_norm))
    model.learn(120)
    return model


@pytest.mark.parametrize("batch_norm", [False, True])
def test_save_load_gives_identical_predictions(tmp_path, batch_norm):
    model = trained_model(batch_norm)
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = DDPG.load(path)
    assert loaded.config == model.config
    obs = np.random.default_rng(1).uniform(-1, 1, size=(32, 3)).astype(np.float32)
    assert np.array_equal(loaded.predict(obs), model.predict(obs))
    for name, net in model.agent.networks().items():
        other = loaded.agent.networks()[name].state_dict()
        for key, value in net.state_dict().items():
            assert torch.equal(value, other[key]), f"{name}.{key}"
    # A loaded model can keep learning.
    loaded.learn(10)
    assert loaded.num_steps == 10


def test_load_missing_file_raises(tmp_path):
    with pytest.raises(CheckpointError, match="no model file"):
        DDPG.load(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="no model file"):
        DDPG.load(tmp_path)  # a directory is not a model file


@pytest.fixture(scope="module")
def saved_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    trained_model(batch_norm=False).save(path)
    return path.read_bytes()


def header_length(data: bytes) -> int:
    return int.from_bytes(data[:8], "little")


@pytest.mark.parametrize("where", ["last", "middle_of_data", "first_of_data", "length", "brace"])
def test_flipped_byte_raises_checkpoint_error(tmp_path, saved_bytes, where):
    n = header_length(saved_bytes)
    position = {
        "last": len(saved_bytes) - 1,
        "middle_of_data": (8 + n + len(saved_bytes)) // 2,
        "first_of_data": 8 + n,
        "length": 0,
        "brace": 8,
    }[where]
    data = bytearray(saved_bytes)
    data[position] ^= 0x01
    path = tmp_path / "flipped.safetensors"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        DDPG.load(path)


def test_truncated_and_foreign_files_raise_checkpoint_error(tmp_path, saved_bytes):
    path = tmp_path / "bad.safetensors"
    for data in (saved_bytes[: len(saved_bytes) // 2], saved_bytes[:5], b"", b"not a model"):
        path.write_bytes(data)
        with pytest.raises(CheckpointError):
            DDPG.load(path)


def test_tampered_metadata_is_refused(tmp_path, saved_bytes):
    """The module promises that a tampered file is refused. The checksum covers the tensors
    only, so editing the config in the header (here tau 0.005 -> 0.004, one flipped bit) goes
    unnoticed and the model loads with a hyperparameter nobody trained it with."""
    needle = b'\\"tau\\": 0.005'
    assert saved_bytes.count(needle) == 1
    position = saved_bytes.index(needle) + len(needle) - 1
    data = bytearray(saved_bytes)
    data[position] ^= 0x01  # '5' -> '4'
    path = tmp_path / "tampered.safetensors"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        load_model(path)
