"""The CUDA-graph update (`ddpg.cudagraph.GraphedUpdate`) must be `agent.update` made faster, not a
different learner: from the same start and on the same indices, eager and graphed learners must
agree to float rounding, every call (warm-up ones included) must be one real update, and a restored
optimiser state must be picked up by a new capture.

All but the first test need a GPU and are skipped without one.
"""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import make_agent
from test_update_reference import PRE_BATCH_NORM_BIAS, filled_buffer

from ddpg.cudagraph import GraphedUpdate
from ddpg.errors import ConfigError

requires_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device"
)


def test_a_cpu_agent_is_refused():
    agent = make_agent(batch_norm=False)
    with pytest.raises(ConfigError, match="CUDA device"):
        GraphedUpdate(agent, filled_buffer(agent, "cpu"), agent.config.batch_size)


def test_warmup_must_be_positive():
    agent = make_agent(batch_norm=False)
    with pytest.raises(ValueError, match="warmup"):
        GraphedUpdate(agent, filled_buffer(agent, "cpu"), agent.config.batch_size, warmup=0)


def pair(batch_norm: bool):
    """Two learners with the same weights, and two buffers with the same contents and sampler."""
    kwargs = dict(batch_norm=batch_norm, weight_decay=0.01, device="cuda", tau=0.05)
    eager, graphed = make_agent(**kwargs), make_agent(**kwargs)
    return eager, filled_buffer(eager, "cuda"), graphed, filled_buffer(graphed, "cuda")


def adam_steps(agent) -> set[float]:
    """The step counts of every optimiser's moments: how many updates moved each network."""
    return {float(s["step"]) for o in agent.optimizers().values() for s in o.state.values()}


def assert_same_learners(eager, graphed, batch_norm: bool) -> None:
    compared = 0
    for name, net in eager.networks().items():
        theirs = graphed.networks()[name].state_dict()
        for key, value in net.state_dict().items():
            if batch_norm and key in PRE_BATCH_NORM_BIAS:
                continue
            torch.testing.assert_close(theirs[key], value, rtol=1e-4, atol=1e-5, msg=key)
            compared += 1
    assert compared >= 24


@requires_cuda
@pytest.mark.parametrize("batch_norm", [False, True])
def test_graphed_update_matches_the_eager_one(batch_norm):
    eager, eager_buffer, graphed_agent, graphed_buffer = pair(batch_norm)
    batch_size = eager.config.batch_size
    step = GraphedUpdate(graphed_agent, graphed_buffer, batch_size, warmup=3)
    eager_metrics, graphed_metrics = [], []
    for i in range(50):
        eager_metrics.append(torch.stack(eager.update(eager_buffer.sample(batch_size))))
        graphed_metrics.append(step())
        # Three eager warm-up calls, then the fourth captures and replays.
        assert step.captured == (i >= 3)
    assert step.captures == 1
    assert adam_steps(eager) == adam_steps(graphed_agent) == {50.0}
    # Both drew their indices from their generators in the same way.
    assert torch.equal(eager_buffer.generator.get_state(), graphed_buffer.generator.get_state())
    # Each call's metrics are its own: later replays did not overwrite them.
    torch.testing.assert_close(
        torch.stack([torch.stack(m) for m in graphed_metrics]),
        torch.stack(eager_metrics),
        rtol=1e-4,
        atol=1e-5,
    )
    assert_same_learners(eager, graphed_agent, batch_norm)
    fresh = make_agent(batch_norm=batch_norm, device="cuda")
    moved = (
        graphed_agent.actor.state_dict()["net.0.weight"] - fresh.actor.state_dict()["net.0.weight"]
    )
    assert moved.abs().max() > 1e-2
    # The actor is left in eval mode for acting, as agent.update leaves it.
    assert not graphed_agent.actor.training


@requires_cuda
def test_restored_optimiser_state_is_recaptured():
    eager, eager_buffer, graphed_agent, graphed_buffer = pair(batch_norm=False)
    batch_size = eager.config.batch_size
    step = GraphedUpdate(graphed_agent, graphed_buffer, batch_size, warmup=2)

    def snapshot(agent):
        return copy.deepcopy(
            (
                {k: v.state_dict() for k, v in agent.networks().items()},
                {k: v.state_dict() for k, v in agent.optimizers().items()},
            )
        )

    def restore(agent, saved):
        networks, optimizers = copy.deepcopy(saved)  # a copy each: load_state_dict keeps tensors
        for name, net in agent.networks().items():
            net.load_state_dict(networks[name])
        for name, optimizer in agent.optimizers().items():
            optimizer.load_state_dict(optimizers[name])

    for i in range(20):
        if i == 8:
            saved_eager, saved_graphed = snapshot(eager), snapshot(graphed_agent)
        eager.update(eager_buffer.sample(batch_size))
        step()
    assert step.captures == 1
    # Going back to an earlier state replaces the optimisers' state tensors: a graph still
    # pointing at the old ones would move the weights differently from the eager learner.
    restore(eager, saved_eager)
    restore(graphed_agent, saved_graphed)
    for _ in range(10):
        eager.update(eager_buffer.sample(batch_size))
        step()
    assert step.captures == 2
    assert adam_steps(eager) == adam_steps(graphed_agent) == {18.0}
    assert_same_learners(eager, graphed_agent, batch_norm=False)
    # Adam's step counters went on from the restored value.
    for name, optimizer in graphed_agent.optimizers().items():
        steps = {float(s["step"]) for s in optimizer.state.values()}
        assert steps == {18.0}, name


@requires_cuda
def test_invalidate_recaptures_and_keeps_counting():
    eager, eager_buffer, graphed_agent, graphed_buffer = pair(batch_norm=True)
    batch_size = eager.config.batch_size
    step = GraphedUpdate(graphed_agent, graphed_buffer, batch_size, warmup=1)
    for i in range(12):
        if i == 6:
            step.invalidate()
            assert not step.captured
        eager.update(eager_buffer.sample(batch_size))
        step()
    assert step.captures == 2
    assert adam_steps(eager) == adam_steps(graphed_agent) == {12.0}
    assert_same_learners(eager, graphed_agent, batch_norm=True)


@requires_cuda
@pytest.mark.parametrize("policy_delay", [2, 5])
def test_graphed_td3_update_matches_the_eager_one(policy_delay):
    """TD3's delayed update has two variants (critic step alone, full update): each is warmed up
    and captured as a graph of its own, and the pair replays what the eager update does, the
    target-smoothing noise included (the agent's generator is registered with both graphs)."""
    kwargs = dict(algo="td3", policy_delay=policy_delay, batch_norm=False, device="cuda", tau=0.05)
    eager, graphed_agent = make_agent(**kwargs), make_agent(**kwargs)
    eager_buffer, graphed_buffer = (
        filled_buffer(eager, "cuda"),
        filled_buffer(graphed_agent, "cuda"),
    )
    batch_size = eager.config.batch_size
    step = GraphedUpdate(graphed_agent, graphed_buffer, batch_size, warmup=2)
    eager_metrics, graphed_metrics = [], []
    for index in range(40):
        eager_metrics.append(torch.stack(eager.update(eager_buffer.sample(batch_size), index)))
        graphed_metrics.append(torch.stack(step(index)))
    assert step.captured and step.captures == 2
    torch.testing.assert_close(
        torch.stack(graphed_metrics), torch.stack(eager_metrics), rtol=1e-4, atol=1e-5
    )
    assert [m[3].item() for m in graphed_metrics] == [
        float(graphed_agent.actor_due(i)) for i in range(40)
    ]
    assert_same_learners(eager, graphed_agent, batch_norm=False)
    assert torch.equal(
        eager.target_noise_rng.get_state(), graphed_agent.target_noise_rng.get_state()
    )
    actor_steps = {float(s["step"]) for s in graphed_agent.actor_optimizer.state.values()}
    assert actor_steps == {float(40 // policy_delay)}
