"""`ddpg.runreader`: one reading and grouping of run directories for `ddpg plot` and `ddpg
report`, checked on real tiny runs."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_TRAIN

from ddpg.cli import main
from ddpg.plots import curve_groups
from ddpg.runreader import IGNORED_FIELDS, group_runs, load_run, load_runs, read_record

# Three tiny Pendulum runs (100 updates each): a-s0 and a-s1 differ in the seed and in two
# logging fields only, so they are two seeds of one configuration; b-s0 changes actor_lr.
RUNS = {
    "a-s0": ["--actor-lr", "0.001", "--seed", "0"],
    "a-s1": ["--actor-lr", "0.001", "--seed", "1", "--log-every", "5", "--checkpoint-every", "100"],
    "b-s0": ["--actor-lr", "0.0003", "--seed", "0"],
}


def run_main(argv: list) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runreader") / "runs"
    for name, extra in RUNS.items():
        assert run_main([*TINY_TRAIN, *extra, "--run-dir", root / name]) == (0, "", "")
    return root


def names(groups) -> list[list[str]]:
    return [[run.run_dir.name for run in group.runs] for group in groups]


def test_plot_and_report_group_the_same_runs_identically(runs):
    """Before, plot separated a-s1 from a-s0 (its log_every and checkpoint_every differ) while
    report took them as two seeds of one configuration."""
    reported, skipped = load_runs([runs])
    assert skipped == []
    by_report = group_runs(reported)
    by_plot = curve_groups(sorted(runs.iterdir()))
    assert names(by_plot) == names(by_report) == [["b-s0"], ["a-s0", "a-s1"]]
    assert [g.name for g in by_plot] == [g.name for g in by_report]
    assert [g.name for g in by_report] == ["actor_lr=0.0003", "actor_lr=0.001"]
    assert [g.config for g in by_plot] == [g.config for g in by_report]
    assert not set(IGNORED_FIELDS) & set(by_plot[0].config)


@pytest.mark.parametrize(
    ("field", "order"),
    [("log_every", ["a-s1", "a-s0"]), ("checkpoint_every", ["a-s0", "a-s1"])],  # 5 < 20, 0 < 100
)
def test_split_by_keeps_an_ignored_field_apart_for_both_readers(runs, field, order):
    """Groups sort by the differing fields in Config's order: actor_lr, then `field`."""
    by_report = group_runs(load_runs([runs])[0], split_by=[field])
    by_plot = group_runs(curve_groups(sorted(runs.iterdir()))[1].runs, split_by=[field])
    assert names(by_report) == [["b-s0"], *([name] for name in order)]
    assert names(by_plot) == [[name] for name in order]
    assert [g.name for g in by_plot] == [f"{field}={g.config[field]}" for g in by_plot]


def test_a_record_holds_the_config_and_evaluations_the_run_wrote(runs):
    run_dir = runs / "a-s1"
    record = read_record(run_dir)
    written = json.loads((run_dir / "config.json").read_text())["config"]
    assert record.config["log_every"] == written["log_every"] == 5
    assert record.config["actor_lr"] == 0.001 and record.seed == 1
    assert (record.preset, record.env_id) == ("pendulum", "Pendulum-v1")
    with open(run_dir / "evaluations.csv", newline="") as f:
        rows = [(int(r["step"]), float(r["mean_return"])) for r in csv.DictReader(f)]
    assert [s for s, _ in rows] == [100, 200, 300]
    np.testing.assert_array_equal(record.eval_steps, [s for s, _ in rows])
    np.testing.assert_array_equal(record.eval_means, [m for _, m in rows])
    # The report's run is that record plus the final evaluation.
    run = load_run(run_dir)
    final = json.loads((run_dir / "evaluation.json").read_text())
    assert (run.final, run.best, run.steps) == (
        final["final"]["mean_return"],
        final["best"]["mean_return"],
        300,
    )
    np.testing.assert_array_equal(run.eval_means, record.eval_means)
    assert run.config == record.config


def test_report_and_plot_do_not_load_the_checkpoint_format(runs, tmp_path):
    """`ddpg report` and `ddpg plot`, run for real in a fresh interpreter, never import the
    model and checkpoint module (nor torch, which it needs)."""
    script = (
        "import sys\n"
        "from ddpg.cli import main\n"
        f"assert main(['report', {str(runs)!r}, '--out', {str(tmp_path / 'report')!r}]) == 0\n"
        f"assert main(['plot', {str(runs / 'a-s0')!r}, {str(runs / 'a-s1')!r},"
        f" '--out', {str(tmp_path / 'curves.png')!r}]) == 0\n"
        "heavy = ('ddpg.checkpoints', 'torch', 'safetensors')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
    assert (tmp_path / "report" / "report.json").is_file()
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
