"""What is on a backend, used from here: runs and their actions, deployed tasks, projects,
secrets, triggers, and uploads through the backend's data proxy."""

from flyte.remote._action import Action, ActionDetails, ActionInputs, ActionOutputs
from flyte.remote._auth_metadata import auth_metadata
from flyte.remote._common import TimeFilter
from flyte.remote._data import upload_dir, upload_file
from flyte.remote._project import Project
from flyte.remote._run import Run, RunDetails
from flyte.remote._secret import Secret, SecretTypes
from flyte.remote._task import RemoteTask, Task, TaskDetails
from flyte.remote._trigger import Trigger, TriggerDetails
from flyte.remote._user import User

__all__ = [
    "Action",
    "ActionDetails",
    "ActionInputs",
    "ActionOutputs",
    "Project",
    "RemoteTask",
    "Run",
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
