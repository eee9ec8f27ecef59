"""Smoke tests of benchmarks/time_to_solve.py: its medians and ratios, the record it appends, the
report, and one tiny real run of each library on Pendulum-v1 (seconds, not a benchmark)."""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from ddpg.config import Config
from ddpg.envs import episode_seed
from ddpg.errors import ConfigError
from ddpg.train import Trainer

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "time_to_solve.py"
sys.path.insert(0, str(SCRIPT.parent))  # as when the script runs: its helper modules beside it
# A budget that only checks the plumbing: two evaluations of one episode each.
TINY = ["--env", "Pendulum-v1", "--max-steps", "400", "--eval-every", "200"]
TINY += ["--eval-episodes", "1", "--torch-threads", "1"]
OURS_TINY = ["--set", "learning_starts=100", "batch_size=32", "hidden_size=32"]

RECORD_KEYS = {
    "lib", "variant", "env", "seed", "threshold", "solved", "steps_to_solve", "wall_s_to_solve",
    "cpu_s_to_solve", "wall_s_to_solve_incl_eval", "cpu_s_to_solve_incl_eval", "stop_reason",
    "total_steps_run", "train_wall_s", "train_cpu_s", "eval_wall_s", "eval_cpu_s",
    "total_wall_s", "total_cpu_s", "steps_per_s", "evaluations", "budget", "eval_protocol",
    "argv", "command", "versions", "cpu", "torch_threads", "date",
}  # fmt: skip


@pytest.fixture(scope="module")
def tts() -> ModuleType:
    spec = importlib.util.spec_from_file_location("time_to_solve", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def run(tts: ModuleType, results: Path, *args: str) -> list[dict[str, Any]]:
    assert tts.main([*args, "--results", str(results)]) == 0
    return [json.loads(line) for line in results.read_text().splitlines()]


@pytest.fixture(scope="module")
def ours_records(tts: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Two tiny runs of ours: one that cannot solve (threshold 0) and one that must (-1e9)."""
    results = tmp_path_factory.mktemp("tts") / "results" / "runs.jsonl"  # dir made by the script
    run(tts, results, "--lib", "ours", *TINY, *OURS_TINY, "--threshold", "0")
    return run(tts, results, "--lib", "ours", *TINY, *OURS_TINY, "--threshold=-1e9")


# -- maths -----------------------------------------------------------------------------------------
def test_median_counts_unsolved_runs_as_infinitely_slow(tts: ModuleType) -> None:
    inf = math.inf
    assert tts.median([3.0, 1.0, inf]) == 3.0  # 2 of 3 solved: the median run solved
    assert tts.median([1.0, inf, inf]) == inf  # the median run did not solve
    assert tts.median([1.0, 2.0, 4.0, inf]) == 3.0
    assert tts.median([1.0, 2.0, inf, inf]) == inf
    assert math.isnan(tts.median([]))


def test_ratio_is_sb3_over_ours(tts: ModuleType) -> None:
    assert tts.ratio(10.0, 5.0) == 2.0
    assert tts.ratio(math.inf, 5.0) == math.inf  # only ours solved
    assert math.isnan(tts.ratio(5.0, math.inf))  # ours did not solve: no figure
    assert tts.fmt_ratio(2.0) == "2.00x"
    assert tts.fmt_ratio(math.inf) == "SB3 not solved"
    assert tts.fmt_ratio(math.nan) == "-"


def test_clock_pauses(tts: ModuleType) -> None:
    import common

    clock = common.Clock()
    clock.start()
    clock.stop()
    frozen = clock.read()
    sum(range(200_000))  # time passes, the clock is stopped
    assert clock.read() == frozen and not clock.running


def test_overrides_are_typed_and_forced_fields_refused(tts: ModuleType) -> None:
    parsed = tts.parse_overrides(["batch_size=64", "gamma=0.95", "batch-norm=false"])
    assert parsed == {"batch_size": 64, "gamma": 0.95, "batch_norm": False}
    assert type(parsed["batch_size"]) is int
    with pytest.raises(SystemExit, match="sets this field itself"):
        tts.parse_overrides(["seed=3"])
    with pytest.raises(ConfigError, match="unknown config key"):
        tts.parse_overrides(["hiden_size=3"])
    with pytest.raises(SystemExit, match="FIELD=VALUE"):
        tts.parse_overrides(["batch_size"])


def test_default_variant_names(tts: ModuleType) -> None:
    assert tts.default_variant("ours", None, "Pendulum-v1", []) == "preset"
    assert tts.default_variant("ours", "pendulum", "Pendulum-v1", ["num_envs=4"]) == "num_envs=4"
    assert tts.default_variant("ours", "lunarlander", "Pendulum-v1", []) == "preset=lunarlander"
    assert tts.default_variant("sb3", None, "Pendulum-v1", []) == "zoo"


def test_zoo_entries_cover_both_tasks(tts: ModuleType) -> None:
    for env_id, defaults in tts.ENVS.items():
        hp, note = tts.zoo_hyperparameters(env_id)
        assert note is None
        assert hp["n_timesteps"] == defaults.max_steps  # budget: the zoo's n_timesteps
    hp, note = tts.zoo_hyperparameters("LunarLanderContinuous-v2")
    assert "LunarLanderContinuous-v3" in note and hp == tts.ZOO_DDPG["LunarLanderContinuous-v3"]


def test_chunked_trainer_run_equals_one_run() -> None:
    """The script trains ours in chunks between evaluations; that must not change learning."""
    config = Config(
        env_id="Pendulum-v1", total_steps=300, hidden_size=16, batch_norm=False, batch_size=8,
        buffer_size=300, learning_starts=50, checkpoint_every=0, tensorboard=False,
    )  # fmt: skip
    whole, chunked = Trainer(config), Trainer(config)
    whole.run(max_steps=250)
    for stop in (100, 200, 250):
        chunked.run(max_steps=stop)
    for key, value in whole.agent.actor.state_dict().items():
        assert torch.equal(value, chunked.agent.actor.state_dict()[key]), key
    whole.close()
    chunked.close()


# -- records -------------------------------------------------------------------------------------
def test_record_format(ours_records: list[dict]) -> None:
    unsolved, solved = ours_records
    for r in ours_records:
        assert set(r) >= RECORD_KEYS
        assert r["lib"] == "ours" and r["env"] == "Pendulum-v1" and r["seed"] == 0
        assert r["variant"] == "learning_starts=100,batch_size=32,hidden_size=32"
        assert r["argv"][0].endswith("time_to_solve.py") and "--set" in r["argv"]
        assert r["command"].startswith("python ") and "learning_starts=100" in r["command"]
        assert r["config"]["hidden_size"] == 32 and r["config"]["eval_every"] == 0
        assert r["config"]["torch_threads"] == 1 and r["config"]["target_return"] is None
        assert r["torch_threads"] == 1
        assert r["eval_protocol"]["reset_seeds"] == [episode_seed(0, 10, 0)]
        assert r["train_wall_s"] > 0 and r["train_cpu_s"] > 0 and r["eval_wall_s"] > 0
        assert r["total_wall_s"] == pytest.approx(r["train_wall_s"] + r["eval_wall_s"])
        for step, mean, wall in r["evaluations"]:
            assert isinstance(step, int) and math.isfinite(mean) and 0 < wall <= r["train_wall_s"]
    assert not unsolved["solved"] and unsolved["stop_reason"] == "max_steps"
    assert unsolved["steps_to_solve"] is None and unsolved["wall_s_to_solve"] is None
    assert [e[0] for e in unsolved["evaluations"]] == [200, 400]
    assert unsolved["total_steps_run"] == 400
    assert unsolved["steps_per_s"] == pytest.approx(400 / unsolved["train_wall_s"])
    # Solved at the first evaluation: training stops there, the clock read before evaluating.
    assert solved["solved"] and solved["stop_reason"] == "solved"
    assert solved["steps_to_solve"] == 200 == solved["total_steps_run"]
    assert solved["wall_s_to_solve"] == solved["evaluations"][0][2] == solved["train_wall_s"]
    assert solved["cpu_s_to_solve"] <= solved["train_cpu_s"] + 1e-9
    assert solved["wall_s_to_solve_incl_eval"] == pytest.approx(solved["total_wall_s"])


def test_sb3_tiny_run(tts: ModuleType, ours_records: list[dict], tmp_path: Path) -> None:
    pytest.importorskip("stable_baselines3")
    zoo_before = copy.deepcopy(tts.ZOO_DDPG)
    (r,) = run(tts, tmp_path / "sb3.jsonl", "--lib", "sb3", *TINY)
    assert zoo_before == tts.ZOO_DDPG  # SB3 did not write into the zoo table
    assert set(r) >= RECORD_KEYS
    assert r["lib"] == "sb3" and r["variant"] == "zoo" and r["threshold"] == -200
    assert r["hyperparameters"] == {**tts.SB3_DEFAULTS, **tts.ZOO_DDPG["Pendulum-v1"]}
    assert "rl-baselines3-zoo" in r["hyperparameters_source"]
    assert [e[0] for e in r["evaluations"]] == [200, 400] and r["total_steps_run"] == 400
    assert not r["solved"]  # learning starts at 10,000 steps in the zoo's settings
    # The same evaluation start states as ours for the same seed.
    assert r["eval_protocol"] == ours_records[0]["eval_protocol"]


# -- report --------------------------------------------------------------------------------------
def fake(record: dict, lib: str, variant: str, seed: int, wall: float | None) -> dict:
    """`record` as a run of (lib, variant, seed) that solved after `wall` s (None: not solved)."""
    r = copy.deepcopy(record) | {"lib": lib, "variant": variant, "seed": seed, "threshold": -200}
    r["solved"] = wall is not None
    for key, value in (("steps_to_solve", 1000), ("cpu_s_to_solve", 2 * (wall or 0))):
        r[key] = value if wall is not None else None
    r["wall_s_to_solve"] = r["wall_s_to_solve_incl_eval"] = wall
    if lib == "sb3":
        r.pop("config")
        r |= {"hyperparameters": {"gamma": 0.98}, "hyperparameters_source": "zoo file"}
    return r


def test_report(tts: ModuleType, ours_records: list[dict]) -> None:
    base = ours_records[1]
    records = [
        fake(base, "ours", "preset", 0, 4.0),
        fake(base, "ours", "preset", 1, 6.0),
        fake(base, "ours", "preset", 2, 5.0),
        fake(base, "sb3", "zoo", 0, 10.0),
        fake(base, "sb3", "zoo", 1, None),
        fake(base, "sb3", "zoo", 2, 20.0),
        fake(base, "ours", "num_envs=4", 0, None),
    ]
    stats = tts.group_stats(records[:3])
    assert stats["solved"] == 3 and stats["wall"] == 5.0 and stats["cpu"] == 10.0
    assert tts.group_stats(records[3:6])["wall"] == 20.0  # 10, 20, unsolved

    text = tts.summarize(records, "python benchmarks/time_to_solve.py --summarize x")
    assert "## Pendulum-v1, threshold -200" in text
    rows = {line.split("|")[2].strip(): line for line in text.splitlines() if "| 3/3 |" in line}
    assert set(rows) == {"preset"}
    assert "| 4.00x | 4.00x | 1.00x |" in rows["preset"]  # SB3 20 s / ours 5 s; CPU doubled
    assert "not solved within budget (400 steps)" in text
    assert "| sb3 | zoo | 2/3 |" in text
    assert "| ours | num_envs=4 | 0/1 | not solved |" in text
    assert base["command"] in text and "--summarize x" in text
    assert "versions: " in text and "stable-baselines3" in text


def test_summarize_writes_the_report(
    tts: ModuleType, ours_records: list[dict], tmp_path: Path
) -> None:
    results = tmp_path / "runs.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in ours_records))
    out = tmp_path / "docs" / "time-to-solve.md"
    assert tts.main(["--summarize", str(results), "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# Time to solve") and "| ours | learning_starts=100" in text
