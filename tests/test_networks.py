"""Actor and critic: shapes (one or two hidden widths), initialisation and the mapping onto the
action bounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import HIGH, LOW
from torch import nn

from ddpg.networks import FINAL_LAYER_INIT, Actor, Critic


def make_actor(low=LOW, high=HIGH, obs_dim=4, batch_norm=False):
    torch.manual_seed(0)
    return Actor(obs_dim, low, high, hidden_size=16, batch_norm=batch_norm)


def test_actor_scale_and_bias_buffers():
    actor = make_actor()
    assert actor.action_scale.tolist() == [2.0, 1.0, 2.0]
    assert actor.action_bias.tolist() == [1.0, 1.0, -3.0]


def test_to_env_maps_the_normalised_corners_and_centre_exactly():
    actor = make_actor()
    normalised = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    env = actor.to_env(normalised)
    assert env.tolist() == [[-1.0, 0.0, -5.0], [3.0, 2.0, -1.0], [1.0, 1.0, -3.0]]


def test_to_env_is_affine_per_dimension_with_asymmetric_bounds():
    actor = make_actor()
    gen = torch.Generator().manual_seed(0)
    normalised = torch.rand(1000, 3, generator=gen) * 2 - 1
    env = actor.to_env(normalised)
    low, high = torch.from_numpy(LOW), torch.from_numpy(HIGH)
    assert torch.all(env >= low) and torch.all(env <= high)
    torch.testing.assert_close(env, low + (normalised + 1) / 2 * (high - low), rtol=0, atol=1e-6)


def test_action_scale_does_not_overflow_for_bounds_near_the_float32_limit():
    big = np.finfo(np.float32).max
    actor = make_actor(np.array([-big], np.float32), np.array([big], np.float32))
    assert torch.isfinite(actor.action_scale).all()
    env = actor.to_env(torch.tensor([[-1.0], [0.0], [1.0]]))
    assert env.flatten().tolist() == [-big, 0.0, big]


@pytest.mark.parametrize("batch_norm", [False, True])
def test_actor_output_is_within_bounds_even_for_huge_inputs(batch_norm):
    actor = make_actor(batch_norm=batch_norm)
    # Make the output layer large so that the tanh saturates in both directions.
    with torch.no_grad():
        actor.net[-1].weight.mul_(1e4)
    actor.eval()
    gen = torch.Generator().manual_seed(1)
    obs = torch.randn(512, 4, generator=gen) * 1e6
    obs[0] = float("1e30")
    obs[1] = float("-1e30")
    with torch.no_grad():
        normalised = actor(obs)
    assert torch.all(normalised.abs() <= 1.0)
    assert normalised.abs().max().item() == 1.0  # saturated: the bounds themselves are hit
    env = actor.to_env(normalised)
    low, high = torch.from_numpy(LOW), torch.from_numpy(HIGH)
    assert torch.all(env >= low) and torch.all(env <= high)


def test_to_env_of_saturated_actions_is_within_awkward_float_bounds():
    """The docs promise that every action is legal whatever the bounds. With bounds that are not
    exactly representable, scale * 1 + bias is rounded and lands one float32 step outside
    (here 0.70000005 > 0.7 and -0.10000001 < -0.1)."""
    low = np.array([-1.3, -0.1], dtype=np.float32)
    high = np.array([0.7, 0.2], dtype=np.float32)
    actor = make_actor(low, high)
    env = actor.to_env(torch.tensor([[1.0, 1.0], [-1.0, -1.0]]))
    assert torch.all(env <= torch.from_numpy(high)), env.tolist()
    assert torch.all(env >= torch.from_numpy(low)), env.tolist()


def test_actor_structure_and_output_layer_init():
    actor = Actor(5, np.full(2, -1.0), np.full(2, 1.0), hidden_size=32, batch_norm=True)
    assert isinstance(actor.net[3], nn.BatchNorm1d)
    assert isinstance(Actor(5, [-1.0], [1.0], 32, batch_norm=False).net[3], nn.Identity)
    last = actor.net[-1]
    assert last.weight.shape == (2, 32)
    assert last.weight.abs().max() <= FINAL_LAYER_INIT
    assert last.bias.abs().max() <= FINAL_LAYER_INIT
    actor.eval()
    out = actor(torch.randn(7, 5))
    assert out.shape == (7, 2)
    # Small output weights: actions start near the middle of the range.
    assert out.abs().max() < 0.1


def test_critic_shapes_and_init():
    torch.manual_seed(0)
    critic = Critic(5, 2, hidden_size=32)
    assert critic.net[0].in_features == 7
    last = critic.net[-1]
    assert last.out_features == 1
    assert last.weight.abs().max() <= FINAL_LAYER_INIT
    q = critic(torch.randn(9, 5), torch.rand(9, 2) * 2 - 1)
    assert q.shape == (9,)
    assert q.abs().max() < 0.1
    # Q depends on the action as well as the observation.
    obs = torch.randn(1, 5)
    assert critic(obs, torch.zeros(1, 2)).item() != critic(obs, torch.ones(1, 2)).item()


def test_second_hidden_width_shapes_both_networks():
    actor = Actor(5, [-1.0, -1.0], [1.0, 1.0], hidden_size=40, batch_norm=True, hidden_size_2=30)
    assert [tuple(m.weight.shape) for m in actor.net if hasattr(m, "weight")] == [
        (40, 5),
        (30, 40),
        (30,),
        (2, 30),
    ]
    critic = Critic(5, 2, hidden_size=40, hidden_size_2=30)
    assert [tuple(m.weight.shape) for m in critic.net if hasattr(m, "weight")] == [
        (40, 7),
        (30, 40),
        (1, 30),
    ]


def test_relu_and_default_init_change_modules_and_init_but_not_the_weights_names():
    """`activation` and `final_layer_init` (the TD3 paper's ReLU and PyTorch's default init)
    swap modules in place: model files keep the same tensor names and shapes."""
    torch.manual_seed(0)
    leaky = Actor(5, [-1.0, -1.0], [1.0, 1.0], 32, batch_norm=False, hidden_size_2=24)
    torch.manual_seed(0)
    paper = Actor(5, [-1.0, -1.0], [1.0, 1.0], 32, False, 24, "relu", None)
    assert [type(m) for m in leaky.net] == [nn.Linear, nn.LeakyReLU, nn.Linear, nn.Identity,
                                            nn.LeakyReLU, nn.Linear]  # fmt: skip
    assert [type(m) for m in paper.net] == [nn.Linear, nn.ReLU, nn.Linear, nn.Identity,
                                            nn.ReLU, nn.Linear]  # fmt: skip
    assert {k: v.shape for k, v in leaky.state_dict().items()} == {
        k: v.shape for k, v in paper.state_dict().items()
    }
    # Default init: uniform in +-1/sqrt(fan_in) = +-0.204 for 24 inputs, far beyond 3e-3.
    assert FINAL_LAYER_INIT < paper.net[-1].weight.abs().max() <= 24**-0.5
    torch.testing.assert_close(paper.net[0].weight, leaky.net[0].weight)  # hidden layers alike
    x = torch.tensor([[-1.0, 2.0, -3.0, 0.5, 0.0]])
    assert torch.all(paper.net[1](x) == x.clamp(min=0))
    critic = Critic(5, 2, 32, 24, "relu", None)
    assert isinstance(critic.net[1], nn.ReLU) and isinstance(critic.net[3], nn.ReLU)
    assert FINAL_LAYER_INIT < critic.net[-1].weight.abs().max() <= 24**-0.5
