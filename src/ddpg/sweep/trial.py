"""One trial of a sweep: ordinary runs of this library, trained in chunks that end at periodic
evaluations, with a Tune report (and checkpoint) after each chunk.

A trial trains one run directory per seed it holds (one, except with an Optuna search), side by
side, under SWEEP_DIR/trials/. Everything is built inside the trial's own process from absolute
paths (a Trainer with open files cannot be pickled, and Tune changes a trial's working
directory). `open_runs` and `train_runs` are the only functions of the sweep that touch the
training stack.

Tune's checkpoint of a trial holds the newest library checkpoint of each of its runs, and nothing
else. When Tune restarts a trial (its worker died, or the sweep was interrupted and resumed), the
run directory gets back exactly that checkpoint, loses any newer one (Tune never saw the reports
that went with them) and resumes from it, so the trial ends as if it had never stopped.

A Tune checkpoint that is gone (deleted, or lost to a driver killed between Tune's deleting an
older one and saving its state) or damaged is not used: each run then resumes from its own newest
good checkpoint, exactly as `ddpg train --resume` does, runs behind the others catch up, and the
first report goes out at the step the runs have reached. A run with no checkpoint starts over;
a run with one is never removed.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddpg.config import Config
from ddpg.errors import RunDirError
from ddpg.lock import RunLock
from ddpg.sweep.spec import METRICS, TIME_ATTR, TRIALS_DIR, SweepSpec, Trial, read_spec

if TYPE_CHECKING:
    from ddpg.train import Trainer

ATTEMPTS_FILE = "trial.json"  # in each run dir: where (node, process) each attempt ran
REPORT_PREFIX = ".report-"  # hard-linked checkpoint copies handed to Tune, in trials/
REPORT_FILE = "report.json"  # in Tune's checkpoint: the env step it was reported at


@dataclass(frozen=True)
class Member:
    """One run directory of a trial."""

    run_dir: Path
    config: Config


@dataclass(frozen=True)
class Start:
    """Where the runs of a trial start: `resumed[i]`, whether run i is restored from the newest
    good checkpoint in its directory (otherwise it starts from scratch); `reported`, the env step
    of the Tune checkpoint that `prepare_runs` put back in every run, None when Tune's checkpoint
    was missing, damaged or never made."""

    resumed: tuple[bool, ...]
    reported: int | None = None

    def origin(self, i: int) -> str:
        """For trial.json: 'tune' (Tune's checkpoint), 'run' (the run's own) or 'start'."""
        return "tune" if self.reported is not None else "run" if self.resumed[i] else "start"


def trial_main(params: dict[str, Any]) -> None:
    """The body of Tune's trainable: train the trial's runs, reporting at every evaluation."""
    from ray import tune

    sweep_dir = Path(params["sweep_dir"])
    spec = read_spec(sweep_dir)
    trial = trial_of(params, spec, tune.get_context().get_trial_id())
    members = members_of(sweep_dir, spec, trial)
    history = [read_attempts(m.run_dir) for m in members]
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        start = prepare_runs(members, None)
    else:
        with checkpoint.as_directory() as saved:
            start = prepare_runs(members, Path(saved))

    def report(step: int) -> None:
        values = [last_value(m.run_dir, spec.metric) for m in members]
        finite = [v for v in values if v is not None and math.isfinite(v)]
        result = {TIME_ATTR: step, spec.metric: sum(finite) / len(finite) if finite else -math.inf}
        with linked_checkpoints(sweep_dir, trial.name, members, step) as folder:
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))

    with open_runs(members, start, spec.preset) as trainers:
        record_attempt(members, history, start, [t.state.step for t in trainers])
        train_runs(members, trainers, start, report)


def trainable() -> type:
    """`trial_main` as Tune's trainable class. Tune's own restore fails a trial whose checkpoint
    is no longer on storage, on every retry; this one skips such a checkpoint, so that
    `trial_main` finds none and resumes the runs from their own checkpoints."""
    import pyarrow.fs
    from ray.tune.trainable.function_trainable import wrap_function

    class SweepTrial(wrap_function(trial_main)):  # named trial_main to Tune, as before
        def restore(self, checkpoint_path: Any) -> None:
            checkpoint = getattr(checkpoint_path, "checkpoint", None)  # Tune's training result
            if checkpoint is not None:
                info = checkpoint.filesystem.get_file_info(checkpoint.path)
                if info.type == pyarrow.fs.FileType.NotFound:
                    return
            super().restore(checkpoint_path)

    return SweepTrial


def finish_trial(sweep_dir: str, params: dict[str, Any], trial_id: str, saved: str | None) -> None:
    """Write the model files and evaluation of a trial that a scheduler stopped early (a Ray
    task run by the driver after the sweep): restored from Tune's checkpoint (from the runs' own
    when it is gone), no training."""
    spec = read_spec(Path(sweep_dir))
    members = members_of(Path(sweep_dir), spec, trial_of(params, spec, trial_id))
    start = prepare_runs(members, Path(saved) if saved else None)
    with open_runs(members, start, spec.preset) as trainers:
        train_runs(members, trainers, start, None)


@contextmanager
def open_runs(members: list[Member], start: Start, preset: str | None) -> Iterator[list[Trainer]]:
    """A Trainer per run: restored from its newest good checkpoint (as `ddpg train --resume`
    does: damaged newer ones are set aside) or started afresh; all closed afterwards."""
    from ddpg.loggers import Console
    from ddpg.runs import resume_run, start_run

    console = Console(quiet=True)
    trainers: list[Trainer] = []
    try:
        for m, resumed in zip(members, start.resumed, strict=True):
            if resumed:
                trainers.append(resume_run(m.run_dir, {}, console)[0])
            else:
                trainers.append(start_run(m.config, m.run_dir, preset, console))
        yield trainers
    finally:
        for t in trainers:
            t.close()


def train_runs(
    members: list[Member],
    trainers: list[Trainer],
    start: Start,
    report: Callable[[int], None] | None,
) -> None:
    """Train every run to its budget, calling `report(step)` at each periodic evaluation that
    Tune has not seen: after the step of Tune's checkpoint; without one, from the step the
    furthest run has reached, once every run is there (runs behind it catch up unreported).
    With `report` None, only bring the runs level and finish them. Then write each run's model
    files and evaluation.json."""
    from ddpg.runs import finish_run

    config = members[0].config
    level = max(t.state.step for t in trainers)
    first = start.reported + 1 if start.reported is not None else level
    finished = [False] * len(trainers)
    for target in report_steps(config.eval_every, int(config.total_steps or 0)):
        if report is None and target > level:
            break
        for i, t in enumerate(trainers):
            if not finished[i]:
                t.run(max_steps=target)  # nothing to do for a run already there
                finished[i] = t.state.step < target  # the target return was reached
        if report is not None and target >= first:
            report(target)
            if all(finished):
                break
    for m, t in zip(members, trainers, strict=True):
        if not (m.run_dir / "evaluation.json").exists():
            finish_run(t)


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


def prepare_runs(members: list[Member], saved: Path | None) -> Start:
    """Make each run directory match where the trial starts. With a good Tune checkpoint: its
    library checkpoint in place in every run, and none newer. Without one (none, gone or
    damaged): each run that has a checkpoint keeps everything and resumes from its own newest
    good one; a run without one starts afresh (what an attempt that never checkpointed left is
    removed). A run directory of another config is refused, never touched."""
    from ddpg.checkpoints import list_checkpoints

    reported = tune_step(members, saved)
    if reported is not None:
        assert saved is not None
        for m in members:
            if not (m.run_dir / "config.json").is_file():
                raise RunDirError(
                    f"{m.run_dir} is missing: a sweep directory must be on storage that every "
                    "node of the cluster shares"
                )
            lock = RunLock(m.run_dir)  # refused while another process trains this run
            try:
                _install(list_checkpoints(saved / m.run_dir.name)[0], m.run_dir / "checkpoints")
            finally:
                lock.release()
        return Start((True,) * len(members), reported)
    resumed = []
    for m in members:
        progress = bool(list_checkpoints(m.run_dir / "checkpoints"))
        if progress and not _same_config(m):
            raise RunDirError(f"{m.run_dir} holds files this sweep did not make; move them away")
        if not progress and m.run_dir.exists():
            _remove_unreported_run(m)
        resumed.append(progress)
    return Start(tuple(resumed))


def tune_step(members: list[Member], saved: Path | None) -> int | None:
    """The env step Tune's checkpoint `saved` was reported at, if it holds one checkpoint of
    every run and each verifies; None for a checkpoint that is missing, damaged or foreign."""
    from ddpg.checkpoints import list_checkpoints, read_checkpoint
    from ddpg.errors import CheckpointError

    if saved is None:
        return None
    try:
        step = int(json.loads((saved / REPORT_FILE).read_text())[TIME_ATTR])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for m in members:
        found = list_checkpoints(saved / m.run_dir.name)
        if len(found) != 1:
            return None
        try:
            read_checkpoint(found[0])  # verified before anything in the run is replaced
        except CheckpointError:
            return None
    return step


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


def _same_config(m: Member) -> bool:
    """Whether the run directory holds a run of this very trial (its config.json)."""
    try:
        return json.loads((m.run_dir / "config.json").read_text()).get("config") == (
            m.config.to_dict()
        )
    except (OSError, ValueError, AttributeError):
        return False


def _remove_unreported_run(m: Member) -> None:
    """Remove a run that an earlier attempt of this very trial began (same config) but never
    checkpointed; anything else in its place, or in it, is refused, never deleted."""
    from ddpg.outputs import foreign_entries

    ours = not (m.run_dir / "config.json").exists() or _same_config(m)
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
    members: list[Member], history: list[list[dict[str, Any]]], start: Start, steps: list[int]
) -> None:
    """Append where this attempt runs (Ray node id, host, process, the step it starts from and
    whose checkpoint that is) to each run's trial.json, after the attempts before it."""
    import ray

    from ddpg.atomic import atomic_write_json

    for i, (m, attempts, step) in enumerate(zip(members, history, steps, strict=True)):
        attempt = {
            "node_id": ray.get_runtime_context().get_node_id(),
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "from_step": step,
            "from": start.origin(i),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        atomic_write_json(m.run_dir / ATTEMPTS_FILE, {"attempts": [*attempts, attempt]})
