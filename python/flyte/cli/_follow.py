"""Following a run in a terminal: a live view of its actions while it goes, then its outputs.

The view is fed by RunService.WatchActions (every action once, then each batch of changes, each
with its children's counts per phase), so a 100,000-way fan-out costs the terminal a few lines:
a parent shows its counts per phase and only the children worth looking at (running, failed,
the latest to end), not all of them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.text import Text
from rich.tree import Tree

from flyte.errors import ActionNotFoundError

# Deferred imports: the protobuf modules load when a run is followed, not when the CLI starts.

# Children drawn under one parent; the rest are counted.
CHILDREN_SHOWN = 8

_STYLE = {
    "QUEUED": "dim",
    "WAITING_FOR_RESOURCES": "yellow",
    "INITIALIZING": "cyan",
    "RUNNING": "bold cyan",
    "SUCCEEDED": "green",
    "FAILED": "bold red",
    "ABORTED": "magenta",
    "TIMED_OUT": "red",
    "PAUSED": "yellow",
}
# Which children are drawn first: what is going on and what went wrong, then what ended last.
_INTEREST = {"RUNNING": 0, "INITIALIZING": 0, "FAILED": 1, "TIMED_OUT": 1, "ABORTED": 2}


def phase_name(number: int) -> str:
    from flyteidl2.common import phase_pb2

    try:
        return str(phase_pb2.ActionPhase.Name(number)).removeprefix("ACTION_PHASE_")
    except ValueError:
        return f"PHASE_{number}"


@dataclass
class ActionRow:
    name: str
    parent: str
    group: str
    label: str
    phase: str
    attempts: int
    cache_hit: bool
    started: float | None
    ended: float | None
    order: int
    children: dict[str, int] = field(default_factory=dict)


def _seconds(ts: Any, present: bool) -> float | None:
    return ts.seconds + ts.nanos / 1e9 if present else None


def _row(enriched: Any, order: int) -> ActionRow:
    from flyteidl2.core import catalog_pb2

    action = enriched.action
    meta, status = action.metadata, action.status
    if meta.HasField("task"):
        label = meta.task.short_name or meta.task.id.name
    elif meta.HasField("trace"):
        label = f"trace {meta.trace.name}"
    elif meta.HasField("condition"):
        label = f"condition {meta.condition.name}"
    else:
        label = action.id.name
    return ActionRow(
        name=action.id.name,
        parent=meta.parent,
        group=meta.group,
        label=label,
        phase=phase_name(status.phase),
        attempts=status.attempts,
        cache_hit=status.cache_status == catalog_pb2.CACHE_HIT,
        started=_seconds(status.start_time, status.HasField("start_time")),
        ended=_seconds(status.end_time, status.HasField("end_time")),
        order=order,
        children={phase_name(p): n for p, n in enriched.children_phase_counts.items() if n},
    )


def _duration(row: ActionRow, now: float) -> str:
    if row.started is None:
        return ""
    seconds = (row.ended or now) - row.started
    return f"{seconds:.1f}s" if seconds < 120 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _counts(counts: dict[str, int]) -> Text:
    text = Text()
    for i, (phase, n) in enumerate(sorted(counts.items(), key=lambda kv: kv[0])):
        if i:
            text.append(" · ", style="dim")
        text.append(f"{phase.lower()} {n:,}", style=_STYLE.get(phase, ""))
    return text


class RunView:
    """What the terminal shows of one run; ``apply`` takes each batch WatchActions sends."""

    def __init__(self, name: str, url: str) -> None:
        self.name, self.url = name, url
        self.rows: dict[str, ActionRow] = {}
        self.kids: dict[str, set[str]] = {}
        self.started = time.monotonic()
        self._seen = 0

    def apply(self, batch: list[Any]) -> None:
        for enriched in batch:
            name = enriched.action.id.name
            old = self.rows.get(name)
            if not enriched.meets_filter:
                continue
            self._seen += 1
            row = _row(enriched, old.order if old else self._seen)
            self.rows[name] = row
            if row.parent:
                self.kids.setdefault(row.parent, set()).add(name)

    @property
    def root(self) -> ActionRow | None:
        return self.rows.get("a0")

    def _line(self, row: ActionRow, now: float) -> Text:
        text = Text()
        text.append(row.label, style="bold" if row.name == "a0" else "")
        text.append(f"  {row.phase.lower()}", style=_STYLE.get(row.phase, ""))
        if row.cache_hit:
            text.append("  (cached)", style="green")
        if row.attempts > 1:
            text.append(f"  attempt {row.attempts}", style="yellow")
        duration = _duration(row, now)
        if duration:
            text.append(f"  {duration}", style="dim")
        if row.children:
            text.append("  [")
            text.append_text(_counts(row.children))
            text.append("]")
        return text

    def _shown_children(self, parent: str) -> tuple[list[ActionRow], int]:
        kids = [self.rows[k] for k in self.kids.get(parent, ())]
        kids.sort(key=lambda r: (_INTEREST.get(r.phase, 3), -(r.ended or 0), r.order))
        shown = sorted(kids[:CHILDREN_SHOWN], key=lambda r: r.order)
        return shown, len(kids) - len(shown)

    def _grow(self, node: Tree, parent: str, now: float, depth: int) -> None:
        shown, hidden = self._shown_children(parent)
        groups: dict[str, Tree] = {}
        for row in shown:
            where = node
            if row.group:
                where = groups.get(row.group) or node.add(Text(row.group, style="italic"))
                groups[row.group] = where
            child = where.add(self._line(row, now))
            if depth < 3:
                self._grow(child, row.name, now, depth + 1)
        if hidden:
            node.add(Text(f"… {hidden:,} more", style="dim"))

    def render(self) -> RenderableType:
        now = time.time()
        elapsed = time.monotonic() - self.started
        head = Text()
        head.append(f"Run {self.name}", style="bold")
        root = self.root
        if root is not None:
            head.append(f"  {root.phase.lower()}", style=_STYLE.get(root.phase, ""))
        head.append(f"  {elapsed:.0f}s  ", style="dim")
        head.append(self.url, style="underline")
        if root is None:
            return Group(head, Text("waiting for the run's actions…", style="dim"))
        tree = Tree(self._line(root, now))
        self._grow(tree, root.name, now, 1)
        totals: dict[str, int] = {}
        for row in self.rows.values():
            totals[row.phase] = totals.get(row.phase, 0) + 1
        summary = Text(f"{len(self.rows):,} actions: ")
        summary.append_text(_counts(totals))
        return Group(head, tree, summary)


async def follow_live(client: Any, run: Any, console: Console) -> None:
    """Draws the run until it ends; the root action's log lines scroll above the view."""
    from rich.live import Live

    view = RunView(run.name, run.url)
    run_id = run.pb2.action.id.run

    async def logs(live: Live) -> None:
        try:
            async for resp in client.tail_logs(run.pb2.action.id, 0):
                for batch in resp.logs:
                    for line in batch.lines:
                        live.console.print(Text(line.message.rstrip("\n")))
        except Exception as e:  # noqa: BLE001 - logs are a convenience; the view goes on
            live.console.print(Text(f"(logs unavailable: {e})", style="dim"))

    with Live(view.render(), console=console, refresh_per_second=4, transient=False) as live:
        tail = asyncio.ensure_future(logs(live))
        try:
            async for batch in client.watch_actions(run_id):
                view.apply(batch)
                live.update(view.render())
        except ActionNotFoundError:
            pass
        finally:
            # The log tail ends with the action; give it a moment for the last lines.
            try:
                await asyncio.wait_for(tail, timeout=5)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - see above
                tail.cancel()
            live.update(view.render())
