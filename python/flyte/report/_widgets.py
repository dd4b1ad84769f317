"""Small building blocks for reports: a timeline of rows, and value formatting for it."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from flyte.report._report import get_tab

#: The most of one value a report shows, expanded.
_FULL_LIMIT = 20_000


def abbreviate(value: Any, limit: int = 300) -> str:
    """``value`` as escaped HTML: whole when short; otherwise its first ``limit`` characters,
    which expand (``<details>``) to the rest, up to 20,000 characters."""
    text = "" if value is None else str(value)
    if len(text) <= limit:
        return html.escape(text)
    full = html.escape(text[:_FULL_LIMIT])
    if len(text) > _FULL_LIMIT:
        full += f"\n[{len(text) - _FULL_LIMIT} more characters not shown]"
    return (
        f"<details><summary>{html.escape(text[:limit])}… ({len(text) - limit} more)</summary>"
        f'<pre style="white-space:pre-wrap">{full}</pre></details>'
    )


def duration_ms(start_iso: Any, end_iso: Any) -> str:
    """The time between two ISO-8601 instants as ``"<n> ms"``; ``""`` when either is missing
    or unreadable."""
    if not start_iso or not end_iso:
        return ""
    try:
        start = datetime.fromisoformat(str(start_iso).replace("Z", "+00:00"))
        end = datetime.fromisoformat(str(end_iso).replace("Z", "+00:00"))
        return f"{(end - start).total_seconds() * 1000:.0f} ms"
    except (TypeError, ValueError):
        return ""


class Timeline:
    """Rows appended, in order, to one tab of the current report — a log of what a long task
    did. Outside a task, or in one without ``report=True``, rows go nowhere."""

    def __init__(self, tab_name: str = "main") -> None:
        self._tab_name = tab_name

    def heading(self, text: Any) -> None:
        self._append(f"<h3>{html.escape(str(text))}</h3>")

    def row(
        self, *, icon: str = "•", label: Any = "", meta: str = "", detail: str = "", error: Any = None
    ) -> None:
        """One entry: an icon, a bold label, muted metadata, a detail (HTML), and an error."""
        parts = [f"{icon} <b>{html.escape(str(label))}</b>"]
        if meta:
            parts.append(f'<span style="opacity:.6">{html.escape(meta)}</span>')
        if detail:
            parts.append(f"— {detail}")
        if error:
            parts.append(f'<span style="color:#c22">⚠ {abbreviate(error, 200)}</span>')
        self._append(f'<div class="timeline-row">{" ".join(parts)}</div>')

    def _append(self, content: str) -> None:
        get_tab(self._tab_name).log(content)
