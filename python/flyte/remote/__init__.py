"""What is on a backend, used from here: deployed tasks (``Task.get``)."""

from flyte.remote._task import RemoteTask, Task

__all__ = ["RemoteTask", "Task"]
