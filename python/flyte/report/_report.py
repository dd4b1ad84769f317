from __future__ import annotations

import html
import string
import threading
from dataclasses import dataclass, field
from pathlib import Path

from flyte import _context
from flyte.syncify import syncify

# Deferred imports: what functions here import loads on first use, not with `import flyte` or
# when tasks are defined (the Rust extension, protobufs, storage and backend clients).

_MAIN_TAB = "main"
#: The page a report is rendered into: ``string.Template`` with ``$NAV_HTML`` and ``$BODY_HTML``.
DEFAULT_TEMPLATE = Path(__file__).with_name("_template.html")


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
    template_path: Path = field(default_factory=lambda: DEFAULT_TEMPLATE)
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

    def has_content(self) -> bool:
        """Whether anything was logged to any tab."""
        return any(tab.get_html() for tab in self.tabs.values())

    def get_final_report(self) -> str:
        """The whole report as one HTML page: a link per tab with content, then the tabs."""
        tabs = [t for t in self.tabs.values() if t.get_html()]
        nav = "".join(f'<a href="#tab-{i}">{html.escape(t.name)}</a>' for i, t in enumerate(tabs))
        body = "".join(
            f'<section id="tab-{i}"><h2>{html.escape(t.name)}</h2>\n{t.get_html()}\n</section>'
            for i, t in enumerate(tabs)
        )
        page = string.Template(Path(self.template_path).read_text(encoding="utf-8"))
        return page.safe_substitute(TITLE=html.escape(self.name), NAV_HTML=nav, BODY_HTML=body)


_reports: dict[tuple[str, str], Report] = {}
_lock = threading.Lock()
_detached = Report("detached")


def current_report() -> Report:
    """The report of the running action (a throw-away one outside of a task)."""
    c = _context.current()
    if c is None:
        return _detached
    return report_for(c)


def report_for(c: _context.ActionContext) -> Report:
    """The report of action ``c``."""
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


@syncify
async def log(content: str, do_flush: bool = False) -> None:
    """Appends HTML to the main tab of the current report (``await log.aio(...)`` in async code)."""
    get_tab(_MAIN_TAB).log(content)
    if do_flush:
        await flush.aio()


@syncify
async def replace(content: str, do_flush: bool = False) -> None:
    """Replaces the main tab of the current report."""
    get_tab(_MAIN_TAB).replace(content)
    if do_flush:
        await flush.aio()


@syncify
async def flush() -> None:
    """Writes the current report out, if its task was declared with ``report=True``."""
    import asyncio

    report = current_report()
    if not report.enabled or report.uri is None:
        return
    from flyte._internal import _uris

    await asyncio.to_thread(_uris.write_bytes, report.uri, report.get_final_report().encode("utf-8"))
