"""The embedded backend on this machine: starting it, finding it, serving it.

One backend serves one data dir (it locks the directory while it runs) and advertises
itself in ``<data dir>/backend.json``; a client that finds no live backend starts one in
the background.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from flyte._bridge.backend import Backend, DataDirInUseError, init_backend_log
from flyte.errors import InitializationError

INFO = "backend.json"
LOG = "backend.log"


def default_bin_dir() -> Path:
    """The environment that stands in for every image not mapped elsewhere: this one."""
    return Path(sys.executable).parent


def image_mapping(spec: str) -> tuple[str, Path]:
    """``NAME=DIR`` -> (image name or prefix, bin directory). DIR may be an environment (its
    ``bin`` is used) or a bin directory."""
    name, sep, directory = spec.partition("=")
    if not sep or not name or not directory:
        raise ValueError(f"--image {spec!r}: expected NAME=DIR (an image name or prefix, and an environment)")
    path = Path(directory).expanduser().resolve()
    if (path / "bin").is_dir():
        path = path / "bin"
    if not path.is_dir():
        raise ValueError(f"--image {spec!r}: {directory} is not a directory")
    return name, path


def fork_server_command() -> list[str]:
    """The warm process that forks each action's process (see flyte._runtime._forkserver)."""
    return [sys.executable, "-m", "flyte._runtime._forkserver"]


def worker_command() -> list[str]:
    """A reusable worker of a task environment with a ReusePolicy (see flyte._runtime._worker)."""
    return [sys.executable, "-m", "flyte._runtime._worker"]


def read_info(data_dir: Path) -> dict[str, Any] | None:
    try:
        info = json.loads((data_dir / INFO).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and "endpoint" in info else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reachable(endpoint: str, timeout: float = 0.5) -> bool:
    host, _, port = endpoint.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def running_endpoint(data_dir: Path) -> str | None:
    """The endpoint of the live backend of ``data_dir``, if there is one."""
    info = read_info(data_dir)
    if info is None or not _alive(int(info.get("pid", 0))):
        return None
    endpoint = str(info["endpoint"])
    return endpoint if reachable(endpoint) else None


def run_page(data_dir: Path, project: str, domain: str, run: str) -> str | None:
    """The web page of a run recorded in ``data_dir`` (local runs are recorded there too), if
    the data dir's backend is running to serve it."""
    endpoint = running_endpoint(data_dir)
    if endpoint is None:
        return None
    scheme = "https" if (read_info(data_dir) or {}).get("tls") else "http"
    return f"{scheme}://{endpoint}/v2/runs/project/{project}/domain/{domain}/{run}"


def ensure_running(data_dir: Path, timeout: float = 60.0) -> str:
    """The local backend's endpoint, starting the backend in the background if needed."""
    endpoint = running_endpoint(data_dir)
    if endpoint is not None:
        return endpoint
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / LOG
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "flyte.cli._main",
                "start",
                "local",
                "--data-dir",
                str(data_dir),
                "--port",
                "0",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        endpoint = running_endpoint(data_dir)
        if endpoint is not None:
            return endpoint
        code = proc.poll()
        if code is not None:
            # Lost a race with another starter: its backend is the one to use.
            endpoint = running_endpoint(data_dir)
            if endpoint is not None:
                return endpoint
            tail = log_path.read_text(errors="replace")[-2000:]
            raise InitializationError.because(f"the local backend failed to start (exit {code}):\n{tail}")
        time.sleep(0.05)
    raise InitializationError.because(
        f"the local backend did not start within {timeout:.0f}s; see {log_path}"
    )


def serve(
    data_dir: Path,
    host: str,
    port: int,
    max_parallel: int,
    announce: Any = print,
    launcher: str = "fork",
    images: list[tuple[str, Path]] | None = None,
    tls: tuple[Path, Path] | None = None,
    auth: dict[str, Any] | None = None,
    system_retries: int | None = None,
    max_streams_per_connection: int | None = None,
    max_requests_per_second: int | None = None,
    max_message_bytes: int | None = None,
    sandbox: bool = True,
) -> None:
    """Runs the backend in this process until interrupted (``flyte start local``); ``tls`` is
    (certificate, private key), PEM files; ``auth`` requires callers to sign in (keys
    ``issuer``, ``audience``, ``client_id``, ``scopes``); ``system_retries`` is each action's
    budget of relaunches after crashes, ``max_streams_per_connection`` the RPCs one client
    connection may have open at once, ``max_requests_per_second`` the requests it may make a
    second and ``max_message_bytes`` the largest message (None: the backend's defaults);
    ``sandbox`` False lets tasks see the whole data dir (see ``flyte start local --no-sandbox``)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # This process is the backend's: what it handles goes to the data dir's log.
        init_backend_log(str(data_dir))
    except ValueError as e:
        raise InitializationError.because(str(e)) from None
    try:
        fork = fork_server_command() if launcher == "fork" else None
        backend = Backend(
            str(data_dir),
            str(default_bin_dir()),
            host,
            port,
            max_parallel,
            fork,
            [(name, str(path)) for name, path in images or []],
            worker_command(),
            tls_cert=str(tls[0]) if tls else None,
            tls_key=str(tls[1]) if tls else None,
            auth_issuer=(auth or {}).get("issuer"),
            auth_audience=(auth or {}).get("audience"),
            auth_client_id=(auth or {}).get("client_id"),
            auth_scopes=list((auth or {}).get("scopes", [])),
            system_retries=system_retries,
            max_streams_per_connection=max_streams_per_connection,
            max_requests_per_second=max_requests_per_second,
            max_message_bytes=max_message_bytes,
            sandbox=sandbox,
        )
    except DataDirInUseError:
        # The backend holds an exclusive lock on its data dir for as long as it runs.
        known = read_info(data_dir) or {}
        where = f" at {known['endpoint']}" if "endpoint" in known else ""
        raise InitializationError.because(f"a backend is already running for {data_dir}{where}") from None
    except OSError as e:
        raise InitializationError.because(str(e)) from None
    info = {
        "endpoint": backend.endpoint,
        "pid": os.getpid(),
        "data_dir": str(data_dir),
        "started_at": time.time(),
        "tls": tls is not None,
    }
    tmp = data_dir / f".{INFO}.{os.getpid()}"
    tmp.write_text(json.dumps(info))
    os.replace(tmp, data_dir / INFO)
    announce(backend.endpoint)
    try:
        backend.wait()
    finally:
        current = read_info(data_dir)
        if current is not None and current.get("pid") == os.getpid():
            (data_dir / INFO).unlink(missing_ok=True)
        backend.shutdown()
