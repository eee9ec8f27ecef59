"""Export a trained policy for deployment, runnable without this library.

The exported model is `EnvUnitsActor`: observations (batch, obs_dim) float32 in, actions
(batch, act_dim) in environment units out, the action bounds included. Both formats carry the
policy's metadata (env id, spaces, config) as JSON under the key `ddpg`: in the ONNX model's
metadata_props, and as the extra file `ddpg.json` of the TorchScript archive.

- TorchScript (`.pt`): `torch.jit.load(path)(obs)`; needs only PyTorch.
- ONNX (`.onnx`): `onnxruntime.InferenceSession(path).run(None, {"obs": obs})`; written with
  PyTorch's torch.export-based exporter, which needs the `export` extra (onnx, onnxscript).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import torch

from ddpg.errors import DDPGError
from ddpg.policy import Policy

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
META_KEY = "ddpg"


def export_policy(policy: Policy, fmt: str, out: Path) -> Path:
    """Write `policy` to `out` in format `fmt` ('onnx' or 'torchscript'), atomically."""
    if fmt not in FORMATS:
        raise DDPGError(f"unknown export format '{fmt}'; use {' or '.join(FORMATS)}")
    net = copy.deepcopy(policy.net).cpu().eval()
    example = torch.zeros(2, policy.obs_dim)  # two rows: the batch size stays dynamic
    meta = json.dumps(_meta(policy))
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        if fmt == "torchscript":
            with torch.no_grad():
                traced = torch.jit.trace(net, example)
            torch.jit.save(traced, str(tmp), _extra_files={f"{META_KEY}.json": meta})
        else:
            _write_onnx(net, example, tmp, meta)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _write_onnx(net: torch.nn.Module, example: torch.Tensor, path: Path, meta: str) -> None:
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise DDPGError('ONNX export needs the export extra: pip install "ddpg[export]"') from None
    batch = torch.export.Dim("batch")
    program = torch.onnx.export(
        net,
        (example,),
        input_names=["obs"],
        output_names=["action"],
        dynamic_shapes=({0: batch},),
        dynamo=True,
        verbose=False,
    )
    if program is None:  # only without dynamo; kept for the type checker
        raise DDPGError("the ONNX exporter returned no program")
    model = program.model_proto
    model.producer_name = "ddpg"
    entry = model.metadata_props.add()
    entry.key, entry.value = META_KEY, meta
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _meta(policy: Policy) -> dict[str, Any]:
    return {
        "env_id": policy.config.env_id,
        "obs_dim": policy.obs_dim,
        "action_low": policy.action_low.tolist(),
        "action_high": policy.action_high.tolist(),
        "config": policy.config.to_dict(),
    }
