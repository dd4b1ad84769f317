"""The SDK's two loggers and how ``flyte.init`` sets them up.

``flyte.logger`` ("flyte.user") is for task code, ``flyte.system_logger`` ("flyte") is the
SDK's own; both write to stderr, as console lines or as JSON objects (``log_format``).
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

system_logger = logging.getLogger("flyte")
logger = logging.getLogger("flyte.user")

_HANDLER_NAME = "flyte-stderr"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message (and the exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure(
    log_level: int | str | None = None,
    log_format: str | None = None,
    reset_root_logger: bool = False,
    user_log_level: int | str | None = None,
) -> None:
    """Levels and format of the SDK's loggers; ``reset_root_logger`` routes every logger of the
    process (the root's handlers replaced) through the same handler. ``"console"`` lines are
    the default: asking for them adds no handler unless ``"json"`` put one in place before."""
    if log_format not in (None, "console", "json"):
        raise ValueError(f"log_format must be 'console' or 'json', got {log_format!r}")
    if log_level is not None:
        system_logger.setLevel(log_level)
    if user_log_level is not None:
        logger.setLevel(user_log_level)
    handler = next((h for h in system_logger.handlers if h.get_name() == _HANDLER_NAME), None)
    if handler is None and log_format != "json" and not reset_root_logger:
        return  # console lines are the default; nothing to set up
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(_HANDLER_NAME)
        system_logger.addHandler(handler)
    elif isinstance(handler, logging.StreamHandler) and handler.stream is not sys.stderr:
        # The process's stderr was replaced since (the old one may be closed: no flush).
        with handler.lock:  # type: ignore[union-attr]
            handler.stream = sys.stderr
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    elif log_format == "console":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    if reset_root_logger:
        root = logging.getLogger()
        for old in list(root.handlers):
            root.removeHandler(old)
        root.addHandler(handler)
        system_logger.propagate = False
