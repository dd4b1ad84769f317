"""Extras on top of tasks: batching many callers' work through one function
(:class:`DynamicBatcher`, :class:`TokenBatcher`), container images that need nothing of this
SDK (:class:`ContainerTask`), waits the backend keeps without a process
(:class:`Sleep`), and task specs made offline (:func:`serialize`)."""

from flyte.extras import shell
from flyte.extras._batcher import (
    BatchStats,
    CostEstimator,
    DynamicBatcher,
    Prompt,
    TokenBatcher,
    TokenEstimator,
)
from flyte.extras._container import ContainerTask
from flyte.extras._serialize import serialize, serialize_env
from flyte.extras._sleep import Sleep, SleepTask

__all__ = [
    "BatchStats",
    "ContainerTask",
    "CostEstimator",
    "DynamicBatcher",
    "Prompt",
    "Sleep",
    "SleepTask",
    "TokenBatcher",
    "TokenEstimator",
    "serialize",
    "serialize_env",
    "shell",
]
