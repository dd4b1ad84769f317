"""A task's retries and time limits as the Rust core reads them: the `core.TaskMetadata`
fields a cluster gets, and the core's policy object made from them, which local mode
consults between attempts (the backend reads the same fields from the task's spec)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flyte._bridge import policy
from flyte._retry import RetryStrategy, normalize_retries
from flyte._timeout import Timeout, seconds_of, timeout_from_request

if TYPE_CHECKING:
    from flyte._task import TaskTemplate


def _duration(seconds: float) -> Any:
    from google.protobuf.duration_pb2 import Duration

    d = Duration()
    d.FromTimedelta(timedelta(seconds=seconds))
    return d


def policy_metadata(retries: RetryStrategy, timeout: Timeout | None) -> Any:
    """The `core.TaskMetadata` holding only `retries`, `timeout` and `timeouts`."""
    from flyteidl2.core import literals_pb2, tasks_pb2

    strategy = literals_pb2.RetryStrategy(retries=retries.count)
    if retries.backoff is not None:
        backoff = retries.backoff
        strategy.backoff.base.CopyFrom(_duration(backoff.base.total_seconds()))
        strategy.backoff.factor = float(backoff.factor)
        if backoff.cap is not None:
            strategy.backoff.cap.CopyFrom(_duration(backoff.cap.total_seconds()))
    metadata = tasks_pb2.TaskMetadata(retries=strategy)
    if timeout is not None:
        runtime = seconds_of(timeout.max_runtime, "Timeout.max_runtime")
        queued = seconds_of(timeout.max_queued_time, "Timeout.max_queued_time")
        deadline = seconds_of(timeout.deadline, "Timeout.deadline")
        if runtime is not None:
            metadata.timeout.CopyFrom(_duration(runtime))
        if queued is not None:
            metadata.timeouts.queued_timeout.CopyFrom(_duration(queued))
        if deadline is not None:
            metadata.timeouts.deadline.CopyFrom(_duration(deadline))
    return metadata


def task_policy(task: TaskTemplate[Any, Any, Any]) -> policy.TaskPolicy:
    """The core's policy for ``task`` (made once per task object; ``override`` copies drop it)."""
    cached = task.__dict__.get("_policy")
    if cached is None:
        cached = policy.TaskPolicy(
            policy_metadata(
                normalize_retries(task.retries), timeout_from_request(task.timeout)
            ).SerializeToString()
        )
        task.__dict__["_policy"] = cached
    return cached
