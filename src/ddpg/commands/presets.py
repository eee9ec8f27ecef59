"""`ddpg presets`: the presets, one line each."""

from __future__ import annotations

import argparse

from ddpg.presets import PRESETS

HELP = "list the presets"
DESCRIPTION = "List the presets."


def add_arguments(_parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(_args: argparse.Namespace) -> int:
    for name, preset in PRESETS.items():
        values = preset["values"]
        budget = (
            f"{values['total_steps']:,} steps"
            if values.get("total_steps")
            else f"{values.get('episodes')} episodes"
        )
        print(f"{name:18s} {values['env_id']:26s} {budget:16s} {preset['description']}")
    return 0
