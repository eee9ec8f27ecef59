"""TD3 (`Config.algo='td3'`): the update against a plain re-implementation, and each of its three
changes on its own: clipped double Q (the target is the smaller target critic's value), target
policy smoothing (clipped noise), delayed actor and target updates. Then the run around it:
config validation, bit-identical resume, the algorithm named in model files and checkpoints.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import (
    FAST,
    SHORT_PENDULUM,
    assert_one_line_error,
    make_agent,
    make_config,
    run_cli,
    snapshot,
)
from test_agent import clone_state, random_batch, states_equal
from test_reproducibility import (
    RESUME,
    assert_identical_runs,
    check_exact_resume,
    csv_rows,
    run_in_one_go,
)
from test_update_reference import filled_buffer

from ddpg import DDPG, Policy
from ddpg.agent import frozen, smoothed_target_action, td3_target
from ddpg.buffer import Batch
from ddpg.checkpoints import (
    list_checkpoints,
    load_model,
    read_checkpoint,
    read_config,
    write_config,
)
from ddpg.config import TD3_FIELDS, Config
from ddpg.errors import ConfigError
from ddpg.runs import save_models
from ddpg.train import Trainer

TD3 = dict(algo="td3", batch_norm=False)
NETWORKS = ("actor", "critic", "critic2", "actor_target", "critic_target", "critic2_target")


def td3_agent(**overrides):
    return make_agent(**{**TD3, **overrides})


# -- the reference: TD3 written plainly ----------------------------------------------------------
class PlainTD3:
    """TD3's update as the paper's Algorithm 1 states it, on copies of an agent's networks: two
    critics with an optimiser each, per-parameter AdamW loops, hand-written Polyak averaging. Its
    smoothing noise comes from a generator seeded as the agent's, so both see the same noise."""

    def __init__(self, agent) -> None:
        c = agent.config
        self.c = c
        self.actor = copy.deepcopy(agent.actor)
        self.q1, self.q2 = copy.deepcopy(agent.critic), copy.deepcopy(agent.critic2)
        self.actor_t = copy.deepcopy(agent.actor_target)
        self.q1_t, self.q2_t = (
            copy.deepcopy(agent.critic_target),
            copy.deepcopy(agent.critic2_target),
        )
        plain = {"weight_decay": c.weight_decay, "foreach": False, "fused": False}
        self.actor_opt = torch.optim.AdamW(self.actor.parameters(), lr=c.actor_lr, **plain)
        self.q1_opt = torch.optim.AdamW(self.q1.parameters(), lr=c.critic_lr, **plain)
        self.q2_opt = torch.optim.AdamW(self.q2.parameters(), lr=c.critic_lr, **plain)
        self.rng = torch.Generator().manual_seed(c.seed + 4)
        self.iterations = 0

    def update(self, b: Batch) -> None:
        c = self.c
        self.iterations += 1
        with torch.no_grad():
            mu = self.actor_t(b.next_obs)
            eps = torch.randn(mu.shape, generator=self.rng) * c.target_noise
            eps = torch.clamp(eps, -c.target_noise_clip, c.target_noise_clip)
            a2 = torch.clamp(mu + eps, -1.0, 1.0)
            q_next = torch.min(self.q1_t(b.next_obs, a2), self.q2_t(b.next_obs, a2))
            y = b.reward + c.gamma * (1.0 - b.terminated) * q_next
        for q, opt in ((self.q1, self.q1_opt), (self.q2, self.q2_opt)):
            loss = ((q(b.obs, b.action) - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        if self.iterations % c.policy_delay:
            return
        actor_loss = -self.q1(b.obs, self.actor(b.obs)).mean()
        self.actor_opt.zero_grad()
        actor_loss.backward()  # q1 gets gradients too; they are cleared before its next step
        self.actor_opt.step()
        with torch.no_grad():
            for target, online in (
                (self.actor_t, self.actor),
                (self.q1_t, self.q1),
                (self.q2_t, self.q2),
            ):
                for t, o in zip(target.parameters(), online.parameters(), strict=True):
                    t.copy_((1 - c.tau) * t + c.tau * o)

    def networks(self) -> dict[str, torch.nn.Module]:
        return {
            "actor": self.actor,
            "critic": self.q1,
            "critic2": self.q2,
            "actor_target": self.actor_t,
            "critic_target": self.q1_t,
            "critic2_target": self.q2_t,
        }


@pytest.mark.parametrize("policy_delay", [2, 3])
def test_td3_update_matches_the_plain_one(policy_delay):
    agent = td3_agent(weight_decay=0.01, tau=0.05, policy_delay=policy_delay)
    plain = PlainTD3(agent)
    buffer = filled_buffer(agent, "cpu")
    for index in range(30):
        batch = buffer.sample(agent.config.batch_size)
        agent.update(batch, index)
        plain.update(batch)
    compared = 0
    for name, theirs in plain.networks().items():
        ours = agent.networks()[name].state_dict()
        for key, value in theirs.state_dict().items():
            torch.testing.assert_close(ours[key], value, rtol=1e-4, atol=1e-5, msg=f"{name}.{key}")
            compared += 1
    # Six networks of three Linear layers (weight and bias), and the two actors' action maps.
    assert compared == 6 * 6 + 2 * 2
    # Everything really moved, the targets included, and the two critics differ.
    fresh = td3_agent(policy_delay=policy_delay)
    for name in ("actor", "critic", "critic2", "actor_target", "critic2_target"):
        before = fresh.networks()[name].state_dict()["net.0.weight"]
        after = agent.networks()[name].state_dict()["net.0.weight"]
        assert (after - before).abs().max() > 1e-4, name
    assert not torch.equal(agent.critic.net[0].weight, agent.critic2.net[0].weight)
    # 30 updates: the actor stepped on updates policy_delay, 2 * policy_delay, ... only.
    actor_state = agent.actor_optimizer.state_dict()["state"][0]
    assert actor_state["step"].item() == 30 // policy_delay
    assert agent.critic_optimizer.state_dict()["state"][0]["step"].item() == 30


# -- delayed actor and target updates ----------------------------------------------------------
@pytest.mark.parametrize("policy_delay", [2, 3])
def test_actor_and_targets_move_only_on_delayed_updates(policy_delay):
    agent = td3_agent(policy_delay=policy_delay)
    moved = []
    for index in range(3 * policy_delay):
        still = {name: clone_state(net) for name, net in agent.networks().items()}
        metrics = agent.update(random_batch(seed=index), index)
        changed = {
            name
            for name, net in agent.networks().items()
            if not states_equal(still[name], clone_state(net))
        }
        # Both critics learn on every update.
        assert {"critic", "critic2"} <= changed
        if changed == {"critic", "critic2"}:
            assert metrics.actor_steps.item() == 0 and metrics.actor_loss.item() == 0
        else:  # the actor and every target moved together
            assert changed == set(agent.networks()), changed
            assert metrics.actor_steps.item() == 1 and metrics.actor_loss.item() != 0
            moved.append(index)
    assert moved == [policy_delay - 1, 2 * policy_delay - 1, 3 * policy_delay - 1]


def test_ddpg_moves_actor_and_targets_on_every_update():
    agent = make_agent(batch_norm=False)
    assert agent.policy_delay == 1 and len(agent.critics) == 1
    for index in range(3):
        actor, target = clone_state(agent.actor), clone_state(agent.critic_target)
        assert agent.update(random_batch(seed=index), index).actor_steps.item() == 1
        assert not states_equal(actor, clone_state(agent.actor))
        assert not states_equal(target, clone_state(agent.critic_target))


# -- critic and actor isolated -----------------------------------------------------------------
def test_actor_loss_gives_the_critics_no_gradient():
    agent = td3_agent()
    batch = random_batch()
    with frozen(agent.critic):
        agent.actor_loss(batch).backward()
    for critic in (*agent.critics, *agent.critic_targets):
        assert all(p.grad is None for p in critic.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in agent.actor.parameters())
    # The delayed step leaves both online critics as they were.
    critics = [clone_state(c) for c in agent.critics]
    agent.delayed_step(batch)
    assert all(states_equal(s, clone_state(c)) for s, c in zip(critics, agent.critics, strict=True))


def test_critic_loss_is_both_critics_regressed_on_one_target_and_gives_the_actor_no_gradient():
    agent = td3_agent()
    batch = random_batch()
    rng_state = agent.target_noise_rng.get_state()
    target = td3_target(agent, batch)
    agent.target_noise_rng.set_state(rng_state)  # the same smoothing noise again
    loss, q = agent.critic_loss(batch)
    q2 = agent.critic2(batch.obs, batch.action)
    expected = F.mse_loss(q, target) + F.mse_loss(q2, target)
    torch.testing.assert_close(loss, expected, rtol=0, atol=0)
    torch.testing.assert_close(q, agent.critic(batch.obs, batch.action), rtol=0, atol=0)
    loss.backward()
    assert all(p.grad is None for p in agent.actor.parameters())
    for net in (agent.actor_target, *agent.critic_targets):
        assert all(p.grad is None for p in net.parameters())
    for critic in agent.critics:
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in critic.parameters())


# -- clipped double Q ----------------------------------------------------------------------------
@pytest.mark.parametrize("lower", ["critic_target", "critic2_target"])
def test_target_uses_the_smaller_target_critic(lower):
    agent = td3_agent()
    batch = random_batch(n=64)
    higher = "critic2_target" if lower == "critic_target" else "critic_target"
    with torch.no_grad():  # lift one target critic 10 above the other everywhere
        agent.networks()[higher].net[-1].bias.add_(10.0)
    state = agent.target_noise_rng.get_state()
    action = smoothed_target_action(agent, batch.next_obs)
    agent.target_noise_rng.set_state(state)
    target = td3_target(agent, batch)
    with torch.no_grad():
        q_low = agent.networks()[lower](batch.next_obs, action)
        q_high = agent.networks()[higher](batch.next_obs, action)
    assert (q_high > q_low).all()
    expected = batch.reward + agent.config.gamma * (1 - batch.terminated) * q_low
    torch.testing.assert_close(target, expected, rtol=0, atol=0)
    # Elementwise: with the two critics unshifted, each sample takes the smaller of its two.
    fresh = td3_agent(final_layer_init=None)  # outputs that vary more than the small init's
    state = fresh.target_noise_rng.get_state()
    action = smoothed_target_action(fresh, batch.next_obs)
    fresh.target_noise_rng.set_state(state)
    q1 = fresh.critic_target(batch.next_obs, action)
    q2 = fresh.critic2_target(batch.next_obs, action)
    assert (q1 < q2).any() and (q2 < q1).any()  # the minimum picks from both
    expected = batch.reward + fresh.config.gamma * (1 - batch.terminated) * torch.minimum(q1, q2)
    torch.testing.assert_close(td3_target(fresh, batch), expected.detach(), rtol=0, atol=0)


# -- target policy smoothing -------------------------------------------------------------------
def test_smoothing_noise_stays_within_its_clip():
    agent = td3_agent(target_noise=5.0, target_noise_clip=0.3)
    with torch.no_grad():  # the target actor outputs 0: the smoothed action is the noise itself
        agent.actor_target.net[-1].weight.zero_()
        agent.actor_target.net[-1].bias.zero_()
    noise = smoothed_target_action(agent, torch.randn(4000, 4))
    assert noise.shape == (4000, 3)
    assert noise.abs().max().item() == pytest.approx(0.3)  # reached, never passed
    assert (noise.abs() <= 0.3 + 1e-7).all()
    assert (noise.abs() > 0.299).float().mean() > 0.9  # std 5 against a clip of 0.3
    # At the paper's values (std 0.2, clip 0.5) the noise is nearly Gaussian, zero-mean.
    agent = td3_agent()
    with torch.no_grad():
        agent.actor_target.net[-1].weight.zero_()
        agent.actor_target.net[-1].bias.zero_()
    noise = smoothed_target_action(agent, torch.randn(20_000, 4))
    assert (noise.abs() <= 0.5 + 1e-7).all()
    assert noise.std().item() == pytest.approx(0.2, rel=0.03)
    assert abs(noise.mean().item()) < 0.01
    # Near the bounds the smoothed action is clipped back into [-1, 1].
    with torch.no_grad():
        agent.actor_target.net[-1].bias.fill_(10.0)  # tanh saturates at +1
    action = smoothed_target_action(agent, torch.randn(2000, 4))
    assert action.max().item() == 1.0 and action.min().item() >= 0.5 - 1e-6


def test_smoothing_noise_comes_from_the_agent_generator():
    a, b = td3_agent(seed=7), td3_agent(seed=7)
    obs = torch.randn(16, 4)
    assert torch.equal(smoothed_target_action(a, obs), smoothed_target_action(b, obs))
    assert not torch.equal(smoothed_target_action(a, obs), smoothed_target_action(a, obs))


# -- config ------------------------------------------------------------------------------------
def test_td3_fields_are_validated():
    assert Config().algo == "ddpg"
    with pytest.raises(ConfigError, match="algo must be one of ddpg, td3"):
        Config(algo="sac")
    for name, bad in (("policy_delay", 0), ("target_noise", -0.1), ("target_noise_clip", -1.0)):
        with pytest.raises(ConfigError, match=f"{name} must be >= 0|{name} must be >= 1"):
            Config(algo="td3", **{name: bad})
    # Under DDPG a TD3 field off its default would do nothing: refused, naming it.
    for name, value in (("policy_delay", 3), ("target_noise", 0.1), ("target_noise_clip", 0.4)):
        with pytest.raises(ConfigError, match=f"{name} only applies to algo 'td3'"):
            Config(**{name: value})
    Config(
        algo="td3", policy_delay=1, target_noise=0.0, target_noise_clip=0.0
    )  # no noise, no delay


# -- exact resume ------------------------------------------------------------------------------
def test_td3_run_killed_mid_run_resumes_bit_identical(tmp_path: Path) -> None:
    """The reproducibility tests' method (test_reproducibility.py) with TD3: stops mid-episode
    after an odd and after an even number of updates (so the first update after each resume is
    a delayed one, then a critic-only one), and a crash that loses the newest checkpoint."""
    config = make_config(RESUME, algo="td3", total_steps=1000)
    # Learning starts at step 300: at step s, s - 299 updates have been made.
    assert (634 - 299) % 2 == 1 and (835 - 299) % 2 == 0
    whole, resumed = check_exact_resume(tmp_path, config, [634, 835], [True, True])
    assert whole.state.updates == 701
    actor_state = whole.agent.actor_optimizer.state_dict()["state"][0]
    assert actor_state["step"].item() == 701 // 2  # the actor stepped on every second update
    rows = csv_rows(tmp_path / "whole" / "metrics.csv")
    assert rows[-1]["actor_loss"] != "" and rows[-1]["critic_loss"] != ""

    # Killed after the checkpoint at 700 and before the one at 934 was written: resume from 700.
    crashed = config.replace(checkpoint_every=350)
    run_in_one_go(crashed, tmp_path / "whole-350")
    run_dir = tmp_path / "crashed"
    trainer = Trainer(crashed, run_dir)
    trainer.run(max_steps=934)
    trainer.close()
    newest = list_checkpoints(run_dir / "checkpoints")[0]
    assert newest.name == "step-0000000934"
    shutil.rmtree(newest)  # as if the process died before it
    trainer = Trainer(crashed, run_dir)
    path, _ = trainer.restore()
    assert path.name == "step-0000000700" and trainer.state.in_episode.all()
    assert trainer.state.updates == 401  # odd: the next update is a delayed one
    trainer.run()
    save_models(trainer)
    trainer.close()
    assert_identical_runs(tmp_path / "whole-350", run_dir)


# -- the algorithm in files --------------------------------------------------------------------
def test_model_files_and_checkpoints_name_the_algorithm(tmp_path: Path) -> None:
    config = make_config(SHORT_PENDULUM, algo="td3", batch_norm=False, checkpoint_every=300)
    trainer = Trainer(config, tmp_path / "run")
    trainer.run()
    save_models(trainer)
    trainer.close()
    tensors, meta = load_model(tmp_path / "run" / "model_final.safetensors")
    assert meta["config"]["algo"] == "td3"
    assert {k.split(".")[0] for k in tensors} == set(NETWORKS)
    _, _, state = read_checkpoint(list_checkpoints(tmp_path / "run" / "checkpoints")[0])
    assert state["config"]["algo"] == "td3"
    # The deployed policy is the actor alone, as for DDPG.
    policy = Policy.load(tmp_path / "run" / "model_best.safetensors")
    assert policy.config.algo == "td3"
    assert policy(np.zeros(3, dtype=np.float32)).shape == (1,)
    # The API loads it whole and refuses to load it as DDPG.
    model = DDPG.load(tmp_path / "run" / "model_final.safetensors")
    assert model.config.algo == "td3"
    assert set(model.agent.networks()) == set(NETWORKS)
    with pytest.raises(ConfigError, match="algo cannot be changed"):
        DDPG.load(tmp_path / "run" / "model_final.safetensors", algo="ddpg")


def test_files_without_an_algorithm_read_as_ddpg() -> None:
    values = make_config(SHORT_PENDULUM).to_dict()
    for name in ("algo", *TD3_FIELDS):
        del values[name]  # a config.json or model file written before TD3
    assert Config.from_dict(values).algo == "ddpg"


@pytest.mark.parametrize(("made", "resumed"), [("td3", "ddpg"), ("ddpg", "td3")])
def test_a_checkpoint_resumed_as_the_other_algorithm_is_refused(
    made: str, resumed: str, tmp_path: Path
) -> None:
    rc, _, err = run_cli(
        [
            "train",
            "--env",
            "Pendulum-v1",
            *FAST,
            "--algo",
            made,
            "--run-dir",
            tmp_path / "run",
            "--checkpoint-every",
            "30",
        ]
    )
    assert rc == 0, err
    before = snapshot(tmp_path / "run")
    # On the command line: only budgets change on resume.
    rc, _, err = run_cli(["train", "--resume", tmp_path / "run", "--algo", resumed, "--quiet"])
    assert_one_line_error(rc, err, "--algo cannot be changed when resuming")
    # With config.json edited (or a Trainer of the other algorithm): the checkpoint says no.
    data = read_config(tmp_path / "run")
    data["config"]["algo"] = resumed
    write_config(tmp_path / "run", data["config"], {"preset": data.get("preset")})
    rc, _, err = run_cli(["train", "--resume", tmp_path / "run", "--total-steps", "90", "--quiet"])
    assert_one_line_error(rc, err, f"checkpoint of a {made} run", f"cannot be resumed as {resumed}")
    after = snapshot(tmp_path / "run")
    assert {k: v for k, v in after.items() if k != "config.json"} == {
        k: v for k, v in before.items() if k != "config.json"
    }


def test_td3_field_under_ddpg_on_the_command_line_is_one_line(tmp_path: Path) -> None:
    rc, _, err = run_cli(
        ["train", "--env", "Pendulum-v1", *FAST, "--policy-delay", "3", "--run-dir", tmp_path / "r"]
    )
    assert_one_line_error(rc, err, "policy_delay only applies to algo 'td3'")
    assert rc == 2 and not (tmp_path / "r").exists()
    rc, _, err = run_cli(
        ["train", "--env", "Pendulum-v1", *FAST, "--algo", "sac", "--run-dir", tmp_path / "r"]
    )
    assert_one_line_error(rc, err, "algo must be one of ddpg, td3")


# -- the rest of the library, unchanged with TD3 ------------------------------------------------
def test_vector_envs_and_update_ratio_with_td3() -> None:
    config = make_config(SHORT_PENDULUM, algo="td3", batch_norm=False, num_envs=2)
    trainer = Trainer(config.replace(updates_per_step=0.5))
    trainer.run()
    trainer.close()
    # 150 vector steps of 2 envs; the 126 from env step 50 on store 252 learning transitions, at
    # 0.5 updates each.
    assert trainer.state.step == 300 and trainer.state.learning_transitions == 252
    assert trainer.state.updates == 126
    steps = {float(s["step"]) for s in trainer.agent.actor_optimizer.state.values()}
    assert steps == {63.0}  # updates 1, 3, ..., 125 (0-based) stepped the actor


def test_export_sweep_grid_and_report_with_td3(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime", reason="the export extra is not installed")
    runs = {}
    for algo in ("ddpg", "td3"):
        runs[algo] = tmp_path / "runs" / algo
        rc, _, err = run_cli(
            ["train", "--env", "Pendulum-v1", *FAST, "--algo", algo, "--run-dir", runs[algo]]
        )
        assert rc == 0, err
    # Export: the TD3 actor alone, as for DDPG.
    model = runs["td3"] / "model_best.safetensors"
    rc, _, err = run_cli(["export", runs["td3"], "--format", "onnx", "--out", tmp_path / "p.onnx"])
    assert rc == 0, err
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    actions = ort.InferenceSession(str(tmp_path / "p.onnx")).run(None, {"obs": obs})[0]
    assert np.abs(actions - Policy.load(model)(obs)).max() <= 1e-5
    # Report: the two runs are two configurations, named by the field that differs.
    rc, out, err = run_cli(["report", tmp_path / "runs", "--out", tmp_path / "report"])
    assert rc == 0, err
    assert "algo=ddpg" in out and "algo=td3" in out
    # Sweep spec: a grid over algo gives one trial per algorithm and seed, each a valid config.
    from ddpg.presets import preset_config
    from ddpg.sweep.spec import build_spec, parse_grid, parse_seeds

    spec = build_spec(
        base=preset_config("pendulum"),
        preset="pendulum",
        fixed={},
        seeds=parse_seeds("0-1"),
        grid=parse_grid(["algo=ddpg,td3"]),
    )
    trials = spec.trials()
    assert [t.name for t in trials] == [
        "algo=ddpg-seed=0",
        "algo=ddpg-seed=1",
        "algo=td3-seed=0",
        "algo=td3-seed=1",
    ]
    assert [spec.config(t.overrides, t.seeds[0]).algo for t in trials] == ["ddpg"] * 2 + ["td3"] * 2
    with pytest.raises(ConfigError, match="policy_delay only applies to algo 'td3'"):
        build_spec(
            base=preset_config("pendulum"),
            preset="pendulum",
            fixed={},
            seeds=(0,),
            grid=parse_grid(["algo=ddpg,td3", "policy_delay=2,3"]),
        )
