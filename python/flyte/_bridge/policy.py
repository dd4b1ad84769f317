"""The rules between attempts (retries, backoff, time limits), read from a task's metadata."""

from flyte._core import TaskPolicy, backoff_delay, task_environment

__all__ = ["TaskPolicy", "backoff_delay", "task_environment"]
