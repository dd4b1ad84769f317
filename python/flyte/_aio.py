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
