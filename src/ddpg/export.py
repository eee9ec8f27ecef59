"""Export a trained policy for deployment, runnable without this library.

The exported model is `EnvUnitsActor`: observations (batch, obs_dim) float32 in, actions
(batch, act_dim) in environment units out, the action bounds and the observation normaliser
(a run with normalize_obs) included. A policy of a Dict-observation env takes one input per part
instead, named by its key and in the layout's order (`observation`, `desired_goal`,
`achieved_goal`, ...), each (batch, size) float32: the env's own dict, as float32, is the input.
Both formats carry the policy's metadata (env id, spaces, config) as JSON under the key `ddpg`:
in the ONNX model's metadata_props, and as the extra file `ddpg.json` of the TorchScript archive.

- TorchScript (`.pt`): `torch.jit.load(path)(obs)`; needs only PyTorch.
- ONNX (`.onnx`): `onnxruntime.InferenceSession(path).run(None, {"obs": obs})`; written with
  PyTorch's torch.export-based exporter, which needs the `export` extra (onnx, onnxscript).
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from ddpg.atomic import replacing
from ddpg.errors import DDPGError
from ddpg.policy import Policy

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
META_KEY = "ddpg"


def export_policy(policy: Policy, fmt: str, out: Path) -> Path:
    """Write `policy` to `out` in format `fmt` ('onnx' or 'torchscript'), atomically."""
    if fmt not in FORMATS:
        raise DDPGError(f"unknown export format '{fmt}'; use {' or '.join(FORMATS)}")
    net: torch.nn.Module = copy.deepcopy(policy.net).cpu().eval()
    layout = policy.layout
    names = list(layout.keys) or ["obs"]
    if layout.is_dict:
        net = ConcatParts(net).eval()
    # Two rows: the batch size stays dynamic.
    example = tuple(torch.zeros(2, size) for size in layout.sizes)
    meta = json.dumps(_meta(policy))
    out = Path(out)
    with replacing(out) as tmp:
        if fmt == "torchscript":
            with torch.no_grad():
                traced = torch.jit.trace(net, example)
            torch.jit.save(traced, str(tmp), _extra_files={f"{META_KEY}.json": meta})
        else:
            _write_onnx(net, example, names, tmp, meta)
    return out


class ConcatParts(torch.nn.Module):
    """The policy on a Dict observation's parts, given one tensor each, in layout order."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, *parts: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat(parts, dim=-1))


def _write_onnx(
    net: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    names: list[str],
    path: Path,
    meta: str,
) -> None:
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise DDPGError('ONNX export needs the export extra: pip install "ddpg[export]"') from None
    batch = torch.export.Dim("batch")
    parts = tuple({0: batch} for _ in example)
    with warnings.catch_warnings():
        # The parts of a dict observation share one batch axis, which the exporter remarks on.
        warnings.filterwarnings("ignore", message=".*shares the same shape constraints")
        program = torch.onnx.export(
            net,
            example,
            input_names=names,
            output_names=["action"],
            # ConcatParts takes its parts as one *args entry; the flat policy its one tensor.
            dynamic_shapes=(parts,) if isinstance(net, ConcatParts) else parts,
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
        **policy.layout.to_meta(),
        "action_low": policy.action_low.tolist(),
        "action_high": policy.action_high.tolist(),
        "config": policy.config.to_dict(),
    }
