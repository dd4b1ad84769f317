"""Files as task inputs: identified by content, not by where they were uploaded."""

from __future__ import annotations

from counters import bump

import flyte
from flyte.io import File

env = flyte.TaskEnvironment(name="io_identity")


@env.task(cache="auto")
async def measure(f: File) -> int:
    bump(f"measure-{f.read()}")
    return len(f.read())


@env.task
async def parent(text: str) -> int:
    # A new upload (a new URI) on every execution of the parent.
    return await measure(File.from_string(text, "data.txt"))


@env.task
async def keyed_parent(text: str, key: str) -> int:
    # The user's key, not the content, identifies the file.
    import tempfile
    from pathlib import Path

    p = Path(tempfile.mkdtemp()) / "data.txt"
    p.write_text(text)
    return await measure(await File.from_local(p, hash_method=key))
