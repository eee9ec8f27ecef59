"""Goal-conditioned tasks: Dict observations, observation normalisation and HER.

The relabelling tests store transitions whose achieved goal encodes where it came from
(environment, episode, step), so each sampled goal can be traced to its source transition.
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, make_config, run_cli, snapshot
from envs_for_tests import PointGoalEnv
from test_reproducibility import check_exact_resume, csv_rows

from ddpg.config import Config
from ddpg.envs import check_env, make_env
from ddpg.errors import ConfigError
from ddpg.her import HerReplayBuffer
from ddpg.normalizer import MIN_STD, ObsNormalizer
from ddpg.observations import ObsLayout
from ddpg.policy import Policy
from ddpg.runs import final_evaluation
from ddpg.train import Trainer

# Flat layout of the traced buffer: observation (1), desired goal (3), achieved goal (3).
OBS, DESIRED, ACHIEVED = slice(0, 1), slice(1, 4), slice(4, 7)
TRACE_LAYOUT = ObsLayout(("observation", "desired_goal", "achieved_goal"), (1, 3, 3))


def achieved_goal_reward(achieved: np.ndarray, goal: np.ndarray, info: object) -> np.ndarray:
    """A reward that identifies its arguments: 1000 * achieved episode id + goal step."""
    return (1000.0 * achieved[:, 1] + goal[:, 2]).astype(np.float32)


def traced_buffer(
    episode_lengths: list[list[int]],
    strategy: str = "future",
    capacity: int = 10_000,
    k: int = 4,
    compute_terminated=None,
    finish_last: bool = True,
) -> HerReplayBuffer:
    """A buffer of `num_envs = len(episode_lengths)` environments playing episodes of the given
    lengths in lockstep. The achieved goal of transition t of episode e of env i is
    (i, e, t + 1) (the goal reached after that step); the desired goal is (-1, e, -1)."""
    num_envs = len(episode_lengths)
    buffer = HerReplayBuffer(
        capacity,
        7,
        2,
        num_envs,
        (DESIRED, ACHIEVED),
        achieved_goal_reward,
        compute_terminated,
        strategy,
        k,
        seed=5,
    )
    queues = [
        [(e, t, n) for e, n in enumerate(lengths) for t in range(n)] for lengths in episode_lengths
    ]
    steps = max(len(q) for q in queues)
    for step in range(steps):
        obs = np.zeros((num_envs, 7), dtype=np.float32)
        next_obs = np.zeros((num_envs, 7), dtype=np.float32)
        ends = []
        for i, queue in enumerate(queues):
            e, t, n = queue[step] if step < len(queue) else (99, step, 10**6)
            for row, achieved_t in ((obs, t), (next_obs, t + 1)):
                row[i, DESIRED] = (-1, e, -1)
                row[i, ACHIEVED] = (i, e, achieved_t)
                row[i, OBS] = t
            if t == n - 1 and (finish_last or step < len(queue) - 1):
                ends.append(i)
        buffer.add(
            obs, np.zeros((num_envs, 2)), np.full(num_envs, -7.0), next_obs, np.zeros(num_envs)
        )
        for i in ends:
            buffer.end_episode(i)
    return buffer


def decode(batch_obs: torch.Tensor) -> dict[str, np.ndarray]:
    o = batch_obs.numpy()
    return {"env": o[:, 4], "episode": o[:, 5], "t": o[:, 0], "goal": o[:, DESIRED]}


@pytest.mark.parametrize("strategy", ["future", "final", "episode"])
def test_relabelled_goals_come_from_the_same_episode(strategy: str) -> None:
    lengths = [[5, 9, 3, 7], [4, 4, 8, 8]]  # two envs, episodes of different lengths
    buffer = traced_buffer(lengths, strategy)
    batch = buffer.sample(4096)
    obs, next_obs = decode(batch.obs), decode(batch.next_obs)
    goal = obs["goal"]
    relabelled = goal[:, 0] != -1
    # The share k/(k+1) = 0.8 is relabelled (4096 draws: 3 standard deviations are 0.019).
    assert abs(relabelled.mean() - 0.8) < 0.02
    # The desired goal of the observation and of the next observation are the same goal.
    assert np.array_equal(batch.obs[:, DESIRED], batch.next_obs[:, DESIRED])
    # A kept goal is the original one, with the reward the environment gave.
    assert np.all(
        goal[~relabelled]
        == np.stack(
            [
                -1 * np.ones((~relabelled).sum()),
                obs["episode"][~relabelled],
                -1 * np.ones((~relabelled).sum()),
            ],
            1,
        )
    )
    assert np.all(batch.reward.numpy()[~relabelled] == -7.0)
    # A new goal is an achieved goal of the same environment's same episode.
    assert np.array_equal(goal[relabelled, 0], obs["env"][relabelled])
    assert np.array_equal(goal[relabelled, 1], obs["episode"][relabelled])
    source_t = goal[relabelled, 2] - 1  # the step whose next observation achieved it
    t = obs["t"][relabelled]
    episode_length = np.array(
        [
            lengths[int(i)][int(e)]
            for i, e in zip(obs["env"][relabelled], obs["episode"][relabelled], strict=True)
        ]
    )
    assert np.all(source_t < episode_length) and np.all(source_t >= 0)
    if strategy == "future":
        assert np.all(source_t >= t)
        assert np.any(source_t > t) and np.any(source_t == t)
    elif strategy == "final":
        assert np.array_equal(source_t, episode_length - 1)
    else:
        assert np.any(source_t < t) and np.any(source_t > t)
    # Every relabelled reward is compute_reward(achieved goal of s', new goal).
    expected = achieved_goal_reward(batch.next_obs.numpy()[:, ACHIEVED], goal, None)
    assert np.array_equal(batch.reward.numpy()[relabelled], expected[relabelled])
    assert np.array_equal(next_obs["t"], obs["t"])


def test_her_k_sets_the_relabelled_share() -> None:
    buffer = traced_buffer([[6, 6, 6]], k=1)
    goal = decode(buffer.sample(4096).obs)["goal"]
    assert abs((goal[:, 0] != -1).mean() - 0.5) < 0.025


def test_unfinished_episodes_are_not_sampled() -> None:
    buffer = traced_buffer([[5, 6]], finish_last=False)
    assert len(buffer) == 5  # the 6 transitions of the open episode are not sampleable
    episodes = decode(buffer.sample(2000).obs)["episode"]
    assert set(episodes.tolist()) == {0.0}
    with pytest.raises(ValueError, match="no finished episode"):
        traced_buffer([[5]], finish_last=False).sample(4)


def test_a_wrapped_buffer_drops_overwritten_episodes_whole() -> None:
    # 12 rows: episodes of 5 fill rows 0-4, 5-9, then 10-11 and 0-2 (wrapping): the third
    # overwrites rows 0-2 of the first, which is dropped whole; then 3-7 drop the second.
    buffer = traced_buffer([[5, 5, 5, 5]], capacity=12)
    assert len(buffer) == 10  # episodes 2 and 3; episodes 0 and 1 are gone
    batch = buffer.sample(4000)
    obs = decode(batch.obs)
    assert set(obs["episode"].tolist()) == {2.0, 3.0}
    relabelled = obs["goal"][:, 0] != -1
    assert np.array_equal(obs["goal"][relabelled, 1], obs["episode"][relabelled])
    source_t = obs["goal"][relabelled, 2] - 1
    assert np.all(source_t >= obs["t"][relabelled]) and np.all(source_t < 5)


def test_terminated_is_recomputed_where_the_env_defines_it() -> None:
    def reached_step_3(achieved: np.ndarray, goal: np.ndarray, info: object) -> np.ndarray:
        return goal[:, 2] == 3

    batch = traced_buffer([[6, 6, 6]], compute_terminated=reached_step_3).sample(3000)
    goal = decode(batch.obs)["goal"]
    relabelled = goal[:, 0] != -1
    terminated = batch.terminated.numpy()
    assert np.array_equal(terminated[relabelled], (goal[relabelled, 2] == 3).astype(np.float32))
    assert np.all(terminated[~relabelled] == 0.0) and terminated.sum() > 0


def test_state_dict_round_trip_gives_the_same_batches() -> None:
    buffer = traced_buffer([[5, 9, 3], [4, 4, 9]])
    state = {k: v.copy() for k, v in buffer.state_dict().items()}
    first = buffer.sample(64)
    copy = traced_buffer([[2]])  # another buffer, other contents
    copy = HerReplayBuffer(10_000, 7, 2, 2, (DESIRED, ACHIEVED), achieved_goal_reward, None)
    copy.load_state_dict(state)
    again = copy.sample(64)
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a, b)
    assert len(copy) == len(buffer)


# -- the normaliser -------------------------------------------------------------------------------
def test_normaliser_statistics_pool_the_two_goals() -> None:
    rng = np.random.default_rng(0)
    norm = ObsNormalizer(TRACE_LAYOUT, clip=5.0)
    data = [rng.normal(3.0, 2.0, (n, 7)) for n in (5, 17, 1)]
    data[0][:, OBS] = 4.0  # a constant column: its std is the floor
    for chunk in data:
        norm.update(chunk)
    x = np.concatenate(data)
    goals = np.concatenate([x[:, DESIRED], x[:, ACHIEVED]])
    assert norm.count.item() == 23
    np.testing.assert_allclose(norm.mean[DESIRED].numpy(), goals.mean(0), rtol=1e-5)
    np.testing.assert_allclose(norm.mean[ACHIEVED].numpy(), goals.mean(0), rtol=1e-5)
    np.testing.assert_allclose(norm.std[DESIRED].numpy(), goals.std(0), rtol=1e-4)
    np.testing.assert_allclose(norm.mean[OBS].numpy(), x[:, OBS].mean(0), rtol=1e-5)
    obs_std = max(x[:, OBS].std(), MIN_STD)
    np.testing.assert_allclose(norm.std[OBS].numpy(), [obs_std], rtol=1e-4)
    out = norm(torch.tensor([[1e6] * 7, [-1e6] * 7], dtype=torch.float32))
    assert torch.equal(out, torch.tensor([[5.0] * 7, [-5.0] * 7]))


def test_normaliser_without_goals_is_per_dimension() -> None:
    norm = ObsNormalizer(ObsLayout.flat(2), clip=10.0)
    x = np.array([[0.0, 1.0], [2.0, 1.5], [4.0, 2.0]])
    norm.update(x)
    np.testing.assert_allclose(norm.mean.numpy(), x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(norm.std.numpy(), x.std(0), rtol=1e-6)


# -- Dict observations ----------------------------------------------------------------------------
def test_dict_observations_are_concatenated_in_the_documented_order() -> None:
    env = make_env("ddpgtest/PointGoal-v0")
    info = check_env(env)
    assert info.layout == ObsLayout(("observation", "desired_goal", "achieved_goal"), (3, 3, 3))
    space = gym.spaces.Dict(
        {
            "z": gym.spaces.Box(-1, 1, (1,)),
            "achieved_goal": gym.spaces.Box(-1, 1, (2,)),
            "a": gym.spaces.Box(-1, 1, (4,)),
            "observation": gym.spaces.Box(-1, 1, (3,)),
        }
    )
    layout = ObsLayout.of(space, "x")
    assert layout.keys == ("observation", "achieved_goal", "a", "z") and layout.dim == 10
    obs, _ = env.reset(seed=1)
    raw = env.unwrapped._obs()
    assert np.array_equal(
        obs, np.concatenate([raw["observation"], raw["desired_goal"], raw["achieved_goal"]])
    )


def test_policy_takes_dicts_batches_of_them_and_lists_of_them() -> None:
    config = make_config(env_id="ddpgtest/PointGoal-v0", total_steps=300, learning_starts=100)
    trainer = Trainer(config)
    trainer.run()
    policy = trainer.policy
    raw = gym.make("ddpgtest/PointGoal-v0")
    obs, _ = raw.reset(seed=2)
    flat = np.concatenate([obs["observation"], obs["desired_goal"], obs["achieved_goal"]])
    single = policy(obs)
    assert single.shape == (3,) and np.array_equal(single, policy(flat))
    batch = {k: np.stack([v, v * 0.5]) for k, v in obs.items()}
    two = policy(batch)
    assert two.shape == (2, 3)
    np.testing.assert_allclose(two[0], single, atol=1e-6)  # a batch of 2 rounds otherwise
    listed = policy([obs, {k: v * 0.5 for k, v in obs.items()}])
    assert np.array_equal(listed, two)
    with pytest.raises(ValueError, match="lacks 'desired_goal'"):
        policy({"observation": obs["observation"], "achieved_goal": obs["achieved_goal"]})
    with pytest.raises(ValueError, match="unknown key 'extra'"):
        policy(obs | {"extra": np.zeros(1)})
    with pytest.raises(ValueError, match=r"'desired_goal' must have shape \(3,\)"):
        policy(obs | {"desired_goal": np.zeros(4)})
    with pytest.raises(ValueError, match="disagree in batch size"):
        policy(obs | {"desired_goal": np.zeros((2, 3))})
    trainer.close()


# -- learning -------------------------------------------------------------------------------------
POINT_GOAL = dict(
    env_id="ddpgtest/PointGoal-v0",
    total_steps=4000,
    learning_starts=1000,
    batch_size=128,
    hidden_size=64,
    gamma=0.95,
    tau=0.05,
    noise_std=0.2,
    updates_per_step=0.5,
    eval_every=1000,
    eval_episodes_during=10,
    eval_episodes=20,
    checkpoint_every=0,
)


def final_success(config: Config) -> float:
    trainer = Trainer(config)
    trainer.run()
    summary = final_evaluation(trainer)
    trainer.close()
    return summary["final"]["success_rate"]


@pytest.mark.slow
def test_her_learns_the_sparse_goal_task_that_plain_replay_does_not() -> None:
    # 4,000 steps (80 episodes): HER reaches every goal; uniform replay, which sees the sparse
    # reward only when a random goal happens to be hit, reaches none.
    assert final_success(make_config(POINT_GOAL, her=True)) >= 0.9
    assert final_success(make_config(POINT_GOAL, her=False)) <= 0.2


@pytest.mark.slow
def test_her_with_normalised_observations_learns() -> None:
    assert final_success(make_config(POINT_GOAL, her=True, normalize_obs=True)) >= 0.9


# -- exact resume ---------------------------------------------------------------------------------
def test_resume_with_her_and_normalisation_is_bit_identical(tmp_path: Path) -> None:
    config = make_config(
        POINT_GOAL,
        her=True,
        normalize_obs=True,
        total_steps=920,
        learning_starts=200,
        buffer_size=400,  # wraps: episodes are dropped on the way
        eval_every=300,
        eval_episodes_during=2,
        eval_episodes=2,
        hidden_size=16,
        batch_size=16,
    )
    whole, resumed = check_exact_resume(tmp_path, config, [225, 610], [True, True])
    # At step 920 the open episode (20 steps, rows 100-119) has dropped the one in 100-149.
    assert whole.buffer.transitions.size == 400 and len(whole.buffer) == 350
    rows = csv_rows(tmp_path / "whole" / "evaluations.csv")
    assert [r["success_rate"] != "" for r in rows] == [True] * 3


def test_resume_with_her_on_vector_envs_is_bit_identical(tmp_path: Path) -> None:
    config = make_config(
        POINT_GOAL,
        her=True,
        num_envs=3,
        total_steps=600,
        learning_starts=150,
        buffer_size=301,  # 100 rows of 3 environments
        eval_every=0,
        hidden_size=16,
        batch_size=16,
    )
    whole, _ = check_exact_resume(tmp_path, config, [204, 480], [True, True])
    assert whole.buffer.rows == 100


# -- round trip: loop, Policy, ONNX ---------------------------------------------------------------
def test_normalised_policy_acts_alike_in_the_loop_the_model_file_and_onnx(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    import onnxruntime

    run = tmp_path / "run"
    rc, out, err = run_cli(
        [
            "train",
            "--env",
            "ddpgtest/PointGoal-v0",
            "--her",
            "true",
            "--normalize-obs",
            "true",
            "--total-steps",
            "400",
            "--learning-starts",
            "100",
            "--hidden-size",
            "16",
            "--eval-every",
            "200",
            "--eval-episodes",
            "3",
            "--run-dir",
            run,
        ]
    )
    assert rc == 0, err
    assert "success rate" in out
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert 0.0 <= evaluation["final"]["success_rate"] <= 1.0
    model = Policy.load(run / "model_final.safetensors")
    assert model.net.normalizer.count.item() == 400  # every collected observation
    rc, _, err = run_cli(
        ["export", run, "--model", "final", "--format", "onnx", "--out", tmp_path / "p.onnx"]
    )
    assert rc == 0, err
    session = onnxruntime.InferenceSession(str(tmp_path / "p.onnx"))
    assert [i.name for i in session.get_inputs()] == [
        "observation",
        "desired_goal",
        "achieved_goal",
    ]
    env = gym.make("ddpgtest/PointGoal-v0")
    obs, _ = env.reset(seed=4)
    batch = {k: np.stack([v, -v]).astype(np.float32) for k, v in obs.items()}
    from_file = model(batch)
    onnx_action = session.run(None, batch)[0]
    np.testing.assert_allclose(onnx_action, from_file, atol=1e-6)
    # The normaliser is not the identity here, so a graph without it would differ.
    assert not torch.allclose(model.net.normalizer.std, torch.ones(9))


def test_loop_policy_and_saved_model_match(tmp_path: Path) -> None:
    from ddpg.runs import save_models

    config = make_config(
        POINT_GOAL,
        her=True,
        normalize_obs=True,
        total_steps=300,
        learning_starts=100,
        hidden_size=16,
        eval_every=0,
    )
    trainer = Trainer(config, tmp_path / "run")
    trainer.run()
    save_models(trainer)
    obs = np.random.default_rng(0).uniform(-1, 1, (5, 9)).astype(np.float32)
    live = trainer.policy(obs)
    agent_action = trainer.agent.act(obs)
    trainer.close()
    loaded = Policy.load(tmp_path / "run" / "model_final.safetensors")
    assert np.array_equal(loaded(obs), live)
    assert np.array_equal(agent_action, live)


# -- bad inputs -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--env", "Pendulum-v1", "--her", "true"], ("--her needs a goal-conditioned", "Box")),
        (["--env", "ddpgtest/DictObs-v0", "--her", "true"], ("no desired_goal", "position")),
        (["--env", "ddpgtest/GoalNoReward-v0", "--her", "true"], ("compute_reward",)),
        (["--env", "ddpgtest/NestedDictObs-v0"], ("Dict observation part 'inner'",)),
        (["--env", "ddpgtest/DiscreteDictObs-v0"], ("Discrete observation part 'inner'",)),
        (
            [
                "--env",
                "ddpgtest/PointGoal-v0",
                "--her",
                "true",
                "--device",
                "cuda",
                "--update-mode",
                "cudagraph",
            ],
            ("her needs update_mode 'eager'",),
        ),
        (
            ["--env", "ddpgtest/PointGoal-v0", "--her-strategy", "past"],
            ("her_strategy must be one of",),
        ),
        (["--env", "ddpgtest/PointGoal-v0", "--her-k", "0"], ("her_k must be >= 1",)),
        (["--env", "ddpgtest/PointGoal-v0", "--obs-clip", "0"], ("obs_clip must be > 0",)),
        (["--env", "FetchPush-v7"], ("unknown environment",)),
    ],
)
def test_bad_goal_inputs_give_one_line_and_create_nothing(
    argv: list[str], fragments: tuple[str, ...], tmp_path: Path
) -> None:
    before = snapshot(tmp_path)
    rc, _, err = run_cli(["train", *argv, "--total-steps", "200", "--run-dir", tmp_path / "run"])
    assert_one_line_error(rc, err, *fragments)
    assert rc == 2
    assert snapshot(tmp_path) == before


def test_her_needs_a_dict_env_in_the_api_too() -> None:
    with pytest.raises(Exception, match="--her needs a goal-conditioned environment"):
        Trainer(make_config(env_id="Pendulum-v1", her=True))
    with pytest.raises(ConfigError, match="her_k"):
        Config(her_k=-1)


def test_success_rate_is_what_report_scores(tmp_path: Path) -> None:
    for seed in (0, 1):
        rc, _, err = run_cli(
            [
                "train",
                "--env",
                "ddpgtest/PointGoal-v0",
                "--her",
                "true",
                "--seed",
                str(seed),
                "--total-steps",
                "300",
                "--learning-starts",
                "100",
                "--hidden-size",
                "16",
                "--eval-every",
                "100",
                "--eval-episodes-during",
                "2",
                "--eval-episodes",
                "4",
                "--run-dir",
                tmp_path / "runs" / f"s{seed}",
            ]
        )
        assert rc == 0, err
    rc, out, err = run_cli(
        [
            "report",
            tmp_path / "runs",
            "--metric",
            "success_rate",
            "--threshold",
            "0.5",
            "--out",
            tmp_path / "report",
        ]
    )
    assert rc == 0, err
    assert "success rate" in out
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    (entry,) = data["configs"]
    assert data["metric"] == "success_rate"
    finals = [
        json.loads((tmp_path / "runs" / f"s{s}" / "evaluation.json").read_text())["final"][
            "success_rate"
        ]
        for s in (0, 1)
    ]
    assert sorted(r["final"] for r in entry["runs"]) == sorted(finals)
    assert entry["threshold"]["evaluated"] == 2
    # A run without success rates (Pendulum) is skipped with a warning for this metric.
    rc, _, err = run_cli(
        [
            "train",
            "--env",
            "Pendulum-v1",
            "--total-steps",
            "200",
            "--learning-starts",
            "100",
            "--eval-every",
            "100",
            "--eval-episodes",
            "1",
            "--eval-episodes-during",
            "1",
            "--run-dir",
            tmp_path / "runs" / "pendulum",
        ]
    )
    assert rc == 0, err
    rc, _, err = run_cli(
        ["report", tmp_path / "runs", "--metric", "success_rate", "--out", tmp_path / "r2"]
    )
    assert rc == 0 and "skipped" in err and "success_rate" in err, err


def test_point_goal_env_compute_reward_matches_its_step() -> None:
    env = PointGoalEnv()
    obs, _ = env.reset(seed=0)
    for _ in range(30):
        obs, reward, _, _, info = env.step(env.action_space.sample())
        assert (
            reward
            == env.compute_reward(obs["achieved_goal"][None], obs["desired_goal"][None], None)[0]
        )
        assert info["is_success"] == float(reward == 0.0)


def test_fetchreach_preset_trains_and_reports_success(tmp_path: Path) -> None:
    pytest.importorskip("gymnasium_robotics")
    run = tmp_path / "run"
    rc, out, err = run_cli(
        [
            "train",
            "--preset",
            "fetchreach",
            "--total-steps",
            "300",
            "--learning-starts",
            "100",
            "--eval-every",
            "150",
            "--eval-episodes-during",
            "1",
            "--eval-episodes",
            "2",
            "--batch-size",
            "32",
            "--run-dir",
            run,
        ]
    )
    assert rc == 0, err
    assert err == ""  # gymnasium-robotics' import notice is kept off the terminal
    rows = csv_rows(run / "evaluations.csv")
    assert [r["step"] for r in rows] == ["150", "300"] and all(r["success_rate"] for r in rows)
    meta = Policy.load(run / "model_best.safetensors").layout
    assert meta.keys == ("observation", "desired_goal", "achieved_goal")
    assert meta.sizes == (10, 3, 3)


def test_a_robotics_id_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import ddpg.envs

    real = ddpg.envs.importlib.util.find_spec
    monkeypatch.setattr(
        ddpg.envs.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "gymnasium_robotics" else real(name, *a),
    )
    rc, _, err = run_cli(["train", "--env", "FetchSlideX-v4", "--total-steps", "10"])
    assert_one_line_error(rc, err, "needs gymnasium-robotics", 'pip install "ddpg[robotics]"')


def test_sampleable_count_follows_episodes_as_they_come_and_go() -> None:
    for lengths, capacity in (([[5, 5, 5, 5]], 12), ([[3, 7, 2], [6, 1, 9]], 14), ([[30]], 8)):
        buffer = traced_buffer(lengths, capacity=capacity)
        assert len(buffer) == np.count_nonzero(buffer.episode_length)


def test_td3_with_her_and_normalisation_resumes_bit_identically(tmp_path: Path) -> None:
    # TD3 and HER together: two critics on relabelled batches, the delay across a resume.
    config = make_config(
        POINT_GOAL,
        algo="td3",
        her=True,
        normalize_obs=True,
        total_steps=500,
        learning_starts=150,
        eval_every=250,
        eval_episodes_during=2,
        eval_episodes=2,
        hidden_size=16,
        batch_size=16,
    )
    whole, _ = check_exact_resume(tmp_path, config, [333], [True])
    assert "critic2" in whole.agent.networks() and "obs_norm" in whole.agent.networks()
