"""The `ddpg` commands, one module each (`ddpg.cli` builds the parser and dispatches).

- `options`: the one-line parser, argument types, the `--field-name` config options, the
  config `train` and `sweep` run.
- `boundary`: the error boundary: one line on stderr and an exit code for every failure.
- `train`, `evaluate`, `plot`, `record`, `export`, `report`, `sweep`, `presets`: one command
  each, with `HELP`, `DESCRIPTION`, `add_arguments(parser)` and `run(args) -> exit code`.
"""
