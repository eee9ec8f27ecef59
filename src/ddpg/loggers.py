"""Where a run reports: metrics files, TensorBoard and the console, behind one `RunLogger`."""

from __future__ import annotations

import csv
import functools
import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ddpg.errors import RunDirError

EPISODE_COLUMNS = [
    "step",
    "episode",
    "return",
    "length",
    "running_avg_100",
    "critic_loss",
    "actor_loss",
    "q_mean",
    "wall_time_s",
]
EVAL_COLUMNS = [
    "step",
    "episode",
    "mean_return",
    "std_return",
    "mean_length",
    "wall_time_s",
    "success_rate",  # empty where the env reports no info["is_success"]
]


class RunLogger:
    """The loop calls one method per event; this writes it wherever the run reports it:
    RUN_DIR/metrics.csv and evaluations.csv, TensorBoard (RUN_DIR/tensorboard) and the console.
    Without a run directory only the console is used."""

    def __init__(self, run_dir: Path | None, config: Any, console: Console) -> None:
        """`run_dir` is created if need be; `config` gives `tensorboard` and `log_every`."""
        self.console = console
        self.log_every = config.log_every
        tensorboard = config.tensorboard
        if run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
        self.episodes = CsvLogger(run_dir / "metrics.csv", EPISODE_COLUMNS) if run_dir else None
        self.evaluations = CsvLogger(run_dir / "evaluations.csv", EVAL_COLUMNS) if run_dir else None
        self._tb_dir = run_dir / "tensorboard" if run_dir and tensorboard else None
        self._tb: TensorBoardLogger | None = None  # opened at the first event
        self._tb_purge_step: int | None = None

    def episode(self, row: dict[str, Any], steps_per_s: float) -> None:
        """A training episode ended (`row` has EPISODE_COLUMNS)."""
        if self.episodes is not None:
            self.episodes.write(row)
        self._scalars(
            row["step"],
            {
                "train/episode_return": row["return"],
                "train/running_avg_100": row["running_avg_100"],
                "train/critic_loss": row["critic_loss"],
                "train/actor_loss": row["actor_loss"],
                "train/q_mean": row["q_mean"],
                "perf/steps_per_s": steps_per_s,
            },
        )
        if row["episode"] % self.log_every == 0:
            self.console.print(
                f"episode {row['episode']:5d} | step {row['step']:8d}"
                f" | return {row['return']:9.1f} | avg100 {row['running_avg_100']:9.1f}"
                f" | {steps_per_s:6.0f} steps/s"
            )

    def evaluation(self, row: dict[str, Any], episodes: int, improved: bool) -> None:
        """A periodic evaluation ended (`row` has EVAL_COLUMNS)."""
        if self.evaluations is not None:
            self.evaluations.write(row)
        values = {"eval/mean_return": row["mean_return"], "eval/std_return": row["std_return"]}
        success = row.get("success_rate")
        if success is not None:
            values["eval/success_rate"] = success
        self._scalars(row["step"], values)
        self.console.print(
            f"eval at step {row['step']:8d} | mean {row['mean_return']:9.1f} +- "
            f"{row['std_return']:7.1f} over {episodes} episodes"
            f"{'' if success is None else f' | success {success:.2f}'}"
            f"{' | new best' if improved else ''}"
        )

    def line(self, message: str) -> None:
        self.console.print(message)

    def progress(
        self, step: int, total: int | None, steps_per_s: float, running: float | None
    ) -> None:
        self.console.progress(step, total, steps_per_s, running)

    # -- checkpoints: where the files are, and cutting them back on resume ------------------------
    def positions(self) -> dict[str, int]:
        if self._tb is not None:
            self._tb.flush()
        return {
            "metrics": self.episodes.position() if self.episodes else 0,
            "evaluations": self.evaluations.position() if self.evaluations else 0,
        }

    def rewind(self, positions: dict[str, int], step: int) -> None:
        """Cut the CSVs back to a checkpoint's `positions` and drop TensorBoard events logged
        after its `step`, so the files match a run done in one go."""
        logs = {"metrics": self.episodes, "evaluations": self.evaluations}
        for key, log in logs.items():
            if log is not None and not 0 <= int(positions[key]) <= log.path.stat().st_size:
                raise ValueError(f"{key} log position {positions[key]} is outside {log.path}")
        for key, log in logs.items():
            if log is not None:
                log.truncate(int(positions[key]))
        self._tb_purge_step = step + 1

    def close(self) -> None:
        for log in (self.episodes, self.evaluations, self._tb):
            if log is not None:
                log.close()
        self.console.close()

    def _scalars(self, step: int, values: dict[str, float | None]) -> None:
        if self._tb_dir is None:
            return
        if self._tb is None:
            self._tb = TensorBoardLogger(self._tb_dir, self._tb_purge_step)
        self._tb.scalars(step, values)


class CsvLogger:
    """Append-only CSV with a fixed header, flushed after every row. `position` and `truncate`
    let a resumed run cut the file back to exactly what its checkpoint had seen."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path = Path(path)
        new = not self.path.exists() or self.path.stat().st_size == 0
        # A file written by an earlier version keeps its header (a column added since, such
        # as success_rate, is left out of its rows), so the resumed run's rows still fit.
        self.columns = columns if new else _header(self.path, columns)
        self._dropped = set(columns) - set(self.columns)
        self._file: TextIO = open(self.path, "a", newline="")  # noqa: SIM115 (kept open)
        self._writer = csv.DictWriter(self._file, fieldnames=self.columns, extrasaction="raise")
        if new:
            self._writer.writeheader()
            self._file.flush()

    def write(self, row: dict[str, Any]) -> None:
        self._writer.writerow({k: _fmt(v) for k, v in row.items() if k not in self._dropped})
        self._file.flush()

    def position(self) -> int:
        self._file.flush()
        return self._file.tell()

    def truncate(self, position: int) -> None:
        self._file.flush()
        self._file.truncate(position)
        self._file.seek(position)

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


def _header(path: Path, columns: list[str]) -> list[str]:
    """The header of an existing CSV file, if it is `columns` or a prefix of them."""
    with open(path, newline="") as f:
        first = next(csv.reader(f), [])
    return first if first and first == columns[: len(first)] else columns


def read_curve(path: Path, column: str, missing_ok: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Steps and `column` of a CsvLogger file (metrics.csv or evaluations.csv), sorted by step,
    rows where `column` is blank left out; empty if the file does not exist. A last line without
    its newline is a row still being written and is left out. RunDirError names the file and
    line of anything this library would not have written; OSError (a permission) goes through.
    `missing_ok`: a file without `column` (written before it existed) gives an empty curve."""
    if not path.exists():
        return np.empty(0, dtype=np.int64), np.empty(0)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise RunDirError(f"{path} is not UTF-8 text (a damaged or foreign file)") from None
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines.pop()
    try:
        rows = list(csv.reader(lines))
    except csv.Error as exc:
        raise RunDirError(f"{path} is not a readable CSV ({exc})") from None
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty(0)
    header = rows[0]
    if missing_ok and "step" in header and column not in header:
        return np.empty(0, dtype=np.int64), np.empty(0)
    if "step" not in header or column not in header:
        raise RunDirError(f"{path} has no step and {column} columns (a damaged or foreign file)")
    i_step, i_value = header.index("step"), header.index(column)
    steps, values = [], []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise RunDirError(f"{path}: line {number} has {len(row)} values, not {len(header)}")
        if row[i_value] == "":
            continue
        step = finite_number(path, f"line {number} step", row[i_step])
        if not step.is_integer() or step < 0:
            raise RunDirError(f"{path}: line {number} step is {row[i_step]!r}, not a step count")
        steps.append(int(step))
        values.append(finite_number(path, f"line {number} {column}", row[i_value]))
    order = np.argsort(steps, kind="stable")
    return np.asarray(steps, dtype=np.int64)[order], np.asarray(values, dtype=float)[order]


def finite_number(path: Path, where: str, text: Any) -> float:
    """`text` as a finite float, or RunDirError naming `path` and `where` (a bool is refused)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(text, bool) or not math.isfinite(value):
        raise RunDirError(f"{path}: {where} is {text!r}, not a finite number")
    return value


def _fmt(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return value


class Console:
    """What the user sees while a run goes.

    On a terminal: a progress bar redrawn in place (steps, steps/s, recent return, ETA; tqdm
    draws it, see `_progress_bar_class`) with periodic lines printed above it. Elsewhere (CI,
    log files): the periodic lines only. Quiet: nothing.
    """

    REDRAW_SECONDS = 0.25

    def __init__(
        self, quiet: bool = False, stream: TextIO | None = None, bar: bool | None = None
    ) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stdout
        isatty = getattr(self.stream, "isatty", lambda: False)()
        self.bar = (isatty if bar is None else bar) and not quiet
        self._bar: Any = None  # the tqdm bar, made at the first progress, at the step it gives

    def print(self, message: str) -> None:
        if self.quiet:
            return
        with self._closed_stream_goes_quiet():
            if self._bar is not None:
                self._bar.hide()
            print(message, file=self.stream, flush=True)

    @contextmanager
    def _closed_stream_goes_quiet(self) -> Iterator[None]:
        """A closed stdout (`ddpg train | head -1`) must not stop a run: it goes on quietly."""
        try:
            yield
        except (BrokenPipeError, ValueError):  # ValueError: the stream object was closed
            self.quiet, self.bar = True, False
            if self._bar is not None:
                self._bar.disable = True  # tqdm writes nothing more, not even when collected
                self._bar = None
            silence_stdout()

    def progress(
        self, step: int, total: int | None, steps_per_s: float, recent_return: float | None
    ) -> None:
        """Move the bar to `step`; it is redrawn at most every REDRAW_SECONDS, and at once
        after a printed line. A no-op without a terminal. The first call sets where the bar
        starts (a resumed run's step) and its total (None: an episode budget)."""
        if not self.bar:
            return
        with self._closed_stream_goes_quiet():
            if self._bar is None:
                bar_class = _progress_bar_class()
                self._bar = bar_class(
                    self.stream, total, self.REDRAW_SECONDS, step, steps_per_s, recent_return
                )
            else:
                self._bar.show(step, steps_per_s, recent_return)

    def close(self) -> None:
        if self._bar is not None:
            with self._closed_stream_goes_quiet():
                self._bar.close()
            self._bar = None


# The bar is tqdm's; its fields are the run's own numbers (the step counts with separators, the
# trainer's steps/s, as the episode lines show them, and the ETA from that rate), so that the bar
# and the lines above it agree. Without a total (an episode budget) there is no bar or ETA.
BAR_CHARS = ".#"  # tqdm's charset: the empty cell, then the full one
BAR_WIDTH = 24
BAR_FORMAT = (
    "[{bar:%d}] {percentage:3.0f}%% {steps}/{total_steps} steps | {speed} steps/s"
    " | avg return {recent} | ETA {left}"
)
OPEN_FORMAT = "{steps} steps | {speed} steps/s | avg return {recent}"


def _meter_fields(
    step: int, total: int | None, steps_per_s: float, recent_return: float | None, width: int
) -> dict[str, Any]:
    """The arguments of tqdm's `format_meter` for one state of a run."""
    fields: dict[str, Any] = {
        "steps": f"{step:,}",
        "speed": f"{steps_per_s:,.0f}",
        "recent": "-" if recent_return is None else f"{recent_return:.1f}",
    }
    if not total:
        return {"n": step, "total": None, "bar_format": OPEN_FORMAT, **fields}
    left = (total - step) / steps_per_s if steps_per_s > 0 else math.inf
    if math.isfinite(left):
        minutes, seconds = divmod(int(max(left, 0.0)), 60)
        hours, minutes = divmod(minutes, 60)
        eta = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    else:
        eta = "?"
    return {
        "n": min(step, total),  # tqdm drops the bar of a count past its total
        "total": total,
        "bar_format": BAR_FORMAT % width,
        **fields,
        "total_steps": f"{total:,}",
        "left": eta,
    }


def format_progress(
    step: int,
    total: int | None,
    steps_per_s: float,
    recent_return: float | None,
    width: int = BAR_WIDTH,
) -> str:
    """The progress bar's text for one state of a run, as the terminal shows it."""
    from tqdm import tqdm

    fields = _meter_fields(step, total, steps_per_s, recent_return, width)
    return tqdm.format_meter(elapsed=0, ascii=BAR_CHARS, **fields)


@functools.cache
def _progress_bar_class() -> type[Any]:
    """`ProgressBar`, made on first use: importing tqdm takes a tenth of a second, which the
    commands that never draw a bar (report, plot, and any run off a terminal) need not pay."""
    from tqdm import tqdm

    class ProgressBar(tqdm):  # type: ignore[misc]
        """tqdm's bar on the console's stream, showing `_meter_fields` (tqdm's documented way
        to add fields: override `format_dict`). It starts at the step it is made at, so a
        resumed run's bar starts where the run resumed."""

        monitor_interval = 0  # no monitor thread in a training process

        def __init__(
            self,
            stream: TextIO,
            total: int | None,
            redraw_s: float,
            step: int,
            speed: float,
            recent: float | None,
        ) -> None:
            self.speed, self.recent = speed, recent  # shown by the first draw, in tqdm's __init__
            self.hidden = False
            super().__init__(
                file=stream,
                total=total or None,
                initial=step,
                ascii=BAR_CHARS,
                mininterval=redraw_s,
                miniters=1,
                dynamic_ncols=True,  # cut to the terminal's width: a narrow one does not wrap
                leave=True,
                position=0,  # one bar per console; never moved below another's line
            )

        @property
        def format_dict(self) -> dict[str, Any]:
            fields = _meter_fields(int(self.n), self.total, self.speed, self.recent, BAR_WIDTH)
            state = super().format_dict
            cols = state["ncols"]
            if cols is not None and cols <= 0:  # see `display`
                state["ncols"] = cols = None
            if cols is not None and self.total:
                # Narrower than the line: the bar gives up cells first, so the numbers stay
                # whole (tqdm cuts the line's end to the terminal's width).
                full = len(self.format_meter(**{**state, **fields, "ncols": None}))
                width = max(1, BAR_WIDTH - max(0, full - cols))
                fields["bar_format"] = BAR_FORMAT % width
            return {**state, **fields}

        def display(self, msg: str | None = None, pos: int | None = None) -> Any:
            # A terminal that reports no size (a pty nobody sized: 0 rows and 0 columns) gets
            # the whole line; tqdm would hide the bar, or cut it to nothing.
            if self.nrows is not None and self.nrows <= 0:
                self.nrows = None
            return super().display(msg, pos)

        def show(self, step: int, steps_per_s: float, recent_return: float | None) -> None:
            self.speed, self.recent = steps_per_s, recent_return
            if self.hidden:  # a line was printed over it: draw it again at once
                self.n, self.hidden = step, False
                self.refresh()
            else:
                self.update(step - self.n)

        def close(self) -> None:
            self.leave = not self.hidden  # its last state stays; one printed over stays away
            super().close()

        def hide(self) -> None:
            """Clear the bar's line, for a line to be printed in its place."""
            if not self.hidden:
                self.clear()
                self.hidden = True

    return ProgressBar


def silence_stdout() -> None:
    """Point stdout at /dev/null after its reader went away, so that later writes (and the
    interpreter's final flush) neither fail nor print 'Exception ignored ... BrokenPipeError'."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real descriptor (e.g. captured output)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    finally:
        os.close(devnull)


class TensorBoardLogger:
    """Scalars for TensorBoard (`tensorboard --logdir RUN_DIR/tensorboard`). On resume, events
    written after the checkpoint are purged so the curves match a run done in one go."""

    def __init__(self, log_dir: Path, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def scalars(self, step: int, values: dict[str, float | None]) -> None:
        for tag, value in values.items():
            if value is not None:
                self.writer.add_scalar(tag, value, step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
