from __future__ import annotations

import html
import threading
from dataclasses import dataclass, field

from flyte import _context

# Deferred imports: what functions here import loads on first use, not with `import flyte` or
# when tasks are defined (the Rust extension, protobufs, storage and backend clients).

_MAIN_TAB = "Main"


@dataclass
class Tab:
    name: str
    _parts: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def log(self, content: str) -> None:
        """Appends HTML to the tab."""
        with self._lock:
            self._parts.append(str(content))

    def replace(self, content: str) -> None:
        """Replaces everything in the tab with ``content``."""
        with self._lock:
            self._parts = [str(content)]

    def get_html(self) -> str:
        with self._lock:
            return "\n".join(self._parts)


@dataclass
class Report:
    """The report of one action: named tabs of HTML."""

    name: str
    tabs: dict[str, Tab] = field(default_factory=dict)
    enabled: bool = False
    #: Where ``flush`` writes it: a local path or a storage URI.
    uri: str | None = None

    def get_tab(self, name: str, create_if_missing: bool = True) -> Tab:
        tab = self.tabs.get(name)
        if tab is None:
            if not create_if_missing:
                raise KeyError(f"report has no tab {name!r}")
            tab = self.tabs[name] = Tab(name)
        return tab

    def get_final_report(self) -> str:
        tabs = [t for t in self.tabs.values() if t.get_html()]
        nav = "".join(f'<a href="#tab-{i}">{html.escape(t.name)}</a> ' for i, t in enumerate(tabs))
        body = "".join(
            f'<section id="tab-{i}"><h2>{html.escape(t.name)}</h2>\n{t.get_html()}\n</section>'
            for i, t in enumerate(tabs)
        )
        return (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(self.name)}</title></head>"
            f"<body><nav>{nav}</nav>{body}</body></html>"
        )


_reports: dict[tuple[str, str], Report] = {}
_lock = threading.Lock()
_detached = Report("detached")


def current_report() -> Report:
    """The report of the running action (a throw-away one outside of a task)."""
    c = _context.current()
    if c is None:
        return _detached
    key = (c.run.name, c.action_name)
    with _lock:
        report = _reports.get(key)
        if report is None:
            enabled = bool(c.task is not None and c.task.report)
            uri = c.run.report_uri(c.action_name)
            report = _reports[key] = Report(f"{c.run.name}/{c.action_name}", enabled=enabled, uri=uri)
        return report


def get_tab(name: str, create_if_missing: bool = True) -> Tab:
    return current_report().get_tab(name, create_if_missing)


def log(content: str, do_flush: bool = False) -> None:
    """Appends HTML to the main tab of the current report."""
    get_tab(_MAIN_TAB).log(content)
    if do_flush:
        flush()


def replace(content: str, do_flush: bool = False) -> None:
    """Replaces the main tab of the current report."""
    get_tab(_MAIN_TAB).replace(content)
    if do_flush:
        flush()


def flush() -> None:
    """Writes the current report out, if its task was declared with ``report=True``."""
    report = current_report()
    if not report.enabled or report.uri is None:
        return
    from flyte._internal import _uris

    _uris.write_bytes(report.uri, report.get_final_report().encode("utf-8"))
