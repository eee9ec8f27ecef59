"""`ddpg report` and `ddpg.stats`: numbers checked by hand against real tiny runs."""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_TRAIN

from ddpg.cli import main
from ddpg.stats import iqm, stratified_bootstrap_ci

# Seven tiny Pendulum runs (100 updates each, about a second): actor_lr 1e-3 with 5 seeds (seed 4
# also changes two fields that must not separate configurations) and actor_lr 3e-4 with 2 seeds.
RUNS = [("a", "0.001", seed) for seed in range(5)] + [("b", "0.0003", seed) for seed in range(2)]


def run_main(argv: list) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(result: tuple[int, str, str], *fragments: str) -> None:
    code, out, err = result
    assert code == 2 and out == "", (code, out, err)
    assert "Traceback" not in err
    assert err.startswith("ddpg: error: ") and err.count("\n") == 1, repr(err)
    for fragment in fragments:
        assert fragment in err, (fragment, err)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A sweep-like directory: SWEEP/trials/<name>/ run directories, plus a folder of no run."""
    root = tmp_path_factory.mktemp("report") / "sweep"
    for name, lr, seed in RUNS:
        extra = ["--log-every", "5", "--checkpoint-every", "100"] if seed == 4 else []
        run_dir = root / "trials" / f"{name}-s{seed}"
        argv = [*TINY_TRAIN, "--actor-lr", lr, "--seed", seed, "--run-dir", run_dir, *extra]
        assert run_main(argv)[0] == 0
    (root / "ray-tmp" / "session").mkdir(parents=True)
    (root / "ray-tmp" / "session" / "notes.txt").write_text("not a run\n")
    (root / "config.json").write_text('{"sweep": "settings of another shape"}\n')
    return root


@pytest.fixture
def work(sweep, tmp_path) -> Path:
    """A private copy of the sweep, for tests that write into it or damage it."""
    shutil.copytree(sweep, tmp_path / "sweep")
    return tmp_path / "sweep"


def evaluations(run_dir: Path) -> list[tuple[int, float]]:
    with open(run_dir / "evaluations.csv", newline="") as f:
        return [(int(r["step"]), float(r["mean_return"])) for r in csv.DictReader(f)]


def final_evaluation(run_dir: Path) -> dict:
    return json.loads((run_dir / "evaluation.json").read_text())


def trial(root: Path, name: str, seed: int) -> Path:
    return root / "trials" / f"{name}-s{seed}"


# -- statistics ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([7.0], 7.0),
        ([3.0, 1.0], 2.0),
        ([1.0, 2.0, 9.0], 4.0),  # below 4 scores nothing is cut: the mean
        ([4.0, 1.0, 3.0, 100.0], 3.5),  # cut 1 each end: mean of 3 and 4
        ([10.0, -5.0, 0.0, 2.0, 50.0], 4.0),  # cut 1 each end: mean of 0, 2, 10
        ([1, 2, 3, 4, 5, 6, 7, 80], 4.5),  # cut 2 each end: mean of 3..6
        ([0, 0, 1, 2, 3, 4, 5, 6, 1000], 3.0),  # cut 2 each end: mean of 1..5
    ],
)
def test_iqm_by_hand(scores, expected):
    assert iqm(scores) == pytest.approx(expected, rel=1e-15)


def test_iqm_matches_scipy_trim_mean():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(5)
    for n in range(1, 25):
        x = rng.normal(size=n) * 100
        assert iqm(x) == pytest.approx(stats.trim_mean(x, 0.25), rel=1e-12, abs=1e-12)
    x = rng.normal(size=(30, 7))
    np.testing.assert_allclose(iqm(x, axis=1), stats.trim_mean(x, 0.25, axis=1), rtol=1e-12)


def test_bootstrap_matches_scipy_bootstrap():
    # Same data, independent random draws: the intervals agree within Monte Carlo error.
    pytest.importorskip("scipy", minversion="1.15")  # bootstrap's rng argument
    import scipy.stats as stats

    def trimmed(*samples, axis):
        return stats.trim_mean(np.concatenate(samples, axis=-1), 0.25, axis=-1)

    rng = np.random.default_rng(1)
    for strata in ([rng.normal(size=12) * 50], [rng.normal(size=4), rng.normal(size=3) + 5]):
        ours = stratified_bootstrap_ci(strata)
        theirs = stats.bootstrap(
            strata, trimmed, n_resamples=10_000, method="percentile", rng=3, vectorized=True
        ).confidence_interval
        width = np.ptp(np.concatenate(strata))
        assert abs(ours[0] - theirs.low) < 0.05 * width
        assert abs(ours[1] - theirs.high) < 0.05 * width


def test_iqm_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        iqm([])


def test_bootstrap_degenerate_cases():
    assert stratified_bootstrap_ci([[4.0]]) == (4.0, 4.0)
    assert stratified_bootstrap_ci([[2.0, 2.0, 2.0]]) == (2.0, 2.0)
    # Two seeds: replicate means are a, (a+b)/2, b with probabilities 1/4, 1/2, 1/4, so the 2.5%
    # and 97.5% quantiles are a and b.
    assert stratified_bootstrap_ci([[-3.0, 5.0]]) == (-3.0, 5.0)
    # One run per stratum: every replicate is the same pool, so the interval is a point. A
    # bootstrap that pooled the strata would give (1, 100).
    assert stratified_bootstrap_ci([[1.0], [100.0]]) == (50.5, 50.5)


def exact_quantile_range(values: list[float], q: float, slack: float) -> tuple[float, float]:
    """The range of the exact bootstrap distribution's quantiles between q - slack and q + slack."""
    ordered = np.sort(values)
    n = len(ordered)
    return ordered[int(np.floor((q - slack) * n))], ordered[int(np.ceil((q + slack) * n)) - 1]


def test_bootstrap_against_the_exact_bootstrap_distribution():
    # All 5**5 equally likely resamples of 5 scores, IQM of each: the exact bootstrap
    # distribution. The Monte Carlo interval's ends must lie within its quantiles q +- 0.005
    # (about 3 standard errors of a quantile position with 10,000 replicates).
    scores = [0.0, 1.0, 2.0, 3.0, 100.0]
    exact = [iqm([scores[i] for i in idx]) for idx in itertools.product(range(5), repeat=5)]
    low, high = stratified_bootstrap_ci([scores])
    lo_range = exact_quantile_range(exact, 0.025, 0.005)
    hi_range = exact_quantile_range(exact, 0.975, 0.005)
    assert lo_range[0] <= low <= lo_range[1] and hi_range[0] <= high <= hi_range[1]
    assert (low, high) == stratified_bootstrap_ci([scores])  # fixed seed: reproducible


def test_stratified_bootstrap_against_the_exact_distribution():
    # Strata of 3 and 2 scores: 3**3 * 2**2 resamples, each keeping 3 from A and 2 from B.
    a, b = [0.0, 1.0, 2.0], [10.0, 20.0]
    exact = [
        iqm([a[i] for i in ia] + [b[j] for j in jb])
        for ia in itertools.product(range(3), repeat=3)
        for jb in itertools.product(range(2), repeat=2)
    ]
    low, high = stratified_bootstrap_ci([a, b])
    lo_range = exact_quantile_range(exact, 0.025, 0.005)
    hi_range = exact_quantile_range(exact, 0.975, 0.005)
    assert lo_range[0] <= low <= lo_range[1] and hi_range[0] <= high <= hi_range[1]
    # Stratified, the lowest replicate is A's 0 three times with B's 10 twice: IQM of
    # [0, 0, 0, 10, 10] is 10/3. Pooled, replicates of A's scores alone go far lower.
    assert low >= min(exact) == pytest.approx(10 / 3)
    assert stratified_bootstrap_ci([a + b])[0] < 1


def test_bootstrap_with_another_statistic_and_level():
    low, high = stratified_bootstrap_ci([[0.0, 10.0]], lambda x: x.max(axis=1), confidence=0.6)
    # max of 2 resampled from {0, 10}: 0 with probability 1/4 (above the 20% quantile), else 10.
    assert (low, high) == (0.0, 10.0)


# -- the report of a sweep -------------------------------------------------------------------------
def test_report_of_a_sweep_by_hand(work):
    every = {(n, s): evaluations(trial(work, n, s)) for n, _, s in RUNS}
    highest = [max(m for _, m in rows) for rows in every.values()]
    distinct = sorted(set(highest))  # a-s0 and b-s0 share their evaluations before learning
    threshold = (distinct[1] + distinct[2]) / 2  # some runs reach it, some do not
    reaching = sum(h >= threshold for h in highest)
    assert 2 <= reaching <= 5

    code, out, err = run_main(["report", work, "--threshold", threshold])
    assert code == 0 and err == "", err
    report = json.loads((work / "report.json").read_text())
    assert report["generator"] == "ddpg report" and report["score"] == "final"
    configs = report["configs"]
    assert [c["overrides"] for c in configs] == [{"actor_lr": 0.0003}, {"actor_lr": 0.001}]
    assert [c["name"] for c in configs] == ["actor_lr=0.0003", "actor_lr=0.001"]
    assert [c["seeds"] for c in configs] == [2, 5]
    assert report["skipped"] == []
    for config, name in zip(configs, ["b", "a"], strict=True):
        seeds = range(config["seeds"])
        assert config["env_id"] == "Pendulum-v1" and config["unfinished"] == 0
        assert [r["run_dir"] for r in config["runs"]] == [f"trials/{name}-s{s}" for s in seeds]
        finals = [final_evaluation(trial(work, name, s))["final"]["mean_return"] for s in seeds]
        bests = [final_evaluation(trial(work, name, s))["best"]["mean_return"] for s in seeds]
        assert [r["final"] for r in config["runs"]] == finals
        assert [r["best"] for r in config["runs"]] == bests
        ordered = sorted(finals)
        by_hand_iqm = sum(ordered[1:4]) / 3 if len(finals) == 5 else sum(finals) / 2
        assert config["iqm"] == pytest.approx(by_hand_iqm, rel=1e-12)
        assert config["mean"] == pytest.approx(sum(finals) / len(finals), rel=1e-12)
        by_hand_median = ordered[2] if len(finals) == 5 else sum(finals) / 2
        assert config["median"] == pytest.approx(by_hand_median, rel=1e-12)
        assert config["final"]["iqm"] == config["iqm"]
        best_sorted = sorted(bests)
        best_iqm = sum(best_sorted[1:4]) / 3 if len(bests) == 5 else sum(bests) / 2
        assert config["best"]["iqm"] == pytest.approx(best_iqm, rel=1e-12)
        assert min(finals) <= config["ci_low"] <= config["iqm"] <= config["ci_high"] <= max(finals)
        if len(finals) == 2:  # two seeds: the interval is exactly [min, max] (see above)
            assert (config["ci_low"], config["ci_high"]) == (min(finals), max(finals))
        steps_to = []
        for s in seeds:
            hits = [step for step, mean in every[(name, s)] if mean >= threshold]
            steps_to.append(hits[0] if hits else None)
        assert [r["steps_to_threshold"] for r in config["runs"]] == steps_to
        reached = sorted(x for x in steps_to if x is not None)
        assert config["threshold"]["reached"] == len(reached)
        assert config["threshold"]["evaluated"] == len(finals)
        assert config["threshold"]["median_steps"] == (
            float(np.median(reached)) if reached else None
        )
    assert sum(c["threshold"]["reached"] for c in configs) == reaching

    # The table: one line per configuration with its seeds and IQM.
    lines = out.splitlines()
    for config in configs:
        (line,) = [x for x in lines if x.startswith(config["name"] + " ")]
        cells = line.split()
        assert cells[1:4] == ["Pendulum-v1", str(config["seeds"]), f"{config['iqm']:.1f}"]
        assert f"[{config['ci_low']:.1f}, {config['ci_high']:.1f}]" in line
    assert lines[-1] == f"wrote {work / 'report.md'}, {work / 'report.json'}, {work / 'report.png'}"

    markdown = (work / "report.md").read_text()
    assert "| actor_lr=0.001 | Pendulum-v1 | 5 |" in markdown
    assert "![learning curves](report.png)" in markdown

    # Reproducible, and our own files are replaced without --force.
    first = (work / "report.json").read_bytes()
    assert run_main(["report", work, "--threshold", threshold])[0] == 0
    assert (work / "report.json").read_bytes() == first


def test_learning_curve_png(work):
    import matplotlib.image

    assert run_main(["report", work])[0] == 0
    image = matplotlib.image.imread(work / "report.png")
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500
    rgb = image[..., :3]
    assert (rgb < 0.9).any(axis=-1).mean() > 0.02  # not blank
    for color in ("#1f77b4", "#ff7f0e"):  # one line per configuration, in matplotlib's cycle
        target = np.array([int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)])
        assert (np.abs(rgb - target).max(axis=-1) < 0.02).sum() > 50, color


def test_ignored_fields_and_split_by(sweep, tmp_path):
    code, out, _ = run_main(["report", sweep, "--split-by", "log_every", "--out", tmp_path])
    assert code == 0
    configs = json.loads((tmp_path / "report.json").read_text())["configs"]
    # seed 4 of actor_lr 1e-3 also used log_every 5 (the others the preset's 10): now apart.
    assert [(c["name"], c["seeds"]) for c in configs] == [
        ("actor_lr=0.0003, log_every=10", 2),
        ("actor_lr=0.001, log_every=5", 1),
        ("actor_lr=0.001, log_every=10", 4),
    ]
    assert "log_every" not in json.loads((tmp_path / "report.json").read_text())["grouped_without"]


def test_run_dirs_given_directly(sweep, tmp_path, monkeypatch):
    runs = [trial(sweep, "a", 0), trial(sweep, "a", 1), trial(sweep, "b", 0)]
    code, out, err = run_main(["report", *runs, "--out", tmp_path / "out", "--score", "best"])
    assert code == 0 and err == ""
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [(c["name"], c["seeds"]) for c in report["configs"]] == [
        ("actor_lr=0.0003", 1),
        ("actor_lr=0.001", 2),
    ]
    (one, two) = report["configs"]
    assert one["iqm"] == one["best"]["iqm"] == final_evaluation(runs[2])["best"]["mean_return"]
    assert [r["run_dir"] for r in two["runs"]] == [
        os.path.relpath(r, tmp_path / "out") for r in runs[:2]
    ]
    assert "best policy's mean return" in out
    # Several run directories and no --out: a new report-<time> directory here.
    monkeypatch.chdir(tmp_path)
    assert run_main(["report", *runs])[0] == 0
    (made,) = tmp_path.glob("report-*")
    assert sorted(p.name for p in made.iterdir()) == ["report.json", "report.md", "report.png"]
    # One configuration only: named after its preset, with empty overrides.
    assert run_main(["report", runs[0], "--out", tmp_path / "single"])[0] == 0
    (single,) = json.loads((tmp_path / "single" / "report.json").read_text())["configs"]
    assert single["name"] == "pendulum" and single["overrides"] == {} and single["seeds"] == 1


def test_duplicate_seed_is_counted_and_warned(work):
    shutil.copytree(trial(work, "a", 0), work / "trials" / "a-s0-again")
    code, out, err = run_main(["report", work])
    assert code == 0
    assert err.startswith("ddpg: warning: seed 0 of actor_lr=0.001 is used by 2 runs")
    assert err.count("\n") == 1
    assert [c["seeds"] for c in json.loads((work / "report.json").read_text())["configs"]] == [2, 6]


def test_unfinished_run_uses_its_periodic_evaluations(work, tmp_path):
    run = trial(work, "b", 1)
    (run / "evaluation.json").unlink()  # as a run interrupted before its final evaluation
    with open(run / "evaluations.csv", "a") as f:
        f.write("400,9,-1.5")  # a row still being written (no newline): left out
    code, out, err = run_main(["report", trial(work, "b", 0), run, "--out", tmp_path / "o"])
    assert code == 0 and err == ""
    (config,) = json.loads((tmp_path / "o" / "report.json").read_text())["configs"]
    with open(run / "evaluations.csv") as f:
        means = [float(line.split(",")[2]) for line in f.read().splitlines()[1:-1]]
    entry = config["runs"][1]
    assert entry["finished"] is False and entry["steps"] == 300
    assert entry["final"] == means[-1] and entry["best"] == max(means)
    assert config["unfinished"] == 1
    assert "2*" in out and "includes unfinished runs" in out


# -- errors --------------------------------------------------------------------------------------
def test_no_run_dirs(tmp_path):
    assert_one_line_error(run_main(["report", tmp_path]), "no run directories")
    assert_one_line_error(run_main(["report", tmp_path / "nope"]), "does not exist")
    assert list(tmp_path.iterdir()) == []


def damage(run_dir: Path, how: str) -> str:
    """Damage one file of a run as a user could; returns a fragment of the expected reason."""
    if how == "config":
        (run_dir / "config.json").write_text('{"config": {"env_id": "Pend')
        return "config.json is damaged"
    if how == "config-bytes":
        (run_dir / "config.json").write_bytes(b'{"config": {"env_id": "\xff\xfe"}}')
        return "config.json is damaged"
    if how == "config-key":
        data = json.loads((run_dir / "config.json").read_text())
        data["config"]["actor_learning_rate"] = 0.1
        (run_dir / "config.json").write_text(json.dumps(data))
        return "unknown config key"
    if how == "no-evaluations":
        (run_dir / "evaluation.json").unlink()
        path = run_dir / "evaluations.csv"
        path.write_text(path.read_text().splitlines()[0] + "\n")
        return "has no evaluations yet"
    if how == "csv-value":
        path = run_dir / "evaluations.csv"
        lines = path.read_text().splitlines(keepends=True)
        lines[2] = lines[2].replace(lines[2].split(",")[2], "-1O5.3")
        path.write_text("".join(lines))
        return "line 3 mean_return is '-1O5.3'"
    if how == "csv-bytes":
        path = run_dir / "evaluations.csv"
        path.write_bytes(path.read_bytes()[:40] + b"\xff\xfe" + path.read_bytes()[40:])
        return "evaluations.csv is not UTF-8"
    if how == "evaluation-json":
        (run_dir / "evaluation.json").write_text('{"final": {"mean_return": "x"}}')
        return "final.mean_return is 'x'"
    raise AssertionError(how)


DAMAGES = [
    "config",
    "config-bytes",
    "config-key",
    "no-evaluations",
    "csv-value",
    "csv-bytes",
    "evaluation-json",
]


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_run_alone_is_an_error(work, how):
    run = trial(work, "a", 2)
    reason = damage(run, how)
    before = sorted(p.name for p in run.iterdir())
    assert_one_line_error(run_main(["report", run]), str(run), reason)
    assert sorted(p.name for p in run.iterdir()) == before  # nothing written


@pytest.mark.parametrize("how", ["config", "csv-bytes", "no-evaluations"])
def test_a_damaged_run_among_good_ones_is_skipped(work, how):
    run = trial(work, "a", 2)
    reason = damage(run, how)
    code, out, err = run_main(["report", work])
    assert code == 0
    assert err.count("\n") == 1 and err.startswith(f"ddpg: warning: skipped {run}: "), err
    assert reason in err
    report = json.loads((work / "report.json").read_text())
    assert report["skipped"] == [
        {"run_dir": "trials/a-s2", "reason": err.split(": ", 3)[3].strip()}
    ]
    assert [c["seeds"] for c in report["configs"]] == [2, 4]


def test_all_runs_damaged(work):
    for seed in range(2):
        damage(trial(work, "b", seed), "csv-value")
    runs = [trial(work, "b", 0), trial(work, "b", 1)]
    assert_one_line_error(run_main(["report", *runs, "--out", work / "o"]), "none of 2")
    assert not (work / "o").exists()


def test_refuses_files_it_did_not_write(work):
    (work / "report.md").write_text("# my notes\n")
    assert_one_line_error(run_main(["report", work]), "report.md exists", "--force")
    assert (work / "report.md").read_text() == "# my notes\n"
    assert not (work / "report.json").exists() and not (work / "report.png").exists()
    code, _, _ = run_main(["report", work, "--force"])
    assert code == 0 and (work / "report.md").read_text().startswith("<!-- written by ddpg report")
    # A PNG from elsewhere is not ours either.
    import matplotlib.pyplot as plt

    plt.imsave(work / "report.png", np.zeros((4, 4, 3)))
    assert_one_line_error(run_main(["report", work]), "report.png exists")


def test_unwritable_output(sweep, tmp_path):
    (tmp_path / "file").write_text("x")
    code, out, err = run_main(["report", sweep, "--out", tmp_path / "file" / "out"])
    assert (code, out) == (4, "") and err == f"ddpg: error: not a directory: {tmp_path / 'file'}\n"
    assert_one_line_error(
        run_main(["report", sweep, "--out", tmp_path / "file"]), "not a directory"
    )
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            code, out, err = run_main(["report", sweep, "--out", locked])
            assert (code, err) == (4, f"ddpg: error: permission denied: {locked}\n")
        finally:
            locked.chmod(0o700)


def test_bad_options(sweep):
    assert_one_line_error(run_main(["report", sweep, "--split-by", "devise"]), "'device'")
    assert_one_line_error(run_main(["report", sweep, "--threshold", "nan"]), "--threshold")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["report", str(sweep), "--score", "peak"])
    assert code == 2 and "invalid choice" in err.getvalue()
    assert len(err.getvalue().splitlines()) == 1


def test_config_normalization():
    from ddpg.report import normalized_config

    older = {k: v for k, v in normalized_config({}).items() if k != "hidden_size_2"}
    assert normalized_config(older) == normalized_config({})  # a field added since: its default
    as_int = normalized_config({"actor_lr": 1, "updates_per_step": 2})
    assert json.dumps(as_int) == json.dumps(
        normalized_config({"actor_lr": 1.0, "updates_per_step": 2.0})
    )
    assert as_int["hidden_size"] == 256 and isinstance(as_int["hidden_size"], int)
