"""Smoke tests of benchmarks/suite.py: its queue order, IQM, the record a run appends, skipping
recorded runs on resume, and the summary (tiny real runs on Pendulum-v1, seconds)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ddpg.envs import episode_seed

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "suite.py"
sys.path.insert(0, str(SCRIPT.parent))  # as when the script runs: its helper modules beside it
HAVE_SB3 = importlib.util.find_spec("stable_baselines3") is not None
LIBS = ["ours", "sb3"] if HAVE_SB3 else ["ours"]


@pytest.fixture(scope="module")
def suite() -> ModuleType:
    spec = importlib.util.spec_from_file_location("suite", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_queue_pairs_libraries_and_defers_optional_sb3_runs(suite: ModuleType) -> None:
    order = suite.queue(["Hopper-v5", "Reacher-v5"], [0, 1], ["ours", "sb3"])
    assert order == [
        ("ours", "Hopper-v5", 0), ("sb3", "Hopper-v5", 0),
        ("ours", "Hopper-v5", 1), ("sb3", "Hopper-v5", 1),
        ("ours", "Reacher-v5", 0), ("ours", "Reacher-v5", 1),
        ("sb3", "Reacher-v5", 0), ("sb3", "Reacher-v5", 1),
    ]  # fmt: skip
    assert suite.learning_starts("HalfCheetah-v5") == 10_000 == suite.learning_starts("Ant-v5")
    assert suite.learning_starts("Hopper-v5") == 1_000 == suite.learning_starts("Reacher-v5")


def test_runs_record_and_resume(suite: ModuleType, tmp_path: Path) -> None:
    results = tmp_path / "results" / "suite.jsonl"  # the directory is made by the script
    args = ["--quick", "--envs", "Pendulum-v1", "--libs", *LIBS, "--results", str(results)]
    # Seed 1 already recorded (as after an interruption): only seed 0 runs.
    fakes = [
        {"lib": lib, "env": "Pendulum-v1", "seed": 1, "steps": 400, "variant": "quick"}
        | {"final_eval_mean": -1.0, "best_eval_mean": -1.0, "train_cpu_s": 60.0}
        | {"curve": [[200, -3.0], [400, -1.0]]}
        for lib in LIBS
    ]
    results.parent.mkdir()
    results.write_text("".join(json.dumps(fake) + "\n" for fake in fakes))
    assert suite.main([*args, "--seeds", "0", "1", "--jobs", "2"]) == 0
    records = read(results)
    assert records[: len(LIBS)] == fakes
    records = records[len(LIBS) :]
    assert sorted((r["lib"], r["seed"]) for r in records) == [(lib, 0) for lib in LIBS]
    for r in records:
        assert r["env"] == "Pendulum-v1" and r["steps"] == 400 and r["variant"] == "quick"
        assert [step for step, _ in r["curve"]] == [200, 400] and r["total_steps_run"] == 400
        assert r["final_eval_mean"] == r["curve"][-1][1] < 0  # Pendulum's returns are negative
        assert r["best_eval_mean"] == max(mean for _, mean in r["curve"])
        assert r["eval_protocol"]["reset_seeds"] == [episode_seed(0, 10, 0)]
        assert r["train_wall_s"] > 0 and r["train_cpu_s"] > 0 and r["eval_cpu_s"] > 0
        assert r["total_wall_s"] == pytest.approx(r["train_wall_s"] + r["eval_wall_s"])
        assert r["torch_threads"] == 1 and r["versions"]["torch"] and r["cpu_count"] >= 1
        assert len(r["git"]["commit"]) == 40 and r["command"].startswith("python ")
    by_lib = {r["lib"]: r for r in records}
    ours = by_lib["ours"]["config"]
    assert (ours["hidden_size"], ours["hidden_size_2"], ours["learning_starts"]) == (16, 16, 100)
    assert ours["batch_size"] == 100 and ours["gamma"] == 0.99 and ours["weight_decay"] == 0
    assert by_lib["ours"]["preset"] == "mujoco"
    if HAVE_SB3:
        hp = by_lib["sb3"]["hyperparameters"]
        assert hp["policy_kwargs"] == {"net_arch": [16, 16]} and hp["learning_starts"] == 100
        assert (hp["batch_size"], hp["gamma"], hp["tau"]) == (100, 0.99, 0.005)
        assert hp["noise_std"] == 0.1 and hp["buffer_size"] == 400
        assert by_lib["sb3"]["eval_protocol"] == by_lib["ours"]["eval_protocol"]

    # Everything recorded: a second invocation runs nothing and appends nothing.
    before = results.read_text()
    assert suite.main([*args, "--seeds", "0", "1"]) == 0
    assert results.read_text() == before

    # The table: ddpg report's IQM and CI over the two seeds (the faked one and the real one).
    text = suite.summarize(read(results))
    row = next(line for line in text.splitlines() if "| ours |" in line)
    real = by_lib["ours"]["final_eval_mean"]
    low, high = sorted([-1.0, real])
    iqm = (real - 1.0) / 2  # two scores: nothing cut, the mean
    cells = [suite.num(x) for x in (iqm, low, high)]
    assert "| Pendulum-v1 (400 steps) | ours | 2 (0 1) | {} [{}, {}]".format(*cells) in row
    assert suite.num(-1.0) == "-1.00" and suite.num(-714.4) == "-714"  # Reacher-sized: 2 decimals
    assert suite.main(["--summarize", str(results), "--plot", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summarize_needs_records(suite: ModuleType, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert suite.main(["--summarize", str(empty)]) == 1


def test_a_set_variant_runs_our_changed_config_in_rows_of_its_own(
    suite: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "suite.jsonl"
    common = ["--quick", "--envs", "Pendulum-v1", "--seeds", "0", "--libs", "ours"]
    common += ["--results", str(results)]
    relu = ["--set", "activation=relu", "--set", "final_layer_init=none"]
    assert suite.main([*common, *relu]) == 0
    assert suite.main([*common, *relu]) == 0  # recorded: nothing runs again
    assert suite.main(common) == 0  # the suite's own settings are another run
    variant, plain = read(results)
    assert variant["variant"] == "quick,activation=relu,final_layer_init=none"
    config = variant["config"]
    assert (config["activation"], config["final_layer_init"]) == ("relu", None)
    assert variant["overrides"]["activation"] == "relu" and variant["preset"] == "mujoco"
    assert plain["variant"] == "quick" and plain["config"]["activation"] == "leaky_relu"
    assert variant["final_eval_mean"] != plain["final_eval_mean"]  # other networks, other run
    rows = [line for line in suite.summarize(read(results)).splitlines() if "Pendulum" in line]
    assert [row.split(" | ")[1] for row in rows] == [
        "ours",
        "ours activation=relu,final_layer_init=none",
    ]
    capsys.readouterr()
    for bad, message in [
        (["--set", "activaton=relu"], "unknown config key 'activaton' (did you mean 'activation"),
        (["--set", "activation=relu", "--libs", "ours", "sb3"], "use it with --libs ours"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            suite.main([*common, *bad])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert len(read(results)) == 2  # refused before running anything


def test_marks_judge_the_ci_and_the_by_step_table_shows_each_evaluation(
    suite: ModuleType,
) -> None:
    def record(lib: str, env: str, seed: int, curve: list[float]) -> dict[str, Any]:
        return {
            "lib": lib, "env": env, "seed": seed, "steps": 300, "variant": "suite",
            "curve": [[100 * (i + 1), m] for i, m in enumerate(curve)],
            "final_eval_mean": curve[-1], "best_eval_mean": max(curve), "train_cpu_s": 60.0,
        }  # fmt: skip

    ours = [[10.0, 50.0, 1.0], [12.0, 40.0, 2.0], [11.0, 60.0, 3.0]]
    sb3 = [[30.0, 45.0, 7.0], [31.0, 55.0, 8.0], [32.0, 50.0, 9.0]]
    records = [record("ours", "Hopper-v5", seed, c) for seed, c in enumerate(ours)]
    records += [record("sb3", "Hopper-v5", seed, c) for seed, c in enumerate(sb3)]
    # Swapped libraries on a second env: ours entirely above; a third env with one SB3 seed.
    records += [record("ours", "Walker2d-v5", seed, c) for seed, c in enumerate(sb3)]
    records += [record("sb3", "Walker2d-v5", seed, c) for seed, c in enumerate(ours)]
    records += [record(lib, "Reacher-v5", 0, [1.0, 2.0, 3.0]) for lib in ("ours", "sb3")]
    records += [record("ours", "Reacher-v5", 1, [1.0, 2.0, 9.0])]

    table = suite.summarize(records)
    # Three scores: the IQM cuts none (the mean); the 95% CI of three is their range.
    assert "| Hopper-v5 (300 steps) | ours | 3 (0 1 2) | 2.00 [1.00, 3.00] < |" in table
    assert "| Walker2d-v5 (300 steps) | ours | 3 (0 1 2) | 8.00 [7.00, 9.00] > |" in table
    assert "| Reacher-v5 (300 steps) | ours | 2 (0 1) | 6.00 [3.00, 9.00] |" in table

    steps = suite.by_step(records).splitlines()
    assert steps == [
        "| env | 0.1k | 0.2k | 0.3k |",
        "| --- | ---: | ---: | ---: |",
        "| Hopper-v5 (300 steps) | 11.00 / 31.00 < | 50.00 / 50.00 | 2.00 / 8.00 < |",
        "| Walker2d-v5 (300 steps) | 31.00 / 11.00 > | 50.00 / 50.00 | 8.00 / 2.00 > |",
    ]
    assert suite.by_step(records, last=1).splitlines()[0] == "| env | 0.3k |"
    assert suite.by_step(records[-3:]) == ""  # no env with two seeds of each library


def test_the_algorithm_table_sets_our_td3_against_our_ddpg(suite: ModuleType) -> None:
    def record(algo: str, seed: int, final: float, lib: str = "ours") -> dict[str, Any]:
        return {
            "lib": lib, "algo": algo, "env": "Hopper-v5", "seed": seed, "steps": 300,
            "variant": "suite", "curve": [[100, 0.0], [200, final / 2], [300, final]],
            "final_eval_mean": final, "best_eval_mean": final, "train_cpu_s": 60.0,
        }  # fmt: skip

    records = [record("ddpg", seed, final) for seed, final in enumerate([1.0, 2.0, 3.0])]
    records += [record("td3", seed, final) for seed, final in enumerate([7.0, 8.0, 9.0])]
    records += [record("td3", seed, 0.0, lib="sb3") for seed in range(3)]  # not ours: left out
    assert suite.algorithms(records).splitlines()[2:] == [
        "| Hopper-v5 (300 steps) | 2.00 [1.00, 3.00] | 8.00 [7.00, 9.00] > | 1.00 | 4.00 |"
    ]
    assert suite.algorithms(records[:4]) == ""  # one TD3 seed: no row


@pytest.mark.parametrize("lib", LIBS)
def test_the_final_evaluation_equals_a_periodic_one_at_that_step(
    suite: ModuleType, lib: str
) -> None:
    """The table's score, a run's last evaluation (SB3's made when `learn` returns, not at a
    rollout's start), is exactly the evaluation a longer run makes at that step: when it is
    taken favours neither library."""
    import runner

    def evaluations(steps: int) -> list[list[float]]:
        spec = runner.Spec(lib, "check", "Pendulum-v1", 0, None, 200, 1, steps, None, 1)
        small = {"learning_starts": 100, "buffer_size": 1000}
        if lib == "ours":
            width = {"hidden_size": 16, "hidden_size_2": 16}
            config = runner.our_config(suite.PRESET, small | width, spec)
            record = runner.run_one(spec, lambda t: runner.run_ours(spec, config, t), print)
        else:
            hp = suite.SB3_SETTINGS | small | {"policy_kwargs": {"net_arch": [16, 16]}}
            record = runner.run_one(spec, lambda t: runner.run_sb3(spec, hp, t), print)
        return record["evaluations"]

    short, longer = evaluations(400), evaluations(600)
    assert [e[0] for e in short] == [200, 400] and [e[0] for e in longer] == [200, 400, 600]
    assert [e[1] for e in short] == [e[1] for e in longer[:2]]


def test_summarize_refuses_bad_files_in_one_line(
    suite: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = {"lib": "ours", "env": "Pendulum-v1", "seed": 0, "steps": 400, "variant": "quick"}
    good |= {"final_eval_mean": -1.0, "best_eval_mean": -1.0, "train_cpu_s": 60.0}
    good |= {"curve": [[200, -3.0], [400, -1.0]]}
    malformed = tmp_path / "malformed.jsonl"
    malformed.write_text(json.dumps(good | {"curve": [["x", -3.0]]}) + "\n")
    assert suite.main(["--summarize", str(malformed)]) == 2
    assert "is malformed: ValueError(" in capsys.readouterr().err
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\n" + json.dumps(good).encode() + b"\n")
    assert suite.main(["--summarize", str(binary)]) == 0  # the bad line skipped, with a warning
    assert f"{binary}:1: not JSON, skipped" in capsys.readouterr().err
    png = tmp_path / "missing" / "c.png"
    assert suite.main(["--summarize", str(binary), "--plot", str(png)]) == 2
    assert f"cannot write {png}: No such file or directory" in capsys.readouterr().err
    assert not png.parent.exists()


def test_algo_td3_runs_both_libraries_td3_at_identical_settings(
    suite: ModuleType, tmp_path: Path
) -> None:
    assert suite.learning_starts("Hopper-v5", "td3") == 25_000  # main.py's start_timesteps
    assert suite.learning_starts("HalfCheetah-v5", "td3") == 25_000
    results = tmp_path / "suite.jsonl"
    common = ["--quick", "--envs", "Pendulum-v1", "--seeds", "0", "--results", str(results)]
    # A DDPG record of the same (lib, env, seed, steps, variant) is another run.
    ddpg = {"lib": "ours", "env": "Pendulum-v1", "seed": 0, "steps": 400, "variant": "quick"}
    ddpg |= {"final_eval_mean": -1.0, "best_eval_mean": -1.0, "train_cpu_s": 60.0}
    ddpg |= {"curve": [[200, -3.0], [400, -1.0]]}
    results.write_text(json.dumps(ddpg) + "\n")
    assert suite.main([*common, "--libs", *LIBS, "--algo", "td3"]) == 0
    records = read(results)[1:]
    assert sorted(r["lib"] for r in records) == sorted(LIBS)
    assert all(r["algo"] == "td3" and r["variant"] == "quick" for r in records)
    by_lib = {r["lib"]: r for r in records}
    ours = by_lib["ours"]["config"]
    assert by_lib["ours"]["preset"] == "td3-mujoco"
    assert (ours["algo"], ours["policy_delay"], ours["target_noise"]) == ("td3", 2, 0.2)
    assert (ours["target_noise_clip"], ours["activation"], ours["final_layer_init"]) == (
        0.5,
        "relu",
        None,
    )
    if HAVE_SB3:
        hp = by_lib["sb3"]["hyperparameters"]
        assert hp["algo"] == "td3"
        # The same settings in both libraries' terms.
        same = {
            "learning_rate": (ours["actor_lr"], ours["critic_lr"]),
            "batch_size": ours["batch_size"],
            "gamma": ours["gamma"],
            "tau": ours["tau"],
            "noise_std": ours["noise_std"],
            "learning_starts": ours["learning_starts"],
            "buffer_size": ours["buffer_size"],
            "policy_delay": ours["policy_delay"],
            "target_policy_noise": ours["target_noise"],
            "target_noise_clip": ours["target_noise_clip"],
        }
        for name, value in same.items():
            expected = (hp[name], hp[name]) if isinstance(value, tuple) else hp[name]
            assert value == expected, name
        assert hp["policy_kwargs"] == {"net_arch": [ours["hidden_size"], ours["hidden_size_2"]]}
        assert (hp["batch_size"], hp["learning_rate"]) == (256, 3e-4)
    # Recorded: a second invocation runs nothing; the table has TD3 rows of their own.
    before = results.read_text()
    assert suite.main([*common, "--libs", *LIBS, "--algo", "td3"]) == 0
    assert results.read_text() == before
    rows = [line.split(" | ")[:2] for line in suite.summarize(read(results)).splitlines()]
    assert ["| Pendulum-v1 (400 steps)", "ours"] in rows
    assert ["| Pendulum-v1 td3 (400 steps)", "ours"] in rows
