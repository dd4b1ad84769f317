"""Task specs made ahead of time, offline: no backend, no code bundle, no image build."""

from __future__ import annotations

from typing import Any

from flyte._environment import TaskEnvironment
from flyte._internal._serialization_context import SerializationContext
from flyte._internal._serialize import CodeRef, task_spec
from flyte._task import TaskTemplate

#: The version a spec carries when no SerializationContext gives one.
PLACEHOLDER_VERSION = "serialized"


def serialize(task: TaskTemplate[Any, Any, Any], ctx: SerializationContext | None = None) -> Any:
    """``task``'s flyteidl2 ``task.TaskSpec``, as a run or deployment would send it.

    Without a context (or a ``code_bundle`` URI in it) the spec expects the task's module to
    be importable where it runs (baked into the image, or under ``ctx.root_dir``)."""
    if not isinstance(task, TaskTemplate):
        raise TypeError(f"serialize takes a task, got {type(task).__name__}")
    ctx = ctx or SerializationContext(version=PLACEHOLDER_VERSION)
    bundle = ctx.code_bundle
    bundle_uri = bundle if isinstance(bundle, str) else str(getattr(bundle, "tgz", "") or "")
    code = CodeRef(
        bundle_uri=bundle_uri,
        root="" if bundle_uri or ctx.root_dir is None else str(ctx.root_dir),
        version=ctx.version,
    )
    return task_spec(task, code, project=ctx.project, domain=ctx.domain, org=ctx.org)


def serialize_env(env: TaskEnvironment, ctx: SerializationContext | None = None) -> list[Any]:
    """The specs of every task of ``env``."""
    if not isinstance(env, TaskEnvironment):
        raise TypeError(f"serialize_env takes a TaskEnvironment, got {type(env).__name__}")
    return [serialize(task, ctx) for task in env.tasks.values()]
