"""What is on a backend, used from here: runs and their actions, deployed tasks, projects,
secrets, triggers, and uploads through the backend's data proxy."""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flyte.remote._action import Action, ActionDetails, ActionInputs, ActionOutputs
    from flyte.remote._auth_metadata import auth_metadata
    from flyte.remote._common import TimeFilter
    from flyte.remote._condition import Condition
    from flyte.remote._data import upload_dir, upload_file
    from flyte.remote._logs import RunLogs
    from flyte.remote._project import Project
    from flyte.remote._run import Run, RunDetails
    from flyte.remote._secret import Secret, SecretTypes
    from flyte.remote._session import Remote
    from flyte.remote._task import RemoteTask, Task, TaskDetails
    from flyte.remote._trigger import Trigger, TriggerDetails
    from flyte.remote._user import User

# Each name loads its own module on first use: a run object (flyte.run's result) needs only the
# run and action modules, not the deployed-task, project or secret ones.
_WHERE = {
    "Action": "_action",
    "ActionDetails": "_action",
    "ActionInputs": "_action",
    "ActionOutputs": "_action",
    "Condition": "_condition",
    "Project": "_project",
    "Remote": "_session",
    "RemoteTask": "_task",
    "Run": "_run",
    "RunLogs": "_logs",
    "RunDetails": "_run",
    "Secret": "_secret",
    "SecretTypes": "_secret",
    "Task": "_task",
    "TaskDetails": "_task",
    "TimeFilter": "_common",
    "Trigger": "_trigger",
    "TriggerDetails": "_trigger",
    "User": "_user",
    "auth_metadata": "_auth_metadata",
    "upload_dir": "_data",
    "upload_file": "_data",
}

__all__ = [
    "Action",
    "ActionDetails",
    "ActionInputs",
    "ActionOutputs",
    "Condition",
    "Project",
    "Remote",
    "RemoteTask",
    "Run",
    "RunLogs",
    "RunDetails",
    "Secret",
    "SecretTypes",
    "Task",
    "TaskDetails",
    "TimeFilter",
    "Trigger",
    "TriggerDetails",
    "User",
    "auth_metadata",
    "upload_dir",
    "upload_file",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'flyte.remote' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"flyte.remote.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


class _CallableModule(types.ModuleType):
    """``flyte.remote()`` (the notebook style of the docs): a ``Remote`` for the configured
    backend, with ``list_runs()`` and ``get_run(name)``."""

    def __call__(self) -> Remote:
        return self.Remote()  # type: ignore[no-any-return]


sys.modules[__name__].__class__ = _CallableModule
