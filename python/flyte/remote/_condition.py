"""The conditions of a run on a backend: find them and signal them (``flyte.new_condition``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Union

from flyte._condition import type_from_literal_type
from flyte.remote._common import ToJSONMixin, connection
from flyte.syncify import syncify

# Deferred imports: protobufs and the backend client load on the first remote call.

ConditionPayload = Union[bool, int, float, str]


@dataclass
class Condition(ToJSONMixin):
    """A condition of a run: the condition action (a ``run_definition.Action``) behind it."""

    pb2: Any

    @property
    def name(self) -> str:
        """The name the condition was declared with."""
        if self.pb2.metadata.HasField("condition"):
            return str(self.pb2.metadata.condition.name)
        return str(self.pb2.id.name)

    @property
    def action_name(self) -> str:
        return str(self.pb2.id.name)

    @property
    def run_name(self) -> str:
        return str(self.pb2.id.run.name)

    @property
    def phase(self) -> str:
        """Its phase, e.g. ``PAUSED`` while it waits, ``SUCCEEDED`` once signalled."""
        from flyteidl2.common import phase_pb2

        return str(phase_pb2.ActionPhase.Name(self.pb2.status.phase)).removeprefix("ACTION_PHASE_")

    @property
    def expected_type(self) -> type | None:
        """The type its value must have (bool, int, float or str), as the backend says."""
        if not self.pb2.metadata.HasField("condition"):
            return None
        meta = self.pb2.metadata.condition
        return type_from_literal_type(meta.type) if meta.HasField("type") else None

    def __repr__(self) -> str:
        expected = self.expected_type
        kind = f", type={expected.__name__}" if expected else ""
        return f"Condition(name={self.name!r}, action={self.action_name!r}, run={self.run_name!r}, phase={self.phase}{kind})"

    @syncify
    @classmethod
    async def listall(
        cls,
        /,
        run_name: str,
        action_name: str | None = None,
        limit: int = 100,
    ) -> AsyncIterator[Condition]:
        """The conditions of run ``run_name`` (only those declared by action ``action_name``,
        when given), ``limit`` per page."""
        from flyteidl2.common import identifier_pb2, list_pb2
        from flyteidl2.workflow import run_definition_pb2

        if not run_name:
            raise ValueError("Condition.listall needs the run's name (run_name=...)")
        client, where = connection()
        request = list_pb2.ListRequest(limit=limit)
        request.filters.add(
            function=list_pb2.Filter.EQUAL,
            field="action_type",
            values=[str(int(run_definition_pb2.ACTION_TYPE_CONDITION))],
        )
        if action_name is not None:
            request.filters.add(function=list_pb2.Filter.EQUAL, field="parent_name", values=[action_name])
        run_id = identifier_pb2.RunIdentifier(
            org=where.org, project=where.project, domain=where.domain, name=run_name
        )
        while True:
            actions, token = await client.list_actions_page(run_id, request)
            for pb2 in actions:
                if where.org and not pb2.id.run.org:
                    pb2.id.run.org = where.org
                yield cls(pb2)
            if not token:
                return
            request.token = token

    @syncify
    @classmethod
    async def get(cls, name: str, /, run_name: str, action_name: str | None = None) -> Condition | None:
        """The condition declared as ``name`` in run ``run_name`` (by action ``action_name``,
        when given), or None."""
        async for condition in cls.listall.aio(run_name=run_name, action_name=action_name):
            if condition.name == name:
                return condition
        return None

    @syncify
    async def signal(self, payload: ConditionPayload) -> None:
        """Resolves the condition with ``payload`` (a bool, int, float or str of its type): the
        task waiting for it goes on with that value."""
        from flyteidl2.workflow import run_service_pb2

        if isinstance(payload, bool):
            event = run_service_pb2.EventPayload(bool_value=payload)
        elif isinstance(payload, int):
            event = run_service_pb2.EventPayload(int_value=payload)
        elif isinstance(payload, float):
            event = run_service_pb2.EventPayload(float_value=payload)
        elif isinstance(payload, str):
            event = run_service_pb2.EventPayload(string_value=payload)
        else:
            raise TypeError(f"a condition's value is a bool, int, float or str, got {type(payload).__name__}")
        client, _ = connection(self.pb2.id.run.project or None, self.pb2.id.run.domain or None)
        await client.signal_event(self.pb2.id, self.pb2.metadata.parent, event)
