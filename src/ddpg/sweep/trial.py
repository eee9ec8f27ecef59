"""One trial of a sweep: ordinary runs of this library, trained in chunks that end at periodic
evaluations, with a Tune report (and checkpoint) after each chunk.

A trial trains one run directory per seed it holds (one, except with an Optuna search), side by
side, under SWEEP_DIR/trials/. Everything is built inside the trial's own process from absolute
paths (a Trainer with open files cannot be pickled, and Tune changes a trial's working
directory). `train_members` is the only function of the sweep that touches the training stack.

Tune's checkpoint of a trial holds the newest library checkpoint of each of its runs, and nothing
else. When Tune restarts a trial (its worker died, or the sweep was interrupted and resumed), the
run directory gets back exactly that checkpoint, loses any newer one (Tune never saw the reports
that went with them) and resumes from it, so the trial ends as if it had never stopped.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ddpg.config import Config
from ddpg.errors import RunDirError
from ddpg.lock import RunLock
from ddpg.sweep.spec import METRICS, TIME_ATTR, TRIALS_DIR, SweepSpec, Trial, read_spec

ATTEMPTS_FILE = "trial.json"  # in each run dir: where (node, process) each attempt ran
REPORT_PREFIX = ".report-"  # hard-linked checkpoint copies handed to Tune, in trials/
REPORT_FILE = "report.json"  # in Tune's checkpoint: the env step it was reported at


@dataclass(frozen=True)
class Member:
    """One run directory of a trial."""

    run_dir: Path
    config: Config


def trial_main(params: dict[str, Any]) -> None:
    """The Tune function trainable: train the trial's runs, reporting at every evaluation."""
    from ray import tune

    sweep_dir = Path(params["sweep_dir"])
    spec = read_spec(sweep_dir)
    trial = trial_of(params, spec, tune.get_context().get_trial_id())
    members = members_of(sweep_dir, spec, trial)
    history = [read_attempts(m.run_dir) for m in members]
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        reported = prepare_runs(members, None)
    else:
        with checkpoint.as_directory() as saved:
            reported = prepare_runs(members, Path(saved))
    record_attempt(members, history, reported)

    def report(step: int) -> None:
        values = [last_value(m.run_dir, spec.metric) for m in members]
        finite = [v for v in values if v is not None and math.isfinite(v)]
        result = {TIME_ATTR: step, spec.metric: sum(finite) / len(finite) if finite else -math.inf}
        with linked_checkpoints(sweep_dir, trial.name, members, step) as folder:
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))

    train_members(members, reported, spec.preset, report)


def finish_trial(sweep_dir: str, params: dict[str, Any], trial_id: str, saved: str | None) -> None:
    """Write the model files and evaluation of a trial that a scheduler stopped early (a Ray
    task run by the driver after the sweep): restored from Tune's checkpoint, no training."""
    spec = read_spec(Path(sweep_dir))
    members = members_of(Path(sweep_dir), spec, trial_of(params, spec, trial_id))
    reported = prepare_runs(members, Path(saved) if saved else None)
    train_members(members, reported, spec.preset, None)


def train_members(
    members: list[Member],
    reported: int | None,
    preset: str | None,
    report: Callable[[int], None] | None,
) -> None:
    """Train every run to its budget, calling `report(step)` at each periodic evaluation after
    step `reported` (None: a fresh start; otherwise the runs are restored from their newest
    checkpoints); with `report` None, only finish the runs. Then write each run's model files
    and evaluation.json."""
    from ddpg.loggers import Console
    from ddpg.runs import finish_run, resume_run, start_run

    console = Console(quiet=True)
    trainers = []
    try:
        for m in members:
            if reported is None:
                trainers.append(start_run(m.config, m.run_dir, preset, console))
            else:
                trainers.append(resume_run(m.run_dir, {}, console)[0])
        if report is not None:
            config = members[0].config
            finished = [False] * len(trainers)
            for target in report_steps(config.eval_every, int(config.total_steps or 0)):
                if reported is not None and target <= reported:
                    continue
                for i, t in enumerate(trainers):
                    if not finished[i]:
                        t.run(max_steps=target)
                        finished[i] = t.state.step < target  # the target return was reached
                report(target)
                if all(finished):
                    break
        for m, t in zip(members, trainers, strict=True):
            if not (m.run_dir / "evaluation.json").exists():
                finish_run(t)
    finally:
        for t in trainers:
            t.close()


def report_steps(every: int, total: int) -> list[int]:
    """The env steps at which a trial reports: each evaluation, and the end of the budget."""
    steps = list(range(every, total + 1, every))
    return steps if steps and steps[-1] == total else [*steps, total]


# -- what a trial trains ---------------------------------------------------------------------------
def trial_of(params: dict[str, Any], spec: SweepSpec, trial_id: str) -> Trial:
    """The trial a Tune config stands for: a point of the spec, or an Optuna suggestion."""
    if "trial" in params:
        t = params["trial"]
        return Trial(t["point"], dict(t["overrides"]), tuple(int(s) for s in t["seeds"]))
    return Trial(optuna_point_name(trial_id), dict(params["point"]), spec.seeds)


def optuna_point_name(trial_id: str) -> str:
    """'optuna-003' for Tune's trial id 'a1b2c_00003' (the id itself if it has no counter)."""
    counter = trial_id.rsplit("_", 1)[-1]
    return f"optuna-{int(counter):03d}" if counter.isdigit() else f"optuna-{trial_id}"


def members_of(sweep_dir: Path, spec: SweepSpec, trial: Trial) -> list[Member]:
    return [
        Member(sweep_dir / TRIALS_DIR / name, spec.config(trial.overrides, seed))
        for name, seed in zip(trial.run_dirs(), trial.seeds, strict=True)
    ]


# -- run directories and Tune's checkpoints --------------------------------------------------------
def step_of(checkpoint_dir: Path) -> int:
    return int(checkpoint_dir.name.split("-", 1)[1])


def prepare_runs(members: list[Member], saved: Path | None) -> int | None:
    """Make each run directory match Tune's view of the trial: with no Tune checkpoint, a fresh
    start (a run left by an attempt that never reported is removed); with one, its library
    checkpoint in place and none newer. Returns the env step of Tune's checkpoint (None for a
    fresh start)."""
    from ddpg.checkpoints import list_checkpoints

    for m in members:
        if saved is None:
            if m.run_dir.exists():
                _remove_unreported_run(m)
            continue
        source = saved / m.run_dir.name
        steps = list_checkpoints(source)
        if len(steps) != 1:
            raise RunDirError(
                f"Tune's checkpoint {saved} does not hold a checkpoint of {m.run_dir}"
            )
        if not (m.run_dir / "config.json").is_file():
            raise RunDirError(
                f"{m.run_dir} is missing: a sweep directory must be on storage that every node "
                "of the cluster shares"
            )
        lock = RunLock(m.run_dir)  # refused while another process trains this run
        try:
            _install(steps[0], m.run_dir / "checkpoints")
        finally:
            lock.release()
    if saved is None:
        return None
    return int(json.loads((saved / REPORT_FILE).read_text())[TIME_ATTR])


def _install(checkpoint: Path, folder: Path) -> None:
    """Make `checkpoint` (a copy of Tune's) the newest checkpoint in `folder`."""
    from ddpg.checkpoints import list_checkpoints

    for newer in list_checkpoints(folder):
        if step_of(newer) >= step_of(checkpoint):
            shutil.rmtree(newer)
    tmp = folder / f".tmp-sweep-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(checkpoint, tmp)
    os.replace(tmp, folder / checkpoint.name)


def _remove_unreported_run(m: Member) -> None:
    """Remove a run that an earlier attempt of this very trial began (same config) but never
    reported; anything else in its place, or in it, is refused, never deleted."""
    config_file = m.run_dir / "config.json"
    ours = not config_file.exists()
    if not ours:
        try:
            ours = json.loads(config_file.read_text()).get("config") == m.config.to_dict()
        except (OSError, ValueError):
            ours = False
    from ddpg.outputs import foreign_entries

    if not ours or foreign_entries(m.run_dir):  # at any depth, links included
        raise RunDirError(f"{m.run_dir} holds files this sweep did not make; move them away")
    lock = RunLock(m.run_dir)  # refused while another process trains this run
    try:
        shutil.rmtree(m.run_dir)
    finally:
        lock.release()


class linked_checkpoints:  # noqa: N801 (used as a context manager, like a function)
    """A folder with the newest library checkpoint of each run, hard-linked (copied where links
    are impossible), for Tune to persist; removed afterwards."""

    def __init__(self, sweep_dir: Path, trial_name: str, members: list[Member], step: int) -> None:
        from ddpg.atomic import atomic_write_json
        from ddpg.checkpoints import list_checkpoints

        parent = sweep_dir / TRIALS_DIR
        for stale in parent.glob(f"{REPORT_PREFIX}{trial_name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        self.folder = Path(tempfile.mkdtemp(prefix=f"{REPORT_PREFIX}{trial_name}-", dir=parent))
        for m in members:
            newest = list_checkpoints(m.run_dir / "checkpoints")[0]
            shutil.copytree(newest, self.folder / m.run_dir.name / newest.name, copy_function=_link)
        atomic_write_json(self.folder / REPORT_FILE, {TIME_ATTR: step})

    def __enter__(self) -> str:
        return str(self.folder)

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _link(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def last_value(run_dir: Path, metric: str) -> float | None:
    """The metric's newest value: the last row of its CSV file (None before the first row)."""
    file, column = METRICS[metric]
    try:
        with open(run_dir / file, newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        return None
    if not rows or not rows[-1].get(column):
        return None
    return float(rows[-1][column])


def read_attempts(run_dir: Path) -> list[dict[str, Any]]:
    try:
        return list(json.loads((run_dir / ATTEMPTS_FILE).read_text())["attempts"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


def record_attempt(
    members: list[Member], history: list[list[dict[str, Any]]], reported: int | None
) -> None:
    """Append where this attempt runs (Ray node id, host, process, the step it starts from) to
    each run's trial.json, after the attempts before it."""
    import ray

    from ddpg.atomic import atomic_write_json
    from ddpg.checkpoints import list_checkpoints

    for m, attempts in zip(members, history, strict=True):
        newest = list_checkpoints(m.run_dir / "checkpoints") if reported is not None else []
        attempt = {
            "node_id": ray.get_runtime_context().get_node_id(),
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "from_step": step_of(newest[0]) if newest else 0,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        m.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(m.run_dir / ATTEMPTS_FILE, {"attempts": [*attempts, attempt]})
