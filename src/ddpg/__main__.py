"""`python -m ddpg` and the `ddpg` command's entry point.

This module imports nothing heavy before its `try`, so that a Ctrl-C while PyTorch and Gymnasium
load (the first seconds) exits with 130 and one line instead of a traceback.
"""

from __future__ import annotations

import sys


def run() -> None:
    try:
        from ddpg.cli import main

        code = main()
    except KeyboardInterrupt:
        sys.stderr.write("ddpg: interrupted\n")
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    run()
