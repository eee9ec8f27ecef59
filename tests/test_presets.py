"""Presets: each builds a valid Config holding its listed values (checked value by value against
the sources they cite), overrides apply on top, an unknown name gets a suggestion; `ddpg presets`
lists them, in-process and as the installed command."""

from __future__ import annotations

import pytest
from conftest import run_cli, run_exe

from ddpg.config import Config
from ddpg.errors import ConfigError
from ddpg.presets import PRESETS, preset_config


def test_presets_all_construct():
    assert list(PRESETS) == [
        "seed-lunarlander",
        "lunarlander",
        "pendulum",
        "mujoco",
        "td3-mujoco",
        "bipedalwalker",
        "fetchreach",
        "fetchpush",
    ]
    for name in PRESETS:
        config = preset_config(name)
        assert isinstance(config, Config)
        assert PRESETS[name]["description"]
        for key, value in PRESETS[name]["values"].items():
            assert getattr(config, key) == value, (name, key)


def test_mujoco_preset_has_the_td3_papers_ddpg_values():
    c = preset_config("mujoco", env_id="Hopper-v5")
    assert c.env_id == "Hopper-v5"
    assert (c.hidden_size, c.hidden_size_2, c.batch_size) == (400, 300, 100)
    assert (c.actor_lr, c.critic_lr, c.weight_decay, c.tau, c.gamma) == (
        1e-3,
        1e-3,
        0.0,
        0.005,
        0.99,
    )
    assert (c.noise, c.noise_std, c.eval_every, c.eval_episodes_during) == (
        "gaussian",
        0.1,
        5000,
        10,
    )
    assert not c.batch_norm


def test_td3_mujoco_preset_has_the_td3_papers_code_values():
    # sfujim/TD3 main.py and TD3.py.
    c = preset_config("td3-mujoco", env_id="Walker2d-v5")
    assert (c.env_id, c.algo) == ("Walker2d-v5", "td3")
    assert (c.policy_delay, c.target_noise, c.target_noise_clip) == (2, 0.2, 0.5)
    assert (c.hidden_size, c.hidden_size_2, c.activation, c.final_layer_init) == (
        256,
        256,
        "relu",
        None,
    )
    assert (c.actor_lr, c.critic_lr, c.weight_decay, c.batch_size) == (3e-4, 3e-4, 0.0, 256)
    assert (c.gamma, c.tau, c.noise, c.noise_std) == (0.99, 0.005, "gaussian", 0.1)
    assert (c.learning_starts, c.eval_every, c.total_steps) == (25_000, 5_000, 1_000_000)
    assert not c.batch_norm
    # Its TD3 values are the defaults, so a sweep over algo=ddpg,td3 on it is valid.
    assert preset_config("td3-mujoco", algo="ddpg").algo == "ddpg"


def test_seed_lunarlander_has_the_notebook_values():
    c = preset_config("seed-lunarlander")
    assert c.env_id == "LunarLanderContinuous-v3"
    assert c.hidden_size == 256
    assert c.gamma == 0.99
    assert c.actor_lr == 1e-3
    assert c.critic_lr == 1e-3
    assert c.episodes == 1000
    assert c.total_steps is None
    assert c.max_episode_steps == 200
    assert c.batch_size == 100
    assert c.buffer_size == 1_000_000
    assert c.tau == 0.005
    assert c.noise == "gaussian"
    assert c.noise_std == 0.1
    assert c.eval_episodes == 20
    assert c.batch_norm is True
    assert c.weight_decay == 0.01


def test_preset_overrides_and_unknown_preset():
    assert preset_config("pendulum", total_steps=600).total_steps == 600
    with pytest.raises(ConfigError, match=r"unknown preset 'pendullum' \(did you mean 'pendulum'"):
        preset_config("pendullum")
    with pytest.raises(ConfigError, match="unknown config key 'tua'"):
        preset_config("pendulum", tua=0.1)
    with pytest.raises(ConfigError, match="tau must be in"):
        preset_config("pendulum", tau=2.0)


# -- `ddpg presets` ------------------------------------------------------------------------------
def test_presets_in_process():
    code, out, err = run_cli(["presets"])
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == list(PRESETS)
    assert "1000 episodes" in lines[0] and "LunarLanderContinuous-v3" in lines[0]
    for line, name in zip(lines[1:], list(PRESETS)[1:], strict=True):
        values = PRESETS[name]["values"]
        assert f"{values['total_steps']:,} steps" in line
        assert values["env_id"] in line and PRESETS[name]["description"] in line


def test_presets_subprocess(tmp_path):
    result = run_exe(["presets"], tmp_path)
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == list(PRESETS)
    assert result.stderr == ""


@pytest.mark.parametrize("name", ["fetchreach", "fetchpush"])
def test_goal_presets_have_the_her_papers_ddpg_values(name: str) -> None:
    c = preset_config(name)
    assert (c.her, c.her_strategy, c.her_k) == (True, "future", 4)
    assert (c.normalize_obs, c.obs_clip) == (True, 5.0)
    assert (c.gamma, c.tau, c.actor_lr, c.critic_lr, c.batch_size) == (0.95, 0.05, 1e-3, 1e-3, 256)
    assert (c.noise, c.noise_std, c.activation, c.final_layer_init) == (
        "gaussian",
        0.2,
        "relu",
        None,
    )
    assert c.env_id == {"fetchreach": "FetchReach-v4", "fetchpush": "FetchPush-v4"}[name]
