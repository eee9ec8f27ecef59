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


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"total_steps": 10**10 + 1}, "total_steps must be at most 10^10, got 10000000001"),
        ({"total_steps": 10**400}, "total_steps must be at most 10^10, got 1.00e+400"),
        ({"episodes": 10**11, "total_steps": None}, "episodes must be at most 10^10"),
        ({"max_episode_steps": 10**12}, "max_episode_steps must be at most 10^10"),
        ({"learning_starts": 10**10 + 1}, "learning_starts must be at most 10^10"),
        ({"eval_every": 10**11}, "eval_every must be at most 10^10"),
        ({"checkpoint_every": 10**11}, "checkpoint_every must be at most 10^10"),
        ({"log_every": 10**11}, "log_every must be at most 10^10"),
        ({"eval_episodes": 100_001}, "eval_episodes must be at most 100,000, got 100001"),
        ({"eval_episodes_during": 10**9}, "eval_episodes_during must be at most 100,000"),
        ({"updates_per_step": 1000.5}, "updates_per_step must be at most 1000, got 1000.5"),
        ({"updates_per_step": 1e9}, "updates_per_step must be at most 1000"),
        ({"final_layer_init": 1.5}, "final_layer_init must be at most 1, got 1.5"),
        ({"noise_std": 101.0}, "noise_std must be at most 100, got 101.0"),
        ({"algo": "td3", "target_noise": 1e6}, "target_noise must be at most 100"),
        ({"target_return": 1e39}, "target_return must be within float32's range (3.4e38)"),
        ({"target_return": -1e39}, "target_return must be within float32's range"),
        ({"actor_lr": 1e300}, "actor_lr must be within float32's range"),
        ({"seed": 2**63}, "seed must be"),
    ],
)
def test_values_beyond_any_sensible_bound_are_refused(changes, message):
    with pytest.raises(ConfigError) as info:
        Config(**changes)
    assert message in str(info.value)
    assert "\n" not in str(info.value) and len(str(info.value)) < 200  # no 401-digit number


def test_the_bounds_themselves_are_accepted():
    c = Config(total_steps=10**10, eval_every=10**10, checkpoint_every=10**10, log_every=10**10)
    assert (c.total_steps, c.eval_every) == (10**10, 10**10)
    assert Config(eval_episodes=100_000, eval_episodes_during=100_000).eval_episodes == 100_000
    assert Config(updates_per_step=1000).updates_per_step == 1000
    assert Config(final_layer_init=1.0, noise_std=100.0).noise_std == 100.0
    assert Config(target_return=-3.4e38).target_return == -3.4e38


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
        ("total_steps", "1e1000", "--total-steps: expected an integer below 2^63, got '1e1000'"),
        ("seed", "1" * 1001, "--seed: expected an integer below 2^63"),
    ],
)
def test_parse_value_rejects_bad_text(name, text, message):
    with pytest.raises(ConfigError) as info:
        parse_value(name, text)
    assert str(info.value).startswith(message)


def test_an_integer_of_a_thousand_digits_is_read_but_not_one_more():
    """1e999999999 would take minutes to turn into an int: refused as it is read. 999 digits
    still parse, so the memory check can show --buffer-size 1e400 as 10^N GiB."""
    assert parse_value("buffer_size", "1e999") == 10**999
    with pytest.raises(ConfigError, match="below 2\\^63"):
        parse_value("buffer_size", "1e1000")
