"""Side-effect counters shared by every process of a test (files under $FLYTE_TEST_COUNTERS)."""

from __future__ import annotations

import os
from pathlib import Path


def bump(key: str) -> int:
    """Increments and returns a counter shared by every process of the test."""
    import fcntl

    path = Path(os.environ["FLYTE_TEST_COUNTERS"]) / key
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        n = int(f.read() or 0) + 1
        f.seek(0)
        f.truncate()
        f.write(str(n))
        return n


def count(key: str) -> int:
    path = Path(os.environ["FLYTE_TEST_COUNTERS"]) / key
    return int(path.read_text() or 0) if path.exists() else 0


def stamp(key: str) -> list[float]:
    """Appends the current time to a list shared by every process of the test; returns it."""
    import fcntl
    import time

    path = Path(os.environ["FLYTE_TEST_COUNTERS"]) / f"{key}.stamps"
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(f"{time.time()}\n")
        f.flush()
        f.seek(0)
        return [float(line) for line in f.read().split()]


def stamps(key: str) -> list[float]:
    path = Path(os.environ["FLYTE_TEST_COUNTERS"]) / f"{key}.stamps"
    return [float(line) for line in path.read_text().split()] if path.exists() else []
