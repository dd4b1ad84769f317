"""The controller a task uses to start and watch its children on a backend."""

from flyte._core import Controller, ControllerError

__all__ = ["Controller", "ControllerError"]
