"""The `ddpg` command: it builds the parser from the command modules and dispatches.

Each command is a module of `ddpg.commands` with `HELP`, `DESCRIPTION`, `add_arguments(parser)`
and `run(args) -> exit code`: train, evaluate, plot, record, export, report, sweep, presets.
Options and config parsing they share are in `ddpg.commands.options`; every command ends
through one error boundary, `ddpg.commands.boundary`:

    0 success          2 usage or input error (bad option or value, unknown env, foreign or
    1 unexpected error   damaged file, existing output, run in use)
    3 NaN or infinity  4 file-system error (permission denied, no space, read-only, ...)
    130 Ctrl-C (SIGINT)  143 SIGTERM
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from ddpg import __version__
from ddpg.commands import evaluate, export, plot, presets, record, report, sweep, train
from ddpg.commands.boundary import guarded
from ddpg.commands.options import OneLineParser

# In the order `ddpg --help` lists them.
COMMANDS: dict[str, ModuleType] = {
    "train": train,
    "evaluate": evaluate,
    "plot": plot,
    "record": record,
    "export": export,
    "report": report,
    "sweep": sweep,
    "presets": presets,
}


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", help="print the traceback of an unexpected error"
    )
    parser = OneLineParser(
        prog="ddpg",
        description="DDPG for Gymnasium continuous-control environments.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"ddpg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        command = sub.add_parser(
            name, help=module.HELP, description=module.DESCRIPTION, parents=[common]
        )
        module.add_arguments(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `ddpg` command; return its exit code (never raises, but with --debug)."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)

    def dispatch() -> int:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command].run(args)

    return guarded(dispatch, debug)


if __name__ == "__main__":
    raise SystemExit(main())
