"""Helpers the image tests share with their fixtures."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

import pytest

# Debian's Python is what the test base has; the image's python_version must name it.
PYTHON = (3, 11)
BASE_PACKAGES = "python3,python3-venv,python-is-python3,ca-certificates"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed; `make test-tools` installs what these tests need")
    return path


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT


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
