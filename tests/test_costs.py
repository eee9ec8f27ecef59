"""The one-line cost warnings that `ddpg train` and `ddpg sweep` print before a valid but very
costly run starts (ddpg.costs). The bounds beyond which a value is refused are in test_config.py
and test_bad_input.py."""

from __future__ import annotations

from ddpg.costs import cost_warnings, episode_limit
from ddpg.presets import preset_config

PENDULUM = preset_config("pendulum")  # 3 observations, 1 action, 200-step episodes


def warnings_for(**values: object) -> list[str]:
    return cost_warnings(PENDULUM.replace(**values), 3, 1, 200)


def test_an_ordinary_run_has_no_warning():
    assert warnings_for() == []
    assert cost_warnings(preset_config("lunarlander"), 8, 2, 1000) == []
    # a 40-step test run that evaluates on 200-step episodes: more evaluation than training,
    # but far below a million steps
    assert warnings_for(total_steps=40, eval_every=20, eval_episodes_during=1) == []


def test_evaluation_that_dwarfs_training_is_costed_in_env_steps():
    (line,) = warnings_for(total_steps=10**6, eval_every=1000, eval_episodes_during=1000)
    assert line == (
        "evaluation will take up to 200,004,000 env steps (1,000 periodic evaluations x 1,000 "
        "episodes and the final 2 x 10, up to 200 steps each), 200x the 1,000,000 training "
        "steps; lower --eval-episodes-during, --eval-episodes or raise --eval-every"
    )


def test_the_final_evaluation_alone_can_be_the_cost():
    (line,) = warnings_for(total_steps=1000, eval_every=0, eval_episodes=10_000)
    assert line.startswith("evaluation will take up to 4,000,000 env steps (0 periodic")


def test_updates_beyond_a_hundred_million_are_costed_in_hours():
    (line,) = warnings_for(total_steps=10**9, updates_per_step=500, learning_starts=1000)
    assert line == (
        "updates_per_step 500 x 999,999,000 learning steps is 499,999,500,000 gradient updates, "
        "55,556 hours even at the 0.4 ms of a CUDA-graphed update on an H100"
    )
    assert warnings_for(total_steps=10**8, updates_per_step=1) == []  # exactly 10^8 - 1000


def test_a_replay_buffer_the_run_never_fills_is_costed_in_gib():
    (line,) = warnings_for(total_steps=1000, buffer_size=10**8)
    # 36 bytes a Pendulum transition, 99,999,000 of them never written
    assert line == (
        "buffer_size 100,000,000 holds more than the 1,000 steps of the run: 3.4 GiB of "
        "replay buffer are allocated and never filled; lower --buffer-size"
    )
    assert warnings_for(total_steps=10**6, buffer_size=10**6) == []


def test_an_episode_budget_is_bounded_by_the_time_limit():
    # 5,000 episodes of at most 200 steps: at most 10^6 steps, so 2 x 10^8 updates
    (line,) = warnings_for(total_steps=None, episodes=5000, updates_per_step=200)
    assert "x 999,000 learning steps is 199,800,000 gradient updates" in line
    # with no time limit the budget cannot be told, so nothing is claimed
    assert cost_warnings(PENDULUM.replace(total_steps=None, episodes=5000), 3, 1, None) == []


def test_the_episode_limit_is_the_runs_own_or_the_registered_one():
    assert episode_limit(PENDULUM) == 200
    assert episode_limit(PENDULUM.replace(max_episode_steps=50)) == 50
    assert episode_limit(PENDULUM.replace(env_id="NoSuchEnv-v0")) is None
