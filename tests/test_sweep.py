"""`ddpg sweep` on Ray Tune: the spec, bad input (one line before Ray starts), and real sweeps on
a local Ray and on a two-node cluster started with `ray start` on this machine. Trials must be
ordinary run directories that match plain runs of the same config bit for bit, through a killed
worker, an interrupted sweep, a killed driver and an ASHA stop.

The tests that start Ray skip without the `ray` extra; CI installs it."""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import snapshot
from safetensors.torch import load_file

from ddpg.checkpoints import read_config
from ddpg.cli import main
from ddpg.config import Config
from ddpg.errors import RunDirError
from ddpg.loggers import Console
from ddpg.presets import preset_config
from ddpg.runs import finish_run, start_run
from ddpg.sweep.spec import (
    build_spec,
    parse_grid,
    parse_seeds,
    parse_space,
    read_spec,
    write_spec,
)

HAS_RAY = all(importlib.util.find_spec(m) is not None for m in ("ray", "pandas", "pyarrow"))
needs_ray = pytest.mark.skipif(
    not HAS_RAY, reason='the sweep tests need Ray: pip install -e ".[test,ray]"'
)
TIMEOUT = 240
# Tiny Pendulum trials: reports (evaluations) at 500, 1000, 1500 and 2000 env steps.
TINY = [
    "--preset", "pendulum", "--total-steps", "2000", "--learning-starts", "300",
    "--eval-every", "500", "--hidden-size", "16", "--batch-size", "32",
    "--eval-episodes", "2", "--eval-episodes-during", "2", "--tensorboard", "false",
]  # fmt: skip
GRID = ["--grid", "actor_lr=1e-3,3e-4"]
NAMES = ["actor_lr=0.001-seed=0", "actor_lr=0.0003-seed=0"]


# -- the spec, without Ray ------------------------------------------------------------------------
def test_seeds_ranges_and_lists():
    assert parse_seeds("0-4") == (0, 1, 2, 3, 4)
    assert parse_seeds("0,2,5") == (0, 2, 5)
    assert parse_seeds("1-2,7") == (1, 2, 7)
    for bad in ("3-1", "a", "-1", "0,0", "1-", ""):
        with pytest.raises(Exception, match="--seeds"):
            parse_seeds(bad)


def test_grid_points_seeds_and_names(tmp_path):
    spec = build_spec(
        base=preset_config("pendulum", total_steps=20_000),
        preset="pendulum",
        fixed={"total_steps": 20_000},
        seeds=parse_seeds("0-1"),
        grid=parse_grid(["actor_lr=1e-3,3e-4", "batch_norm=true,false"]),
    )
    names = [t.name for t in spec.trials()]
    assert len(names) == 8 and len(set(names)) == 8
    assert names[0] == "actor_lr=0.001-batch_norm=true-seed=0"
    assert names[-1] == "actor_lr=0.0003-batch_norm=false-seed=1"
    assert spec.base["torch_threads"] == 1  # --cpus-per-trial 1 sets the trials' torch threads
    assert spec.config(spec.trials()[-1].overrides, 1).batch_norm is False
    write_spec(tmp_path, spec)
    assert read_spec(tmp_path) == spec
    data = json.loads((tmp_path / "sweep.json").read_text())
    (tmp_path / "sweep.json").write_text(json.dumps(data | {"format_version": 2}))
    with pytest.raises(RunDirError, match="is a sweep spec of format version 2; this library"):
        read_spec(tmp_path)


def test_random_search_is_drawn_up_front_and_reproducible():
    def spec(search_seed: int):
        return build_spec(
            base=preset_config("pendulum"),
            preset="pendulum",
            fixed={},
            seeds=(0, 1, 2),
            search="random",
            samples=5,
            space=parse_space(["actor_lr=loguniform:1e-5:1e-2", "noise=choice:gaussian,ou"]),
            search_seed=search_seed,
        )

    a, b, c = spec(0), spec(0), spec(1)
    assert a.points == b.points != c.points
    assert len(a.trials()) == 15  # every sample runs every seed
    lrs = [p.overrides["actor_lr"] for p in a.points]
    assert all(1e-5 <= lr <= 1e-2 for lr in lrs) and len(set(lrs)) == 5
    assert {p.overrides["noise"] for p in a.points} <= {"gaussian", "ou"}
    assert [p.name for p in a.points] == [f"sample{i}" for i in range(5)]


def test_asha_grace_period_defaults_to_the_first_trained_evaluation():
    spec = build_spec(base=preset_config("pendulum"), preset="pendulum", fixed={}, scheduler="asha")
    assert spec.grace_period == 1_000 + 5_000  # pendulum: learning_starts + eval_every
    assert spec.max_t == 15_000


# -- bad input: one line, exit 2, nothing created, Ray never started ------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BAD = [
    (["--grid", "actor_lrr=1e-3,2e-3"],
     "unknown config field 'actor_lrr' (did you mean 'actor_lr'?)"),
    (["--search", "random", "--samples", "2", "--space", "critc_lr=uniform:1e-4:1e-3"],
     "did you mean 'critic_lr'?"),
    (["--grid", "gamma=0.9,1.5"], "gamma must be in [0, 1), got 1.5 (in the sweep point gamma=1.5"),
    (["--grid", "actor_lr=1e-3,abc"], "--grid actor_lr: expected float, got 'abc'"),
    (["--grid", "seed=1,2"], "vary seeds with --seeds"),
    (["--scheduler", "asha", "--grace-period", "500"],
     "--grace-period 500 is too short"),
    (["--eval-every", "0"], "ddpg sweep reports at each periodic evaluation"),
    (["--seed", "1", "--seeds", "0-2"], "either --seed or --seeds"),
    (["--search", "optuna", "--samples", "2", "--space", "tau=uniform:0.001:0.01", "--grid",
      "gamma=0.9,0.95"], "--grid cannot be combined with --search optuna"),
    (["--search", "random", "--samples", "2", "--space", "batch_size=uniform:32:64"],
     "uniform needs a float field"),
    (["--address", "127.0.0.1:PORT"], "no Ray cluster at 127.0.0.1:"),
    (["--address", "no-such-host.invalid:6379"], "unknown host"),
    (["--env", "CartPole-v1"], "Discrete action space"),
    (["--gpus-per-trial", "0.5"], "--gpus-per-trial needs --device cuda"),
    (["--max-concurrent", "0"], "--max-concurrent: expected an integer >= 1"),
    (["--metric", "return"], "invalid choice: 'return'"),
    # valid but absurd: counted, never built (these used to end as "out of memory")
    (["--seeds", "0-99999999999"], "--seeds: 100000000000 seeds; at most 10000"),
    (["--grid", "tau=" + ",".join(f"0.{i + 1}" for i in range(9)),
      "--grid", "gamma=" + ",".join(f"0.{i + 1}" for i in range(9)),
      "--grid", "actor_lr=" + ",".join(f"{i + 1}e-4" for i in range(9)),
      "--grid", "critic_lr=" + ",".join(f"{i + 1}e-4" for i in range(9)),
      "--seeds", "0-9999"],
     "the sweep has 65,610,000 trials; at most 100,000"),
    (["--search", "random", "--samples", "1e9", "--space", "tau=uniform:0.001:0.01"],
     "the sweep has 1,000,000,000 trials; at most 100,000"),
    (["--max-failures", "1e3"], "--max-failures must be in [0, 100], got 1000"),
    (["--max-failures", "99999999999999999999"], "--max-failures: expected an integer below 2^63"),
    (["--total-steps", "1e400"], "total_steps must be at most 10^10, got 1.00e+400"),
    (["--grid", "noise_std=0.1,1e3"], "noise_std must be at most 100, got 1000.0"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), BAD, ids=[m[:30] for _, m in BAD])
def test_bad_input_is_one_line_before_anything_is_made(tmp_path, capsys, args, message):
    out = tmp_path / "sweep"
    # PORT: bound here and never listened on, so connecting is refused, and no other process
    # can start listening there meanwhile (a port found free and closed again could be taken).
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        args = [a.replace("PORT", str(unused.getsockname()[1])) for a in args]
        assert main(["sweep", *TINY, *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ddpg: error: ") and message in err, err
    assert not out.exists()


@pytest.fixture(autouse=True)
def _environment_restored():
    """The sweep sets Ray's environment variables in its process; tests run it in this one."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@needs_ray
def test_an_address_that_answers_but_is_not_ray(tmp_path, capsys):
    """A TCP server that accepts and says nothing: Ray's client gives up after its retries."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"127.0.0.1:{server.getsockname()[1]}"
        out = tmp_path / "sweep"
        assert main(["sweep", *TINY, "--address", address, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"ddpg: error: no Ray cluster at {address}")
    assert "within 5 s" in err  # the silent server never answered the HTTP/2 preface
    assert not out.exists()


@needs_ray
def test_address_auto_without_a_cluster(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))  # where `ray start` would record a cluster
    assert main(["sweep", *TINY, "--address", "auto", "--out", str(tmp_path / "s")]) == 2
    assert "--address auto: no running Ray cluster found" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_existing_out_is_refused_untouched(tmp_path, capsys):
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["sweep", *TINY, "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_missing_ray_names_the_extra(tmp_path, capsys, monkeypatch):
    for name in ("ray", "ray.tune"):
        monkeypatch.setitem(sys.modules, name, None)  # as if the extra were not installed
    assert main(["sweep", *TINY, "--out", str(tmp_path / "s")]) == 2
    assert capsys.readouterr().err == (
        'ddpg: error: ddpg sweep needs Ray Tune: pip install "ddpg[ray]"\n'
    )
    assert not (tmp_path / "s").exists()


def test_resume_refuses_changed_options_and_non_sweeps(tmp_path, capsys):
    assert main(["sweep", "--resume", str(tmp_path)]) == 2
    assert "is not a sweep directory" in capsys.readouterr().err
    assert main(["sweep", "--resume", str(tmp_path), "--seeds", "0-3"]) == 2
    assert "--seeds cannot be given with --resume" in capsys.readouterr().err


def stored_sweep(tmp_path: Path, **values) -> Path:
    """A sweep.json as `ddpg sweep` writes it (two grid points, seeds 0 and 1), with no Ray."""
    spec = build_spec(
        base=preset_config("pendulum", total_steps=2000, eval_every=500),
        preset="pendulum",
        fixed={"total_steps": 2000, "eval_every": 500},
        seeds=(0, 1),
        grid=parse_grid(["actor_lr=1e-3,3e-4"]),
    )
    sweep_dir = tmp_path / "sweep"
    (sweep_dir / "trials").mkdir(parents=True)
    write_spec(sweep_dir, spec)
    return sweep_dir


EDITS = {  # a hand-edited sweep.json that parses: refused as a new sweep's options would be
    "seeds-a-word": (lambda d: d | {"seeds": "zero"}, "is damaged (seeds is 'zero', not a list)"),
    "base-tau-7": (
        lambda d: d | {"base": d["base"] | {"tau": 7}},
        "sweep.json: invalid config: tau must be in (0, 1], got 7",
    ),
    "grid-gamma-1.5": (
        lambda d: d | {"grid": {"actor_lr": [1e-3, 3e-4], "gamma": [0.9, 1.5]}},
        "gamma must be in [0, 1), got 1.5",
    ),
    "seeds-too-many": (
        lambda d: d | {"seeds": list(range(10_001))},
        "--seeds: 10001 seeds; at most 10000",
    ),
    "points-not-the-grid": (
        lambda d: d | {"points": d["points"][:1]},
        "is damaged (its trials do not follow from its settings)",
    ),
    "seeds-twice": (lambda d: d | {"seeds": [0, 0]}, "--seeds: a seed is listed twice"),
    "seed-negative": (lambda d: d | {"seeds": [0, -1]}, "in [0, 2^63), got -1"),
    "max-failures-negative": (
        lambda d: d | {"max_failures": -1},
        "--max-failures must be in [0, 100], got -1",
    ),
    "scheduler-unknown": (lambda d: d | {"scheduler": "hyperband"}, "hyperband"),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_resume_validates_the_stored_plan_as_a_new_one_before_ray(tmp_path, capsys, edit):
    change, message = EDITS[edit]
    sweep_dir = stored_sweep(tmp_path)
    path = sweep_dir / "sweep.json"
    path.write_text(json.dumps(change(json.loads(path.read_text())), indent=2))
    before = snapshot(tmp_path)
    assert main(["sweep", "--resume", str(sweep_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ddpg: error: ") and message in err, err
    assert snapshot(tmp_path) == before  # sweep.json byte for byte, and no Ray directory


def test_an_unedited_stored_plan_reads_back_as_written(tmp_path):
    sweep_dir = stored_sweep(tmp_path)
    spec = read_spec(sweep_dir)
    names = [t.name for t in spec.trials()]
    assert names[::3] == ["actor_lr=0.001-seed=0", "actor_lr=0.0003-seed=1"]


def test_a_sweep_warns_of_each_costly_point_before_anything_is_made(capsys):
    """As `ddpg train` does, once per distinct line, naming the point where only some cost."""
    from ddpg.commands.sweep import _check_envs

    spec = build_spec(
        base=preset_config("pendulum", total_steps=10**6, eval_every=1000),
        preset="pendulum",
        fixed={"total_steps": 10**6, "eval_every": 1000},
        grid=parse_grid(["eval_episodes_during=1,1000,2000"]),
    )
    _check_envs(spec)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("ddpg: warning: evaluation will take up to 200,004,000 env steps")
    assert lines[0].endswith("(sweep point eval_episodes_during=1000)")
    assert lines[1].endswith("(sweep point eval_episodes_during=2000)")
    one = build_spec(base=preset_config("pendulum"), preset="pendulum", fixed={})
    _check_envs(one)
    assert capsys.readouterr().err == ""


# -- plain runs to compare trials with ------------------------------------------------------------
@pytest.fixture(scope="module")
def plain_runs(tmp_path_factory: pytest.TempPathFactory):
    """The run of a config done in one go in this process (no Ray), cached by config."""
    cache: dict[str, Path] = {}
    root = tmp_path_factory.mktemp("plain")

    def run(config: Config) -> Path:
        key = json.dumps(config.to_dict(), sort_keys=True)
        if key not in cache:
            run_dir = root / f"run{len(cache)}"
            trainer = start_run(config, run_dir, "pendulum", Console(quiet=True))
            trainer.run()
            finish_run(trainer)
            trainer.close()
            cache[key] = run_dir
        return cache[key]

    return run


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in csv.DictReader(f)]


def assert_same_run(trial_dir: Path, plain_dir: Path) -> None:
    """Bit-identical weights, CSV rows (wall time aside) and evaluation numbers."""
    for name in ("model_final.safetensors", "model_best.safetensors"):
        a, b = load_file(trial_dir / name), load_file(plain_dir / name)
        assert a.keys() == b.keys()
        for key in a:
            assert a[key].equal(b[key]), f"{trial_dir.name}: {name} {key} differs"
    for name in ("metrics.csv", "evaluations.csv"):
        assert rows(trial_dir / name) == rows(plain_dir / name), f"{trial_dir.name}: {name}"
    a, b = (json.loads((d / "evaluation.json").read_text()) for d in (trial_dir, plain_dir))
    a.pop("wall_time_s"), b.pop("wall_time_s")
    assert a == b


def assert_matches_plain_runs(sweep: Path, names: list[str], plain_runs) -> None:
    for name in names:
        trial = sweep / "trials" / name
        assert_same_run(trial, plain_runs(Config.from_dict(read_config(trial)["config"])))


def attempts(sweep: Path, name: str) -> list[dict]:
    path = sweep / "trials" / name / "trial.json"
    return json.loads(path.read_text())["attempts"] if path.exists() else []


def results_seen(sweep: Path, names: list[str] | None = None) -> int:
    """Results the driver has processed (Tune appends one line per result)."""
    files = [sweep / "tune" / name / "result.json" for name in names or NAMES]
    return sum(len(f.read_text().splitlines()) for f in files if f.exists())


def tune_checkpoints(sweep: Path, name: str) -> list[Path]:
    return sorted((sweep / "tune" / name).glob("checkpoint_*"))


# -- processes ------------------------------------------------------------------------------------
def ddpg(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "ddpg.cli", *map(str, args)]


def marked(marker: str, *dirs: Path) -> list[int]:
    """PIDs of the processes whose environment holds `marker` (set by the test that started
    them; every process Ray starts inherits it) or that hold a file open under one of `dirs`,
    the test's Ray temp dirs (Ray renames its agents and workers with setproctitle, which zeroes
    the start of their environment and can erase the marker)."""
    inside = tuple(f"{d.resolve()}/" for d in dirs)
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
                if marker.encode() in environ or (inside and holds_files_under(entry, inside)):
                    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        pids.append(int(entry.name))
            except (OSError, IndexError):
                continue
    return pids


def holds_files_under(process: Path, inside: tuple[str, ...]) -> bool:
    for fd in (process / "fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            if os.readlink(fd).startswith(inside):
                return True
    return False


def stop_marked(marker: str, *dirs: Path) -> None:
    """Stop every process the test started, by PID: SIGTERM, then SIGKILL what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in marked(marker, *dirs):
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while marked(marker, *dirs) and time.monotonic() < deadline:
            time.sleep(0.2)


def wait_for(condition, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the sweep ended (rc {proc.returncode}) before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def marker() -> Iterator[tuple[str, dict[str, str]]]:
    """An environment marker for the processes a test starts, all stopped at the end."""
    value = f"DDPG_SWEEP_TEST={secrets.token_hex(8)}"
    env = dict(os.environ, **dict([value.split("=", 1)]))
    try:
        yield value, env
    finally:
        stop_marked(value)


# -- a two-node cluster on this machine -----------------------------------------------------------
@pytest.fixture(scope="module")
def cluster() -> Iterator[dict]:
    """`ray start --head` with 1 CPU and a second node with 1 CPU, token authentication on,
    temp dirs short enough for Ray's sockets; every process stopped by PID at the end."""
    if not HAS_RAY:
        pytest.skip('the sweep tests need Ray: pip install -e ".[test,ray]"')
    root = Path(tempfile.mkdtemp(prefix="ddpg-rt-", dir="/tmp"))
    value = f"DDPG_SWEEP_TEST={secrets.token_hex(8)}"
    token = secrets.token_hex(32)
    # Trials at the priority of this test, as a local Ray's are (cluster.prepare_environment):
    # at Ray's default worker niceness of 15, any other work on the machine starves them and
    # the tests' deadlines run out.
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, RAY_worker_niceness="0")
    env.update([value.split("=", 1)])
    ray = str(Path(sys.executable).parent / "ray")
    port = next(p for p in iter(free_port, None) if not 10_000 <= p < 20_000)
    common = ["--num-cpus", "1", "--num-gpus", "0", "--disable-usage-stats"]
    try:
        for args in (
            ["--head", "--port", str(port), "--include-dashboard", "false",
             "--ray-client-server-port", str(free_port()), "--temp-dir", str(root / "h")],
            ["--address", f"127.0.0.1:{port}", "--temp-dir", str(root / "w")],
        ):  # fmt: skip
            done = subprocess.run(
                [ray, "start", *args, *common], env=env, capture_output=True, text=True,
                timeout=TIMEOUT,
            )  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
        nodes = {
            f.name.rsplit("_", 1)[1]
            for d in ("h", "w")
            for f in (root / d / "session_latest").glob("metrics_agent_port_*")
        }
        assert len(nodes) == 2
        # The driver gets the token but not the mode: the sweep must turn token mode on itself.
        driver_env = dict(os.environ, RAY_AUTH_TOKEN=token)
        driver_env.pop("RAY_AUTH_MODE", None)
        yield {"address": f"127.0.0.1:{port}", "nodes": nodes, "env": driver_env}
    finally:
        stop_marked(value, root)
        shutil.rmtree(root, ignore_errors=True)


def sweep_on_cluster(cluster: dict, *args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ddpg("sweep", *TINY, "--address", cluster["address"], *args),
        env=cluster["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


@needs_ray
def test_cluster_spreads_trials_retries_a_killed_worker_and_matches_plain_runs(
    cluster, plain_runs, tmp_path
):
    """Two trials on two 1-CPU nodes: one each. One trial's worker is killed with SIGKILL
    after its first report; Tune retries it from that checkpoint on a node, and both trials end
    bit-identical to plain runs of their configs (so identical to the same sweep on one node,
    which the local test below checks against the same plain runs)."""
    sweep = tmp_path / "sweep"
    proc = sweep_on_cluster(cluster, *GRID, "--out", sweep, "--max-failures", "2")
    # Tune registers a reported checkpoint in a save round trip after logging the result, and
    # fetches the next result only after that: a second result means the first checkpoint is
    # Tune's. (A checkpoint folder on disk is not enough: a kill before registration retries
    # from scratch, as seen on a loaded machine.)
    wait_for(lambda: results_seen(sweep, NAMES[:1]) >= 2, "two reports of the first trial", proc)
    victim = attempts(sweep, NAMES[0])[0]["pid"]
    os.kill(victim, signal.SIGKILL)
    rc, out, err = finish(proc)
    assert rc == 0, out + err
    assert f"{NAMES[0]}: worker lost; retrying from its last checkpoint" in out

    first_nodes = {attempts(sweep, name)[0]["node_id"] for name in NAMES}
    assert first_nodes == cluster["nodes"]  # one trial on each node
    retried = attempts(sweep, NAMES[0])
    assert len(retried) == 2 and retried[1]["pid"] != victim
    assert retried[1]["from_step"] >= 500 and retried[1]["node_id"] in cluster["nodes"]
    assert len(attempts(sweep, NAMES[1])) == 1
    assert_matches_plain_runs(sweep, NAMES, plain_runs)

    # Tune keeps at most two checkpoints per trial; the newest holds only the newest library one.
    for name in NAMES:
        *older, kept = tune_checkpoints(sweep, name)  # Tune keeps the newest two
        assert len(older) <= 1
        assert [p.name for p in (kept / name).iterdir()] == ["step-0000002000"]
    results = json.loads((sweep / "results.json").read_text())["trials"]
    assert [r["status"] for r in results] == ["finished", "finished"]
    assert not list(sweep.glob("trials/.report-*"))


@needs_ray
def test_asha_stopped_trial_writes_models_and_resumes_like_a_plain_run(
    cluster, plain_runs, tmp_path, capsys
):
    """One trial at a time: the second (200-step episodes, so far lower returns than the
    first's 50-step ones) is stopped by ASHA at its first rung (1000 steps >= grace 800). It
    still gets model files and evaluation.json, and `ddpg train --resume` takes it to its budget
    exactly as a plain run of its config."""
    sweep = tmp_path / "sweep"
    proc = sweep_on_cluster(
        cluster, "--grid", "max_episode_steps=50,200", "--scheduler", "asha",
        "--max-concurrent", "1", "--out", sweep,
    )  # fmt: skip
    rc, out, err = finish(proc)
    assert rc == 0, out + err
    assert read_spec(sweep).grace_period == 800
    results = {r["name"]: r for r in json.loads((sweep / "results.json").read_text())["trials"]}
    kept, dropped = results["max_episode_steps=50-seed=0"], results["max_episode_steps=200-seed=0"]
    assert (kept["status"], kept["steps"]) == ("finished", 2000)
    assert (dropped["status"], dropped["steps"]) == ("stopped early", 1000)
    stopped = sweep / "trials" / dropped["name"]
    evaluation = json.loads((stopped / "evaluation.json").read_text())
    assert evaluation["steps"] == 1000
    assert (stopped / "model_best.safetensors").is_file()
    assert (stopped / "model_final.safetensors").is_file()
    assert len(rows(stopped / "evaluations.csv")) == 2

    capsys.readouterr()
    assert main(["train", "--resume", str(stopped), "--quiet"]) == 0
    assert_matches_plain_runs(sweep, [dropped["name"], kept["name"]], plain_runs)


@needs_ray
def test_optuna_suggestions_train_every_seed_side_by_side(cluster, plain_runs, tmp_path):
    sweep = tmp_path / "sweep"
    proc = sweep_on_cluster(
        cluster, "--search", "optuna", "--samples", "2", "--seeds", "0,1",
        "--space", "actor_lr=loguniform:1e-4:1e-2", "--total-steps", "1000", "--out", sweep,
    )  # fmt: skip
    rc, out, err = finish(proc)
    assert rc == 0, out + err
    runs = sorted(p.name for p in (sweep / "trials").iterdir())
    assert len(runs) == 4 and all(r.startswith("optuna-") for r in runs)
    for suggestion in {r.rsplit("-seed=", 1)[0] for r in runs}:
        configs = [
            read_config(sweep / "trials" / f"{suggestion}-seed={s}")["config"] for s in (0, 1)
        ]
        assert configs[0]["actor_lr"] == configs[1]["actor_lr"]
        assert 1e-4 <= configs[0]["actor_lr"] <= 1e-2
        assert [c["seed"] for c in configs] == [0, 1]
        # Tune's result is the mean over the seeds of the newest evaluation
        result = [
            json.loads(line)
            for line in (sweep / "tune" / suggestion / "result.json").read_text().splitlines()
        ][-1]
        evals = [
            rows(sweep / "trials" / f"{suggestion}-seed={s}" / "evaluations.csv") for s in (0, 1)
        ]
        expected = sum(float(e[-1]["mean_return"]) for e in evals) / 2
        assert result["env_steps"] == 1000 and result["mean_return"] == pytest.approx(expected)
    # two runs trained side by side in one process end as if each had run alone
    assert_matches_plain_runs(sweep, runs[:2], plain_runs)


# -- a local Ray: Ctrl-C, a killed driver, resume -------------------------------------------------
@needs_ray
def test_local_sweep_survives_ctrl_c_and_a_killed_driver(marker, plain_runs, tmp_path):
    """SIGINT: exit 130, the resume command (shell-quoted: the path has a space), no Ray process
    left. Resume, then SIGKILL the driver mid-sweep; resume again: it finishes, and the trials
    are bit-identical to plain runs."""
    value, env = marker
    sweep = tmp_path / "my sweep"
    ray_dirs: list[Path] = []
    try:
        interrupt_kill_resume(sweep, value, env, plain_runs, ray_dirs)
    finally:  # the short temp dir that SWEEP_DIR/ray links to while the sweep is unfinished
        stop_marked(value, *ray_dirs)
        for short in ray_dirs:
            shutil.rmtree(short, ignore_errors=True)


def interrupt_kill_resume(
    sweep: Path, value: str, env: dict[str, str], plain_runs, ray_dirs: list[Path]
) -> None:
    local = [*TINY, *GRID, "--max-concurrent", "2"]

    proc = subprocess.Popen(ddpg("sweep", *local, "--out", sweep), env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    wait_for(lambda: results_seen(sweep) >= 1, "a first report", proc)
    proc.send_signal(signal.SIGINT)
    rc, out, err = finish(proc)
    ray_dir = sweep / "ray"  # the path is too long for Ray's sockets: a link to a short one
    short = ray_dir.resolve()
    if ray_dir.is_symlink():
        ray_dirs.append(short)
    assert rc == 130, out + err
    assert err.splitlines()[-1] == f"resume with: ddpg sweep --resume {shlex.quote(str(sweep))}"
    assert "Traceback" not in err
    assert marked(value, short) == []  # no Ray process left behind
    assert not (sweep / "results.json").exists()
    assert not any((sweep / "trials" / n / "evaluation.json").exists() for n in NAMES)
    assert ray_dir.is_symlink() and len(str(short)) <= 40 and short.is_dir()

    proc = subprocess.Popen(ddpg("sweep", "--resume", sweep), env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    seen = results_seen(sweep)
    wait_for(lambda: results_seen(sweep) > seen, "a report of the resumed sweep", proc)
    proc.kill()
    proc.communicate()
    assert not (sweep / "results.json").exists()  # killed mid-sweep

    rc, out, err = finish(
        subprocess.Popen(
            ddpg("sweep", "--resume", sweep),
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
    )
    assert rc == 0, out + err
    assert marked(value, short) == []  # the killed driver's agents too, whatever their marker
    # the finished sweep keeps Ray's logs in SWEEP_DIR/ray; the short folder is gone
    assert not ray_dir.is_symlink() and list(ray_dir.glob("session_*/logs/raylet.out"))
    assert not short.exists()
    assert_matches_plain_runs(sweep, NAMES, plain_runs)
    # the first resume continued from the checkpoint of the report seen before Ctrl-C
    assert any(a["from_step"] >= 500 for n in NAMES for a in attempts(sweep, n))
    spec = read_spec(sweep)
    assert spec.metric == "mean_return" and spec.seeds == (0,)


def test_ray_temp_dir_avoids_characters_a_shell_would_split(tmp_path: Path) -> None:
    """Ray passes its temp dir through a shell unquoted: SWEEP_DIR `''` made Ray time out
    starting and left a stray `ray` folder in the working directory. Such a SWEEP_DIR gets the
    short folder instead (linked from SWEEP_DIR/ray); such a --ray-temp-dir is refused."""
    from ddpg.sweep.cluster import ClusterError, temp_dir_for

    sweep = tmp_path / "a b'c"
    sweep.mkdir()
    temp = temp_dir_for(sweep, None)
    assert temp.name.startswith("ddpg-ray-") and (sweep / "ray").resolve() == temp.resolve()
    temp.rmdir()
    with pytest.raises(ClusterError, match="characters that Ray's start-up commands"):
        temp_dir_for(sweep, "/tmp/x y")
    assert temp_dir_for(sweep, "/tmp/ok-dir") == Path("/tmp/ok-dir")


HOLD_OPEN = """
import sys, time
f = open(sys.argv[1], sys.argv[2])
print("open", flush=True)
time.sleep(600)
"""


def test_leftovers_are_found_by_marker_or_by_the_files_they_write(tmp_path: Path) -> None:
    """What an earlier local Ray left is stopped on resume, found by the marker in its
    environment or, in the sweep's own temp dir, by a log it writes there: Ray's renamed agents
    and workers can lose the marker (setproctitle zeroes the start of their environment). A
    reader of a log (`tail -f`) is not Ray's and is left alone, as is a writer under a
    --ray-temp-dir (which another Ray may share) that lacks the marker."""
    from ddpg.sweep.cluster import SWEEP_MARKER, stop_leftovers

    temp = tmp_path / "ray"
    (temp / "session_1" / "logs").mkdir(parents=True)
    log = temp / "session_1" / "logs" / "raylet.out"
    log.write_text("")
    unmarked = {k: v for k, v in os.environ.items() if k != SWEEP_MARKER}

    def hold(mode: str, env: dict[str, str]) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-c", HOLD_OPEN, str(log), mode], env=env,
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert proc.stdout is not None and proc.stdout.readline() == "open\n"
        return proc

    procs = []
    try:
        writer, reader = hold("a", unmarked), hold("r", unmarked)
        procs += [writer, reader]
        assert stop_leftovers(temp, own_temp_dir=False) == 0  # a --ray-temp-dir: marker only
        assert writer.poll() is None
        assert stop_leftovers(temp, own_temp_dir=True) == 1
        assert writer.wait(timeout=TIMEOUT) == -signal.SIGKILL
        assert reader.poll() is None
        marked_one = hold("r", dict(unmarked, **{SWEEP_MARKER: str(temp)}))
        procs.append(marked_one)
        assert stop_leftovers(temp, own_temp_dir=False) == 1
        assert marked_one.wait(timeout=TIMEOUT) == -signal.SIGKILL
        assert reader.poll() is None
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


# -- a trial whose Tune checkpoint is gone or damaged ---------------------------------------------
# The values of TINY's trials with actor_lr=1e-3, as a Config (for tests without Ray).
TRIAL_VALUES = dict(
    total_steps=2000, learning_starts=300, eval_every=500, hidden_size=16, batch_size=32,
    eval_episodes=2, eval_episodes_during=2, tensorboard=False, torch_threads=1, actor_lr=1e-3,
)  # fmt: skip


def member(root: Path, seed: int = 0):
    from ddpg.sweep.trial import Member

    return Member(root / f"seed={seed}", preset_config("pendulum", seed=seed, **TRIAL_VALUES))


def attempt_until(m, step: int) -> None:
    """An attempt of the trial that trained `m` in its chunks up to `step`, then stopped."""
    trainer = start_run(m.config, m.run_dir, "pendulum", Console(quiet=True))
    for target in range(500, step + 1, 500):
        trainer.run(max_steps=target)
    trainer.close()


def continue_until(m, step: int) -> None:
    from ddpg.runs import resume_run

    trainer = resume_run(m.run_dir, {}, Console(quiet=True))[0]
    trainer.run(max_steps=step)
    trainer.close()


def damage(path: Path) -> None:
    """Cut a file in half, through a new file (a hard-linked twin keeps its content)."""
    data = path.read_bytes()
    cut = path.with_name(path.name + ".cut")
    cut.write_bytes(data[: len(data) // 2])
    os.replace(cut, path)


def run_trial(members: list, saved: Path | None) -> tuple:
    """What a trial attempt does: prepare the runs, open them, train, reporting (step, each
    run's newest mean return) where a trial would report to Tune."""
    from ddpg.sweep.trial import last_value, open_runs, prepare_runs, train_runs

    start = prepare_runs(members, saved)
    reports: list[tuple[int, list[float | None]]] = []
    with open_runs(members, start, "pendulum") as trainers:
        steps = [t.state.step for t in trainers]
        train_runs(
            members,
            trainers,
            start,
            lambda step: reports.append(
                (step, [last_value(m.run_dir, "mean_return") for m in members])
            ),
        )
    return start, steps, reports


def evaluation_at(run_dir: Path, step: int) -> float:
    (row,) = [r for r in rows(run_dir / "evaluations.csv") if int(r["step"]) == step]
    return float(row["mean_return"])


def test_without_tune_checkpoint_each_run_resumes_from_its_newest_good_one(tmp_path, plain_runs):
    """Two runs of one trial (an Optuna suggestion trains its seeds side by side) left by an
    attempt that stopped while the second trained its second chunk, the first run's newest
    checkpoint damaged, and no Tune checkpoint. The first run resumes from its newest good one
    (1000; the damaged one set aside, as `ddpg train --resume` does), the second from 500 and
    catches up unreported; the first report is at 1000 with both runs there, and both end as
    plain runs of their configs."""
    a, b = member(tmp_path, 0), member(tmp_path, 1)
    attempt_until(a, 1500)
    attempt_until(b, 500)
    damage(a.run_dir / "checkpoints" / "step-0000001500" / "weights.safetensors")

    start, steps, reports = run_trial([a, b], None)
    assert (start.resumed, start.reported, steps) == ((True, True), None, [1000, 500])
    assert [step for step, _ in reports] == [1000, 1500, 2000]
    plain = [plain_runs(m.config) for m in (a, b)]
    for step, values in reports:  # every report has both runs at its step
        assert values == [evaluation_at(p, step) for p in plain]
    assert (a.run_dir / "checkpoints" / "damaged-step-0000001500").is_dir()
    for m, p in zip((a, b), plain, strict=True):
        assert_same_run(m.run_dir, p)


@pytest.mark.parametrize("tune_damaged", [False, True], ids=["good", "damaged"])
def test_a_damaged_tune_checkpoint_is_not_installed(tmp_path, plain_runs, tune_damaged):
    """Tune's checkpoint is of the report at 1000; the run went on to 1500 before its attempt
    stopped. A good Tune checkpoint is put back (1500 removed: Tune never saw its report); a
    damaged one is not used, and the run resumes from its own 1500, keeping it. Both end as a
    plain run."""
    from ddpg.sweep.trial import linked_checkpoints

    a = member(tmp_path / "trials", 0)
    attempt_until(a, 1000)
    saved = tmp_path / "tune" / "checkpoint_000001"
    with linked_checkpoints(tmp_path, "t", [a], 1000) as folder:
        shutil.copytree(folder, saved)  # as Tune persists a reported checkpoint
    continue_until(a, 1500)
    if tune_damaged:
        damage(saved / a.run_dir.name / "step-0000001000" / "state.json")

    start, steps, reports = run_trial([a], saved)
    assert start.reported == (None if tune_damaged else 1000)
    assert steps == [1500 if tune_damaged else 1000]
    assert [step for step, _ in reports] == [1500, 2000]
    assert_same_run(a.run_dir, plain_runs(a.config))


def test_a_run_with_progress_is_never_removed(tmp_path):
    """Without a Tune checkpoint a run starts afresh only if it holds no checkpoint (what an
    attempt left before its first one is removed); a run of another config is refused, and one
    whose every checkpoint is damaged fails to resume; both untouched."""
    from ddpg.errors import CheckpointError
    from ddpg.sweep.trial import Member, open_runs, prepare_runs

    unstarted = member(tmp_path, 0)
    start_run(unstarted.config, unstarted.run_dir, "pendulum", Console(quiet=True)).close()
    assert (unstarted.run_dir / "config.json").is_file()
    assert prepare_runs([unstarted], None).resumed == (False,)
    assert not unstarted.run_dir.exists()

    other = member(tmp_path, 1)
    attempt_until(other, 500)
    before = snapshot(other.run_dir)
    foreign = Member(other.run_dir, other.config.replace(seed=7))
    with pytest.raises(RunDirError, match="holds files this sweep did not make"):
        prepare_runs([foreign], None)
    assert snapshot(other.run_dir) == before

    damage(other.run_dir / "checkpoints" / "step-0000000500" / "weights.safetensors")
    before = snapshot(other.run_dir)
    start = prepare_runs([other], None)
    assert start.resumed == (True,)
    with (
        pytest.raises(CheckpointError, match="no valid checkpoint in"),
        open_runs([other], start, "pendulum"),
    ):
        pass
    assert snapshot(other.run_dir) == before


def sweep_process(env: dict[str, str], *args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ddpg("sweep", *args), env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


@needs_ray
def test_resume_without_tune_checkpoints_matches_an_uninterrupted_sweep(marker, tmp_path):
    """A local sweep of two trials stopped with Ctrl-C once each trial has reported twice (so
    Tune holds a checkpoint of each). Then one trial's Tune checkpoints are deleted (Tune's own
    restore would fail it on every retry) and the newest checkpoint of its run damaged; the
    other's Tune checkpoints are damaged. The resumed sweep restarts each trial from its run's
    newest good checkpoint, reports first at that step, and both trials end bit-identical to
    the same sweep run without a stop."""
    value, env = marker
    local = [*TINY, "--total-steps", "2500", *GRID, "--max-concurrent", "2"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    try:
        rc, out, err = finish(sweep_process(env, *local, "--out", whole))
        assert rc == 0, out + err

        proc = sweep_process(env, *local, "--out", cut)
        wait_for(
            lambda: min(results_seen(cut, [n]) for n in NAMES) >= 2,
            "two reports of each trial",
            proc,
        )
        proc.send_signal(signal.SIGINT)
        rc, out, err = finish(proc)
        assert rc == 130, out + err
        assert marked(value) == []  # nothing writes into the sweep any more
        gone, damaged = NAMES
        own = {n: sorted((cut / "trials" / n / "checkpoints").glob("step-*")) for n in NAMES}
        for name in NAMES:
            assert not (cut / "trials" / name / "evaluation.json").exists(), f"{name} ended"
            assert tune_checkpoints(cut, name) and len(own[name]) == 2
        for checkpoint in tune_checkpoints(cut, gone):
            shutil.rmtree(checkpoint)
        for checkpoint in tune_checkpoints(cut, damaged):
            for file in checkpoint.rglob("weights.safetensors"):
                damage(file)
        damage(own[gone][-1] / "weights.safetensors")
        expected = {gone: own[gone][0].name, damaged: own[damaged][-1].name}
        reported = {n: results_seen(cut, [n]) for n in NAMES}

        rc, out, err = finish(sweep_process(env, "--resume", cut))
        assert rc == 0, out + err
        assert "worker lost" not in out and "failed" not in out, out
        assert marked(value) == []
        for name in NAMES:
            last = attempts(cut, name)[-1]
            assert (last["from"], f"step-{last['from_step']:010d}") == ("run", expected[name])
            lines = (cut / "tune" / name / "result.json").read_text().splitlines()
            assert json.loads(lines[reported[name]])["env_steps"] == last["from_step"]
            assert_same_run(cut / "trials" / name, whole / "trials" / name)
        assert own[gone][-1].with_name(f"damaged-{own[gone][-1].name}").is_dir()
        results = json.loads((cut / "results.json").read_text())["trials"]
        assert [(r["status"], r["steps"]) for r in results] == [("finished", 2500)] * 2
    finally:  # the short temp dirs that SWEEP_DIR/ray links to while a sweep is unfinished
        for sweep in (whole, cut):
            if (sweep / "ray").is_symlink():
                shutil.rmtree((sweep / "ray").resolve(), ignore_errors=True)
