"""`ddpg.Policy` (inference without the training stack) and `ddpg export` (ONNX, TorchScript)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import HIGH, LOW, TINY, make_config

from ddpg import DDPG, Policy
from ddpg.cli import main
from ddpg.errors import CheckpointError, ConfigError
from ddpg.export import export_policy
from ddpg.networks import Actor

OBS_DIM = 5


def asymmetric_policy(batch_norm: bool) -> Policy:
    """A 3-dim actor on the tests' asymmetric bounds: the first dimension saturates at its upper
    bound, the last at its lower one (large output biases), the middle one varies."""
    torch.manual_seed(3)
    actor = Actor(OBS_DIM, LOW, HIGH, hidden_size=24, batch_norm=batch_norm, hidden_size_2=16)
    with torch.no_grad():
        actor.net[-1].weight.mul_(100.0)
        actor.net[-1].bias.copy_(torch.tensor([20.0, 0.0, -20.0]))
        if batch_norm:
            actor.net[3].running_mean.uniform_(-1, 1)
            actor.net[3].running_var.uniform_(0.5, 2.0)
    return Policy(actor.eval(), make_config(TINY))


def random_obs(n: int = 1000, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=(n, OBS_DIM)) * 3).astype(np.float32)


@pytest.fixture(scope="module")
def pendulum_model(tmp_path_factory) -> tuple[DDPG, Path]:
    model = DDPG("Pendulum-v1", config=make_config(TINY, batch_norm=False), learning_starts=50)
    model.learn(150)
    path = tmp_path_factory.mktemp("policy") / "model.safetensors"
    model.save(path)
    return model, path


# -- Policy --------------------------------------------------------------------------------------
def test_policy_load_needs_neither_env_nor_training_loop(pendulum_model, tmp_path):
    _, path = pendulum_model
    script = (
        "import sys, numpy as np\n"
        "from ddpg import Policy\n"
        f"p = Policy.load({str(path)!r})\n"
        "a = p(np.zeros(3, np.float32))\n"
        "assert a.shape == (1,) and -2 <= a[0] <= 2, a\n"
        "banned = [m for m in ('ddpg.train', 'ddpg.buffer', 'ddpg.agent', 'gymnasium.envs.box2d')"
        " if m in sys.modules]\n"
        "assert not banned, banned\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr


def test_policy_gives_the_learners_deterministic_actions(pendulum_model):
    model, path = pendulum_model
    obs = random_obs(64)[:, :3]
    expected = model.agent.act(obs)  # the training loop's mapping, in NumPy
    assert np.array_equal(Policy.load(path)(obs), expected)
    assert np.array_equal(model.predict(obs), expected)
    assert np.array_equal(Policy.load(path)(obs[0]), model.agent.act(obs[0]))


def test_a_relu_model_with_default_init_loads_as_the_relu_network_it_is(tmp_path):
    """The activation is part of a model file's config: Policy.load rebuilds ReLU, not the
    default LeakyReLU (the actions would differ on any negative pre-activation)."""
    config = make_config(TINY, batch_norm=False, activation="relu", final_layer_init=None)
    model = DDPG("Pendulum-v1", config=config, learning_starts=50)
    model.learn(100)
    model.save(tmp_path / "relu.safetensors")
    policy = Policy.load(tmp_path / "relu.safetensors")
    assert isinstance(policy.net.actor.net[1], torch.nn.ReLU)
    obs = random_obs(64)[:, :3]
    assert np.array_equal(policy(obs), model.agent.act(obs))
    with pytest.raises(ConfigError, match="activation cannot be changed when loading a model"):
        DDPG.load(tmp_path / "relu.safetensors", activation="leaky_relu")


@pytest.mark.parametrize(
    ("obs", "match"),
    [
        (np.zeros(4, np.float32), r"shape \(5,\) or \(N, 5\), got \(4,\)"),
        (np.zeros(10, np.float32), r"got \(10,\)"),  # twice obs_dim is not a batch of two
        (np.zeros((1, 1, 5), np.float32), r"got \(1, 1, 5\)"),
        (np.zeros((0, 5), np.float32), r"got \(0, 5\)"),
        (np.float32(1.0), r"got \(\)"),
        (np.array([0, 0, np.nan, 0, 0], np.float32), r"non-finite value at index \[2\]"),
        (np.array([[0, 0, 0, 0, 0], [0, np.inf, 0, 0, 0]]), r"non-finite value at index \[1, 1\]"),
        (None, "got NoneType"),
        ("abcde", "got str"),
        ([1, 2, [3]], "got list"),
    ],
)
def test_policy_refuses_bad_observations_with_a_clear_value_error(obs, match):
    with pytest.raises(ValueError, match=match):
        asymmetric_policy(False)(obs)


def test_policy_load_refuses_what_is_not_a_model(tmp_path):
    not_model = tmp_path / "notes.safetensors"
    not_model.write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="not a readable safetensors model file"):
        Policy.load(not_model)
    with pytest.raises(CheckpointError, match="no model file"):
        Policy.load(tmp_path / "missing.safetensors")


# -- export ------------------------------------------------------------------------------------
@pytest.mark.parametrize("batch_norm", [False, True])
def test_torchscript_export_matches_policy(tmp_path, batch_norm):
    policy = asymmetric_policy(batch_norm)
    out = export_policy(policy, "torchscript", tmp_path / "p.pt")
    extra = {"ddpg.json": ""}
    loaded = torch.jit.load(str(out), _extra_files=extra)
    obs = random_obs()
    with torch.no_grad():
        actions = loaded(torch.from_numpy(obs)).numpy()
        single = loaded(torch.from_numpy(obs[:1])).numpy()
    expected = policy(obs)
    assert np.max(np.abs(actions - expected)) <= 1e-5
    assert np.abs(single - expected[:1]).max() <= 1e-5  # batch size 1 works too
    assert np.all(actions >= LOW) and np.all(actions <= HIGH)
    assert np.all(actions[:, 0] == HIGH[0]) and np.all(actions[:, 2] == LOW[2])  # bounds exact
    assert np.std(actions[:, 1]) > 0.05  # the free dimension follows the observation
    meta = json.loads(extra["ddpg.json"])
    assert meta["obs_dim"] == OBS_DIM and meta["action_low"] == LOW.tolist()


def test_onnx_export_matches_policy(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="the export extra is not installed")
    policy = asymmetric_policy(batch_norm=True)
    out = export_policy(policy, "onnx", tmp_path / "p.onnx")
    session = ort.InferenceSession(str(out))
    obs = random_obs(seed=1)
    actions = session.run(None, {"obs": obs})[0]
    expected = policy(obs)
    assert actions.shape == (1000, 3)
    assert np.max(np.abs(actions - expected)) <= 1e-5
    assert np.all(actions[:, 0] == HIGH[0]) and np.all(actions[:, 2] == LOW[2])
    assert session.run(None, {"obs": obs[:1]})[0].shape == (1, 3)
    meta = json.loads(session.get_modelmeta().custom_metadata_map["ddpg"])
    assert meta["action_high"] == HIGH.tolist()


def test_export_command_writes_beside_the_model_and_replaces_only_its_own_kind(
    pendulum_model, tmp_path, capsys
):
    _, path = pendulum_model
    model = tmp_path / "model.safetensors"
    model.write_bytes(path.read_bytes())
    assert main(["export", str(model), "--format", "torchscript"]) == 0
    out = tmp_path / "model.pt"
    assert f"wrote {out}" in capsys.readouterr().out
    loaded = torch.jit.load(str(out))
    obs = random_obs(16)[:, :3]
    with torch.no_grad():
        assert np.abs(loaded(torch.from_numpy(obs)).numpy() - Policy.load(model)(obs)).max() < 1e-5
    # Our own export is replaced by a new one (the same kind of output) ...
    out.write_bytes(out.read_bytes())
    assert main(["export", str(model), "--format", "torchscript"]) == 0
    capsys.readouterr()
    # ... but a file of another kind only with --force.
    foreign = tmp_path / "notes.pt"
    foreign.write_text("my notes")
    assert main(["export", str(model), "--format", "torchscript", "--out", str(foreign)]) == 2
    assert "not a TorchScript model written by ddpg; pass --force" in capsys.readouterr().err
    assert foreign.read_text() == "my notes"
    assert (
        main(["export", str(model), "--format", "torchscript", "--out", str(foreign), "--force"])
        == 0
    )
    assert torch.jit.load(str(foreign)) is not None
