"""What task plugins' serialization hooks are told (``flyte.models.SerializationContext``)."""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass
from typing import Any

# Deferred imports: the pod contract's names load when a plugin asks for the entrypoint, not
# with `import flyte` (which loads this module through flyte.models).


@dataclass
class SerializationContext:
    """What a plugin's serialization hooks (``TaskTemplate.custom_config``, ``config``,
    ``container_args``, ...) are told about the task being sent to a backend.

    ``input_path`` and ``output_path`` are the placeholders the backend fills in per attempt.
    """

    version: str
    project: str | None = None
    domain: str | None = None
    org: str | None = None
    #: Where the task's code bundle is (its URI), when the code travels as one.
    code_bundle: Any = None
    input_path: str = "{{.input}}"
    output_path: str = "{{.outputPrefix}}"
    interpreter_path: str = "/opt/venv/bin/python"
    #: Images built for the environments being deployed, by environment name.
    image_cache: Any = None
    root_dir: pathlib.Path | None = None

    def get_entrypoint_path(self, interpreter_path: str | None = None) -> str:
        """The runtime's program next to ``interpreter_path`` (the image's Python)."""
        from flyte._bridge import contract

        return os.path.join(
            os.path.dirname(interpreter_path or self.interpreter_path), contract.RUNTIME_PROGRAM
        )
