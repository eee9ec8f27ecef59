"""Files on disk: run configs, model files and resumable checkpoints.

Formats: tensors in safetensors, everything else in JSON or NumPy `.npy` arrays. Nothing is ever
unpickled. Every file is written to a temporary name, flushed to disk and renamed into place, and
every file carries a SHA-256 that is checked before use, so a truncated, tampered or foreign file
is refused with a one-line message instead of being half-loaded.

A model file is one `.safetensors` file whose header metadata holds the format, the config and a
checksum of the tensors. A checkpoint is a directory `checkpoints/step-NNNNNNNNNN/` holding
`weights.safetensors`, one `.npy` per array, `state.json` and, written last, `manifest.json` with
the SHA-256 of each of them; a directory without a valid manifest is ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np
import safetensors
import safetensors.torch
import torch

from ddpg import __version__
from ddpg.errors import CheckpointError, check_format

MODEL_FORMAT = "ddpg-model"
CHECKPOINT_FORMAT = "ddpg-checkpoint"
FORMAT_VERSION = 1
KEEP_CHECKPOINTS = 2


# -- atomic writes ------------------------------------------------------------------------------
def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a crash leaves either the old file or the new one. A
    failure (or an interrupt) leaves no temporary file; its OSError names `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            exc.filename, exc.filename2 = str(path), None
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, allow_nan=False) + "\n").encode())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}


def _tensor_checksum(tensors: dict[str, torch.Tensor], meta: str = "") -> str:
    h = hashlib.sha256(meta.encode())
    for key in sorted(tensors):
        t = tensors[key]
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        data = t.contiguous().reshape(-1).view(torch.uint8)  # reshape: 0-dim int64 counters
        h.update(data.numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


# -- model files --------------------------------------------------------------------------------
def save_model(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """One safetensors file: weights plus JSON metadata and a checksum of the weights."""
    tensors = _contiguous(tensors)
    meta_json = json.dumps(meta, allow_nan=False)
    header = {
        "format": MODEL_FORMAT,
        "format_version": str(FORMAT_VERSION),
        "meta": meta_json,
        "checksum": _tensor_checksum(tensors, meta_json),
    }
    atomic_write_bytes(Path(path), safetensors.torch.save(tensors, metadata=header))


def load_model(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no model file at {path}")
    data = path.read_bytes()
    try:
        tensors = safetensors.torch.load(data)
        header = _safetensors_metadata(data)
    except Exception as exc:  # the parser raises several types on garbage
        raise CheckpointError(f"{path} is not a readable safetensors model file ({exc})") from None
    what = "a DDPG model file"
    check_format(path, header, MODEL_FORMAT, str(FORMAT_VERSION), what, CheckpointError)
    if header.get("checksum") != _tensor_checksum(tensors, header.get("meta", "")):
        raise CheckpointError(f"{path} failed its checksum: the file is corrupt or was modified")
    try:
        meta = json.loads(header["meta"])
    except (KeyError, json.JSONDecodeError):
        raise CheckpointError(f"{path} has unreadable metadata") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} has unreadable metadata")
    return tensors, meta


def _safetensors_metadata(data: bytes) -> dict[str, str]:
    """The `__metadata__` of a safetensors blob (length-prefixed JSON header)."""
    if len(data) < 8:
        raise ValueError("file too short")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8:
        raise ValueError("header length exceeds file size")
    header = json.loads(data[8 : 8 + n])
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise ValueError("metadata is not a mapping")
    return meta


# -- checkpoints --------------------------------------------------------------------------------
class CheckpointContents(NamedTuple):
    """What a checkpoint holds, as its files hold it: `tensors` (weights.safetensors), `arrays`
    (one .npy each) and JSON `values` (state.json). The parts of a run give and take their
    state in this form (`state_dict()` / `load_state_dict()`)."""

    tensors: dict[str, torch.Tensor]
    arrays: dict[str, np.ndarray]
    values: dict[str, Any]


class _HashingWriter:
    """A write-only binary file that also feeds what it writes to SHA-256. NumPy writes arrays
    to such file-like objects in chunks, so a large array is never copied whole."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return self.file.write(data)


def _write_synced(path: Path, write: Callable[[BinaryIO], object]) -> str:
    """Create `path` with `write`, fsync it, and return the SHA-256 of its bytes."""
    with open(path, "wb") as f:
        writer = _HashingWriter(f)
        write(writer)  # type: ignore[arg-type]
        f.flush()
        os.fsync(f.fileno())
    return writer.hash.hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(
    directory: Path,
    step: int,
    tensors: dict[str, torch.Tensor],
    arrays: dict[str, np.ndarray],
    state: dict[str, Any],
) -> Path:
    """Write a checkpoint for `step` under `directory` atomically; keep the newest ones only."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"step-{step:010d}"
    tmp = directory / f".tmp-step-{step:010d}-{os.getpid()}"
    try:
        _write_checkpoint_dir(tmp, tensors, arrays, state, step)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and exc.filename is not None:  # name the checkpoint, not
            exc.filename, exc.filename2 = str(final), None  # its temporary twin
        raise
    _fsync_dir(directory)
    for old in list_checkpoints(directory)[KEEP_CHECKPOINTS:]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _write_checkpoint_dir(
    tmp: Path,
    tensors: dict[str, torch.Tensor],
    arrays: dict[str, np.ndarray],
    state: dict[str, Any],
    step: int,
) -> None:
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    blobs = {
        "weights.safetensors": safetensors.torch.save(_contiguous(tensors)),
        "state.json": json.dumps(state, allow_nan=False).encode(),
    }
    digests = {
        name: _write_synced(tmp / name, lambda f, b=data: f.write(b))
        for name, data in blobs.items()
    }
    for name, array in arrays.items():
        # Streamed: the replay buffer is the bulk of a checkpoint and is not copied in memory.
        digests[f"{name}.npy"] = _write_synced(
            tmp / f"{name}.npy", lambda f, a=array: np.save(f, a, allow_pickle=False)
        )
    manifest = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "step": step,
        "files": digests,
    }
    atomic_write_json(tmp / "manifest.json", manifest)


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoint directories, newest first (temporary ones excluded)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(
        (p for p in directory.iterdir() if p.is_dir() and p.name.startswith("step-")),
        reverse=True,
    )


def read_checkpoint(path: Path) -> CheckpointContents:
    """Read and verify one checkpoint directory; raise CheckpointError if anything is off."""
    path = Path(path)
    try:
        manifest = json.loads((path / "manifest.json").read_bytes())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no manifest (incomplete checkpoint)") from None
    except ValueError:
        raise CheckpointError(f"{path}: unreadable manifest") from None
    what = "a DDPG checkpoint"
    check_format(path, manifest, CHECKPOINT_FORMAT, FORMAT_VERSION, what, CheckpointError)
    files = manifest.get("files")
    if not isinstance(files, dict) or "weights.safetensors" not in files:
        raise CheckpointError(f"{path}: manifest lists no files")
    blobs: dict[str, bytes] = {}
    arrays_at: dict[str, Path] = {}
    for name, digest in files.items():
        if (
            not isinstance(name, str)
            or not isinstance(digest, str)
            or name != os.path.basename(name)
            or name.startswith(".")
            or "\x00" in name
        ):
            raise CheckpointError(f"{path}: manifest names an invalid file {name!r}")
        try:
            if name.endswith(".npy"):  # hashed in chunks, loaded below: never two copies
                actual = _file_sha256(path / name)
                arrays_at[name[: -len(".npy")]] = path / name
            else:
                blobs[name] = (path / name).read_bytes()
                actual = sha256(blobs[name])
        except FileNotFoundError:
            raise CheckpointError(f"{path}: missing file {name}") from None
        except IsADirectoryError:
            raise CheckpointError(f"{path}: {name} is a directory, not a file") from None
        # Other OSErrors (permission denied, ...) are no damage: they propagate as they are.
        if actual != digest:
            raise CheckpointError(f"{path}: {name} failed its checksum (truncated or modified)")
    try:
        tensors = safetensors.torch.load(blobs.pop("weights.safetensors"))
        state = json.loads(blobs.pop("state.json"))
        arrays = {key: np.load(file, allow_pickle=False) for key, file in arrays_at.items()}
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable contents ({exc})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: state.json is not an object")
    return CheckpointContents(tensors, arrays, state)


def latest_checkpoint(
    directory: Path,
) -> tuple[Path, CheckpointContents, list[tuple[Path, str]]]:
    """The newest checkpoint that verifies, with the newer ones skipped and why."""
    skipped: list[tuple[Path, str]] = []
    for path in list_checkpoints(directory):
        try:
            return path, read_checkpoint(path), skipped
        except CheckpointError as exc:
            skipped.append((path, str(exc)))
    detail = f" ({'; '.join(reason for _, reason in skipped)})" if skipped else ""
    raise CheckpointError(f"no valid checkpoint in {directory}{detail}")


# -- flattening optimiser and RNG state into tensors + JSON --------------------------------------
def optimizer_to_files(
    prefix: str, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in sd["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{pid}.{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_files(
    prefix: str,
    optimizer: torch.optim.Optimizer,
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
) -> dict[str, Any]:
    """The state dict `optimizer_to_files` flattened, checked against `optimizer`'s parameters
    (load_state_dict does not check shapes: a wrong one would only fail at the next step)."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            pid, name = key[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(pid), {})[name] = value
    for pid, entry in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(entry)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for pid, entry in state.items():
        if not 0 <= pid < len(params):
            raise ValueError(f"{prefix}: state for unknown parameter {pid}")
        for name, value in entry.items():
            if isinstance(value, torch.Tensor) and value.dim() and value.shape != params[pid].shape:
                raise ValueError(
                    f"{prefix}.{pid}.{name} has shape {tuple(value.shape)}, "
                    f"expected {tuple(params[pid].shape)}"
                )
    groups = meta["param_groups"]
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    return {"state": state, "param_groups": groups}


# -- run directories: config.json and the networks' tensors --------------------------------------
def write_config(run_dir: Path, config_dict: dict[str, Any], extra: dict[str, Any]) -> None:
    """RUN_DIR/config.json: the resolved config, the preset it came from, the library version."""
    atomic_write_json(
        Path(run_dir) / "config.json",
        {"config": config_dict, **extra, "library_version": __version__},
    )


def read_config(run_dir: Path) -> dict[str, Any]:
    """RUN_DIR/config.json as written by `write_config`; CheckpointError if it is not one."""
    path = Path(run_dir) / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        raise CheckpointError(f"{run_dir} is not a run directory (no config.json)") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a directory, not a run config") from None
    except ValueError:  # not UTF-8, not JSON
        raise CheckpointError(f"{path} is damaged (not JSON)") from None
    # Other OSErrors (permission denied, I/O error) are no damage: they propagate as they are.
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise CheckpointError(f"{path} is not a run config")
    return data


def network_tensors(networks: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """Every network's state dict under one flat namespace: `actor.net.0.weight`, ..."""
    return {
        f"{name}.{key}": value
        for name, net in networks.items()
        for key, value in net.state_dict().items()
    }


def subtree(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under `prefix.`, with the prefix removed (one network's state dict)."""
    prefix += "."
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def model_meta(
    config_dict: dict[str, Any],
    obs_dim: int,
    low: np.ndarray,
    high: np.ndarray,
    step: int,
    obs_layout: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The metadata of a model file: enough to rebuild the actor without an environment
    (`obs_layout`: the keys and sizes of a Dict observation, `ObsLayout.to_meta`)."""
    return (obs_layout or {}) | {
        "config": config_dict,
        "obs_dim": obs_dim,
        "action_low": np.asarray(low).tolist(),
        "action_high": np.asarray(high).tolist(),
        "step": step,
        "library_version": __version__,
    }
