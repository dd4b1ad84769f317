"""Every test gets its own data dir (cache, run records), so tests never share state."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Helpers shared by the test packages (local_backend, browser, ...) import by their names.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True)
def _isolated_flyte(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path_factory.mktemp("flyte-data")
    monkeypatch.setenv("FLYTE_DATA_DIR", str(data))
    for var in (
        "FLYTE_CONFIG",
        "FLYTE_ENDPOINT",
        "FLYTE_PROJECT",
        "FLYTE_DOMAIN",
        "FLYTE_ORG",
        "FLYTE_INSECURE",
    ):
        monkeypatch.delenv(var, raising=False)
    import flyte._initialize as init

    monkeypatch.setattr(init, "_config", None)
