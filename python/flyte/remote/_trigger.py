"""Triggers deployed with tasks: ``flyte.remote.Trigger.get(name="nightly", task_name="env.main")``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from flyte._initialize import current_config
from flyte._trigger import Trigger as TriggerDefinition
from flyte.remote._common import ToJSONMixin, connection
from flyte.remote._task import Task
from flyte.syncify import syncify

# Deferred imports: protobufs and the backend client load on the first remote call.


def _trigger_name(name: str, task_name: str) -> tuple[Any, Any]:
    from flyteidl2.common import identifier_pb2

    client, where = connection()
    return client, identifier_pb2.TriggerName(
        org=where.org, project=where.project, domain=where.domain, name=name, task_name=task_name
    )


class _TriggerFields:
    pb2: Any

    @property
    def id(self) -> Any:
        return self.pb2.id

    @property
    def name(self) -> str:
        return str(self.pb2.id.name.name)

    @property
    def task_name(self) -> str:
        return str(self.pb2.id.name.task_name)

    @property
    def automation_spec(self) -> Any:
        return self.pb2.automation_spec


@dataclass
class TriggerDetails(_TriggerFields, ToJSONMixin):
    """All the backend keeps of a trigger: its spec (inputs, run settings), status, metadata."""

    pb2: Any

    @syncify
    @classmethod
    async def get(cls, *, name: str, task_name: str) -> TriggerDetails:
        client, trigger = _trigger_name(name, task_name)
        return cls(await client.get_trigger(trigger))

    @property
    def is_active(self) -> bool:
        return bool(self.pb2.spec.active)

    @property
    def metadata(self) -> Any:
        return self.pb2.metadata

    @property
    def status(self) -> Any:
        return self.pb2.status

    @property
    def trigger(self) -> Trigger:
        from flyteidl2.trigger import trigger_definition_pb2

        return Trigger(
            trigger_definition_pb2.Trigger(
                id=self.pb2.id,
                metadata=self.pb2.metadata,
                status=self.pb2.status,
                active=self.pb2.spec.active,
                automation_spec=self.pb2.automation_spec,
            ),
            self,
        )


@dataclass
class Trigger(_TriggerFields, ToJSONMixin):
    """A deployed trigger: what fires it (``automation_spec``), whether it is active."""

    pb2: Any
    details: TriggerDetails | None = None

    @property
    def is_active(self) -> bool:
        return bool(self.pb2.active)

    @property
    def url(self) -> str:
        endpoint = current_config().endpoint or "local"
        return f"flyte://{endpoint}/triggers/{self.task_name}/{self.name}"

    @syncify
    @classmethod
    async def get(cls, *, name: str, task_name: str) -> TriggerDetails:
        """The trigger's full details (the reference returns those here too)."""
        return await TriggerDetails.get.aio(name=name, task_name=task_name)

    async def get_details(self) -> TriggerDetails:
        if self.details is None:
            self.details = await TriggerDetails.get.aio(name=self.name, task_name=self.task_name)
        return self.details

    @syncify
    @classmethod
    async def listall(
        cls, task_name: str | None = None, task_version: str | None = None, limit: int = 100
    ) -> AsyncIterator[Trigger]:
        """The project's triggers, or one task's (``task_version`` needs ``task_name``)."""
        from flyteidl2.common import identifier_pb2
        from flyteidl2.task import task_definition_pb2

        if task_version is not None and task_name is None:
            raise ValueError("Trigger.listall: task_version needs task_name")
        client, where = connection()
        scope: Any
        if task_name is None:
            scope = identifier_pb2.ProjectIdentifier(
                organization=where.org, domain=where.domain, name=where.project
            )
        else:
            scope = task_definition_pb2.TaskName(
                org=where.org, project=where.project, domain=where.domain, name=task_name
            )
        for pb2 in await client.list_triggers(scope, limit=limit):
            trigger = cls(pb2)
            if task_version is not None:
                # The version a trigger starts is part of its spec, which only its details hold.
                details = await trigger.get_details()
                if details.pb2.spec.task_version != task_version:
                    continue
            yield trigger

    @syncify
    @classmethod
    async def create(
        cls, trigger: TriggerDefinition, task_name: str, task_version: str | None = None
    ) -> Trigger:
        """Adds ``trigger`` to the deployed task ``task_name`` (its latest version unless
        ``task_version`` is given): inputs are checked against that task's inputs."""
        from flyteidl2.trigger import trigger_definition_pb2

        from flyte._internal._triggers import task_trigger

        if not isinstance(trigger, TriggerDefinition):
            raise TypeError(f"Trigger.create takes a flyte.Trigger, got {type(trigger).__name__}")
        if task_version:
            task = Task.get(task_name, version=task_version)
        else:
            task = Task.get(task_name, auto_version="latest")
        await task._fetch_async()
        made = task_trigger(task, trigger)
        client, name = _trigger_name(trigger.name, task_name)
        spec = trigger_definition_pb2.TriggerSpec(
            inputs=made.spec.inputs,
            run_spec=made.spec.run_spec,
            active=made.spec.active,
            task_version=task.version,
            description=made.spec.description,
        )
        details = TriggerDetails(await client.deploy_trigger(name, spec, made.automation_spec))
        return details.trigger

    @syncify
    @classmethod
    async def update(cls, name: str, task_name: str, active: bool) -> None:
        """Activates or deactivates the trigger."""
        client, trigger = _trigger_name(name, task_name)
        await client.set_triggers_active([trigger], bool(active))

    @syncify
    @classmethod
    async def delete(
        cls, name: str, task_name: str, project: str | None = None, domain: str | None = None
    ) -> None:
        from flyteidl2.common import identifier_pb2

        client, where = connection(project, domain)
        await client.delete_triggers(
            [
                identifier_pb2.TriggerName(
                    org=where.org, project=where.project, domain=where.domain, name=name, task_name=task_name
                )
            ]
        )
