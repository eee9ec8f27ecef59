"""Config: field docs, validation on construction, unknown keys, and command-line value parsing."""

from __future__ import annotations

import dataclasses

import pytest

from ddpg.config import Config, field_docs, field_names, parse_value
from ddpg.errors import ConfigError


# -- field docs ----------------------------------------------------------------------------------
def test_every_field_has_a_docstring():
    docs = field_docs()
    names = [f.name for f in dataclasses.fields(Config)]
    assert {"env_id", "tau", "gamma", "batch_norm", "noise_std"} <= set(names)
    assert sorted(docs) == sorted(names) == sorted(field_names())
    for name in names:
        assert len(docs[name].strip()) > 10, name
    # A spot check that the docs are the string under the field, not a neighbour's.
    assert docs["tau"].startswith("Polyak coefficient")
    assert docs["gamma"] == "Discount factor in [0, 1)."


# -- validation ----------------------------------------------------------------------------------
def test_default_config_is_valid_and_round_trips_through_dict():
    config = Config()
    assert Config.from_dict(config.to_dict()) == config
    assert config.replace(tau=0.5).tau == 0.5
    assert config.tau == 0.005  # frozen: replace returns a new config


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"actor_lr": -1e-3}, "actor_lr must be > 0"),
        ({"activation": "tanh"}, "activation must be one of leaky_relu, relu, got 'tanh'"),
        ({"final_layer_init": 0.0}, "final_layer_init must be > 0 or None, got 0.0"),
        ({"critic_lr": 0.0}, "critic_lr must be > 0"),
        ({"tau": 0.0}, "tau must be in (0, 1]"),
        ({"tau": 1.5}, "tau must be in (0, 1]"),
        ({"gamma": 1.0}, "gamma must be in [0, 1)"),
        ({"gamma": -0.1}, "gamma must be in [0, 1)"),
        ({"batch_size": 512, "buffer_size": 256}, "batch_size (512) is larger than buffer_size"),
        ({"noise": "pink"}, "noise must be one of gaussian, ou"),
        ({"total_steps": None, "episodes": None}, "set total_steps or episodes"),
        ({"total_steps": 0}, "total_steps must be >= 1"),
        ({"batch_norm": True, "batch_size": 1}, "BatchNorm needs two samples"),
        ({"target_return": 100.0, "eval_every": 0}, "target_return needs periodic evaluation"),
        ({"device": "tpu"}, "device must be"),
        ({"actor_lr": float("nan")}, "actor_lr must be finite"),
        ({"hidden_size": 2.5}, "hidden_size must be"),
        ({"hidden_size": True}, "hidden_size must be"),  # a bool is not an int here
        ({"batch_norm": 1}, "batch_norm must be"),
        ({"critic_lr": float("inf")}, "critic_lr must be finite"),
        ({"batch_size": True}, "batch_size must be"),  # a bool is not an int here either
        ({"hidden_size": 8.0}, "hidden_size must be"),  # nor is a whole float
        ({"seed": "0"}, "seed must be"),
        ({"noise_std": -0.1}, "noise_std must be >= 0"),
        ({"buffer_size": 0}, "buffer_size must be >= 1"),
        ({"learning_starts": -1}, "learning_starts must be >= 0"),
        ({"num_envs": 0}, "num_envs must be >= 1"),
        ({"updates_per_step": 0}, "updates_per_step must be > 0"),
        ({"updates_per_step": -0.5}, "updates_per_step must be > 0"),
        ({"num_envs": 2, "render_from": 1}, "render_from needs num_envs 1"),
        ({"update_mode": "fast"}, "update_mode must be one of eager, cudagraph"),
        ({"update_mode": "cudagraph"}, "needs a CUDA device"),
    ],
)
def test_invalid_values_raise_config_error(changes, message):
    with pytest.raises(ConfigError) as info:
        Config(**changes)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_boundary_values_are_accepted():
    assert Config(tau=1.0).tau == 1.0
    assert Config(gamma=0.0).gamma == 0.0
    assert Config(batch_size=256, buffer_size=256).batch_size == 256
    assert Config(total_steps=None, episodes=3).episodes == 3
    assert Config(actor_lr=1).actor_lr == 1  # an int is a valid float


def test_unknown_keys_are_refused_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"unknown config key 'gama' \(did you mean 'gamma'\?\)"):
        Config.from_dict({"gama": 0.9})
    with pytest.raises(ConfigError, match=r"unknown config key 'bath_size'.*'batch_size'"):
        Config.from_dict({"env_id": "Pendulum-v1", "bath_size": 64})  # beside a valid key
    with pytest.raises(ConfigError, match="unknown config key 'zzzzzz'$"):
        Config.from_dict({"zzzzzz": 1})
    with pytest.raises(ConfigError, match="did you mean 'batch_size'"):
        Config().replace(batchsize=4)
    with pytest.raises(ConfigError, match="unknown config key 'learning_rate'"):
        Config().replace(learning_rate=1e-3)


# -- parse_value ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("batch_size", "64", 64),
        ("buffer_size", "1_000_000", 1_000_000),
        ("buffer_size", "1e6", 1_000_000),
        ("total_steps", "none", None),
        ("total_steps", "None", None),
        ("total_steps", "300", 300),
        ("tau", "0.005", 0.005),
        ("actor_lr", "3e-4", 3e-4),
        ("target_return", "null", None),
        ("target_return", "-150.5", -150.5),
        ("batch_norm", "true", True),
        ("batch_norm", "YES", True),
        ("batch_norm", "1", True),
        ("batch_norm", "off", False),
        ("batch_norm", "False", False),
        ("env_id", "Pendulum-v1", "Pendulum-v1"),
        ("noise", "ou", "ou"),
    ],
)
def test_parse_value(name, text, expected):
    value = parse_value(name, text)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("batch_size", "1.5", "--batch-size: expected int, got '1.5'"),
        ("batch_size", "none", "--batch-size: expected int, got 'none'"),  # not optional
        ("tau", "abc", "--tau: expected float, got 'abc'"),
        ("batch_norm", "maybe", "--batch-norm: expected bool, got 'maybe'"),
    ],
)
def test_parse_value_rejects_bad_text(name, text, message):
    with pytest.raises(ConfigError) as info:
        parse_value(name, text)
    assert str(info.value) == message
