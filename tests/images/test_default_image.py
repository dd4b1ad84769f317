"""The default task image: `make image` builds the SDK's own definition of Flyte's Debian base
(docker/default_image.py) with `flyte build` and pushes it; docker/Dockerfile is that definition
rendered, kept in step with it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from flyte._imagebuild import _registry
from flyte._imagebuild._wheel import host_platform

sys.path.insert(0, str(Path(__file__).resolve().parent))
from containers import Registry  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FLYTE = str(Path(sys.executable).parent / "flyte")


def test_the_committed_dockerfile_is_the_default_image_rendered() -> None:
    rendered = subprocess.run(
        [FLYTE, "build", "--dry-run", "docker/default_image.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "REGISTRY": "", "PLATFORMS": "linux/amd64"},
        timeout=120,
    )
    assert rendered.returncode == 0, rendered.stderr
    committed = (REPO / "docker" / "Dockerfile").read_text()
    assert rendered.stdout == committed, "docker/Dockerfile is stale: run `make docker/Dockerfile`"
    assert committed.splitlines()[1] == "FROM docker.io/library/python:3.11-slim-bookworm"


def _make_image(registry: Registry, platforms: str) -> subprocess.CompletedProcess[str]:
    # -o install: the wheel under test is installed already.
    return subprocess.run(
        ["make", "-o", "install", "image", f"REGISTRY={registry.host}", f"PLATFORMS={platforms}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1500,
    )


def test_make_image_builds_and_pushes_the_default_image(registry: Registry, debian_python: str) -> None:
    platform = host_platform()
    assert platform is not None
    built = _make_image(registry, platform)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    match = re.search(rf"({re.escape(registry.host)}/flyte:[0-9a-f]+)", built.stdout)
    assert match, built.stdout
    assert _registry.manifest_exists(match.group(1))
    # Another platform needs this SDK's wheel for it: said plainly, nothing half-built.
    other = "linux/arm64" if platform == "linux/amd64" else "linux/amd64"
    both = _make_image(registry, f"{platform},{other}")
    assert both.returncode != 0
    assert "no flyte" in both.stderr and other in both.stderr and "FLYTE_WHEELHOUSE" in both.stderr
