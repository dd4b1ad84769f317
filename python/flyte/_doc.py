"""What a task says about itself: its documentation, and links shown beside its logs."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass
class Documentation:
    """A task's description: given with ``@env.task(docs=...)``, else its docstring."""

    description: str

    @property
    def short_description(self) -> str:
        """The first line (what lists of tasks show)."""
        return self.description.strip().splitlines()[0] if self.description.strip() else ""


def documentation_of(docs: str | Documentation | None, func: Callable[..., Any] | None) -> Documentation:
    if isinstance(docs, Documentation):
        return docs
    if isinstance(docs, str):
        return Documentation(docs)
    if docs is not None:
        raise TypeError(f"docs must be a string or flyte.Documentation, got {type(docs).__name__}")
    return Documentation((inspect.getdoc(func) if func is not None else None) or "")


@runtime_checkable
class Link(Protocol):
    """A link shown with a task's logs (a dashboard, a tracker): ``get_link`` renders it for an
    action. ``{{.actionName}}`` and ``{{.podName}}`` in the result are filled in by the backend."""

    name: str
    icon_uri: str | None

    def get_link(
        self,
        run_name: str,
        project: str,
        domain: str,
        context: dict[str, str],
        parent_action_name: str,
        action_name: str,
        pod_name: str,
        **kwargs: Any,
    ) -> str: ...
