"""What is on a backend, used from here: deployed tasks, projects, secrets, triggers, and
uploads through the backend's data proxy."""

from flyte.remote._data import upload_dir, upload_file
from flyte.remote._project import Project
from flyte.remote._secret import Secret, SecretTypes
from flyte.remote._task import RemoteTask, Task
from flyte.remote._trigger import Trigger, TriggerDetails
from flyte.remote._user import User

__all__ = [
    "Project",
    "RemoteTask",
    "Secret",
    "SecretTypes",
    "Task",
    "Trigger",
    "TriggerDetails",
    "User",
    "upload_dir",
    "upload_file",
]
