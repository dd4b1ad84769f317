"""Tasks that look around the backend's data dir and at other processes: what a task of one
run can reach of other runs, and of the backend."""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
from pathlib import Path

import flyte
import flyte.io

env = flyte.TaskEnvironment(name="isolation")

MARKER = "FLYTE_ISOLATION_MARKER"


def _data_dir() -> Path:
    from flyte._bridge import contract

    return Path(os.environ[contract.EXTRA_DATA_DIR])


@env.task
async def leave_file(text: str) -> flyte.io.File:
    """Writes a file in this run's raw data; returns it."""
    path = Path("left.txt")
    path.write_text(text)
    return await flyte.io.File.from_local(str(path))


@env.task
async def look_around(other: str) -> dict[str, str]:
    return await _look_around(other)


pooled_env = flyte.TaskEnvironment(name="isolation_pooled", reusable=flyte.ReusePolicy(replicas=1))


@pooled_env.task
async def pooled_look_around(other: str) -> dict[str, str]:
    return await _look_around(other)


async def _look_around(other: str) -> dict[str, str]:
    """What this task can see: every file under the data dir, whether another run's file can be
    read by its path, and whether unmounting (here, or in a namespace of its own) uncovers more."""
    data = _data_dir()
    seen = sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file())
    try:
        other_text = Path(other).read_text()
    except OSError as e:
        other_text = type(e).__name__
    libc = ctypes.CDLL(None, use_errno=True)
    unmounted = libc.umount2(str(data).encode(), 2)  # MNT_DETACH
    errno = ctypes.get_errno()
    nested = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import ctypes, os, sys; libc = ctypes.CDLL(None, use_errno=True); "
        "libc.unshare(0x10000000 | 0x00020000); "  # CLONE_NEWUSER | CLONE_NEWNS
        "libc.umount2(sys.argv[1].encode(), 2); print(sorted(os.listdir(sys.argv[1])))",
        str(data),
        stdout=asyncio.subprocess.PIPE,
    )
    nested_out, _ = await nested.communicate()
    return {
        "files": "\n".join(seen),
        "other": other_text,
        "umount": f"{unmounted} {errno}",
        "nested": nested_out.decode().strip(),
        "top": repr(sorted(os.listdir(data))),
    }


@env.task
async def hold_secret(seconds: float) -> str:
    """Holds the run's env value (the marker) in its environment while it sleeps."""
    await asyncio.sleep(seconds)
    return os.environ.get(MARKER, "")


@env.task
async def scan_environments(marker: str) -> list[str]:
    """Every other process whose environment this task could read and which holds `marker`,
    and every process whose files (root) it can reach."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(f"environ of {entry.name}")
        except OSError:
            pass
        try:
            if (entry / "root" / str(_data_dir()).lstrip("/") / "backend.db").stat().st_size > 0:
                found.append(f"database through the root of {entry.name}")
        except OSError:
            pass
    return found


cached_env = flyte.TaskEnvironment(name="isolation_cached")


@cached_env.task(cache="auto")
async def cached_file(text: str) -> flyte.io.File:
    import time

    path = Path("cached.txt")
    # A new value each time it really runs: equal contents prove a cache hit.
    path.write_text(f"{text} {time.time_ns()}")
    return await flyte.io.File.from_local(str(path))


@cached_env.task
async def read_cached(text: str, write: bool) -> list[str]:
    """Calls the cached task and reads its file (on a cache hit, produced by another run);
    with `write`, tries to append to it too."""
    f = await cached_file(text)
    async with f.open("rb") as fh:
        content = await fh.read()
    written = "not tried"
    try:
        if write:
            with open(f.path.removeprefix("file://"), "a") as out:
                out.write("changed by another run")
            written = "written"
    except OSError as e:
        written = type(e).__name__
    return [content.decode(), f.path, written]


@env.task
async def read_file(f: flyte.io.File) -> str:
    async with f.open("rb") as fh:
        content = await fh.read()
    return content.decode()


@env.task
async def size_of(f: flyte.io.File) -> int:
    async with f.open("rb") as fh:
        return len(await fh.read())


@env.task
async def smuggle() -> list[str]:
    """Hands a child Files that name the backend's database and key: what the child got."""
    data = _data_dir()
    seen = []
    for name in ["backend.db", "secrets.key"]:
        try:
            seen.append(f"{name}: {await size_of(flyte.io.File(path=f'file://{data / name}'))} bytes")
        except Exception as e:  # noqa: BLE001 - the child's failure is the expected answer
            seen.append(f"{name}: {type(e).__name__}")
    return seen
