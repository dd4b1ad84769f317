"""What kind of process this is, as far as running tasks goes."""

from __future__ import annotations

#: Set by a reusable worker: the process runs attempts of many executions, one after another
#: and side by side, so no single execution's id is in its environment.
serves_attempts = False
