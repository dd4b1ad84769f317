"""Task inputs and outputs as JSON values (`rs_controller/src/python/values.rs`): the
rendering the web UI shows, for the CLI."""

from __future__ import annotations

import json
from typing import Any, Literal

from flyte._core import values_json


def named_values(message: bytes, kind: Literal["inputs", "outputs"]) -> list[dict[str, Any]]:
    """A serialized task ``Inputs`` or ``Outputs`` as ``[{"name": ..., "value": ...}]``."""
    values: list[dict[str, Any]] = json.loads(values_json(message, kind))
    return values
