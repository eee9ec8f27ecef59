"""The optimised update (fused AdamW, one foreach lerp for Polyak, index_select sampling, no mode
switches without BatchNorm) must do the same arithmetic as DDPG written plainly.

The reference below is the textbook form: per-parameter AdamW loops, the critic's parameters
switched off by hand for the actor step, and Polyak averaging as `t = (1 - tau) t + tau o` per
tensor. Both learners start from the same weights, see the same batches, and must agree to float
rounding after many updates.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from conftest import make_agent

from ddpg.buffer import Batch, ReplayBuffer

# The bias of the Linear layer right before BatchNorm (and the running mean that tracks it) is
# invisible to the loss: its true gradient is 0, so both learners feed Adam float rounding noise,
# which Adam scales up to full-size steps in directions that differ between the two. The outputs
# do not depend on it in train mode and barely in eval mode, so only the outputs are compared.
PRE_BATCH_NORM_BIAS = {"net.2.bias", "net.3.running_mean"}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


class PlainDDPG:
    """DDPG's update in its plainest form, on copies of an agent's networks."""

    def __init__(self, agent) -> None:
        c = agent.config
        self.gamma, self.tau = c.gamma, c.tau
        self.actor = copy.deepcopy(agent.actor)
        self.critic = copy.deepcopy(agent.critic)
        self.actor_target = copy.deepcopy(agent.actor_target)
        self.critic_target = copy.deepcopy(agent.critic_target)
        plain = {"weight_decay": c.weight_decay, "foreach": False, "fused": False}
        self.actor_opt = torch.optim.AdamW(self.actor.parameters(), lr=c.actor_lr, **plain)
        self.critic_opt = torch.optim.AdamW(self.critic.parameters(), lr=c.critic_lr, **plain)

    def update(self, b: Batch) -> None:
        with torch.no_grad():
            self.actor_target.eval()
            next_q = self.critic_target(b.next_obs, self.actor_target(b.next_obs))
            y = b.reward + self.gamma * (1.0 - b.terminated) * next_q
        critic_loss = F.mse_loss(self.critic(b.obs, b.action), y)
        self.critic_opt.zero_grad()
        critic_loss.backward()
        self.critic_opt.step()

        self.actor.train()
        for p in self.critic.parameters():
            p.requires_grad = False
        actor_loss = -self.critic(b.obs, self.actor(b.obs)).mean()
        self.actor_opt.zero_grad()
        actor_loss.backward()
        self.actor_opt.step()
        for p in self.critic.parameters():
            p.requires_grad = True
        self.actor.eval()

        with torch.no_grad():
            for target, online in (
                (self.actor_target, self.actor),
                (self.critic_target, self.critic),
            ):
                for (_, t), (_, o) in zip(
                    target.state_dict().items(), online.state_dict().items(), strict=True
                ):
                    if t.is_floating_point():
                        t.copy_((1 - self.tau) * t + self.tau * o)


def filled_buffer(agent, device: str, n: int = 200) -> ReplayBuffer:
    g = torch.Generator().manual_seed(5)
    buffer = ReplayBuffer(n, agent.info.obs_dim, agent.info.act_dim, seed=3, device=device)
    obs = torch.randn(n, agent.info.obs_dim, generator=g)
    buffer.add(
        obs.numpy(),
        (torch.rand(n, agent.info.act_dim, generator=g) * 2 - 1).numpy(),
        torch.randn(n, generator=g).numpy(),
        (obs + 0.1 * torch.randn(n, agent.info.obs_dim, generator=g)).numpy(),
        (torch.rand(n, generator=g) < 0.1).float().numpy(),
    )
    return buffer


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch_norm", [False, True])
def test_optimised_update_matches_the_plain_one(device, batch_norm):
    agent = make_agent(batch_norm=batch_norm, weight_decay=0.01, device=device, tau=0.05)
    plain = PlainDDPG(agent)
    buffer = filled_buffer(agent, device)
    for _ in range(50):
        batch = buffer.sample(agent.config.batch_size)
        agent.update(batch)
        plain.update(batch)
    pairs = [
        (agent.actor, plain.actor),
        (agent.critic, plain.critic),
        (agent.actor_target, plain.actor_target),
        (agent.critic_target, plain.critic_target),
    ]
    compared = 0
    for ours, theirs in pairs:
        for (name, a), (_, b) in zip(
            ours.state_dict().items(), theirs.state_dict().items(), strict=True
        ):
            if batch_norm and name in PRE_BATCH_NORM_BIAS:
                continue
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
            compared += 1
    # The learners really moved: the comparison is not between two untouched copies.
    fresh = make_agent(batch_norm=batch_norm, device=device)
    moved = agent.actor.state_dict()["net.0.weight"] - fresh.actor.state_dict()["net.0.weight"]
    assert moved.abs().max() > 1e-2
    assert compared >= 12
    # Same inputs give the same actions from both.
    obs = torch.randn(7, agent.info.obs_dim, device=device)
    with torch.no_grad():
        torch.testing.assert_close(agent.actor(obs), plain.actor(obs), rtol=1e-4, atol=1e-5)
