"""Projects of a backend: ``flyte.remote.Project.get("flytesnacks")``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from flyte.remote._common import ToJSONMixin, connection
from flyte.syncify import syncify


@dataclass
class Project(ToJSONMixin):
    """A project: a name, a description, labels, the domains runs go to, and whether it is archived."""

    pb2: Any

    @property
    def name(self) -> str:
        return str(self.pb2.name or self.pb2.id)

    @property
    def archived(self) -> bool:
        from flyteidl2.project import project_service_pb2 as ps

        return bool(self.pb2.state == ps.PROJECT_STATE_ARCHIVED)

    @syncify
    @classmethod
    async def get(cls, name: str) -> Project:
        client, where = connection()
        return cls(await client.get_project(name, where.org))

    @syncify
    @classmethod
    async def listall(
        cls, filters: str | None = None, sort_by: Any = None, archived: bool = False
    ) -> AsyncIterator[Project]:
        """The backend's projects (archived ones with ``archived=True``, else the active ones)."""
        if filters is not None or sort_by is not None:
            raise ValueError(
                "Project.listall: filters and sort_by are not supported; filter the projects in Python"
            )
        client, where = connection()
        # Backends list archived projects only when asked to, with admin's state filter.
        for pb2 in await client.list_projects(where.org, filters="eq(state,1)" if archived else ""):
            yield cls(pb2)

    @syncify
    @classmethod
    async def create(
        cls, id: str, name: str, description: str = "", labels: dict[str, str] | None = None
    ) -> Project:
        from flyteidl2.project import project_service_pb2 as ps

        client, where = connection()
        pb2 = ps.Project(id=id, name=name, description=description, org=where.org)
        for key, value in (labels or {}).items():
            pb2.labels.values[key] = value
        await client.create_project(pb2)
        return cls(await client.get_project(id, where.org))

    @syncify
    @classmethod
    async def update(
        cls,
        id: str,
        name: str | None = None,
        description: str | None = None,
        labels: dict[str, str] | None = None,
        state: str | None = None,
    ) -> Project:
        """Changes what is given; ``state`` is ``"active"`` or ``"archived"``."""
        from flyteidl2.project import project_service_pb2 as ps

        states = {"active": ps.PROJECT_STATE_ACTIVE, "archived": ps.PROJECT_STATE_ARCHIVED}
        if state is not None and state not in states:
            raise ValueError(f"Project.update: state must be 'active' or 'archived', got {state!r}")
        client, where = connection()
        pb2 = await client.get_project(id, where.org)
        if name is not None:
            pb2.name = name
        if description is not None:
            pb2.description = description
        if labels is not None:
            pb2.labels.values.clear()
            for key, value in labels.items():
                pb2.labels.values[key] = value
        if state is not None:
            pb2.state = states[state]
        await client.update_project(pb2)
        return cls(await client.get_project(id, where.org))

    def archive(self) -> None:
        self.pb2 = Project.update(self.pb2.id, state="archived").pb2

    def unarchive(self) -> None:
        self.pb2 = Project.update(self.pb2.id, state="active").pb2
