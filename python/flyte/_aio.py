"""Asking about the running event loop without importing asyncio.

``import asyncio`` costs tens of milliseconds (it pulls in ssl) and ``import flyte``
should not pay that. No event loop can be running before asyncio has been imported, so
until then the answer is "none" for free.
"""

from __future__ import annotations

import sys
from typing import Any


def running_loop() -> Any:
    """The event loop running in this thread, or None."""
    aio = sys.modules.get("asyncio")
    if aio is None:
        return None
    return aio.events._get_running_loop()


def loop_running_here() -> bool:
    return running_loop() is not None


def finish_returned_coroutine(value: Any) -> Any:
    """A sync task's return value, with a coroutine it returned without awaiting run to its end.

    ``return File.from_local(path)`` in a sync task hands back a coroutine (the reference SDK's
    I/O methods are coroutine functions); nothing else could await it, and a coroutine is no
    value to pass on, so it runs here: on a thread of its own (this one may be running an event
    loop) with this thread's context (the current action: where new data goes).
    """
    import inspect

    if not inspect.iscoroutine(value):
        return value
    import asyncio
    import contextvars
    import threading

    context = contextvars.copy_context()
    outcome: dict[str, Any] = {}

    def finish() -> None:
        try:
            outcome["value"] = context.run(asyncio.run, value)
        except BaseException as e:  # noqa: BLE001 - re-raised in the task's thread
            outcome["error"] = e

    worker = threading.Thread(target=finish, name="flyte-returned-coroutine")
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
