"""Damaged files: every file the library reads back, model files (`load_model`, `DDPG.load`,
`ddpg evaluate`) and checkpoint directories (`read_checkpoint`, `Trainer.restore`).

Whatever the damage (missing, random bytes, empty, truncated, single bit flips, altered metadata,
foreign or future formats, path tricks, pickles), reading must raise
`ddpg.errors.CheckpointError` (the CLI: one line on stderr, non-zero exit), or, for a flip in a
part that carries no data, load exactly the original. It must never raise another exception type,
load altered data or unpickle anything. Hand-picked cases sit beside seeded random ones.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.torch
import torch
from conftest import flags, run_cli

from ddpg.api import DDPG
from ddpg.checkpoints import (
    _tensor_checksum,
    list_checkpoints,
    load_model,
    read_checkpoint,
    read_config,
    save_model,
    sha256,
)
from ddpg.cli import main
from ddpg.config import Config
from ddpg.errors import CheckpointError
from ddpg.train import Trainer

RNG_SEED = 20240601


# -- one small real run, shared by every test of this module ---------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("fuzz") / "run"
    rc = main(
        [
            "train",
            *flags(
                preset="pendulum",
                total_steps=300,
                learning_starts=100,
                batch_size=16,
                hidden_size=8,
                checkpoint_every=150,  # checkpoints at 150 and 300, both mid-episode
                eval_every=0,
                eval_episodes=1,
                torch_threads=1,
            ),
            "--quiet",
            "--run-dir",
            str(run),
        ]
    )
    assert rc == 0
    return run


@pytest.fixture(scope="module")
def model_bytes(run_dir: Path) -> bytes:
    return (run_dir / "model_final.safetensors").read_bytes()


@pytest.fixture(scope="module")
def checkpoint(run_dir: Path) -> Path:
    return list_checkpoints(run_dir / "checkpoints")[0]


def classify(fn: Callable[[], Any]) -> str:
    """'refused' for a CheckpointError, 'accepted' when nothing was raised, else the type."""
    try:
        fn()
    except CheckpointError:
        return "refused"
    except BaseException as exc:  # noqa: BLE001 (the point is to see anything else)
        return f"{type(exc).__name__}: {exc}"
    return "accepted"


# -- damage generators -----------------------------------------------------------------------
def damaged_variants(data: bytes, rng: np.random.Generator, flips: int, cuts: int):
    """(label, bytes) pairs: random, empty, truncations and single bit flips of `data`."""
    yield "empty", b""
    for size in (1, 7, 8, 100, len(data)):
        yield f"random-{size}", rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    header_end = 8 + int.from_bytes(data[:8], "little") if len(data) >= 8 else len(data)
    offsets = {1, 7, 8, 9, header_end - 1, header_end, header_end + 1, len(data) - 1}
    offsets |= {int(x) for x in rng.integers(0, len(data), cuts)}
    for offset in sorted(o for o in offsets if 0 <= o < len(data)):
        yield f"truncated-at-{offset}", data[:offset]
    for position in sorted({int(x) for x in rng.integers(0, len(data) * 8, flips)}):
        flipped = bytearray(data)
        flipped[position // 8] ^= 1 << (position % 8)
        yield f"bit-{position // 8}.{position % 8}", bytes(flipped)


def model_with_header(tensors: dict[str, torch.Tensor], header: dict[str, str] | None) -> bytes:
    return safetensors.torch.save(tensors, metadata=header)


def valid_header(
    tensors: dict[str, torch.Tensor], meta_value: Any, **changes: str
) -> dict[str, str]:
    """The header `save_model` writes for these tensors and metadata (so its checksum is
    valid), with `changes` applied (fields outside the checksum, unless they say otherwise)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.safetensors"
        save_model(path, tensors, meta_value)
        header = _metadata(path.read_bytes())
    header.update(changes)
    return header


def checksum_for(tensors: dict[str, torch.Tensor], meta_json: str) -> str:
    """The checksum the library computes for these tensors and this metadata string."""
    try:
        return _tensor_checksum(tensors, meta_json)
    except TypeError:  # a version whose checksum covers the tensors only
        return _tensor_checksum(tensors)


def crafted_models(model: bytes) -> dict[str, bytes]:
    """Well-formed safetensors files that are not (valid) DDPG model files."""
    tensors, meta = safetensors.torch.load(model), json.loads(_metadata(model)["meta"])
    modified = {k: v.clone() for k, v in tensors.items()}
    modified["actor.net.0.bias"][0] += 1.0
    return {
        "no-metadata": model_with_header(tensors, None),
        "foreign-metadata": model_with_header(tensors, {"framework": "pt"}),
        "other-format": model_with_header(tensors, valid_header(tensors, meta, format="gguf")),
        "format-version-999": model_with_header(
            tensors, valid_header(tensors, meta, format_version="999")
        ),
        "no-checksum": model_with_header(
            tensors, {k: v for k, v in valid_header(tensors, meta).items() if k != "checksum"}
        ),
        "weights-changed-checksum-kept": model_with_header(modified, valid_header(tensors, meta)),
        "meta-not-json": model_with_header(
            tensors,
            valid_header(tensors, meta, meta="{nope", checksum=checksum_for(tensors, "{nope")),
        ),
        "meta-a-list": model_with_header(tensors, valid_header(tensors, [1, 2])),
        "no-meta": model_with_header(
            tensors, {k: v for k, v in valid_header(tensors, meta).items() if k != "meta"}
        ),
        "no-tensors": model_with_header({}, valid_header({}, meta)),
        "header-length-huge": (2**62).to_bytes(8, "little") + model[8:],
        "header-length-zero": (0).to_bytes(8, "little") + model[8:],
        "header-a-list": _raw_safetensors(b"[1, 2, 3]"),
        "header-metadata-a-list": _raw_safetensors(b'{"__metadata__": [1]}'),
        "header-metadata-numbers": _raw_safetensors(b'{"__metadata__": {"format": 1}}'),
        "pickle": b"\x80\x04\x95" + b"\x00" * 64,
        "zip": b"PK\x03\x04" + b"\x00" * 64,
    }


def _raw_safetensors(header: bytes) -> bytes:
    return len(header).to_bytes(8, "little") + header


def _metadata(data: bytes) -> dict[str, str]:
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + n])["__metadata__"]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- model files: load_model ---------------------------------------------------------------------
def test_valid_model_loads(run_dir: Path) -> None:
    tensors, meta = load_model(run_dir / "model_final.safetensors")
    assert meta["config"]["hidden_size"] == 8
    assert "actor.net.0.weight" in tensors


def test_load_model_refuses_damaged_files(model_bytes: bytes, tmp_path: Path) -> None:
    rng = np.random.default_rng(RNG_SEED)
    outcomes = {}
    for label, data in damaged_variants(model_bytes, rng, flips=48, cuts=24):
        outcome = classify(lambda d=data: load_model(write(tmp_path / "m.st", d)))
        if outcome == "accepted" and label.startswith("bit-"):
            at = int(label[4:].split(".")[0])
            outcome += f" ({model_bytes[at - 12 : at + 12]!r} -> {data[at - 12 : at + 12]!r})"
        outcomes[label] = outcome
    assert len(outcomes) >= 70
    bad = {label: result for label, result in outcomes.items() if result != "refused"}
    assert not bad, f"{len(bad)} of {len(outcomes)} damaged model files not refused: {bad}"


def flip(data: bytes, position: int) -> bytes:
    flipped = bytearray(data)
    flipped[position] ^= 0x01
    return bytes(flipped)


def header_end(data: bytes) -> int:
    return 8 + int.from_bytes(data[:8], "little")


HAND_PICKED_DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "flip-last-byte": lambda d: flip(d, len(d) - 1),
    "flip-middle-of-data": lambda d: flip(d, (header_end(d) + len(d)) // 2),
    "flip-first-of-data": lambda d: flip(d, header_end(d)),
    "flip-header-length": lambda d: flip(d, 0),
    "flip-header-brace": lambda d: flip(d, 8),
    "truncated-to-half": lambda d: d[: len(d) // 2],
    "truncated-to-5-bytes": lambda d: d[:5],
    "empty": lambda d: b"",
    "foreign-text": lambda d: b"not a model",
}


@pytest.mark.parametrize("case", sorted(HAND_PICKED_DAMAGE))
def test_ddpg_load_refuses_hand_picked_damage(
    case: str, model_bytes: bytes, tmp_path: Path
) -> None:
    path = write(tmp_path / "bad.safetensors", HAND_PICKED_DAMAGE[case](model_bytes))
    with pytest.raises(CheckpointError):
        DDPG.load(path)


def test_ddpg_load_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no model file"):
        DDPG.load(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="no model file"):
        DDPG.load(tmp_path)  # a directory is not a model file


def test_load_model_refuses_crafted_files(model_bytes: bytes, tmp_path: Path) -> None:
    outcomes = {}
    for label, data in crafted_models(model_bytes).items():
        path = write(tmp_path / f"{label}.safetensors", data)
        # A well-formed model file without tensors passes the format check; loading it into
        # networks (DDPG.load) is what must refuse it.
        loader = DDPG.load if label == "no-tensors" else load_model
        outcomes[label] = classify(lambda p=path, f=loader: f(p))
    outcomes["missing-file"] = classify(lambda: load_model(tmp_path / "nope.safetensors"))
    outcomes["a-directory"] = classify(lambda: load_model(tmp_path))
    bad = {label: result for label, result in outcomes.items() if result != "refused"}
    assert not bad, bad


def rewrite_metadata(data: bytes) -> bytes:
    """The config's gamma and the action bound changed, the header rewritten around them."""
    header = _metadata(data)
    meta = json.loads(header["meta"])
    meta["config"]["gamma"] = 0.5
    meta["action_high"] = [200.0]
    return model_with_header(safetensors.torch.load(data), dict(header, meta=json.dumps(meta)))


def flip_tau_digit(data: bytes) -> bytes:
    """One flipped bit in the header's config text: tau 0.005 -> 0.004, nothing else touched."""
    needle = b'\\"tau\\": 0.005'
    assert data.count(needle) == 1
    return flip(data, data.index(needle) + len(needle) - 1)  # '5' -> '4'


@pytest.mark.parametrize("alter", [rewrite_metadata, flip_tau_digit])
def test_load_model_refuses_altered_metadata(
    alter: Callable[[bytes], bytes], model_bytes: bytes, tmp_path: Path
) -> None:
    """The metadata (config, spaces) is data too: a file whose metadata was altered after
    saving must fail verification, like altered weights do, or the model would load with
    hyperparameters nobody trained it with."""
    data = alter(model_bytes)
    assert classify(lambda: load_model(write(tmp_path / "m.st", data))) == "refused"


def test_ddpg_load_refuses_valid_file_with_invalid_config(
    model_bytes: bytes, tmp_path: Path
) -> None:
    """A correctly checksummed file whose config is not a valid config is a bad model file."""
    tensors = safetensors.torch.load(model_bytes)
    meta = json.loads(_metadata(model_bytes)["meta"])
    outcomes = {}
    for label, config in {
        "config-a-string": "Pendulum-v1",
        "config-a-list": [1, 2],
        "config-unknown-key": dict(meta["config"], warp_drive=True),
        "config-bad-value": dict(meta["config"], gamma=5.0),
        "no-config": None,
    }.items():
        bad_meta = dict(meta, config=config) if config is not None else {"obs_dim": 3}
        path = tmp_path / f"{label}.safetensors"
        save_model(path, tensors, bad_meta)
        outcomes[label] = classify(lambda p=path: DDPG.load(p))
    bad = {label: result for label, result in outcomes.items() if result != "refused"}
    assert not bad, bad


# -- model files through `ddpg evaluate` --------------------------------------------------------
def test_evaluate_cli_refuses_damaged_models(
    run_dir: Path, model_bytes: bytes, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(run_dir / "config.json", run / "config.json")
    rng = np.random.default_rng(RNG_SEED + 1)
    cases = dict(list(damaged_variants(model_bytes, rng, flips=6, cuts=4))[::2])
    cases.update(crafted_models(model_bytes))
    failures = {}
    for label, data in cases.items():
        write(run / "model_best.safetensors", data)
        try:
            rc, _, err = run_cli(["evaluate", run, "--episodes", "1"])
        except BaseException as exc:  # noqa: BLE001
            failures[label] = f"raised {type(exc).__name__}: {exc}"
            continue
        lines = err.strip().splitlines()
        if rc == 0 or len(lines) != 1 or not lines[0].startswith("ddpg: error:"):
            failures[label] = f"rc {rc}, stderr {err!r}"
    assert not failures, failures


def test_evaluate_cli_subprocess_one_line(run_dir: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(run_dir / "config.json", run / "config.json")
    data = (run_dir / "model_best.safetensors").read_bytes()
    write(run / "model_best.safetensors", data[: len(data) // 2])
    result = subprocess.run(
        [sys.executable, "-m", "ddpg.cli", "evaluate", str(run)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("ddpg: error:")


def test_evaluate_cli_refuses_missing_or_broken_config(run_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(run_dir / "model_best.safetensors", run / "model_best.safetensors")
    for content in (None, b"", b"{", b"[]", b'{"config": 3}'):
        if content is not None:
            write(run / "config.json", content)
        rc, _, err = run_cli(["evaluate", run, "--episodes", "1"])
        assert rc != 0 and len(err.strip().splitlines()) == 1, (content, err)


# -- checkpoint directories ------------------------------------------------------------------------
def copy_checkpoint(checkpoint: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(checkpoint, dest)
    return dest


def resign(path: Path, files: dict[str, bytes | None]) -> None:
    """Replace files of a checkpoint (None: remove) and rewrite the manifest so every checksum
    matches: the damage then has to be caught by the parsing and checks behind the checksums."""
    manifest = json.loads((path / "manifest.json").read_text())
    for name, data in files.items():
        if data is None:
            manifest["files"].pop(name, None)
            (path / name).unlink(missing_ok=True)
        else:
            (path / name).write_bytes(data)
            manifest["files"][name] = sha256(data)
    (path / "manifest.json").write_text(json.dumps(manifest))


def set_manifest(path: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    manifest = json.loads((path / "manifest.json").read_text())
    result = change(manifest)
    payload = manifest if result is None else result
    (path / "manifest.json").write_text(json.dumps(payload))


def npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def same_checkpoint(a: tuple[Any, Any, Any], b: tuple[Any, Any, Any]) -> bool:
    (ta, aa, sa), (tb, ab, sb) = a, b
    return (
        sorted(ta) == sorted(tb)
        and all(torch.equal(ta[k], tb[k]) for k in ta)
        and sorted(aa) == sorted(ab)
        and all(aa[k].dtype == ab[k].dtype and aa[k].tobytes() == ab[k].tobytes() for k in aa)
        and sa == sb
    )


def test_valid_checkpoint_reads(checkpoint: Path) -> None:
    tensors, arrays, state = read_checkpoint(checkpoint)
    assert state["step"] == 300 and state["in_episode"]
    assert "replay_obs" in arrays and "actor.net.0.weight" in tensors


def test_read_checkpoint_refuses_damaged_files(checkpoint: Path, tmp_path: Path) -> None:
    """Every file of a checkpoint, damaged: emptied, truncated, random, bit-flipped."""
    rng = np.random.default_rng(RNG_SEED + 2)
    original = read_checkpoint(checkpoint)
    outcomes: dict[str, str] = {}
    work = tmp_path / "ckpt"
    for file in sorted(p.name for p in checkpoint.iterdir()):
        data = (checkpoint / file).read_bytes()
        variants = list(damaged_variants(data, rng, flips=3, cuts=1))
        for label, damaged in variants[0:1] + variants[-5:] + variants[6:8]:
            copy_checkpoint(checkpoint, work)
            write(work / file, damaged)
            label = f"{file}:{label}"
            try:
                loaded = read_checkpoint(work)
            except CheckpointError:
                outcomes[label] = "refused"
                continue
            except BaseException as exc:  # noqa: BLE001
                outcomes[label] = f"{type(exc).__name__}: {exc}"
                continue
            # A flip the checksums cannot see must have changed nothing that is loaded.
            if file == "manifest.json" and same_checkpoint(loaded, original):
                outcomes[label] = "harmless"
            else:
                outcomes[label] = "accepted altered data"
    assert len(outcomes) >= 60
    bad = {k: v for k, v in outcomes.items() if v not in ("refused", "harmless")}
    assert not bad, bad
    assert sum(v == "refused" for v in outcomes.values()) >= 50


def test_read_checkpoint_refuses_missing_files(checkpoint: Path, tmp_path: Path) -> None:
    work = tmp_path / "ckpt"
    for file in sorted(p.name for p in checkpoint.iterdir()):
        copy_checkpoint(checkpoint, work)
        (work / file).unlink()
        assert classify(lambda: read_checkpoint(work)) == "refused", file
    assert classify(lambda: read_checkpoint(tmp_path / "nothing-here")) == "refused"


def unpickle_marker_payload(marker: Path) -> np.ndarray:
    """An object array whose unpickling would create `marker`."""

    class Trap:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    array = np.empty(1, dtype=object)
    array[0] = Trap()
    return array


MANIFEST_CASES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "manifest-a-list": lambda m: [m],
    "manifest-a-string": lambda m: "ddpg-checkpoint",
    "manifest-null": lambda m: 0,
    "format-wrong": lambda m: m.update(format="something-else"),
    "format-missing": lambda m: m.pop("format"),
    "format-version-999": lambda m: m.update(format_version=999),
    "format-version-string": lambda m: m.update(format_version="1"),
    "files-missing": lambda m: m.pop("files"),
    "files-a-list": lambda m: m.update(files=list(m["files"])),
    "files-empty": lambda m: m.update(files={}),
    "names-parent": lambda m: m["files"].update({"../x": m["files"]["state.json"]}),
    "names-parent-npy": lambda m: m["files"].update({"../x.npy": m["files"]["state.json"]}),
    "names-absolute": lambda m: m["files"].update({"/etc/passwd": "0" * 64}),
    "names-dotdot": lambda m: m["files"].update({"..": "0" * 64}),
    "names-hidden": lambda m: m["files"].update({".manifest.json": "0" * 64}),
    "names-nul": lambda m: m["files"].update({"a\x00b.npy": "0" * 64}),
    "names-missing-file": lambda m: m["files"].update({"extra.npy": "0" * 64}),
    "names-a-directory": lambda m: m["files"].update({"sub": "0" * 64}),
    "digest-wrong": lambda m: m["files"].update({"state.json": "0" * 64}),
    "digest-a-number": lambda m: m["files"].update({"state.json": 7}),
    "digest-null": lambda m: m["files"].update({"replay_obs.npy": None}),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_read_checkpoint_refuses_bad_manifest(case: str, checkpoint: Path, tmp_path: Path) -> None:
    work = copy_checkpoint(checkpoint, tmp_path / "ckpt")
    (work / "sub").mkdir()
    set_manifest(work, MANIFEST_CASES[case])
    assert classify(lambda: read_checkpoint(work)) == "refused"


def test_read_checkpoint_refuses_manifest_pointing_outside(
    checkpoint: Path, tmp_path: Path
) -> None:
    """A valid file outside the checkpoint, named by '../', with its real checksum."""
    work = copy_checkpoint(checkpoint, tmp_path / "ckpt")
    outside = tmp_path / "x.npy"
    outside.write_bytes(npy(np.zeros(3, dtype=np.float32)))
    set_manifest(work, lambda m: m["files"].update({"../x.npy": sha256(outside.read_bytes())}))
    assert classify(lambda: read_checkpoint(work)) == "refused"


def test_a_newer_format_version_is_named(model_bytes: bytes, checkpoint: Path, tmp_path: Path):
    """A file from a newer library is refused saying which version it is, not called garbage."""
    tensors, meta = safetensors.torch.load(model_bytes), json.loads(_metadata(model_bytes)["meta"])
    future = model_with_header(tensors, valid_header(tensors, meta, format_version="2"))
    with pytest.raises(CheckpointError, match="a DDPG model file of format version '2'; this "):
        load_model(write(tmp_path / "m.safetensors", future))
    work = copy_checkpoint(checkpoint, tmp_path / "ckpt")
    set_manifest(work, lambda m: m.update(format_version=2))
    with pytest.raises(CheckpointError, match="checkpoint of format version 2; this library reads"):
        read_checkpoint(work)


CONTENT_CASES: dict[str, Callable[[Path], dict[str, bytes | None]]] = {
    "state-a-list": lambda p: {"state.json": b"[1, 2, 3]"},
    "state-a-number": lambda p: {"state.json": b"3"},
    "state-not-json": lambda p: {"state.json": b"{'step': 1}"},
    "state-not-utf8": lambda p: {"state.json": b'{"step": "\xff\xfe"}'},
    "weights-garbage": lambda p: {"weights.safetensors": b"\x00" * 32},
    "weights-empty": lambda p: {"weights.safetensors": b""},
    "npy-garbage": lambda p: {"replay_obs.npy": b"\x93NUMPY\x01\x00garbage"},
    "npy-empty": lambda p: {"replay_obs.npy": b""},
    "npy-zip": lambda p: {"replay_obs.npy": b"PK\x03\x04" + b"\x00" * 40},
    "npy-truncated": lambda p: {"replay_obs.npy": (p / "replay_obs.npy").read_bytes()[:-7]},
}


@pytest.mark.parametrize("case", sorted(CONTENT_CASES))
def test_read_checkpoint_refuses_bad_content(case: str, checkpoint: Path, tmp_path: Path) -> None:
    work = copy_checkpoint(checkpoint, tmp_path / "ckpt")
    resign(work, CONTENT_CASES[case](work))
    assert classify(lambda: read_checkpoint(work)) == "refused"


def test_read_checkpoint_refuses_pickled_npy_without_unpickling(
    checkpoint: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "UNPICKLED"
    payload = npy(unpickle_marker_payload(marker), allow_pickle=True)
    # Sanity: the payload really is a pickle that would run when loaded with allow_pickle.
    np.load(io.BytesIO(payload), allow_pickle=True)
    assert marker.exists()
    marker.unlink()
    for name in ("replay_obs.npy", "torch_rng.npy", "pickled_extra.npy"):
        work = copy_checkpoint(checkpoint, tmp_path / "ckpt")
        resign(work, {name: payload})
        assert classify(lambda w=work: read_checkpoint(w)) == "refused", name
        assert not marker.exists(), f"{name} was unpickled"


# -- checkpoints that verify but do not fit: Trainer.restore ------------------------------------
def edit_state(key: str, value: Any) -> Callable[[Path], dict[str, bytes]]:
    def change(path: Path) -> dict[str, bytes]:
        state = json.loads((path / "state.json").read_text())
        node = state
        *parents, last = key.split("/")
        for part in parents:
            node = node[part]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
        return {"state.json": json.dumps(state).encode()}

    return change


def edit_weights(change: Callable[[dict[str, torch.Tensor]], None]):
    def apply(path: Path) -> dict[str, bytes]:
        tensors = safetensors.torch.load((path / "weights.safetensors").read_bytes())
        change(tensors)
        return {"weights.safetensors": safetensors.torch.save(tensors)}

    return apply


DELETE = object()
RESTORE_CASES: dict[str, Callable[[Path], dict[str, bytes | None]]] = {
    "state-empty": lambda p: {"state.json": b"{}"},
    "state-no-noise": edit_state("noise", DELETE),
    "state-no-step": edit_state("step", DELETE),
    "state-step-text": edit_state("step", "many"),
    "state-step-null": edit_state("step", None),
    "state-step-nan": lambda p: {
        "state.json": (p / "state.json").read_bytes().replace(b'"step": 300', b'"step": NaN')
    },
    "state-rng-text": edit_state("rng", "garbage"),
    "state-rng-empty": edit_state("rng", {}),
    "state-best-step-text": edit_state("best_step", "late"),
    "state-target-reached-number": edit_state("target_reached", 1),
    "state-in-episode-short": edit_state("in_episode", []),
    "state-recent-number": edit_state("recent_returns", 5),
    "state-optimizers-list": edit_state("optimizers", []),
    "state-optimizer-a-list": edit_state("optimizers/actor_optimizer", []),
    "state-optimizer-groups-text": edit_state("optimizers/actor_optimizer/param_groups", "x"),
    "state-noise-list": edit_state("noise", []),
    "state-loss-sums-text": edit_state("loss_sums", {"critic_loss": "high"}),
    "state-loss-sums-list": edit_state("loss_sums", [1.0]),
    "state-log-position-negative": edit_state("log_positions/metrics", -5),
    "state-log-position-text": edit_state("log_positions/metrics", "end"),
    "episode-arrays-missing": lambda p: {"episode_obs.npy": None, "episode_actions.npy": None},
    "episode-obs-empty": lambda p: {"episode_obs.npy": npy(np.zeros((0,), np.float32))},
    "weights-missing-tensor": edit_weights(lambda t: t.pop("critic.net.0.weight")),
    "weights-wrong-shape": edit_weights(
        lambda t: t.update({"actor.net.0.weight": torch.zeros(3, 3)})
    ),
    "weights-optimizer-state-wrong-shape": edit_weights(
        lambda t: t.update({"critic_optimizer.0.exp_avg": torch.zeros(2)})
    ),
    "replay-obs-wrong-width": lambda p: {"replay_obs.npy": npy(np.zeros((300, 7), np.float32))},
    "replay-obs-scalar": lambda p: {"replay_obs.npy": npy(np.float32(1.0))},
    "replay-obs-text": lambda p: {"replay_obs.npy": npy(np.array(["a"] * 300))},
    "replay-position-scalar": lambda p: {"replay_position.npy": npy(np.int64(5))},
    "replay-position-out-of-range": lambda p: {
        "replay_position.npy": npy(np.array([10**6], np.int64))
    },
    "replay-generator-short": lambda p: {"replay_generator.npy": npy(np.zeros(3, np.uint8))},
    "torch-rng-short": lambda p: {"torch_rng.npy": npy(np.zeros(3, np.uint8))},
    "episode-obs-wrong": lambda p: {"episode_obs.npy": npy(np.full(3, 7.0, np.float32))},
    "episode-actions-nan": lambda p: {
        "episode_actions.npy": npy(np.full((100, 1), np.nan, np.float32))
    },
}


def run_with_checkpoint(
    run_dir: Path, checkpoint: Path, tmp_path: Path, files: Callable[[Path], dict[str, Any]]
) -> tuple[Trainer, Path]:
    """A copy of the run holding only `checkpoint`, with `files(checkpoint)` replaced and the
    manifest re-signed, and a Trainer on it."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(run_dir / "config.json", run / "config.json")
    for name in ("metrics.csv", "evaluations.csv"):
        shutil.copy(run_dir / name, run / name)
    work = copy_checkpoint(checkpoint, run / "checkpoints" / checkpoint.name)
    resign(work, files(work))
    read_checkpoint(work)  # the checksums verify: only restore can catch damage
    return Trainer(Config.from_dict(read_config(run)["config"]), run), work


@pytest.mark.parametrize("case", sorted(RESTORE_CASES))
def test_restore_refuses_checkpoint_that_does_not_fit(
    case: str, run_dir: Path, checkpoint: Path, tmp_path: Path
) -> None:
    trainer, _ = run_with_checkpoint(run_dir, checkpoint, tmp_path, RESTORE_CASES[case])
    try:
        outcome = classify(trainer.restore)
    finally:
        with contextlib.suppress(Exception):
            trainer.close()
    assert outcome == "refused"


def test_restore_accepts_the_original(run_dir: Path, checkpoint: Path, tmp_path: Path) -> None:
    """Control for the cases above: the same set-up without damage restores."""
    trainer, work = run_with_checkpoint(run_dir, checkpoint, tmp_path, lambda p: {})
    path, skipped = trainer.restore()
    trainer.close()
    assert path == work and skipped == [] and trainer.state.step == 300
