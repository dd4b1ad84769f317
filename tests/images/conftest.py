"""Real parts for image tests: an OCI registry (Debian's docker-registry) on 127.0.0.1, and a
Debian base image with Python made from Debian's packages (mmdebstrap), pushed there as the
image Flyte's Debian base starts from, so `Image.from_debian_base()` builds unchanged through
a registry mirror. buildah does the building, with its storage under the test cache dir when
one is given (FLYTE_TEST_CACHE_DIR), so its layer cache carries over between runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from containers import BASE_PACKAGES, PYTHON, PYTHON_PACKAGES, Registry, buildah, need, running_registry  # noqa: E402

# Session fixtures are set up inside the first test that asks for them, and on a clean machine
# (no FLYTE_TEST_CACHE_DIR) that test pays for a Debian rootfs per platform, arm64's under qemu:
# far beyond the suite's default per-test limit.
COLD_BUILD_TIMEOUT = 1800


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(item.path).resolve().parents and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(COLD_BUILD_TIMEOUT))


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
    with running_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


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


def _rootfs(cache_dir: Path, arch: str = "amd64", packages: str = BASE_PACKAGES) -> Path:
    """A Debian bookworm root file system with ``packages`` for ``arch``, made once and kept in
    the cache. A foreign architecture's packages are configured under qemu-user-static."""
    suffix = "" if arch == "amd64" else f"-{arch}"
    tar = cache_dir / f"debian-bookworm-{packages.replace(',', '+')}{suffix}.tar"
    if tar.exists():
        return tar
    partial = tar.with_suffix(".partial")
    argv = [
        need("mmdebstrap"),
        "--variant=minbase",
        f"--arch={arch}",
        f"--include={packages}",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "bookworm",
        str(partial),
        "http://deb.debian.org/debian",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"mmdebstrap failed:\n{proc.stderr[-3000:]}"
    partial.rename(tar)
    return tar


def _base_image(tar: Path, uri: str, arch: str = "amd64", https: bool = True) -> None:
    """Commits a root file system as ``uri`` for ``arch`` and pushes it; with ``https`` (the
    rootfs has ca-certificates), with this machine's extra CA certificates, which its HTTPS
    traffic may need."""
    ctr = buildah("from", "scratch").stdout.strip()
    try:
        buildah("add", ctr, str(tar), "/")
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        buildah("config", "--arch", arch, "--os", "linux", "--env", f"PATH={path}", ctr)
        extra_cas = Path("/usr/local/share/ca-certificates")
        if https and extra_cas.is_dir() and any(extra_cas.iterdir()):
            buildah("copy", ctr, str(extra_cas), "/usr/local/share/ca-certificates/")
            buildah("run", ctr, "--", "update-ca-certificates")
        if https:
            # pip, and requests-based tools such as poetry, bring CA bundles of their own.
            bundle = "/etc/ssl/certs/ca-certificates.crt"
            for variable in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
                buildah("config", "--env", f"{variable}={bundle}", ctr)
        buildah("commit", "--rm", ctr, uri)
    except BaseException:
        buildah("rm", ctr, check=False)
        raise
    buildah("push", "--tls-verify=false", uri, f"docker://{uri}")


@pytest.fixture(scope="session")
def debian_python(registry: Registry, containers: dict[str, str], cache_dir: Path) -> str:
    """`python:3.11-slim-bookworm` as the test registry serves it (Debian's Python 3.11), with
    this machine's extra CA certificates, which its HTTPS traffic may need."""
    uri = f"{registry.host}/library/python:{PYTHON[0]}.{PYTHON[1]}-slim-bookworm"
    _base_image(_rootfs(cache_dir), uri)
    return uri


@pytest.fixture(scope="session")
def debian_python_multiarch(registry: Registry, containers: dict[str, str], cache_dir: Path) -> str:
    """Debian's Python for linux/amd64 and linux/arm64, as one manifest list. arm64's programs
    (its packages' scripts, an image's RUN steps) run here under qemu-user-static, so its rootfs
    has only what the multi-arch test runs, Python: every package more costs minutes."""
    need("qemu-aarch64-static")
    binfmt = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    if not binfmt.exists() or "enabled" not in binfmt.read_text():
        pytest.fail(
            "no binfmt_misc entry runs arm64 programs here (/proc/sys/fs/binfmt_misc/qemu-aarch64); "
            "installing qemu-user-static (`make test-tools`) registers one"
        )
    repo = f"{registry.host}/library/debian-python"
    listed = f"{repo}:bookworm"
    buildah("manifest", "rm", listed, check=False)
    buildah("manifest", "create", listed)
    for arch in ("amd64", "arm64"):
        one = f"{repo}:bookworm-{arch}"
        if arch == "amd64":
            _base_image(_rootfs(cache_dir), one, arch)
        else:
            _base_image(_rootfs(cache_dir, arch, PYTHON_PACKAGES), one, arch, https=False)
        buildah("manifest", "add", "--tls-verify=false", listed, f"docker://{one}")
    buildah("manifest", "push", "--all", "--tls-verify=false", listed, f"docker://{listed}")
    return listed
