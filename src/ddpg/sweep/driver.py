"""Running a sweep on Ray Tune: start or continue it, stop it cleanly, finish stopped trials.

Layout of SWEEP_DIR:
    sweep.json      the spec (written before Ray starts)
    trials/NAME/    one ordinary run directory per (point, seed)
    tune/           Ray Tune's experiment: its state, each trial's results and newest checkpoint
    ray/            Ray's temp files and logs of a local Ray (or a link to a short folder)
    results.json    each trial's status and final numbers, once the sweep has ended

Tune stops the trials that ASHA drops before they write their model files; after Tune is done,
the driver finishes each of them (a Ray task per trial, restored from its Tune checkpoint, or
from its runs' own when that is gone), so every run directory ends with model files and
evaluation.json. A resumed sweep does the same for trials stopped in an earlier session.
"""

from __future__ import annotations

import fcntl
import json
import logging
import shlex
import signal
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray import tune

from ddpg.atomic import atomic_write_json
from ddpg.errors import DDPGError, RunDirError
from ddpg.loggers import Console
from ddpg.sweep import cluster
from ddpg.sweep.spec import TIME_ATTR, TRIALS_DIR, SweepSpec, Trial
from ddpg.sweep.trial import REPORT_PREFIX, finish_trial, optuna_point_name, trainable

TUNE_DIR = "tune"
LOCK_FILE = ".sweep.lock"
RESULTS_FILE = "results.json"
EXIT_SIGNALS = {"SIGINT": 130, "SIGTERM": 143}


class SweepInterrupted(Exception):
    """The sweep stopped on a signal; its state is saved and `ddpg sweep --resume` continues."""

    def __init__(self, signal_name: str, sweep_dir: Path) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.exit_code = EXIT_SIGNALS.get(signal_name, 1)
        self.resume_command = f"ddpg sweep --resume {shlex.quote(str(sweep_dir))}"


class TrialsFailed(DDPGError):
    exit_code = 1


def run_sweep(
    spec: SweepSpec,
    sweep_dir: Path,
    console: Console,
    resume: bool,
    joined: cluster.RaySession | None = None,
) -> list[dict]:
    """Run (or continue) the sweep in `sweep_dir` to its end, on the cluster already `joined`
    or on a local Ray started here; return each trial's summary."""
    sweep_dir = sweep_dir.absolute()
    with _locked(sweep_dir):
        temp_dir = None
        if joined is None:
            temp_dir = cluster.temp_dir_for(sweep_dir, spec.ray_temp_dir)
            own = spec.ray_temp_dir is None
            left = cluster.stop_leftovers(temp_dir, own_temp_dir=own) if resume else 0
            if left:
                console.print(f"stopped {left} Ray processes left by an earlier session")
        with _stop_on_sigterm() as received:
            try:
                trials = _run_tune(spec, sweep_dir, console, resume, joined, temp_dir, received)
            except KeyboardInterrupt:
                raise SweepInterrupted(received[0] if received else "SIGINT", sweep_dir) from None
        if temp_dir is not None:
            cluster.settle_temp_dir(sweep_dir, temp_dir)
        _remove_stale_reports(sweep_dir)
        summary = _summary(spec, sweep_dir, trials)
        atomic_write_json(sweep_dir / RESULTS_FILE, {"trials": summary})
        failed = [s for s in summary if s["status"] == "failed"]
        if failed:
            raise TrialsFailed(
                f"{len(failed)} of {len(summary)} trials failed (first: {failed[0]['name']}; "
                f"its error is in {sweep_dir / TUNE_DIR}); retry them with: ddpg sweep --resume "
                f"{shlex.quote(str(sweep_dir))}"
            )
        return summary


# -- Tune -------------------------------------------------------------------------------------
def _run_tune(
    spec: SweepSpec,
    sweep_dir: Path,
    console: Console,
    resume: bool,
    joined: cluster.RaySession | None,
    temp_dir: Path | None,
    received: list[str],
) -> list[Any]:
    """Tune's run to its end, then the finishing of stopped trials; returns Tune's trials."""
    cpus, gpus = cluster.local_resources(
        spec.num_trials(), spec.max_concurrent, spec.cpus_per_trial, spec.gpus_per_trial
    )
    own = spec.ray_temp_dir is None  # SWEEP_DIR/ray or its short fallback
    with (
        nullcontext(joined) if joined else cluster.ray_session(None, temp_dir, cpus, gpus, own)
    ) as session:
        if session.address is None:
            where = f"a local Ray ({cpus} CPUs{f', {gpus} GPUs' if gpus else ''})"
        else:
            where = f"the cluster at {session.address} ({session.nodes} nodes)"
        verb = "resuming" if resume else "running"
        console.print(f"{verb} a sweep of {spec.num_trials()} trials on {where}")
        _SESSION.console, _SESSION.metric, _SESSION.trials = console, spec.metric, []
        # Tune logs a trial's traceback at ERROR; the sweep says it in one line (and Tune keeps
        # the traceback in the trial's error.txt)
        logging.getLogger("ray.tune").setLevel(logging.CRITICAL)
        _tuner(spec, sweep_dir, resume).fit()
        trials = _SESSION.trials
        ended = [t for t in trials if t.status == "ERROR" or _finished(t)]
        if received or len(ended) < spec.num_trials():
            raise SweepInterrupted(received[0] if received else "SIGINT", sweep_dir)
        _finish_stopped(spec, sweep_dir, trials, console)
        return trials


def _finished(trial: Any) -> bool:
    """Ended by itself or by the scheduler (Tune marks both results done); a trial that an
    interrupted sweep stopped is TERMINATED too, but not done, and resumes later."""
    return trial.status == "TERMINATED" and bool(trial.last_result.get("done"))


def _tuner(spec: SweepSpec, sweep_dir: Path, resume: bool) -> Any:
    resources = {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial}
    trial = tune.with_resources(trainable(), resources)
    experiment = sweep_dir / TUNE_DIR
    if resume and tune.Tuner.can_restore(str(experiment)):
        return tune.Tuner.restore(
            str(experiment),
            trial,
            resume_unfinished=True,
            resume_errored=True,
            param_space=_param_space(spec, sweep_dir),
        )
    return tune.Tuner(
        trial,
        param_space=_param_space(spec, sweep_dir),
        tune_config=tune.TuneConfig(
            metric=spec.metric,
            mode="max",
            scheduler=_scheduler(spec),
            search_alg=_searcher(spec),
            num_samples=spec.samples if spec.search == "optuna" else 1,
            max_concurrent_trials=spec.max_concurrent,
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_name,
            reuse_actors=False,
        ),
        run_config=tune.RunConfig(
            name=TUNE_DIR,
            storage_path=str(sweep_dir),
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            # Two, not one: a driver killed after Tune deleted the older checkpoint but before it
            # saved its state would otherwise resume from a checkpoint that is gone.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=[_Tracker()],
            verbose=0,
        ),
    )


def _param_space(spec: SweepSpec, sweep_dir: Path) -> dict[str, Any]:
    space: dict[str, Any] = {"sweep_dir": str(sweep_dir)}
    if spec.search == "optuna":
        space["point"] = {name: _domain(d) for name, d in spec.space.items()}
    else:
        trials = [
            {"point": t.point, "overrides": t.overrides, "seeds": list(t.seeds)}
            for t in spec.trials()
        ]
        space["trial"] = tune.grid_search(trials)
    return space


def _domain(d: Any) -> Any:
    if d.kind == "choice":
        return tune.choice(list(d.values))
    if d.kind == "loguniform":
        return tune.loguniform(d.low, d.high)
    return tune.uniform(d.low, d.high)


def _scheduler(spec: SweepSpec) -> Any:
    if spec.scheduler != "asha":
        return None
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr=TIME_ATTR,
        max_t=spec.max_t,
        grace_period=spec.grace_period,
        reduction_factor=spec.reduction_factor,
        stop_last_trials=False,  # a trial at its budget ends by itself, with its evaluation
    )


def _searcher(spec: SweepSpec) -> Any:
    if spec.search != "optuna":
        return None
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    return OptunaSearch(sampler=optuna.samplers.TPESampler(seed=spec.search_seed))


def trial_name(trial: Any) -> str:
    """Tune's name (and folder under tune/) of a trial: its run directory's, or optuna-NNN."""
    params = trial.config
    if "trial" in params:
        t = params["trial"]
        return Trial(t["point"], t["overrides"], tuple(t["seeds"])).name
    return optuna_point_name(trial.trial_id)


@dataclass
class _Session:
    """What the callback reports to: set by each session of the driver."""

    console: Console | None = None
    metric: str = ""
    trials: list[Any] = field(default_factory=list)


_SESSION = _Session()


class _Tracker(tune.Callback):
    """One line per trial event, and Tune's list of trials for the end. Stateless: Tune pickles
    it with the experiment and a resumed sweep gets it back from there."""

    def _print(self, message: str) -> None:
        if _SESSION.console is not None:
            _SESSION.console.print(message)

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        _SESSION.trials = trials

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        _SESSION.trials = trials

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict, **info: Any
    ) -> None:
        value = result.get(_SESSION.metric)
        shown = f"{value:.1f}" if isinstance(value, float) else str(value)
        self._print(f"{trial_name(trial)}: step {result.get(TIME_ATTR)} {_SESSION.metric} {shown}")

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._print(f"{trial_name(trial)}: ended")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        where = getattr(trial, "error_file", None) or "its folder under tune/"
        self._print(f"{trial_name(trial)}: failed ({trial.num_failures} failures); see {where}")

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._print(f"{trial_name(trial)}: worker lost; retrying from its last checkpoint")


# -- after Tune -----------------------------------------------------------------------------------
def _finish_stopped(spec: SweepSpec, sweep_dir: Path, trials: list[Any], console: Console) -> None:
    """Model files and evaluation for each trial that Tune ended without them (ASHA stops)."""
    import ray

    from ddpg.sweep.trial import members_of, trial_of

    tasks = []
    remote = ray.remote(num_cpus=spec.cpus_per_trial, num_gpus=spec.gpus_per_trial)(finish_trial)
    for trial in trials:
        if not _finished(trial):
            continue
        members = members_of(sweep_dir, spec, trial_of(trial.config, spec, trial.trial_id))
        if all((m.run_dir / "evaluation.json").exists() for m in members):
            continue
        checkpoint = trial.checkpoint
        saved = checkpoint.path if checkpoint is not None else None
        console.print(f"{trial_name(trial)}: stopped early by the scheduler; writing its models")
        tasks.append(remote.remote(str(sweep_dir), trial.config, trial.trial_id, saved))
    ray.get(tasks)


def _summary(spec: SweepSpec, sweep_dir: Path, trials: list[Any]) -> list[dict]:
    from ddpg.sweep.trial import last_value, members_of, trial_of

    rows = []
    for trial in trials:
        t = trial_of(trial.config, spec, trial.trial_id)
        for m in members_of(sweep_dir, spec, t):
            evaluation = m.run_dir / "evaluation.json"
            done = json.loads(evaluation.read_text()) if evaluation.exists() else None
            steps = done["steps"] if done else None
            status = (
                "failed"
                if trial.status == "ERROR" or done is None
                else "finished"
                if steps >= (m.config.total_steps or 0) or done.get("target_reached")
                else "stopped early"
            )
            rows.append(
                {
                    "name": m.run_dir.name,
                    "run_dir": str(m.run_dir.relative_to(sweep_dir)),
                    "overrides": t.overrides,
                    "seed": m.config.seed,
                    "status": status,
                    "steps": steps,
                    spec.metric: last_value(m.run_dir, spec.metric),
                    "best_mean_return": done["best"]["mean_return"] if done else None,
                    "final_mean_return": done["final"]["mean_return"] if done else None,
                }
            )
    return sorted(rows, key=lambda r: r["name"])


def format_summary(rows: list[dict], metric: str) -> str:
    width = max([len(r["name"]) for r in rows] + [5])
    lines = [
        f"{'trial':{width}s} {'status':13s} {'steps':>8s} {metric:>14s} {'best':>9s} {'final':>9s}"
    ]
    for r in rows:
        value = r.get(metric)
        lines.append(
            f"{r['name']:{width}s} {r['status']:13s} {r['steps'] or '-':>8} "
            f"{_num(value):>14s} "
            f"{_num(r['best_mean_return']):>9s} {_num(r['final_mean_return']):>9s}"
        )
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _remove_stale_reports(sweep_dir: Path) -> None:
    import shutil

    for stale in (sweep_dir / TRIALS_DIR).glob(f"{REPORT_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)


# -- one driver per sweep, and signals ----------------------------------------------------------
@contextmanager
def _locked(sweep_dir: Path) -> Iterator[None]:
    """Hold SWEEP_DIR/.sweep.lock (released by the kernel if this process dies)."""
    with open(sweep_dir / LOCK_FILE, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirError(f"{sweep_dir} is being run by another ddpg sweep process") from None
        yield


@contextmanager
def _stop_on_sigterm() -> Iterator[list[str]]:
    """SIGTERM stops the sweep as Ctrl-C does (Tune then saves its state and stops the trials);
    the list names the signal once one came."""
    received: list[str] = []

    def handler(signum: int, _frame: Any) -> None:
        received.append(signal.Signals(signum).name)
        signal.raise_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)
