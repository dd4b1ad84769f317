"""Deployed tasks, used by name: ``flyte.remote.Task.get("env.task", auto_version="latest")``.

The object is resolved on first use (an RPC to the backend's TaskService). Called inside a
task it starts a child action running the deployed code in its own image; passed to
``flyte.run`` it starts a run of the deployed task.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

from flyte import _context
from flyte._cache import Cache
from flyte._initialize import current_config
from flyte.errors import ActionNotFoundError, RemoteTaskError
from flyte.remote._common import ToJSONMixin, _client_and_scope
from flyte.syncify import syncify

# Deferred imports: what functions here import loads on first use, not with `import flyte` or
# when tasks are defined (the Rust extension, protobufs, storage and backend clients).


class RemoteTask:
    """A deployed task. Its version, spec and interface are fetched on first use."""

    #: Calls always go to another process, so from async code they are awaited.
    is_async = True

    def __init__(
        self,
        name: str,
        project: str | None,
        domain: str | None,
        version: str | None,
        auto_version: str | None,
    ) -> None:
        self.name = name
        self._project, self._domain = project, domain
        self._version, self._auto_version = version, auto_version
        self._details: Any = None
        self._scope: Any = None  # where it was found (org, project, domain)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        pinned = self._version or self._auto_version
        return f"RemoteTask(name={self.name!r}, version={pinned!r})"

    # -- resolution -----------------------------------------------------------------------

    def fetch(self) -> RemoteTask:
        """Looks the task up now (later calls reuse what was found)."""
        with self._lock:
            if self._details is None:
                from flyte._remote._client import run_sync

                self._details = run_sync(self._resolve())
        return self

    async def _resolve(self) -> Any:
        from flyteidl2.common import identifier_pb2
        from flyteidl2.task import task_definition_pb2

        client, where = _client_and_scope(self._project, self._domain)
        self._scope = where
        version = self._version
        if version is None:
            pid = identifier_pb2.ProjectIdentifier(
                organization=where.org, domain=where.domain, name=where.project
            )
            found = await client.list_tasks(pid, name=self.name, limit=1)
            if not found:
                raise RemoteTaskError(message=await self._missing(client, pid, where))
            version = found[0].task_id.version
        task_id = task_definition_pb2.TaskIdentifier(
            org=where.org, project=where.project, domain=where.domain, name=self.name, version=version
        )
        try:
            return await client.get_task_details(task_id)
        except ActionNotFoundError as e:
            raise RemoteTaskError(message=str(e)) from None

    async def _missing(self, client: Any, pid: Any, where: Any) -> str:
        env = self.name.split(".", 1)[0]
        siblings = await client.list_tasks(pid, name_contains=f"{env}.", limit=20)
        known = ", ".join(sorted(t.task_id.name for t in siblings)) or "none"
        return (
            f"no deployed task named {self.name} in {where.project}/{where.domain} "
            f"(deployed tasks of environment {env}: {known}); deploy it with `flyte deploy`"
        )

    @property
    def details(self) -> Any:
        """The backend's ``task.TaskDetails``."""
        return self.fetch()._details

    @property
    def version(self) -> str:
        return str(self.details.task_id.version)

    @functools.cached_property
    def task_id(self) -> Any:
        """The identifier to run the task by (with the org of this client)."""
        from flyteidl2.task import task_definition_pb2

        found = self.details.task_id
        return task_definition_pb2.TaskIdentifier(
            org=self._scope.org,
            project=found.project,
            domain=found.domain,
            name=found.name,
            version=found.version,
        )

    @property
    def spec(self) -> Any:
        return self.details.spec

    @functools.cached_property
    def interface(self) -> Any:
        from flyte._types._guess import interface_of

        spec = self.spec
        defaults: dict[str, Any] = {}
        typed = spec.task_template.interface
        plain = interface_of(typed, {}, self.name)
        for param in spec.default_inputs:
            if param.parameter.HasField("default"):
                conv_type = plain.inputs[param.name][0] if param.name in plain.inputs else Any
                from flyte._types import TypeEngine

                defaults[param.name] = TypeEngine.to_python(param.parameter.default, conv_type, param.name)
        return interface_of(typed, defaults, self.name)

    # -- what the runners need of a task ----------------------------------------------------

    @functools.cached_property
    def identity(self) -> str:
        return f"deployed|{self.name}|{self.version}|{self.interface.interface_hash()}"

    @functools.cached_property
    def inputs_have_references(self) -> bool:
        from flyte._internal._identity import inputs_have_references

        return inputs_have_references(self.spec.task_template.interface)

    @functools.cached_property
    def cache(self) -> Any:
        meta = self.spec.task_template.metadata
        if not meta.discoverable:
            return Cache(behavior="disable")
        return Cache(
            behavior="auto",
            version_override=meta.discovery_version or self.version,
            ignored_inputs=tuple(meta.cache_ignore_input_vars),
        )

    @property
    def cache_version(self) -> str:
        return str(self.cache.version_override or self.version)

    # -- calling ------------------------------------------------------------------------------

    def _context(self) -> Any:
        c = _context.current()
        if c is None:
            raise RemoteTaskError(
                message=f"deployed task {self.name} can only be called inside a task; "
                "start it on its own with flyte.run(task, ...)"
            )
        if c.run.mode == "local":
            raise RemoteTaskError(
                message=f"deployed task {self.name} runs on a backend, not in local mode: "
                "run the calling task on a backend (flyte run without --local)"
            )
        self.fetch()
        return c

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        c = self._context()
        if c.run.in_sync_code(c):
            return c.run.call_blocking(self, c, args, kwargs)
        return c.run.call_async(self, c, args, kwargs)

    def aio(self, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        c = self._context()
        return c.run.call_async(self, c, args, kwargs)  # type: ignore[no-any-return]


@dataclass
class Task(ToJSONMixin):
    """A deployed task as a backend lists it (name, version, who deployed it); ``Task.get``
    gives one to call or run."""

    pb2: Any

    @property
    def name(self) -> str:
        return str(self.pb2.task_id.name)

    @property
    def version(self) -> str:
        return str(self.pb2.task_id.version)

    @property
    def url(self) -> str:
        endpoint = current_config().endpoint or "local"
        task_id = self.pb2.task_id
        return f"flyte://{endpoint}/tasks/{task_id.project}/{task_id.domain}/{task_id.name}/{task_id.version}"

    @classmethod
    def get(
        cls,
        name: str,
        project: str | None = None,
        domain: str | None = None,
        version: str | None = None,
        auto_version: str | None = None,
    ) -> RemoteTask:
        """A deployed task: a pinned ``version``, or ``auto_version="latest"`` (the most recently
        deployed one). Nothing is fetched until it is used."""
        if not isinstance(name, str) or not name:
            raise ValueError("Task.get needs the task's full name, e.g. 'my_env.my_task'")
        if version is None and auto_version is None:
            raise ValueError(f"Task.get({name!r}): give version=... or auto_version='latest'")
        if version is None and auto_version != "latest":
            raise ValueError(f"Task.get({name!r}): auto_version must be 'latest', got {auto_version!r}")
        return RemoteTask(name, project, domain, version, None if version else auto_version)

    @syncify
    @classmethod
    async def listall(
        cls,
        by_task_name: str | None = None,
        by_task_env: str | None = None,
        project: str | None = None,
        domain: str | None = None,
        sort_by: Any = None,
        limit: int = 100,
        entrypoint: bool | None = None,
    ) -> AsyncIterator[Task]:
        """The latest version of each deployed task (newest first): of one name, or of one
        environment (``by_task_env``)."""
        from flyteidl2.common import identifier_pb2

        if sort_by is not None or entrypoint is not None:
            raise ValueError(
                "Task.listall: sort_by and entrypoint are not supported; tasks come newest first"
            )
        client, where = _client_and_scope(project, domain)
        pid = identifier_pb2.ProjectIdentifier(
            organization=where.org, domain=where.domain, name=where.project
        )
        found = await client.list_tasks(
            pid, name=by_task_name, name_contains=f"{by_task_env}." if by_task_env else None, limit=limit
        )
        for pb2 in found:
            if by_task_env is None or pb2.task_id.name.startswith(f"{by_task_env}."):
                yield cls(pb2)
