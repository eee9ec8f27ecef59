"""Callbacks of `DDPG.learn`: what they see, and how they stop a run.

A callback stops a run by returning False, by raising, or as a real Ctrl-C does (a SIGINT the
callback sends itself, so that it lands at a known step). Each of the three stops Pendulum at its
first periodic evaluation (step 100, in the middle of the third 40-step episode) and must leave
the same complete run: a checkpoint, the model files and evaluation.json. Resumed with
`DDPG.resume`, each run then ends bit-identical to the same run done in one `learn` call, and its
callback has seen every episode exactly once.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import envs_for_tests  # noqa: F401 (registers the ddpgtest/ environments)
import pytest
from conftest import make_config, snapshot
from safetensors import safe_open
from safetensors.torch import load_file
from test_reproducibility import assert_identical_runs, assert_same_tensors

from ddpg import DDPG, TrainingEvent
from ddpg.checkpoints import list_checkpoints, read_checkpoint

# 300 steps of Pendulum in 40-step episodes: episodes end at steps 40, 80, ..., 280, periodic
# evaluations come at 100 (mid-episode), 200 (at an episode's end) and 300.
STOPPING: dict[str, Any] = dict(
    env_id="Pendulum-v1",
    total_steps=300,
    max_episode_steps=40,
    hidden_size=32,
    batch_norm=False,
    batch_size=32,
    buffer_size=1000,
    learning_starts=50,
    eval_every=100,
    eval_episodes_during=2,
    eval_episodes=2,
    tensorboard=False,
    seed=5,
)
BUDGET, STOP = 300, 100
WAYS = ("returns False", "raises", "Ctrl-C")


class CallbackError(Exception):
    """What a user's callback raises."""


class Run(NamedTuple):
    dir: Path
    seen: list[TrainingEvent]  # by the first learn call's callback, then by the resumed one's
    at_stop: Path  # a copy of the run directory as the first learn call left it


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def episodes_seen(events: list[TrainingEvent]) -> list[tuple[int, int, float | None]]:
    return [(e.step, e.episode, e.episode_return) for e in events if e.kind == "episode"]


def episodes_logged(run_dir: Path) -> list[tuple[int, int, float]]:
    return [
        (int(r["step"]), int(r["episode"]), float(r["return"]))
        for r in rows(run_dir / "metrics.csv")
    ]


def evaluation_json(run_dir: Path) -> dict[str, Any]:
    summary = json.loads((run_dir / "evaluation.json").read_text())
    summary.pop("wall_time_s")
    return summary


def model_metadata(path: Path) -> dict[str, str]:
    with safe_open(path, "pt") as f:
        return f.metadata()


def stopping_callback(way: str, seen: list[TrainingEvent], error: CallbackError) -> Callable:
    """Records every event, and stops the run `way` at the first evaluation."""

    def callback(event: TrainingEvent) -> bool | None:
        seen.append(event)
        if event.kind != "evaluation":
            return None
        if way == "raises":
            raise error
        if way == "Ctrl-C":
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, arriving mid-step
            return None
        return False

    return callback


def stop_then_resume(run_dir: Path, way: str) -> Run:
    seen: list[TrainingEvent] = []
    error = CallbackError("the callback failed")
    model = DDPG(config=make_config(STOPPING), run_dir=run_dir)
    raised: BaseException | None = None
    try:
        model.learn(BUDGET, callback=stopping_callback(way, seen, error))
    except (CallbackError, KeyboardInterrupt) as exc:
        raised = exc
    if way == "raises":
        assert raised is error  # the very object the callback raised
    else:
        assert isinstance(raised, KeyboardInterrupt) if way == "Ctrl-C" else raised is None
    assert model.num_steps == STOP
    at_stop = shutil.copytree(run_dir, run_dir.with_name(f"{run_dir.name}-at-stop"))
    model.trainer.close()  # the process that held the run lets go of it

    resumed = DDPG.resume(run_dir)
    assert resumed.num_steps == STOP
    resumed.learn(BUDGET - STOP, callback=seen.append)
    assert resumed.num_steps == BUDGET
    resumed.trainer.close()
    return Run(run_dir, seen, Path(at_stop))


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The same run done in one learn call, with four callbacks that all let it go on."""
    run_dir = tmp_path_factory.mktemp("whole") / "run"
    seen: list[TrainingEvent] = []
    model = DDPG(config=make_config(STOPPING), run_dir=run_dir)
    model.learn(BUDGET, callback=[seen.append, lambda e: True, lambda e: 0, lambda e: 1.5])
    assert model.num_steps == BUDGET
    model.trainer.close()
    return Run(run_dir, seen, run_dir)


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    root = tmp_path_factory.mktemp("stopped")
    return {way: stop_then_resume(root / way.replace(" ", "-"), way) for way in WAYS}


# -- a stop leaves a complete run ------------------------------------------------------------------
@pytest.mark.parametrize("way", WAYS)
def test_a_stop_at_the_first_evaluation_leaves_a_complete_run(
    stopped: dict[str, Run], way: str
) -> None:
    at_stop = stopped[way].at_stop
    assert sorted(p.name for p in at_stop.iterdir()) == [
        ".lock",
        "checkpoints",
        "config.json",
        "evaluation.json",
        "evaluations.csv",
        "metrics.csv",
        "model_best.safetensors",
        "model_final.safetensors",
    ]
    (checkpoint,) = list_checkpoints(at_stop / "checkpoints")
    assert checkpoint.name == "step-0000000100"
    tensors, _, state = read_checkpoint(checkpoint)  # verifies every checksum
    assert (state["step"], state["episode"]) == (STOP, 2)
    assert state["in_episode"] == [True]  # stopped mid-episode: resume replays it
    summary = json.loads((at_stop / "evaluation.json").read_text())
    assert (summary["steps"], summary["episodes"]) == (STOP, 2)
    assert summary["final"]["episodes"] == summary["best"]["episodes"] == 2
    assert [int(r["step"]) for r in rows(at_stop / "evaluations.csv")] == [STOP]
    assert [int(r["step"]) for r in rows(at_stop / "metrics.csv")] == [40, 80]
    # model_final holds the networks of the checkpoint, as `ddpg train` writes them.
    final = load_file(at_stop / "model_final.safetensors")
    assert {key.split(".")[0] for key in final} == {
        "actor",
        "actor_target",
        "critic",
        "critic_target",
    }
    assert_same_tensors(final, {key: tensors[key] for key in final})


def test_the_three_ways_stop_the_run_identically(stopped: dict[str, Run]) -> None:
    """Returning False, raising and Ctrl-C take one path: the same model files (tensors and
    metadata), the same checkpoint and the same final evaluation."""
    first, *others = (stopped[way].at_stop for way in WAYS)
    for at_stop in others:
        assert (at_stop / "config.json").read_bytes() == (first / "config.json").read_bytes()
        for name in ("model_final.safetensors", "model_best.safetensors"):
            assert_same_tensors(load_file(at_stop / name), load_file(first / name))
            assert model_metadata(at_stop / name) == model_metadata(first / name), name
        ckpts = [list_checkpoints(d / "checkpoints")[0] for d in (first, at_stop)]
        (tensors_a, arrays_a, _), (tensors_b, arrays_b, _) = map(read_checkpoint, ckpts)
        assert_same_tensors(tensors_a, tensors_b)
        assert {k: v.tobytes() for k, v in arrays_a.items()} == {
            k: v.tobytes() for k, v in arrays_b.items()
        }
        assert evaluation_json(at_stop) == evaluation_json(first)


# -- and resumes exactly ---------------------------------------------------------------------------
@pytest.mark.parametrize("way", WAYS)
def test_the_resumed_run_ends_bit_identical_to_one_done_in_one_go(
    whole: Run, stopped: dict[str, Run], way: str
) -> None:
    run_dir = stopped[way].dir
    assert_identical_runs(whole.dir, run_dir)  # model files, final checkpoint, CSV rows
    assert evaluation_json(run_dir) == evaluation_json(whole.dir)
    assert evaluation_json(run_dir)["steps"] == BUDGET


@pytest.mark.parametrize("way", WAYS)
def test_a_callback_sees_every_episode_once_across_a_resume(
    whole: Run, stopped: dict[str, Run], way: str
) -> None:
    seen = episodes_seen(stopped[way].seen)
    assert [episode for _, episode, _ in seen] == list(range(1, 8))  # 7 episodes of 40 steps
    assert seen == episodes_logged(stopped[way].dir)
    assert seen == episodes_seen(whole.seen) == episodes_logged(whole.dir)
    evaluations = [e.step for e in stopped[way].seen if e.kind == "evaluation"]
    assert evaluations == [100, 200, 300]


# -- what the events say ---------------------------------------------------------------------------
def test_events_carry_the_numbers_the_run_logs(whole: Run) -> None:
    events = whole.seen
    assert [(e.kind, e.step) for e in events[:6]] == [
        ("episode", 40),
        ("episode", 80),
        ("evaluation", 100),
        ("episode", 120),
        ("episode", 160),
        ("episode", 200),
    ]
    assert [(e.kind, e.step) for e in events[6:8]] == [("evaluation", 200), ("episode", 240)]
    evaluations = [e for e in events if e.kind == "evaluation"]
    logged = rows(whole.dir / "evaluations.csv")
    assert len(evaluations) == len(logged) == 3
    for event, row in zip(evaluations, logged, strict=True):
        assert (event.step, event.episode) == (int(row["step"]), int(row["episode"]))
        assert event.mean_return == float(row["mean_return"])
        assert event.std_return == float(row["std_return"])
        assert event.success_rate is None and row["success_rate"] == ""  # Pendulum reports none
        assert event.episode_return is None
    for event in events:
        assert event.run_dir == whole.dir
        if event.kind == "episode":
            assert event.mean_return is event.std_return is event.success_rate is None
    with pytest.raises(AttributeError):
        events[0].step = 0  # type: ignore[misc]


def test_an_evaluation_event_has_the_success_rate_where_the_env_reports_one(
    tmp_path: Path,
) -> None:
    config = make_config(
        env_id="ddpgtest/PointGoal-v0",
        total_steps=100,
        learning_starts=50,
        hidden_size=16,
        batch_size=16,
        eval_every=50,
        eval_episodes_during=3,
        eval_episodes=1,
        tensorboard=False,
    )
    seen: list[TrainingEvent] = []
    model = DDPG(config=config, run_dir=tmp_path / "run")
    model.learn(100, callback=seen.append)
    model.trainer.close()
    evaluations = [e for e in seen if e.kind == "evaluation"]
    logged = rows(tmp_path / "run" / "evaluations.csv")
    assert [e.step for e in evaluations] == [50, 100]
    for event, row in zip(evaluations, logged, strict=True):
        assert event.success_rate is not None
        assert event.success_rate == float(row["success_rate"])


# -- several environments, no run directory, one call's hooks -------------------------------------
def test_episodes_that_end_in_the_stopping_step_still_reach_the_callback(tmp_path: Path) -> None:
    """Two environments end their first episodes in one vector step; the callback stops at the
    first of them. It still sees the second (the step is completed and logged), and after the
    resume it sees neither again."""
    config = make_config(STOPPING, num_envs=2, eval_every=0)
    seen: list[TrainingEvent] = []
    model = DDPG(config=config, run_dir=tmp_path / "run")

    def stop_at_the_first_episode(event: TrainingEvent) -> bool:
        seen.append(event)
        return len(seen) > 1

    model.learn(BUDGET, callback=stop_at_the_first_episode)
    assert model.num_steps == 80  # 40 steps of each environment
    assert episodes_seen(seen) == [(80, 1, seen[0].episode_return), (80, 2, seen[1].episode_return)]
    model.trainer.close()
    resumed = DDPG.resume(tmp_path / "run")
    resumed.learn(160, callback=seen.append)
    resumed.trainer.close()
    assert [e.episode for e in seen] == list(range(1, 7))
    assert episodes_seen(seen) == episodes_logged(tmp_path / "run")


def test_without_a_run_directory_a_stop_ends_learn_and_the_next_call_goes_on() -> None:
    first: list[TrainingEvent] = []
    model = DDPG(config=make_config(STOPPING))
    stop_at_evaluation = lambda e: first.append(e) or e.kind != "evaluation"  # noqa: E731
    assert model.learn(BUDGET, callback=stop_at_evaluation) is model
    assert model.num_steps == STOP
    later: list[TrainingEvent] = []
    model.learn(100, callback=later.append)  # runs its whole budget: the stop is not carried over
    assert model.num_steps == STOP + 100
    assert [e.step for e in first] == [40, 80, 100]  # the first call's callback is not called again
    assert [(e.kind, e.step) for e in later] == [
        ("episode", 120),
        ("episode", 160),
        ("episode", 200),
        ("evaluation", 200),
    ]
    assert all(e.run_dir is None for e in first + later)
    model.learn(40)  # and a call without callback calls none
    assert len(first) == 3 and len(later) == 4


# -- learn with a run directory ends as `ddpg train` does ---------------------------------------
def test_learning_in_several_calls_is_learning_in_one(whole: Run, tmp_path: Path) -> None:
    """Each call ends with the model files and evaluation.json of where the run is, and that
    final evaluation leaves nothing behind that changes the training: three calls end
    bit-identical to one."""
    run_dir = tmp_path / "run"
    model = DDPG(config=make_config(STOPPING), run_dir=run_dir)
    for total in (100, 220, 300):
        model.learn(total - model.num_steps)
        assert evaluation_json(run_dir)["steps"] == total
        assert json.loads(model_metadata(run_dir / "model_final.safetensors")["meta"])["step"] == (
            total
        )
    model.trainer.close()
    assert_identical_runs(whole.dir, run_dir)
    assert evaluation_json(run_dir) == evaluation_json(whole.dir)


# -- bad callbacks ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("callback", "message"),
    [
        (3, "callback must be a callable or a list of callables, got 3"),
        ("print", "callback must be a callable or a list of callables, got 'print'"),
        ({"on_step": print}, "callback must be a callable or a list of callables, got {'on_step'"),
        ([print, None], "callback[1] is not callable: None"),
        ((print, "stop"), "callback[1] is not callable: 'stop'"),
    ],
)
def test_a_callback_that_is_not_callable_is_refused_before_anything_changes(
    tmp_path: Path, callback: Any, message: str
) -> None:
    model = DDPG(config=make_config(STOPPING), run_dir=tmp_path / "run")
    before = snapshot(tmp_path)
    with pytest.raises(TypeError) as info:
        model.learn(BUDGET, callback=callback)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    assert model.num_steps == 0
    assert snapshot(tmp_path) == before  # no step, no checkpoint, no model file
    model.trainer.close()
