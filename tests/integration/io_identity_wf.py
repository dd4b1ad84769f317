"""Files as task inputs: identified by content, not by where they were uploaded."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass
class Holder:
    label: str
    f: File


@env.task(cache="auto")
async def measure_holder(h: Holder) -> int:
    bump(f"holder-{h.f.read()}")
    return len(h.f.read())


@env.task
async def holder_parent(text: str) -> int:
    # A new upload on every execution, inside a dataclass this time.
    return await measure_holder(Holder(label="x", f=File.from_string(text, "data.txt")))
