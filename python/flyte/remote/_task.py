"""Deployed tasks, used by name: ``flyte.remote.Task.get("env.task", auto_version="latest")``.

The object is resolved on first use (an RPC to the backend's TaskService). Called inside a
task it starts a child action running the deployed code in its own image; passed to
``flyte.run`` it starts a run of the deployed task.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

from flyte import _context
from flyte._cache import Cache
from flyte._initialize import current_config, scope
from flyte._resources import Resources
from flyte._retry import RetryStrategy, normalize_retries
from flyte._secret import SecretRequest, normalize_secrets
from flyte._task import DEFAULT_MAX_INLINE_IO_BYTES
from flyte._timeout import TimeoutType, timeout_from_request
from flyte.errors import ActionNotFoundError, RemoteTaskError
from flyte.remote._common import ToJSONMixin, _client_and_scope
from flyte.syncify import syncify

# Deferred imports: what functions here import loads on first use, not with `import flyte` or
# when tasks are defined (the Rust extension, protobufs, storage and backend clients).


class RemoteTask(ToJSONMixin):
    """A deployed task. Its version, spec and interface are fetched on first use."""

    name: str
    max_inline_io_bytes: int
    overriden_queue: str | None
    overridden: bool

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
        #: Values over this many bytes in calls of the task are offloaded to storage.
        self.max_inline_io_bytes = DEFAULT_MAX_INLINE_IO_BYTES
        #: The queue its actions are sent to (set by ``override``).
        self.overriden_queue: str | None = None
        #: Whether this is an ``override`` of the task as deployed.
        self.overridden = False

    def __repr__(self) -> str:
        pinned = self._version or self._auto_version
        return f"RemoteTask(name={self.name!r}, version={pinned!r})"

    # -- resolution -----------------------------------------------------------------------

    def _ensure(self) -> RemoteTask:
        """Looks the task up unless that was done already."""
        with self._lock:
            if self._details is None:
                from flyte._remote._client import run_sync

                self._details = run_sync(self._resolve())
        return self

    async def _fetch_async(self) -> None:
        if self._details is None:
            details = await self._resolve()
            with self._lock:
                self._details = self._details or details

    @syncify
    async def fetch(self) -> TaskDetails:
        """Looks the task up now (later calls reuse what was found)."""
        await self._fetch_async()
        return TaskDetails(
            self._details,
            max_inline_io_bytes=self.max_inline_io_bytes,
            overriden_queue=self.overriden_queue,
            overridden=self.overridden,
            _scope=self._scope,
        )

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
        return self._ensure()._details

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
                from flyte._types import LiteralEngine

                defaults[param.name] = LiteralEngine.to_python(param.parameter.default, conv_type, param.name)
        return interface_of(typed, defaults, self.name)

    @property
    def pb2(self) -> Any:
        """The backend's ``task.TaskDetails`` (with any overrides applied)."""
        return self.details

    @property
    def task_type(self) -> str:
        return str(self.spec.task_template.type)

    @property
    def default_input_args(self) -> tuple[str, ...]:
        """The inputs that have defaults."""
        return tuple(p.name for p in self.spec.default_inputs if p.parameter.HasField("default"))

    @property
    def required_args(self) -> tuple[str, ...]:
        """The inputs a call must give."""
        defaults = set(self.default_input_args)
        return tuple(name for name in self.interface.inputs if name not in defaults)

    @property
    def secrets(self) -> list[str]:
        """The keys of the secrets the task gets."""
        return [s.key for s in self.spec.task_template.security_context.secrets]

    @property
    def resources(self) -> tuple[Any, ...]:
        """The container's ``(requests, limits)``, or ``()`` when it runs no container."""
        template = self.spec.task_template
        if template.WhichOneof("target") not in ("container", "k8s_pod"):
            return ()
        from flyte._internal._serialize import template_container

        container = template_container(template)
        return (container.resources.requests, container.resources.limits)

    @property
    def queue(self) -> str | None:
        return self.overriden_queue

    def override(
        self,
        *,
        short_name: str | None = None,
        resources: Resources | None = None,
        retries: int | RetryStrategy = 0,
        timeout: TimeoutType | None = None,
        env_vars: dict[str, str] | None = None,
        secrets: SecretRequest | None = None,
        service_account: str | None = None,
        max_inline_io_bytes: int | None = None,
        cache: Cache | None = None,
        queue: str | None = None,
        produces_artifacts: bool | None = None,
        **kwargs: Any,
    ) -> TaskDetails:
        """The deployed task with some settings changed, for the calls made with it: its code
        and interface stay as deployed. ``env_vars`` and ``resources`` replace the deployed ones."""
        from flyteidl2.core import literals_pb2

        from flyte._internal._serialize import (
            add_secrets,
            extended_resources_proto,
            repodded,
            resources_proto,
            template_container,
        )
        from flyte._policy import policy_metadata

        if kwargs:
            raise TypeError(f"{self.name}.override() got unexpected settings {sorted(kwargs)}")
        if produces_artifacts:
            raise ValueError(
                f"{self.name}.override(produces_artifacts=True): artifacts are not supported here"
            )
        pb2 = type(self.details)()
        pb2.CopyFrom(self.details)
        spec = pb2.spec
        template = spec.task_template
        if short_name:
            spec.short_name = short_name
        if secrets:
            template.security_context.ClearField("secrets")
            add_secrets(template.security_context, normalize_secrets(secrets))
        if service_account:
            template.security_context.run_as.k8s_service_account = service_account
        in_pod = template.WhichOneof("target") == "k8s_pod"
        container = template_container(template) if in_pod else template.container
        if env_vars is not None:
            container.ClearField("env")
            container.env.extend(
                literals_pb2.KeyValuePair(key=k, value=v) for k, v in sorted(env_vars.items())
            )
        if resources is not None:
            if not isinstance(resources, Resources):
                raise TypeError(f"resources must be flyte.Resources, got {type(resources).__name__}")
            container.resources.CopyFrom(resources_proto(resources))
            extended = extended_resources_proto(resources)
            if extended is not None:
                template.extended_resources.CopyFrom(extended)
            else:
                template.ClearField("extended_resources")
        if in_pod and (env_vars is not None or resources is not None):
            template.k8s_pod.CopyFrom(repodded(template, container, env=env_vars is not None))
        meta = template.metadata
        if retries or timeout:
            policy = policy_metadata(normalize_retries(retries), timeout_from_request(timeout))
            if retries:
                meta.retries.CopyFrom(policy.retries)
            if timeout:
                meta.timeout.CopyFrom(policy.timeout)
                meta.timeouts.CopyFrom(policy.timeouts)
        if cache is not None:
            if not isinstance(cache, Cache):
                raise TypeError(f"cache must be flyte.Cache, got {type(cache).__name__}")
            meta.ClearField("cache_max_age")
            if cache.max_age_ms() is not None:
                meta.cache_max_age.FromMilliseconds(cache.max_age_ms())
            if cache.behavior == "disable":
                meta.discoverable, meta.discovery_version = False, ""
            elif cache.behavior == "override" and cache.version_override:
                meta.discoverable, meta.discovery_version = True, cache.version_override
            else:
                raise ValueError(
                    "a deployed task's cache can be overridden with Cache('disable') or "
                    "Cache('override', version_override=...): its code is not here to compute a version from"
                )
        if max_inline_io_bytes is not None and (
            not isinstance(max_inline_io_bytes, int) or max_inline_io_bytes <= 0
        ):
            raise ValueError(f"max_inline_io_bytes must be a positive int, got {max_inline_io_bytes!r}")
        return TaskDetails(
            pb2,
            max_inline_io_bytes=max_inline_io_bytes or self.max_inline_io_bytes,
            overriden_queue=queue if queue is not None else self.overriden_queue,
            overridden=True,
            _scope=self._scope,
        )

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
            max_age=meta.cache_max_age.ToTimedelta() if meta.HasField("cache_max_age") else None,
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
        self._ensure()
        return c

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        c = self._context()
        if c.run.in_sync_code(c):
            return c.run.call_blocking(self, c, args, kwargs)
        return c.run.call_async(self, c, args, kwargs)

    def aio(self, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        c = self._context()
        return c.run.call_async(self, c, args, kwargs)  # type: ignore[no-any-return]


class TaskDetails(RemoteTask):
    """A deployed task as fetched, with its spec (``task.TaskDetails``): call it in a task,
    run it with ``flyte.run``, or ``override`` some of its settings."""

    def __init__(
        self,
        pb2: Any,
        max_inline_io_bytes: int = DEFAULT_MAX_INLINE_IO_BYTES,
        overriden_queue: str | None = None,
        overridden: bool = False,
        _scope: Any = None,
    ) -> None:
        tid = pb2.task_id
        super().__init__(tid.name, tid.project or None, tid.domain or None, tid.version, None)
        self._details = pb2
        self._scope = _scope or scope(tid.project or None, tid.domain or None, tid.org or None)
        self.max_inline_io_bytes = max_inline_io_bytes
        self.overriden_queue = overriden_queue
        self.overridden = overridden

    @classmethod
    async def fetch(  # type: ignore[override]
        cls,
        name: str,
        project: str | None = None,
        domain: str | None = None,
        version: str | None = None,
        auto_version: str | None = None,
    ) -> TaskDetails:
        """Fetches a deployed task now (``version``, or ``auto_version="latest"``)."""
        lazy = Task.get(name, project=project, domain=domain, version=version, auto_version=auto_version)
        await lazy._fetch_async()
        return cls(lazy._details, _scope=lazy._scope)

    @classmethod
    def get(
        cls,
        name: str,
        project: str | None,
        domain: str | None,
        version: str | None = None,
        auto_version: str | None = None,
    ) -> RemoteTask:
        """The deployed task, fetched on first use (as ``flyte.remote.Task.get``)."""
        return Task.get(name, project=project, domain=domain, version=version, auto_version=auto_version)


@dataclass
class Task(ToJSONMixin):
    """A deployed task as a backend lists it (name, version, who deployed it); ``Task.get``
    gives one to call or run."""

    pb2: Any
    _entrypoint: bool | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return str(self.pb2.task_id.name)

    @property
    def version(self) -> str:
        return str(self.pb2.task_id.version)

    @property
    def entrypoint(self) -> bool:
        """Whether the task was deployed as an entrypoint (``@env.task(entrypoint=True)``); a
        listing does not say, so the task's spec is fetched on first use."""
        if self._entrypoint is None:
            tid = self.pb2.task_id
            found = Task.get(tid.name, project=tid.project, domain=tid.domain, version=tid.version)
            self._entrypoint = bool(found.spec.task_template.metadata.is_entrypoint)
        return self._entrypoint

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

        if sort_by is not None:
            raise ValueError("Task.listall: sort_by is not supported; tasks come newest first")
        client, where = _client_and_scope(project, domain)
        pid = identifier_pb2.ProjectIdentifier(
            organization=where.org, domain=where.domain, name=where.project
        )
        found = await client.list_tasks(
            pid, name=by_task_name, name_contains=f"{by_task_env}." if by_task_env else None, limit=limit
        )
        for pb2 in found:
            if by_task_env is not None and not pb2.task_id.name.startswith(f"{by_task_env}."):
                continue
            task = cls(pb2)
            if entrypoint is not None and await asyncio.to_thread(lambda t=task: t.entrypoint) != entrypoint:  # type: ignore[misc]
                continue
            yield task
