"""Value types the SDK hands to user code: the running task's context (``flyte.ctx()``), an
action's identity, the phases an action goes through, and a task's interface."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from flyte._context import ActionID, TaskContext
from flyte._internal._serialization_context import SerializationContext
from flyte._names import generate_random_name
from flyte._task import DEFAULT_MAX_INLINE_IO_BYTES as MAX_INLINE_IO_BYTES

if TYPE_CHECKING:
    from flyte._checkpoint import CheckpointPaths
    from flyte._types import NativeInterface

# Deferred imports: NativeInterface (the type engine) loads when asked for, so that `import
# flyte` (which names runs with generate_random_name) stays light.

_PROTOBUF_PREFIX = "ACTION_PHASE_"


class ActionPhase(str, enum.Enum):
    """Where an action (or a run, its root action) is in its life. Compares equal to its
    lower-case name: ``ActionPhase.SUCCEEDED == "succeeded"``."""

    QUEUED = "queued"
    WAITING_FOR_RESOURCES = "waiting_for_resources"
    INITIALIZING = "initializing"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"
    TIMED_OUT = "timed_out"
    RECOVERED = "recovered"

    @property
    def is_terminal(self) -> bool:
        """Whether the action has ended (nothing about it changes any more)."""
        return self in (
            ActionPhase.SUCCEEDED,
            ActionPhase.FAILED,
            ActionPhase.ABORTED,
            ActionPhase.TIMED_OUT,
            ActionPhase.RECOVERED,
        )

    def to_protobuf_name(self) -> str:
        """The flyteidl2 ``ActionPhase`` name, e.g. ``ACTION_PHASE_SUCCEEDED``."""
        return _PROTOBUF_PREFIX + self.name

    def to_protobuf_value(self) -> int:
        from flyteidl2.common import phase_pb2

        return int(phase_pb2.ActionPhase.Value(self.to_protobuf_name()))

    @classmethod
    def from_protobuf(cls, pb_phase: Any) -> ActionPhase:
        """From a flyteidl2 ``ActionPhase`` (its number or its name)."""
        from flyteidl2.common import phase_pb2

        name = pb_phase if isinstance(pb_phase, str) else phase_pb2.ActionPhase.Name(pb_phase)
        try:
            return cls[name.removeprefix(_PROTOBUF_PREFIX)]
        except KeyError:
            raise ValueError(f"{pb_phase!r} is not an action phase with a meaning here") from None


def __getattr__(name: str) -> Any:
    if name == "CheckpointPaths":
        from flyte._checkpoint import CheckpointPaths

        return CheckpointPaths
    if name == "NativeInterface":
        from flyte._types import NativeInterface

        return NativeInterface
    raise AttributeError(f"module 'flyte.models' has no attribute {name!r}")


__all__ = [
    "MAX_INLINE_IO_BYTES",
    "ActionID",
    "ActionPhase",
    "CheckpointPaths",
    "NativeInterface",
    "SerializationContext",
    "TaskContext",
    "generate_random_name",
]
