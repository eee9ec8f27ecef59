"""The Python API, `ddpg.DDPG`: learn, predict, evaluate, save and load, and its errors for
environments it cannot train on. (Damaged model files: test_damaged_files.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SHORT_PENDULUM, make_config

from ddpg import DDPG
from ddpg.errors import EnvError


# -- learn / predict -----------------------------------------------------------------------------
def test_learn_predict_and_evaluate():
    model = DDPG("Pendulum-v1", config=make_config(SHORT_PENDULUM), batch_norm=False)
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
@pytest.mark.parametrize("batch_norm", [False, True])
def test_save_load_gives_identical_predictions(tmp_path, batch_norm):
    model = DDPG(config=make_config(SHORT_PENDULUM, batch_norm=batch_norm))
    model.learn(120)
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
