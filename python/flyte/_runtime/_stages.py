"""How long each stage of an action's process takes, for the backend benchmark's breakdown.

Off unless ``FLYTE_STAGE_TIMES`` names a file; then each attempt appends one JSON line to it:
milliseconds from the start of the runtime's ``main`` to the end of each stage.
"""

from __future__ import annotations

import json
import os
import time

#: The file attempts append their stage times to (unset: nothing is measured).
STAGE_TIMES_ENV = "FLYTE_STAGE_TIMES"


class Stages:
    def __init__(self) -> None:
        self._path = os.environ.get(STAGE_TIMES_ENV)
        self._start = time.perf_counter()
        self._marks: dict[str, float] = {}

    def mark(self, stage: str) -> None:
        if self._path:
            self._marks[stage] = round((time.perf_counter() - self._start) * 1000, 3)

    def record(self) -> None:
        if not self._path:
            return
        # One write of one short line: concurrent attempts' lines do not interleave.
        with open(self._path, "a") as out:
            out.write(json.dumps(self._marks) + "\n")
