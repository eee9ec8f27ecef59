"""DDPGAgent: acting within bounds, Polyak averaging, gradient isolation and target updates."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import HIGH, LOW, make_agent

from ddpg.agent import frozen, polyak_pairs, polyak_update
from ddpg.buffer import Batch
from ddpg.networks import Actor

OBS_DIM = 4


def random_batch(n: int = 8, seed: int = 0, obs_dim: int = OBS_DIM, act_dim: int = 3) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    return Batch(
        obs=torch.randn(n, obs_dim, generator=gen),
        action=torch.rand(n, act_dim, generator=gen) * 2 - 1,
        reward=torch.randn(n, generator=gen),
        next_obs=torch.randn(n, obs_dim, generator=gen),
        terminated=(torch.rand(n, generator=gen) < 0.3).float(),
    )


def clone_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def states_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- acting --------------------------------------------------------------------------------------
def test_act_shapes_and_determinism():
    agent = make_agent()
    obs = np.random.default_rng(0).normal(size=(5, OBS_DIM)).astype(np.float32)
    single = agent.act(obs[0])
    batch = agent.act(obs)
    assert single.shape == (3,) and single.dtype == np.float32
    assert batch.shape == (5, 3)
    np.testing.assert_allclose(batch[0], single, rtol=0, atol=1e-6)
    assert np.array_equal(agent.act(obs), batch)  # deterministic without exploration
    assert not np.array_equal(agent.act(obs[0], explore=True), agent.act(obs[0], explore=True))


def test_act_with_exploration_stays_within_bounds():
    agent = make_agent(noise_std=5.0)  # noise far larger than the action range: heavy clipping
    obs = np.random.default_rng(1).normal(size=(OBS_DIM,)).astype(np.float32)
    actions = np.stack([agent.act(obs, explore=True) for _ in range(2000)])
    assert np.all(actions >= LOW) and np.all(actions <= HIGH)
    # The clipping really happened: both bounds of every dimension are reached exactly.
    assert np.array_equal(actions.min(axis=0), LOW)
    assert np.array_equal(actions.max(axis=0), HIGH)
    # OU noise is clipped the same way.
    agent = make_agent(noise="ou", noise_std=5.0)
    actions = np.stack([agent.act(obs, explore=True) for _ in range(500)])
    assert np.all(actions >= LOW) and np.all(actions <= HIGH)


def test_exploring_policy_is_clipped_to_the_normalised_range():
    """The normalised action (what the replay buffer stores) is clipped to [-1, 1] too."""
    agent = make_agent(noise_std=5.0)
    obs = np.zeros(OBS_DIM, dtype=np.float32)
    actions = np.stack([agent.policy(obs, explore=True) for _ in range(500)])
    assert actions.shape == (500, 3)
    assert actions.min() == -1.0 and actions.max() == 1.0
    assert np.mean(np.abs(actions) == 1.0) > 0.5  # std 5: most samples are clipped


def test_act_with_exploration_is_within_awkward_float_bounds():
    """Same promise as above with bounds that are not exactly representable in float32: the
    clipped normalised action +-1 is mapped one float32 step outside [low, high]."""
    low = np.array([-1.3, -0.1], dtype=np.float32)
    high = np.array([0.7, 0.2], dtype=np.float32)
    agent = make_agent(low=low, high=high, noise_std=5.0)
    obs = np.zeros(OBS_DIM, dtype=np.float32)
    actions = np.stack([agent.act(obs, explore=True) for _ in range(200)])
    assert np.all(actions <= high), actions.max(axis=0).tolist()
    assert np.all(actions >= low), actions.min(axis=0).tolist()


def test_agent_to_env_maps_onto_the_bounds_as_the_actor_does():
    agent = make_agent()
    corners = np.array([[-1, -1, -1], [1, 1, 1], [0, 0, 0]], dtype=np.float32)
    assert agent.to_env(corners).tolist() == [[-1, 0, -5], [3, 2, -1], [1, 1, -3]]
    normalised = np.random.default_rng(2).uniform(-1, 1, size=(1000, 3)).astype(np.float32)
    env = agent.to_env(normalised)
    assert env.dtype == np.float32
    assert np.all(env >= LOW) and np.all(env <= HIGH)
    # Each dimension is affine in the normalised action: midpoints map to midpoints.
    np.testing.assert_allclose(env, (normalised + 1) / 2 * (HIGH - LOW) + LOW, rtol=0, atol=1e-6)
    # The loop's NumPy mapping and the actor's (what Policy and exports run) are one function.
    assert np.array_equal(agent.actor.to_env(torch.from_numpy(normalised)).numpy(), env)


def test_acting_changes_no_network_state():
    agent = make_agent()
    before = {name: clone_state(net) for name, net in agent.networks().items()}
    obs = np.random.default_rng(3).normal(size=(64, OBS_DIM)).astype(np.float32)
    for _ in range(5):
        agent.act(obs, explore=True)
        agent.act(obs[0])
    # BatchNorm running statistics included: the actor acts in eval mode.
    for name, net in agent.networks().items():
        assert states_equal(before[name], clone_state(net)), name
    assert not agent.actor.training


# -- Polyak averaging ----------------------------------------------------------------------------
def bn_actor_pair() -> tuple[Actor, Actor]:
    torch.manual_seed(0)
    target = Actor(4, LOW, HIGH, hidden_size=8, batch_norm=True)
    online = Actor(4, LOW, HIGH, hidden_size=8, batch_norm=True)
    with torch.no_grad():
        for net, shift in ((target, 1.0), (online, -2.0)):
            bn = net.net[3]
            bn.running_mean.copy_(torch.randn(8) + shift)
            bn.running_var.copy_(torch.rand(8) + 0.5 + shift**2)
            bn.num_batches_tracked.fill_(3 if shift > 0 else 11)
            for p in net.parameters():
                p.add_(torch.randn_like(p))
    return target, online


@pytest.mark.parametrize("tau", [0.0, 1.0, 0.5, 0.1])
def test_polyak_update(tau):
    target, online = bn_actor_pair()
    old_target, old_online = clone_state(target), clone_state(online)
    targets, onlines = polyak_pairs(target, online)
    # The parameters and BatchNorm's running statistics take part; the batch counter and the
    # constant action scale and bias buffers do not.
    constant = ("action_scale", "action_bias")
    float_keys = [k for k, v in old_target.items() if v.is_floating_point() and k not in constant]
    # weights and biases of the 3 linear layers, BatchNorm's weight, bias, running mean and var
    assert len(targets) == len(onlines) == len(float_keys) == 10
    assert "net.3.running_mean" in float_keys and "net.3.running_var" in float_keys
    assert not any(t is getattr(target, name) for t in targets for name in constant)
    polyak_update(targets, onlines, tau)
    new_target = clone_state(target)
    assert states_equal(clone_state(online), old_online)  # the online net never moves
    for key in float_keys:
        if tau == 0.0:
            assert torch.equal(new_target[key], old_target[key]), key
        elif tau == 1.0:
            assert torch.equal(new_target[key], old_online[key]), key
        else:
            expected = (1 - tau) * old_target[key] + tau * old_online[key]
            torch.testing.assert_close(new_target[key], expected, rtol=0, atol=1e-6)
    assert new_target["net.3.num_batches_tracked"].item() == 3
    if tau == 0.5:
        mean = (old_target["net.3.running_mean"] + old_online["net.3.running_mean"]) / 2
        torch.testing.assert_close(new_target["net.3.running_mean"], mean, rtol=0, atol=1e-6)
        var = (old_target["net.3.running_var"] + old_online["net.3.running_var"]) / 2
        torch.testing.assert_close(new_target["net.3.running_var"], var, rtol=0, atol=1e-6)


# -- targets -------------------------------------------------------------------------------------
def test_targets_start_equal_to_online_nets_and_are_independent_copies():
    agent = make_agent()
    assert states_equal(clone_state(agent.actor), clone_state(agent.actor_target))
    assert states_equal(clone_state(agent.critic), clone_state(agent.critic_target))
    for target in (agent.actor_target, agent.critic_target):
        assert not target.training
        assert all(not p.requires_grad for p in target.parameters())
    with torch.no_grad():
        next(agent.actor.parameters()).add_(1.0)
        next(agent.critic.parameters()).add_(1.0)
    assert not states_equal(clone_state(agent.actor), clone_state(agent.actor_target))
    assert not states_equal(clone_state(agent.critic), clone_state(agent.critic_target))


@pytest.mark.parametrize("batch_norm", [True, False])
def test_targets_move_only_by_polyak(batch_norm):
    tau = 0.3
    agent = make_agent(tau=tau, batch_norm=batch_norm)
    for step in range(3):
        old = {
            name: clone_state(agent.networks()[name]) for name in ("actor_target", "critic_target")
        }
        agent.update(random_batch(seed=step))
        for target_name, online_name in (("actor_target", "actor"), ("critic_target", "critic")):
            new_target = clone_state(agent.networks()[target_name])
            online = clone_state(agent.networks()[online_name])
            for key, value in new_target.items():
                if value.is_floating_point() and key not in ("action_scale", "action_bias"):
                    expected = (1 - tau) * old[target_name][key] + tau * online[key]
                    torch.testing.assert_close(value, expected, rtol=0, atol=1e-6)
                else:  # BatchNorm's batch counter and the action bounds are not averaged
                    assert torch.equal(value, old[target_name][key])
    if batch_norm:
        # The actor's train-mode step updated its running stats, and the target followed.
        assert agent.actor.net[3].num_batches_tracked.item() == 3
        assert not torch.equal(agent.actor_target.net[3].running_mean, torch.zeros(16))


def test_update_steps_each_network_in_its_own_phase():
    agent = make_agent()
    snapshots = {}
    critic_step, actor_step = agent.critic_optimizer.step, agent.actor_optimizer.step

    def wrapped_critic_step(*args, **kwargs):
        snapshots["before_critic_step"] = (clone_state(agent.actor), clone_state(agent.critic))
        result = critic_step(*args, **kwargs)
        snapshots["after_critic_step"] = (clone_state(agent.actor), clone_state(agent.critic))
        return result

    def wrapped_actor_step(*args, **kwargs):
        result = actor_step(*args, **kwargs)
        snapshots["after_actor_step"] = (clone_state(agent.actor), clone_state(agent.critic))
        return result

    agent.critic_optimizer.step = wrapped_critic_step
    agent.actor_optimizer.step = wrapped_actor_step
    actor0, critic0 = clone_state(agent.actor), clone_state(agent.critic)
    agent.update(random_batch())

    actor1, critic1 = snapshots["after_critic_step"]
    actor2, critic2 = snapshots["after_actor_step"]
    # The critic step moved every critic parameter and left the actor alone.
    assert states_equal(actor1, actor0)
    for key in critic0:
        assert not torch.equal(critic1[key], critic0[key]), key
    # The actor step moved every actor parameter and left the critic alone.
    assert states_equal(critic2, critic1)
    for name, _ in agent.actor.named_parameters():
        assert not torch.equal(actor2[name], actor1[name]), name
    assert states_equal(critic2, clone_state(agent.critic))


def test_gradients_flow_only_into_the_network_being_trained():
    """Hooks on every parameter record each gradient computed for it. The critic must receive
    gradients only before its optimiser step (from the critic loss), the actor only after it
    (from the actor loss)."""
    agent = make_agent()
    events: list[str] = []
    for net_name in ("actor", "critic"):
        for param_name, p in getattr(agent, net_name).named_parameters():
            p.register_hook(lambda grad, n=f"{net_name}.{param_name}": events.append(n))
    critic_step = agent.critic_optimizer.step

    def marked_step(*args, **kwargs):
        events.append("CRITIC_STEP")
        return critic_step(*args, **kwargs)

    agent.critic_optimizer.step = marked_step
    batch = random_batch()
    critic_copy = copy.deepcopy(agent.critic)
    with torch.no_grad():
        next_q = agent.critic_target(batch.next_obs, agent.actor_target(batch.next_obs))
        target_q = batch.reward + agent.config.gamma * (1 - batch.terminated) * next_q
    agent.update(batch)

    split = events.index("CRITIC_STEP")
    before, after = events[:split], events[split + 1 :]
    critic_names = {f"critic.{n}" for n, _ in agent.critic.named_parameters()}
    actor_names = {f"actor.{n}" for n, _ in agent.actor.named_parameters()}
    assert sorted(before) == sorted(critic_names)  # one gradient each, critic only
    assert sorted(after) == sorted(actor_names)  # one gradient each, actor only
    # After the update the critic's .grad holds exactly the critic loss gradient (nothing was
    # added by the actor loss): recompute it on a copy of the pre-update critic and compare.
    torch.nn.functional.mse_loss(critic_copy(batch.obs, batch.action), target_q).backward()
    for (name, expected), actual in zip(
        critic_copy.named_parameters(), agent.critic.parameters(), strict=True
    ):
        assert torch.equal(actual.grad, expected.grad), name


def test_frozen_critic_gets_no_gradient_from_the_actor_loss():
    agent = make_agent()
    batch = random_batch()
    agent.actor.train()
    with frozen(agent.critic):
        assert all(not p.requires_grad for p in agent.critic.parameters())
        loss = -agent.critic(batch.obs, agent.actor(batch.obs)).mean()
        loss.backward()
    assert all(p.grad is None for p in agent.critic.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in agent.actor.parameters())
    assert all(p.requires_grad for p in agent.critic.parameters())  # restored on exit
    # Restored even when the block raises.
    with pytest.raises(RuntimeError), frozen(agent.critic):
        raise RuntimeError("boom")
    assert all(p.requires_grad for p in agent.critic.parameters())


def test_critic_loss_gives_no_gradient_to_the_actor():
    agent = make_agent()
    batch = random_batch()
    with torch.no_grad():
        next_q = agent.critic_target(batch.next_obs, agent.actor_target(batch.next_obs))
        target = batch.reward + agent.config.gamma * (1 - batch.terminated) * next_q
    loss, q = agent.critic_loss(batch)
    assert torch.equal(loss, torch.nn.functional.mse_loss(q, target))
    loss.backward()
    assert all(p.grad is None for p in agent.actor.parameters())
    assert all(p.grad is not None for p in agent.critic.parameters())
    for net in (agent.actor_target, agent.critic_target):
        assert all(p.grad is None for p in net.parameters())


def test_update_metrics_are_detached_finite_scalars():
    agent = make_agent()
    metrics = agent.update(random_batch())
    for value in metrics:
        assert value.shape == () and not value.requires_grad and torch.isfinite(value)
    assert metrics.critic_loss.item() > 0
    assert agent.non_finite_weights() is None
    with torch.no_grad():
        agent.critic.net[0].weight[0, 0] = float("nan")
    assert agent.non_finite_weights() == "critic.net.0.weight"


def test_snapshot_best_is_a_copy_not_a_live_reference():
    agent = make_agent()
    # Before any snapshot the current actor stands in for the best one.
    assert agent.best_actor is None
    assert states_equal(agent.best_or_current_actor(), clone_state(agent.actor))
    agent.snapshot_best()
    assert agent.best_or_current_actor() is agent.best_actor
    best = {k: v.clone() for k, v in agent.best_actor.items()}
    for seed in range(3):
        agent.update(random_batch(seed=seed))
    assert states_equal(agent.best_actor, best)
    assert not states_equal(clone_state(agent.actor), best)
