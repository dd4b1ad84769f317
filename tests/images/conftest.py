"""Real parts for image tests: an OCI registry (Debian's docker-registry) on 127.0.0.1, and a
Debian base image with Python made from Debian's packages (mmdebstrap), pushed there as the
image Flyte's Debian base starts from, so `Image.from_debian_base()` builds unchanged through
a registry mirror. buildah does the building, with its storage under the test cache dir when
one is given (FLYTE_TEST_CACHE_DIR), so its layer cache carries over between runs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from containers import BASE_PACKAGES, PYTHON, Registry, buildah, need  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("FLYTE_TEST_CACHE_DIR")
    if given:
        path = Path(given) / "images"
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("image-cache")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    exe = need("docker-registry")
    root = tmp_path_factory.mktemp("registry")
    port = _free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = (root / "registry.log").open("w")
    proc = subprocess.Popen([exe, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2):
                break
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


@pytest.fixture(scope="session")
def containers(
    registry: Registry, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """buildah's storage and registry settings for this session, in the environment so that the
    SDK's builder (a subprocess) gets them too: docker.io's python images come from the test
    registry, which is spoken to over plain HTTP."""
    conf = tmp_path_factory.mktemp("containers")
    storage = conf / "storage.conf"
    storage.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{cache_dir / "storage"}"\nrunroot = "{conf / "run"}"\n'
    )
    registries = conf / "registries.conf"
    registries.write_text(
        f'[[registry]]\nprefix = "docker.io/library/python"\nlocation = "{registry.host}/library/python"\n'
        f'insecure = true\n\n[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n'
    )
    env = {"CONTAINERS_STORAGE_CONF": str(storage), "CONTAINERS_REGISTRIES_CONF": str(registries)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _rootfs(cache_dir: Path) -> Path:
    """A Debian bookworm root file system with Python, made once and kept in the cache."""
    tar = cache_dir / f"debian-bookworm-{BASE_PACKAGES.replace(',', '+')}.tar"
    if tar.exists():
        return tar
    partial = tar.with_suffix(".partial")
    argv = [
        need("mmdebstrap"),
        "--variant=minbase",
        f"--include={BASE_PACKAGES}",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "bookworm",
        str(partial),
        "http://deb.debian.org/debian",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"mmdebstrap failed:\n{proc.stderr[-3000:]}"
    partial.rename(tar)
    return tar


@pytest.fixture(scope="session")
def debian_python(registry: Registry, containers: dict[str, str], cache_dir: Path) -> str:
    """`python:3.11-slim-bookworm` as the test registry serves it (Debian's Python 3.11), with
    this machine's extra CA certificates, which its HTTPS traffic may need."""
    tar = _rootfs(cache_dir)
    ctr = buildah("from", "scratch").stdout.strip()
    try:
        buildah("add", ctr, str(tar), "/")
        extra_cas = Path("/usr/local/share/ca-certificates")
        if extra_cas.is_dir() and any(extra_cas.iterdir()):
            buildah("copy", ctr, str(extra_cas), "/usr/local/share/ca-certificates/")
            buildah("run", ctr, "--", "update-ca-certificates")
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        bundle = "/etc/ssl/certs/ca-certificates.crt"
        buildah("config", "--env", f"PATH={path}", "--env", f"PIP_CERT={bundle}", ctr)
        uri = f"{registry.host}/library/python:{PYTHON[0]}.{PYTHON[1]}-slim-bookworm"
        buildah("commit", "--rm", ctr, uri)
    except BaseException:
        buildah("rm", ctr, check=False)
        raise
    buildah("push", "--tls-verify=false", uri, f"docker://{uri}")
    return uri
