"""``flyte.deploy``: registers environments' tasks (and their triggers) with a backend, so they
can be run later by name (``flyte run deployed-task``, ``flyte.remote.Task.get``) or on a
schedule.

One deployment is one code bundle and one version for every task in it: the version defaults
to a hash of the bundle and the images, so deploying unchanged code again is a no-op.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flyte._environment import TaskEnvironment
from flyte._initialize import current_config, data_dir, scope
from flyte.errors import DeploymentError
from flyte.syncify import syncify

# Deferred imports: what functions here import loads on first use, not with `import flyte` or
# when tasks are defined (the Rust extension, protobufs, storage and backend clients).

if TYPE_CHECKING:
    from flyte._initialize import Scope
    from flyte._internal._serialize import CodeRef
    from flyte._remote._client import BackendClient
    from flyte._task import TaskTemplate


@dataclass(frozen=True)
class DeployedTask:
    """One task as it was deployed."""

    name: str
    version: str
    #: Names of the triggers deployed with it.
    triggers: tuple[str, ...] = ()
    #: The flyteidl2 ``task.TaskSpec`` sent (or, in a dry run, that would be sent).
    spec: Any = None

    def summary_repr(self) -> str:
        return f"DeployedTask(name={self.name}, version={self.version})"


@dataclass(frozen=True)
class DeployedTaskEnvironment:
    env: TaskEnvironment
    deployed_entities: list[DeployedTask] = field(default_factory=list)

    def summary_repr(self) -> str:
        entities = ", ".join(t.summary_repr() for t in self.deployed_entities)
        return f"Deployment(env=[{self.env.name}], entities=[{entities}])"


@dataclass(frozen=True)
class Deployment:
    """What one ``deploy`` call registered (or, with ``dry_run``, would register)."""

    envs: dict[str, DeployedTaskEnvironment]
    version: str
    dry_run: bool = False

    def summary_repr(self) -> str:
        return f"Deployment(envs=[{', '.join(e.summary_repr() for e in self.envs.values())}])"

    @property
    def tasks(self) -> list[DeployedTask]:
        return [t for e in self.envs.values() for t in e.deployed_entities]


def plan(envs: tuple[TaskEnvironment, ...]) -> list[dict[str, TaskEnvironment]]:
    """One plan per environment given: it and everything it depends on, each environment in
    the first plan that reaches it."""
    seen: dict[str, TaskEnvironment] = {}
    plans: list[dict[str, TaskEnvironment]] = []
    for env in envs:
        if not isinstance(env, TaskEnvironment):
            raise TypeError(f"flyte.deploy expects TaskEnvironments, got {type(env).__name__}")
        if env.name in seen:
            _same(seen[env.name], env)
            continue
        current: dict[str, TaskEnvironment] = {}
        stack = [env]
        while stack:
            e = stack.pop(0)
            if e.name in seen:
                _same(seen[e.name], e)
                continue
            seen[e.name] = current[e.name] = e
            # Only task environments hold something to deploy.
            stack.extend(d for d in e.depends_on if isinstance(d, TaskEnvironment))
        plans.append(current)
    return plans


def _same(known: TaskEnvironment, other: TaskEnvironment) -> None:
    if known is not other:
        raise ValueError(
            f"two different TaskEnvironments are named {known.name!r}; environment names must be unique "
            "(a module imported twice under different names does this: set --root-dir)"
        )


def _tasks(envs: dict[str, TaskEnvironment]) -> list[TaskTemplate[Any, Any, Any]]:
    return [t for e in envs.values() for t in e.tasks.values()]


def _image_uris(envs: dict[str, TaskEnvironment]) -> list[str]:
    from flyte._internal._serialize import image_uri

    return sorted({image_uri(t) for t in _tasks(envs)})


def default_version(bundle_digest: str, envs: dict[str, TaskEnvironment]) -> str:
    """What a deployment is versioned by when no version is given: its code and its images."""
    text = "\n".join([bundle_digest, *_image_uris(envs)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _code(
    envs: dict[str, TaskEnvironment],
    version: str | None,
    copy_style: str,
    root_dir: Path | None,
    client: BackendClient | None,
    where: Scope,
) -> CodeRef:
    from flyte._internal import _bundle
    from flyte._internal._serialize import CodeRef
    from flyte._remote._submit import code_in_image, code_root, included_files, upload_bundle

    tasks = _tasks(envs)
    if not tasks:
        names = ", ".join(envs)
        raise DeploymentError(f"nothing to deploy: environment(s) {names} define no tasks")
    root = code_root(tasks[0], root_dir)
    bundle = _bundle.build(root, copy_style, included_files(envs.values()))  # type: ignore[arg-type]
    if bundle is None:
        if not version:
            raise DeploymentError(
                "copy_style='none' deploys the code found in the image, which has no digest to version it "
                "by: give a version (flyte deploy --version ..., flyte.deploy(..., version=...))",
            )
        return CodeRef(bundle_uri="", root=code_in_image(tasks[0], client) or str(root), version=version)
    version = version or default_version(bundle.digest, envs)
    uri = "" if client is None else upload_bundle(client, bundle, where)
    return CodeRef(bundle_uri=uri, root="", version=version)


@syncify
async def deploy(
    *envs: TaskEnvironment,
    dry_run: bool = False,
    version: str | None = None,
    interactive_mode: bool | None = None,
    copy_style: str = "loaded_modules",
    dryrun: bool | None = None,
    project: str | None = None,
    domain: str | None = None,
    root_dir: str | Path | None = None,
) -> list[Deployment]:
    """Deploys ``envs`` and the environments they depend on (``add_dependency``).

    Returns one :class:`Deployment` per environment given (dependencies go with the first one
    that needs them). ``dry_run`` (``dryrun``, its older name) builds everything but sends
    nothing. Without an endpoint configured, the local backend is used (started if needed), as
    ``flyte run`` does. ``await deploy.aio(...)`` in async code.
    """
    import asyncio

    if interactive_mode:
        raise ValueError(
            "deploy(interactive_mode=True): code is deployed from its files (a bundle of the modules "
            "loaded); deploying functions defined in a notebook or REPL is not supported"
        )
    return await asyncio.to_thread(
        _deploy_now, envs, bool(dry_run or dryrun), version, copy_style, project, domain, root_dir
    )


def _deploy_now(
    envs: tuple[TaskEnvironment, ...],
    dry_run: bool,
    version: str | None,
    copy_style: str,
    project: str | None,
    domain: str | None,
    root_dir: str | Path | None,
) -> list[Deployment]:
    from flyte._image import code_placement
    from flyte._remote._client import run_sync
    from flyte._remote._submit import code_root

    if not envs:
        raise ValueError("flyte.deploy needs at least one TaskEnvironment")
    if copy_style not in ("loaded_modules", "all", "none"):
        raise ValueError(f"copy_style must be 'loaded_modules', 'all' or 'none', got {copy_style!r}")
    if version is not None:
        from flyte._internal._serialize import check_version

        check_version(version)
    cfg = current_config()
    root = Path(root_dir).resolve() if root_dir is not None else cfg.root_dir
    client = None if dry_run else _client()
    where = scope(project, domain, cfg.org, client.endpoint if client else cfg.endpoint)
    tasks = _tasks({env.name: env for env in envs})
    # The images' code steps copy the code from where this deployment takes it.
    with code_placement(copy_style, code_root(tasks[0], root) if tasks else (root or Path.cwd())):
        if client is not None:
            from flyte._imagebuild._ensure import ensure_built

            run_sync(ensure_built(envs, client))
        deployments = []
        for envs_of_plan in plan(envs):
            code = _code(envs_of_plan, version, copy_style, root, client, where)
            deployed = run_sync(_deploy_plan(envs_of_plan, code, where, client))
            deployments.append(Deployment(envs=deployed, version=code.version, dry_run=dry_run))
    return deployments


def _client() -> BackendClient:
    from flyte._remote._client import BackendClient
    from flyte._remote._local_backend import ensure_running

    cfg = current_config()
    if cfg.endpoint:
        return BackendClient(cfg.endpoint, insecure=cfg.insecure, auth=cfg.auth, ca_cert=cfg.ca_cert)
    return BackendClient(ensure_running(data_dir()), insecure=True)


async def _deploy_plan(
    envs: dict[str, TaskEnvironment], code: CodeRef, where: Scope, client: BackendClient | None
) -> dict[str, DeployedTaskEnvironment]:
    import asyncio

    from flyte._internal._serialize import task_identifier, task_spec
    from flyte._internal._triggers import task_triggers

    async def one(task: TaskTemplate[Any, Any, Any]) -> DeployedTask:
        kw = {"project": where.project, "domain": where.domain, "org": where.org}
        spec = task_spec(task, code, **kw)
        triggers = task_triggers(task)
        if client is not None:
            await client.deploy_task(task_identifier(task, code, **kw), spec, triggers)
        return DeployedTask(task.name, code.version, tuple(t.name for t in triggers), spec)

    out: dict[str, DeployedTaskEnvironment] = {}
    for name, env in envs.items():
        tasks = list(env.tasks.values())
        deployed = await asyncio.gather(*[one(t) for t in tasks])
        out[name] = DeployedTaskEnvironment(env, list(deployed))
    return out
