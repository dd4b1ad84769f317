"""The embedded backend, served from this process, and its data dir's secrets."""

from flyte._core import Backend, DataDirInUseError, init_backend_log, read_secret

__all__ = ["Backend", "DataDirInUseError", "init_backend_log", "read_secret"]
