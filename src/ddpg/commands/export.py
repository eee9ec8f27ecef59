"""`ddpg export`: a run's policy as ONNX or TorchScript, runnable without this library."""

from __future__ import annotations

import argparse
from pathlib import Path

from ddpg.commands.options import add_force_option, model_file, path_arg, suffix_kind
from ddpg.errors import RunDirError

# What each format's file is, as outputs.check_output names it.
KINDS = {"onnx": "ONNX model", "torchscript": "TorchScript model"}
HELP = "export a run's policy to ONNX or TorchScript"
DESCRIPTION = (
    "Write the deterministic policy (observations in, actions in environment units out, "
    "bounds included) as ONNX or TorchScript, runnable without this library."
)


def add_arguments(export: argparse.ArgumentParser) -> None:
    export.add_argument("source", type=path_arg, metavar="RUN_DIR|MODEL_FILE")
    export.add_argument("--format", choices=("onnx", "torchscript"), required=True)
    export.add_argument(
        "--model", choices=("best", "final"), default="best", help="with a RUN_DIR (default: best)"
    )
    export.add_argument("--out", type=path_arg, help="file (default: beside the model file)")
    add_force_option(export)


def run(args: argparse.Namespace) -> int:
    from ddpg.export import FORMATS, export_policy
    from ddpg.outputs import check_output, check_outside_runs
    from ddpg.policy import Policy

    source: Path = args.source
    model = model_file(source, args.model) if source.is_dir() else source
    suffix = FORMATS[args.format]
    out = args.out or model.with_name(model.stem.replace("model_", "policy_") + suffix)
    kinds = {FORMATS[fmt]: kind for fmt, kind in KINDS.items()}
    named = suffix_kind(out, kinds)
    if named is not None and named != KINDS[args.format]:
        raise RunDirError(
            f"--out {out.name} names a {named} but --format is {args.format}; end it in {suffix}"
        )
    check_output(out, KINDS[args.format], args.force)
    check_outside_runs(out, own=[model.parent])
    policy = Policy.load(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"wrote {export_policy(policy, args.format, out)} ({args.format}, {policy.config.env_id})"
    )
    return 0
