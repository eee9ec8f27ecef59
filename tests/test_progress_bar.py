"""The terminal progress bar (tqdm's, showing the run's numbers): where it starts, what it shows
without a total, how it shares the screen with printed lines, and how it fits a narrow terminal.
Only the draws that do not depend on the clock are asserted: the first one, the one right after
a printed line, and the last one (when the console closes)."""

from __future__ import annotations

import io
import os
import re
import sys

import pytest

from ddpg.loggers import Console, format_progress


def states(text: str) -> list[str]:
    """The bar states drawn, in order (each draw starts with a carriage return)."""
    return [s.rstrip() for s in re.split(r"[\r\n]", text) if "steps" in s]


def test_a_resumed_run_s_bar_starts_at_its_step_and_ends_at_the_total() -> None:
    out = io.StringIO()
    console = Console(stream=out, bar=True)
    console.progress(2_000, 3_000, 100.0, -5.0)
    assert states(out.getvalue()) == [
        "[################........]  67% 2,000/3,000 steps | 100 steps/s | avg return -5.0"
        " | ETA 00:00:10"
    ]
    console.progress(3_000, 3_000, 125.0, -4.04)
    console.close()
    assert states(out.getvalue())[-1] == (
        "[########################] 100% 3,000/3,000 steps | 125 steps/s | avg return -4.0"
        " | ETA 00:00:00"
    )
    assert out.getvalue().endswith("\n")


def test_without_a_total_the_bar_shows_steps_rate_and_return_only() -> None:
    out = io.StringIO()
    console = Console(stream=out, bar=True)
    console.progress(7, None, 10.0, None)
    console.progress(1_234, None, 20.0, -3.0)
    console.close()
    drawn = states(out.getvalue())
    assert drawn[0] == "7 steps | 10 steps/s | avg return -"
    assert drawn[-1] == "1,234 steps | 20 steps/s | avg return -3.0"


def test_a_printed_line_takes_the_bar_s_place_and_the_bar_comes_back_below_it() -> None:
    out = io.StringIO()
    console = Console(stream=out, bar=True)
    console.progress(1, 10, 1.0, None)
    console.print("episode line")
    before = out.getvalue().split("episode line\n")[0]
    assert before.endswith("\r") and before.rstrip("\r ").endswith("ETA 00:00:09")
    console.progress(2, 10, 1.0, None)
    after = out.getvalue().split("episode line\n")[1]
    assert states(after) == ["[####....................]  20% 2/10 steps | 1 steps/s"
                             " | avg return - | ETA 00:00:08"]  # fmt: skip
    console.print("done")
    console.close()
    # A bar a line was printed over stays away (tqdm only returns the cursor to the line start).
    assert out.getvalue().rstrip("\r").endswith("done\n")


def test_an_overshooting_step_shows_a_full_bar_and_the_real_count() -> None:
    # Several envs step together, so the last step can pass the total.
    assert format_progress(1_003, 1_000, 50.0, 1.0).startswith(
        "[########################] 100% 1,003/1,000 steps"
    )


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX pseudo-terminal")
@pytest.mark.parametrize(("columns", "bar_cells"), [(120, 24), (80, 2)])
def test_on_a_terminal_the_line_fits_its_width_and_the_bar_gives_way_first(columns, bar_cells):
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, columns, 0, 0))
    with open(slave, "w", encoding="utf-8") as tty, open(master, "rb", buffering=0) as screen:
        assert tty.isatty()
        console = Console(stream=tty)  # a terminal: the bar is on
        console.progress(2_326, 100_000, 251.0, -1428.8)
        console.close()
        drawn = screen.read(4096).decode()
    line = states(drawn)[0]
    assert line == (
        f"[{'.' * bar_cells}]   2% 2,326/100,000 steps | 251 steps/s | avg return -1428.8"
        " | ETA 00:06:29"
    )
    assert len(line) < columns


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX pseudo-terminal")
def test_a_terminal_that_reports_no_size_still_gets_the_whole_bar():
    master, slave = os.openpty()  # never sized: 0 rows, 0 columns
    with open(slave, "w", encoding="utf-8") as tty, open(master, "rb", buffering=0) as screen:
        console = Console(stream=tty)
        console.progress(5, 10, 1.0, 2.0)
        console.close()
        drawn = screen.read(4096).decode()
    assert states(drawn)[:1] == [
        "[############............]  50% 5/10 steps | 1 steps/s | avg return 2.0 | ETA 00:00:05"
    ]
