"""HTML reports written by tasks declared with ``@env.task(report=True)``.

Content is kept per action in tabs; ``flush()`` writes it out (in local mode to
``report.html`` under the run's directory). Outside of a task, and in tasks without
``report=True``, calls are accepted and nothing is written.
"""

from __future__ import annotations

from flyte.report._report import Report, Tab, current_report, flush, get_tab, log, replace
from flyte.report._widgets import Timeline, abbreviate, duration_ms

__all__ = [
    "Report",
    "Tab",
    "Timeline",
    "abbreviate",
    "current_report",
    "duration_ms",
    "flush",
    "get_tab",
    "log",
    "replace",
]
