"""Helpers the image tests share with their fixtures."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

# Debian's Python is what the test base has; the image's python_version must name it.
PYTHON = (3, 11)
BASE_PACKAGES = "python3,python3-venv,python-is-python3,ca-certificates"
# Python and nothing else, for a rootfs made under emulation.
PYTHON_PACKAGES = "python3,python-is-python3"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed; `make test-tools` installs what these tests need")
    return path


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT


def flyte_cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed `flyte` command, plain-text output; ``env`` replaces the environment."""
    plain = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [str(Path(sys.executable).parent / "flyte"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1500,
        env=plain if env is None else env,
    )


def lock(project: Path, tool: str, *args: str) -> None:
    """Locks a project with ``tool`` from this virtualenv (uv, poetry), as its user would."""
    out = subprocess.run(
        [str(Path(sys.executable).parent / tool), "lock", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def buildah(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [need("buildah"), *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "BUILDAH_ISOLATION": "chroot"},
    )
    if check:
        assert proc.returncode == 0, f"buildah {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_registry(root: Path, htpasswd: Path | None = None) -> Iterator[Registry]:
    """Debian's docker-registry serving ``root`` on a free loopback port; with ``htpasswd``
    (bcrypt entries) every request needs one of its users (HTTP basic auth)."""
    exe = need("docker-registry")
    port = _free_port()
    auth = f"auth:\n  htpasswd:\n    realm: flyte-tests\n    path: {htpasswd}\n" if htpasswd else ""
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n{auth}"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = (root / "registry.log").open("w")
    proc = subprocess.Popen([exe, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2):
                break
        except urllib.error.HTTPError as e:
            if e.code == 401 and htpasswd is not None:
                break  # up, and asking for credentials
            raise
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the registry did not start: {(root / 'registry.log').read_text()}")
            time.sleep(0.2)
    try:
        yield Registry(f"127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
