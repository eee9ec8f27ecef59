"""Where a sweep's trials run: a local Ray started for the sweep, or a running cluster.

Local (the default): Ray starts with exactly the CPUs (and GPUs) the concurrent trials need, no
dashboard, its temp files and logs under SWEEP_DIR/ray. Ray puts Unix sockets in its temp dir,
and a socket path may not exceed 107 bytes, so a temp dir longer than MAX_TEMP_DIR_BYTES (or one
with characters a shell would split, since Ray passes it through one unquoted) is
replaced by a short one in the system temp dir with a link to it at SWEEP_DIR/ray. Ray >= 2.5x
turns token authentication on for a new local cluster and writes a token to ~/.ray/auth_token
unless one exists; the sweep gives its local Ray a token of its own through the environment
instead, so nothing is written outside SWEEP_DIR.

A cluster (`--address auto` or HOST:PORT): checked with a plain TCP connection first, so a wrong
address fails in seconds. A cluster whose head found a token starts with token authentication,
but Ray turns it on only for clients that find the cluster by themselves; with an explicit
address the client must be told (RAY_AUTH_MODE=token), so the sweep does that whenever a token is
available and RAY_AUTH_MODE is unset.

Every process of a local Ray carries SWEEP_MARKER in its environment; after a driver was killed,
`ddpg sweep --resume` stops what that Ray left behind (Ray's agents outlive a killed driver).
The marker alone does not find them all: Ray renames its agents and workers (setproctitle), which
zeroes the start of the memory that /proc/PID/environ shows, by a varying length that can cover
the marker (seen: a killed driver's dashboard and runtime-env agents that a resumed sweep missed).
So in the sweep's own temp dir, a process that holds a file there open for writing is the local
Ray's too (every Ray process writes its logs under TEMP_DIR/session_*/logs); a --ray-temp-dir,
which another Ray may share, is searched by the marker only.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import math
import os
import secrets
import shlex
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ddpg.errors import DDPGError

SWEEP_MARKER = "DDPG_SWEEP_RAY"
MAX_TEMP_DIR_BYTES = 40  # + "/session_<date>_<time>_<usec>_<pid>/sockets/plasma_store" <= 107
CONNECT_TIMEOUT_S = 5.0
JOIN_RETRIES = 10  # one a second, when an address answers but is not a Ray cluster
OBJECT_STORE_BYTES = 128 * 2**20  # trials pass files, not objects: Ray's minimum is 75 MiB
RAY_EXTRA = 'pip install "ddpg[ray]"'


class ClusterError(DDPGError):
    """Ray missing, a cluster that cannot be reached, or refused authentication."""


def require_ray(search: str | None) -> None:
    """Ray Tune (and Optuna for an Optuna search) must be importable; checked without importing."""
    missing = [m for m in ("ray", "pandas", "pyarrow") if importlib.util.find_spec(m) is None]
    if missing:
        raise ClusterError(f"ddpg sweep needs Ray Tune: {RAY_EXTRA}")
    if search == "optuna" and importlib.util.find_spec("optuna") is None:
        raise ClusterError(f"--search optuna needs Optuna: {RAY_EXTRA}")


# -- joining a cluster ----------------------------------------------------------------------------
def resolve_address(address: str) -> str:
    """HOST:PORT of the cluster to join, checked to answer, in seconds, before Ray starts."""
    if address == "auto":
        address = _auto_address()
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ClusterError(f"--address: expected auto or HOST:PORT, got '{address}'")
    try:
        with socket.create_connection((host.strip("[]"), int(port_text)), CONNECT_TIMEOUT_S) as s:
            grpc = os.environ.get("RAY_USE_TLS", "0") not in ("0", "") or _answers_http2(s)
    except socket.gaierror:
        raise ClusterError(f"--address {address}: unknown host '{host}'") from None
    except TimeoutError:
        raise ClusterError(
            f"no Ray cluster at {address}: no answer within {CONNECT_TIMEOUT_S:.0f} s"
        ) from None
    except OSError as exc:
        raise ClusterError(f"no Ray cluster at {address}: {exc.strerror or exc}") from None
    if not grpc:
        raise ClusterError(f"no Ray cluster at {address}: the server there does not speak gRPC")
    return address


def _answers_http2(connection: socket.socket) -> bool:
    """Whether the server answers an HTTP/2 client preface with a SETTINGS frame, as Ray's
    gRPC servers do at once (a silent or non-HTTP/2 server would keep Ray's client retrying for
    minutes)."""
    connection.settimeout(CONNECT_TIMEOUT_S)
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    empty_settings = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # length 0, type 4, stream 0
    connection.sendall(preface + empty_settings)
    header = b""
    while len(header) < 9:
        chunk = connection.recv(9 - len(header))
        if not chunk:
            return False
        header += chunk
    return header[3] == 0x04  # frame type SETTINGS


def _auto_address() -> str:
    """RAY_ADDRESS, or the cluster that `ray start` last started on this machine."""
    env = os.environ.get("RAY_ADDRESS", "")
    if env:
        return env
    from ray._private.services import find_bootstrap_address  # noqa: PLC0415 (Ray's own lookup)

    found = find_bootstrap_address(None)
    if not found:
        raise ClusterError(
            "--address auto: no running Ray cluster found on this machine (start one with "
            "`ray start --head`, or give HOST:PORT)"
        )
    return str(found)


def token_available() -> bool:
    """Whether Ray would find an authentication token (environment or token file)."""
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
    return bool(os.environ.get("RAY_AUTH_TOKEN")) or Path(path).is_file()


def prepare_environment(local: bool) -> None:
    """Before Ray is imported (it reads these once). Tune's own progress tables off (the sweep
    prints a line per event); a client gives up on an address that answers but is not a Ray
    cluster after about JOIN_RETRIES seconds; a local Ray's trials run at the priority of a
    plain `ddpg train`; and authentication: a local Ray gets token authentication with a token
    of its own unless the user chose; a client of a cluster uses a token whenever one is
    available and the user did not set RAY_AUTH_MODE."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("RAY_NUM_REDIS_GET_RETRIES", str(JOIN_RETRIES))
    if local:  # trials are the work: not at Ray's default worker niceness of 15
        os.environ.setdefault("RAY_worker_niceness", "0")
    if os.environ.get("RAY_AUTH_MODE"):
        return
    if local:
        os.environ["RAY_AUTH_MODE"] = "token"
        if not token_available():
            os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    elif token_available():
        os.environ["RAY_AUTH_MODE"] = "token"
    if "ray._raylet" in sys.modules:  # already imported: make it read the mode again
        sys.modules["ray._raylet"].Config.initialize("")


# -- a local Ray ------------------------------------------------------------------------------
def temp_dir_for(sweep_dir: Path, given: str | None) -> Path:
    """Ray's temp dir: the user's, SWEEP_DIR/ray, or a short folder that SWEEP_DIR/ray links to."""
    if given is not None:
        path = Path(given).absolute()
        if len(os.fsencode(path)) > MAX_TEMP_DIR_BYTES:
            raise ClusterError(
                f"--ray-temp-dir {path} is too long for Ray's sockets: at most "
                f"{MAX_TEMP_DIR_BYTES} bytes"
            )
        if not _shell_safe(path):
            raise ClusterError(
                f"--ray-temp-dir {shlex.quote(str(path))} holds characters that Ray's start-up "
                "commands do not quote: use letters, digits and _@%+=:,./-"
            )
        return path
    inside = sweep_dir.absolute() / "ray"
    if len(os.fsencode(inside)) <= MAX_TEMP_DIR_BYTES and _shell_safe(inside):
        return inside
    digest = hashlib.sha256(os.fsencode(sweep_dir.absolute())).hexdigest()[:10]
    short = Path(tempfile.gettempdir()) / f"ddpg-ray-{digest}"
    if len(os.fsencode(short)) > MAX_TEMP_DIR_BYTES:
        short = Path("/tmp") / f"ddpg-ray-{digest}"
    if not inside.is_symlink() and not inside.exists():
        short.mkdir(mode=0o700, parents=True, exist_ok=True)
        inside.symlink_to(short, target_is_directory=True)
    return short


def _shell_safe(path: Path) -> bool:
    """Whether `path` survives Ray's start-up, which passes its temp dir through a shell
    unquoted (a quote or a space in it splits or vanishes, and Ray times out starting)."""
    return shlex.quote(str(path)) == str(path)


def settle_temp_dir(sweep_dir: Path, temp_dir: Path) -> None:
    """After a local Ray of a finished sweep shut down: when its temp dir was the short
    fallback, keep its logs in SWEEP_DIR/ray and remove the fallback (and the link to it)."""
    link = sweep_dir / "ray"
    if not link.is_symlink() or link.resolve() != temp_dir.resolve():
        return
    link.unlink()
    for logs in temp_dir.glob("session_*/logs"):
        shutil.copytree(logs, link / logs.parent.name / "logs", symlinks=True)
    shutil.rmtree(temp_dir, ignore_errors=True)


def local_resources(
    num_trials: int, max_concurrent: int | None, cpus: int, gpus: float
) -> tuple[int, int]:
    """CPUs and GPUs for a local Ray: what the trials that run at once need."""
    fit = max(1, (os.cpu_count() or 1) // cpus)
    concurrent = max(1, min(num_trials, max_concurrent or fit))
    return concurrent * cpus, math.ceil(concurrent * gpus)


@dataclass(frozen=True)
class RaySession:
    address: str | None  # None: local
    temp_dir: Path | None  # local only
    nodes: int


@contextmanager
def ray_session(
    address: str | None,
    temp_dir: Path | None,
    num_cpus: int,
    num_gpus: int,
    own_temp_dir: bool = False,
) -> Iterator[RaySession]:
    """Start a local Ray (or connect to `address`), and shut it down on the way out.
    `own_temp_dir`: `temp_dir` is the sweep's own (see stop_leftovers)."""
    local = address is None
    prepare_environment(local)
    if local:
        assert temp_dir is not None
        os.environ[SWEEP_MARKER] = str(temp_dir)
    import ray
    from ray.exceptions import AuthenticationError

    kwargs: dict[str, object] = {
        "logging_level": logging.ERROR,
        "log_to_driver": False,
        "include_dashboard": False,
    }
    if local:
        kwargs |= {
            "address": "local",
            "num_cpus": num_cpus,
            "num_gpus": num_gpus,
            "_temp_dir": str(temp_dir),
            "object_store_memory": OBJECT_STORE_BYTES,
        }
    else:
        kwargs["address"] = address
    try:
        # Ray's processes must not get the terminal's Ctrl-C; its C++ core logs retries to fd 2
        with _sigint_blocked(), _stderr_silenced():
            ray.init(**kwargs)
    except AuthenticationError:
        raise ClusterError(
            f"the Ray cluster at {address} refused the authentication token: set "
            "RAY_AUTH_MODE=token and the cluster's token (RAY_AUTH_TOKEN or ~/.ray/auth_token)"
        ) from None
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError and others
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not local:
            raise ClusterError(f"no Ray cluster at {address}: {first}") from None
        raise ClusterError(f"Ray did not start ({first}); its logs are in {temp_dir}") from None
    try:
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        yield RaySession(address, temp_dir, nodes)
    finally:
        ray.shutdown()
        if local:
            assert temp_dir is not None
            # the driver leaves no Ray process behind
            stop_leftovers(temp_dir, grace_s=10.0, own_temp_dir=own_temp_dir)


@contextmanager
def _stderr_silenced() -> Iterator[None]:
    """File descriptor 2 to /dev/null for a while (Python's sys.stderr included)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block SIGINT while Ray spawns its processes (they inherit the mask), so a Ctrl-C in the
    terminal reaches the driver only, which stops the sweep cleanly; a Ctrl-C that came in the
    meantime is delivered when the block is lifted."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def stop_leftovers(temp_dir: Path, grace_s: float = 0.0, own_temp_dir: bool = False) -> int:
    """Stop the processes of this sweep's local Ray that are still there after `grace_s`
    seconds: what an earlier session left after its driver was killed (Ray's agents outlive
    it), or stragglers of a shutdown. They carry its marker in their environment or, when
    `own_temp_dir` (SWEEP_DIR/ray or its short fallback, not a --ray-temp-dir), write a file
    under `temp_dir`. Only called while this driver holds the sweep's lock. Returns how
    many were stopped."""
    deadline = time.monotonic() + grace_s
    while _local_ray(temp_dir, own_temp_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    stopped = _local_ray(temp_dir, own_temp_dir)
    for pid in stopped:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while stopped and time.monotonic() < deadline and any(_alive(p) for p in stopped):
        time.sleep(0.1)
    return len(stopped)


def _local_ray(temp_dir: Path, own_temp_dir: bool) -> list[int]:
    """Live processes other than this one that belong to the local Ray of `temp_dir`."""
    marker = f"{SWEEP_MARKER}={temp_dir}".encode()
    inside = f"{temp_dir.resolve()}/"  # as the kernel names open files: no links
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            ours = marker in (entry / "environ").read_bytes().split(b"\0")
            if not ours and own_temp_dir:
                ours = _writes_under(entry, inside)
        except OSError:
            continue
        if ours and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _writes_under(process: Path, inside: str) -> bool:
    """Whether the /proc entry `process` holds a file under `inside` open for writing (as Ray's
    processes hold their logs; a user's `tail -f` of one reads)."""
    for fd in (process / "fd").iterdir():
        try:
            if not os.readlink(fd).startswith(inside):
                continue
            info = (process / "fdinfo" / fd.name).read_text()
        except OSError:  # closed meanwhile
            continue
        flags = int(info.split("flags:", 1)[1].split()[0], 8)  # "pos: 0\nflags: 02100001\n..."
        if flags & os.O_ACCMODE != os.O_RDONLY:
            return True
    return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
