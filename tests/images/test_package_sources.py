"""Where an image's Python packages come from, and a registry that wants credentials.

One image exercises the package sources a user's project can name: pip options (``pre``,
``index_url``, ``extra_index_urls``) against two package indexes served on loopback, a
``uv.lock`` and a ``poetry.lock`` given to ``with_requirements``, and build-time secrets
(``secret_mounts``: one from the builder's environment, one from the local secret store, as a
file) that a step reads and the image does not keep. It is pushed to a registry that
refuses anonymous access (docker-registry with htpasswd), with the credentials the image's
``registry_secret`` names, stored as a user would with ``flyte create secret --type image_pull``.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import sys
import textwrap
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import bcrypt
import pytest

from flyte._imagebuild import _registry
from flyte._imagebuild._wheel import host_platform

sys.path.insert(0, str(Path(__file__).resolve().parent))
from containers import PYTHON, Registry, buildah, flyte_cli, lock, running_registry  # noqa: E402

USER, PASSWORD = "builder", "s3cret-for-tests"
TOKEN, FILE_SECRET = "tok-for-tests", "file-secret-for-tests"

MODULE = """
import flyte

image = (
    flyte.Image.from_debian_base(
        python_version={python},
        registry="{registry}",
        name="sources",
        platform="{platform}",
        install_flyte=False,
        registry_secret="registry-creds",
    )
    .with_pip_packages(
        "flyte-test-pre",
        "flyte-test-extra",
        pre=True,
        index_url="{index}",
        extra_index_urls=["{extra_index}"],
    )
    .with_requirements("uvproj/uv.lock")
    .with_requirements("poetryproj/poetry.lock")
    .with_commands(
        ['test "$BUILD_TOKEN" = {token} && test "$(cat /etc/flyte/secrets/build_file)" = {file_secret} '
         '&& echo seen > /secrets-seen'],
        secret_mounts=["build_token", flyte.Secret(key="build_file", mount="/etc/flyte/secrets")],
    )
)

env = flyte.TaskEnvironment(name="sources", image=image)
"""

UV_PROJECT = """\
[project]
name = "uvproj"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = ["attrs==23.2.0"]
"""

POETRY_PROJECT = """\
[project]
name = "poetryproj"
version = "0.1.0"
requires-python = ">=3.10,<4"
dependencies = ["six==1.16.0"]

[tool.poetry]
package-mode = false
"""


def _wheel(directory: Path, name: str, version: str) -> None:
    """A pure-Python wheel of ``name`` whose module knows its version."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f"VERSION = {version!r}\n",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: flyte-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist_info}/RECORD"] = "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n"
    folder = directory / "simple" / name
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / f"{module}-{version}-py3-none-any.whl", "w") as whl:
        for path, text in files.items():
            whl.writestr(path, text)


@pytest.fixture
def package_index(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two package indexes on loopback (directory listings, which pip reads as simple indexes):
    the main one has flyte-test-pre 1.0.0 and the pre-release 1.1.0rc1, the extra one
    flyte-test-extra 2.0.0. Neither package exists anywhere else."""
    roots = [tmp_path / "index", tmp_path / "extra-index"]
    _wheel(roots[0], "flyte-test-pre", "1.0.0")
    _wheel(roots[0], "flyte-test-pre", "1.1.0rc1")
    _wheel(roots[1], "flyte-test-extra", "2.0.0")
    servers = []
    for root in roots:
        handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    try:
        yield tuple(f"http://127.0.0.1:{s.server_address[1]}/simple/" for s in servers)  # type: ignore[misc]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def private_registry(tmp_path: Path) -> Iterator[Registry]:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt()).decode()}\n")
    root = tmp_path / "private-registry"
    root.mkdir()
    with running_registry(root, htpasswd) as running:
        yield running


def _project(work: Path, registry: Registry, index: str, extra_index: str) -> Path:
    work.mkdir()
    (work / "uvproj").mkdir()
    (work / "uvproj" / "pyproject.toml").write_text(UV_PROJECT)
    lock(work / "uvproj", "uv", "--native-tls")
    (work / "poetryproj").mkdir()
    (work / "poetryproj" / "pyproject.toml").write_text(POETRY_PROJECT)
    lock(work / "poetryproj", "poetry", "--no-interaction")
    wf = work / "sources_wf.py"
    wf.write_text(
        textwrap.dedent(
            MODULE.format(
                python=PYTHON,
                registry=registry.host,
                platform=host_platform(),
                index=index,
                extra_index=extra_index,
                token=TOKEN,
                file_secret=FILE_SECRET,
            )
        )
    )
    return wf


def test_package_sources_and_a_registry_that_wants_credentials(
    private_registry: Registry,
    package_index: tuple[str, str],
    debian_python: str,
    tmp_path: Path,
) -> None:
    work = tmp_path / "project"
    wf = _project(work, private_registry, *package_index)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLYTE_")},
        "FLYTE_DATA_DIR": str(tmp_path / "flyte-data"),
        "HOME": str(tmp_path / "home"),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }

    # Nothing stored under the secret's name: a clear error before anything is built.
    missing = flyte_cli(work, "build", wf.name, env=env)
    assert missing.returncode != 0
    assert "registry_secret 'registry-creds'" in missing.stderr, missing.stderr[-3000:]
    assert "flyte create secret --type image_pull registry-creds" in missing.stderr
    # Build secrets: one from the environment, one stored.
    env["BUILD_TOKEN"] = TOKEN
    stored_file = flyte_cli(work, "create", "secret", "build_file", FILE_SECRET, env=env)
    assert stored_file.returncode == 0, stored_file.stderr[-3000:]

    # The registry's Docker config.json, stored as a user stores it.
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    config = tmp_path / "docker-config.json"
    config.write_text(json.dumps({"auths": {private_registry.host: {"auth": auth}}}))
    try:
        stored = flyte_cli(
            work,
            *("create", "secret", "--type", "image_pull", "registry-creds", "--from-file", str(config)),
            env=env,
        )
        assert stored.returncode == 0, stored.stderr[-3000:]

        built = flyte_cli(work, "-of", "json", "build", wf.name, env=env)
        assert built.returncode == 0, built.stderr[-5000:]
        uri = json.loads(built.stdout)[0]["image"]
        assert uri.startswith(f"{private_registry.host}/sources:")
        # Anonymous access is refused; with the credentials, the tag is there and not rebuilt.
        assert not _registry.manifest_exists(uri)
        assert _registry.manifest_exists(uri, config)
        again = flyte_cli(work, "-of", "json", "build", wf.name, env=env)
        assert again.returncode == 0, again.stderr[-3000:]
        assert json.loads(again.stdout)[0]["status"] == "in the registry already"
    finally:
        flyte_cli(work, "stop", "local", env=env)

    # Pulled back with the same credentials: every package came from where it was asked for.
    buildah("rmi", "-f", uri)
    refused = buildah("from", "--tls-verify=false", uri, check=False)
    assert refused.returncode != 0
    ctr = buildah("from", "--tls-verify=false", "--authfile", str(config), uri).stdout.strip()
    try:
        probe = (
            "import attrs, flyte_test_extra, flyte_test_pre, six; "
            "print(flyte_test_pre.VERSION, flyte_test_extra.VERSION, attrs.__version__, six.__version__)"
        )
        run = buildah("run", ctr, "--", "python", "-c", probe)
        # The step saw both secrets; the image keeps neither (no file, no variable).
        kept = buildah(
            "run", ctr, "--", "sh", "-c",
            "cat /secrets-seen; test -e /etc/flyte/secrets/build_file && echo kept || echo gone; "
            f"printenv BUILD_TOKEN || echo unset; grep -rl {TOKEN} /etc /root /run /tmp 2>/dev/null | wc -l",
        )  # fmt: skip
    finally:
        buildah("rm", ctr, check=False)
    assert run.stdout.split() == ["1.1.0rc1", "2.0.0", "23.2.0", "1.16.0"]
    assert kept.stdout.split() == ["seen", "gone", "unset", "0"], kept.stdout
