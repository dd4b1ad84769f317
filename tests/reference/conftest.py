"""The reference SDK (flyte 2.12.1 from PyPI, unmodified, in a virtualenv of its own) as a
client of our embedded backend. The virtualenv is cached under $FLYTE_TEST_CACHE_DIR when
that is set; otherwise it is made in the test session's temporary directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

REFERENCE = "flyte==2.12.1"
#: The image the reference's default TaskEnvironment names (ghcr.io/flyteorg/flyte:pyX.Y-v2.12.1).
REFERENCE_IMAGE = "ghcr.io/flyteorg/flyte"


def _make_venv(path: Path) -> Path:
    python = path / "bin" / "python"
    marker = path / ".installed"
    if marker.exists() and marker.read_text() == REFERENCE and python.exists():
        return path
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", REFERENCE],
        check=True,
        timeout=900,
    )
    marker.write_text(REFERENCE)
    return path


@pytest.fixture(scope="session")
def reference_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = os.environ.get("FLYTE_TEST_CACHE_DIR")
    where = Path(cache) / "reference-venv" if cache else tmp_path_factory.mktemp("reference") / "venv"
    where.parent.mkdir(parents=True, exist_ok=True)
    return _make_venv(where)


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory, reference_venv: Path) -> Iterator[str]:
    """`flyte start local` (ours) with the reference's image mapped to the reference's venv."""
    data = tmp_path_factory.mktemp("refbackend")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "flyte"),
            "start",
            "local",
            "--port",
            "0",
            "--data-dir",
            str(data),
            "--image",
            f"{REFERENCE_IMAGE}={reference_venv}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not re.fullmatch(r"[\d.]+:\d+", line):
        proc.kill()
        raise RuntimeError(f"the backend did not start: {line!r}")
    # The reference derives an org from the endpoint's first DNS label; localhost gives none.
    endpoint = "localhost:" + line.rsplit(":", 1)[1]
    try:
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def reference(reference_venv: Path, backend: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Runs the reference's Python or CLI; returns completed processes."""
    env = dict(os.environ)
    # The reference keeps upload caches under HOME; each test starts clean.
    env["HOME"] = str(tmp_path)
    env.pop("FLYTE_DATA_DIR", None)

    class Reference:
        endpoint = backend

        def python(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(reference_venv / "bin" / "python"), *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                cwd=str(Path(__file__).parent),
            )

        def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [
                    str(reference_venv / "bin" / "flyte"),
                    "--endpoint",
                    backend,
                    "--insecure",
                    *args,
                ],
                capture_output=True,
                text=True,
                timeout=timeout,
                env={**env, "COLUMNS": "400", "NO_COLOR": "1"},
                cwd=str(Path(__file__).parent),
            )

    return Reference()
