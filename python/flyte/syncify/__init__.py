"""Write an API once, as ``async def``, and offer it to sync and async callers alike.

``@syncify`` turns a coroutine function into an object that, called, runs the coroutine to its
end and returns the value (from sync code, or from async code that cannot await), and whose
``.aio(...)`` returns the awaitable. Methods, class methods and async generator functions work
too (called plainly, an async generator becomes a plain iterator)::

    @syncify
    async def fetch(n: int) -> int: ...

    fetch(1)              # 1, in sync code
    await fetch.aio(1)    # in async code
"""

from __future__ import annotations

from flyte.syncify._api import Syncify, syncify

__all__ = ["Syncify", "syncify"]
