"""Starting a run on a backend and following it from the client side."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flyte._environment import TaskEnvironment
from flyte._image import Image, code_dir, code_placement, placed
from flyte._imagebuild._ensure import ensure_built
from flyte._initialize import scope
from flyte._internal import _bundle, _interactive, _raw_data
from flyte._internal._serialize import CodeRef, task_module, task_spec
from flyte._remote._client import BackendClient, run_sync
from flyte._remote._upload import upload_bytes
from flyte._run import new_run_name
from flyte._task import TaskTemplate
from flyte.remote._run import Run, created_run

if TYPE_CHECKING:
    from flyte._initialize import InitConfig, Scope
    from flyte._run import _RunContext
    from flyte.remote._task import RemoteTask

#: Settings of the submitting process that its run's actions inherit (unless the run sets them).
_FORWARDED_ENV = ("FLYTE_MAX_INLINE_BYTES",)


def phase_name(phase: int) -> str:
    from flyteidl2.common import phase_pb2

    return phase_pb2.ActionPhase.Name(phase).removeprefix("ACTION_PHASE_")


def code_root(task: TaskTemplate[Any, Any, Any], root_dir: Path | None) -> Path:
    """The directory whose code travels with ``task``: ``root_dir``, else its module's root."""
    if root_dir is not None:
        return root_dir
    module_name, _ = task._import_location()
    module = sys.modules.get(module_name)
    if module is None:
        raise RuntimeError(f"module of {task.name} is not loaded")
    if module_name == "__main__":
        # A notebook or REPL has no file: its directory is where it runs.
        file = getattr(module, "__file__", None)
        return Path(file).resolve().parent if file else Path.cwd()
    return _bundle.module_root(module)


#: Bundles already uploaded by this process: (endpoint, digest) -> the URL tasks read.
_uploaded: dict[tuple[str, str], str] = {}


def included_files(envs: Iterable[TaskEnvironment]) -> list[Path]:
    """The ``include`` files of ``envs`` and of the environments they depend on."""
    seen: set[str] = set()
    files: list[Path] = []
    pending = list(envs)
    while pending:
        env = pending.pop()
        if env.name in seen:
            continue
        seen.add(env.name)
        files.extend(env.included_files())
        pending.extend(d for d in env.depends_on if isinstance(d, TaskEnvironment))
    return files


def prepare_code(
    task: TaskTemplate[Any, Any, Any],
    copy_style: str,
    root_dir: Path | None,
    client: BackendClient,
    where: Scope,
    *,
    fresh: bool = False,
) -> CodeRef:
    """Freezes the task's code for the run: a bundle uploaded through the backend's data
    proxy, or (``copy_style="none"``) the code's place on disk, which the image must provide."""
    root = code_root(task, root_dir)
    generated: dict[str, bytes] = {}
    # A notebook's task: a function of a __main__ without a file.
    if _interactive.defined_in_main(task) and _interactive.session_is_interactive():
        main = sys.modules["__main__"]
        session_tasks = {
            name: value
            for name, value in list(vars(main).items())
            if isinstance(value, TaskTemplate) and not name.startswith("_")
        }
        generated[_interactive.MAIN_TASKS] = _interactive.pickle_session(session_tasks)
    bundle = _bundle.build(
        root,
        copy_style,  # type: ignore[arg-type]
        included_files([task.env] if task.env is not None else []),  # type: ignore[arg-type]
        generated,
    )
    if bundle is None:
        import hashlib

        module, _ = task_module(task)
        return CodeRef(
            bundle_uri="",
            root=code_in_image(task, client) or str(root),
            version=hashlib.sha256(f"{root}|{module}".encode()).hexdigest()[:32],
        )
    # Versions are at most 63 characters (TaskIdentifier.version); 128 bits of the digest name it.
    return CodeRef(
        bundle_uri=upload_bundle(client, bundle, where, fresh=fresh), root="", version=bundle.digest[:32]
    )


def code_in_image(task: TaskTemplate[Any, Any, Any], client: BackendClient | None) -> str | None:
    """Where the code lies in the task's image (``Image.with_code_bundle``) when the backend runs
    images; None when the code is read where it is (the embedded backend runs on this machine)."""
    image = getattr(task, "image", None)
    if not isinstance(image, Image) or client is None:
        return None
    place = code_dir(placed(image))
    if place is None or not run_sync(client.runs_images()):
        return None
    return place


def upload_bundle(client: BackendClient, bundle: _bundle.Bundle, where: Scope, *, fresh: bool = False) -> str:
    """Uploads a code bundle through the backend's data proxy (once per process, unless
    ``fresh``); the URL tasks fetch it from."""
    key = (client.endpoint, bundle.digest)
    if fresh or key not in _uploaded:
        _uploaded[key] = run_sync(upload_bytes(client, bundle.data, f"{bundle.digest}.tar.gz", where))
    return _uploaded[key]


def _started(client: BackendClient, created: Any, run_id: Any, task: Any) -> Run:
    """The run object of a run just created; it decodes outputs with the task's own interface."""
    run = created_run(created, run_id)
    run._interface = task.interface
    return run


def _run_inputs(task: Any, args: tuple[Any, ...], kwargs: dict[str, Any], rc: _RunContext) -> tuple[str, Any]:
    """The run's name and its inputs as literals, with the run context's custom context."""
    run_name = rc.name or new_run_name()
    iface = task.interface
    # Data the inputs upload (local files, offloaded values) goes where the run's data goes.
    with _raw_data.scope(_raw_data.join(_raw_data.run_base(run_name, rc.raw_data_path), "inputs")):
        inputs = iface.inputs_to_literals(
            iface.bind(args, kwargs, task.name), task.name, task.max_inline_io_bytes
        )
    for k, v in sorted(rc.custom_context.items()):
        inputs.context.add(key=k, value=v)
    return run_name, inputs


def create_run_request(
    task: TaskTemplate[Any, Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    rc: _RunContext,
    cfg: InitConfig,
    client: BackendClient,
) -> Any:
    """The CreateRunRequest for a run of ``task``: inputs, code uploaded through ``client``,
    task spec."""
    from flyteidl2.common import identifier_pb2
    from flyteidl2.workflow import run_service_pb2

    run_name, inputs = _run_inputs(task, args, kwargs, rc)
    where = scope(rc.project or cfg.project, rc.domain or cfg.domain, cfg.org, cfg.endpoint)
    code = prepare_code(task, rc.copy_style, cfg.root_dir, client, where, fresh=rc.disable_run_cache)
    if rc.version:
        code = CodeRef(bundle_uri=code.bundle_uri, root=code.root, version=rc.version)
    spec = task_spec(task, code, project=where.project, domain=where.domain, org=where.org)
    run_id = identifier_pb2.RunIdentifier(
        org=where.org, project=where.project, domain=where.domain, name=run_name
    )
    run_spec = _run_spec(rc)
    return run_service_pb2.CreateRunRequest(run_id=run_id, task_spec=spec, inputs=inputs, run_spec=run_spec)


def _run_spec(rc: _RunContext) -> Any:
    """The RunSpec of a run: its settings, env vars, labels and annotations."""
    from flyteidl2.task import run_pb2

    run_spec = run_pb2.RunSpec(overwrite_cache=rc.overwrite_cache)
    if rc.notifications is not None:
        run_spec.MergeFrom(rc.notifications)
    if rc.queue:
        run_spec.queue = rc.queue
    if rc.run_start_time is not None:
        run_spec.run_start_time.FromDatetime(rc.run_start_time)
    if rc.raw_data_path:
        run_spec.raw_data_storage.raw_data_prefix = rc.raw_data_path
    env_vars = dict(rc.env_vars)
    # The run's actions offload values like the process that started it.
    for name in _FORWARDED_ENV:
        if name in os.environ and name not in env_vars:
            env_vars[name] = os.environ[name]
    for k, v in env_vars.items():
        run_spec.envs.values.add(key=k, value=v)
    for k, v in rc.labels.items():
        run_spec.labels.values[k] = v
    for k, v in rc.annotations.items():
        run_spec.annotations.values[k] = v
    if rc.service_account:
        # A cluster runs the run's pods as this Kubernetes service account.
        run_spec.security_context.run_as.k8s_service_account = rc.service_account
    return run_spec


def submit(
    task: TaskTemplate[Any, Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    rc: _RunContext,
    cfg: InitConfig,
) -> Run:
    """Creates a run of ``task`` on the configured backend."""
    assert cfg.endpoint is not None
    client = BackendClient(cfg.endpoint, insecure=cfg.insecure, auth=cfg.auth, ca_cert=cfg.ca_cert)
    env = getattr(task, "env", None)
    # The images' code steps copy the code from where this run takes it.
    with code_placement(rc.copy_style, code_root(task, cfg.root_dir)):
        if env is not None:
            run_sync(ensure_built([env], client))
        request = create_run_request(task, args, kwargs, rc, cfg, client)
    created = run_sync(client.create_run(request))
    run_id = type(request.run_id)()
    run_id.CopyFrom(request.run_id)
    return _started(client, created, run_id, task)


def submit_deployed(
    task: RemoteTask, args: tuple[Any, ...], kwargs: dict[str, Any], rc: _RunContext, cfg: InitConfig
) -> Run:
    """Creates a run of a deployed task, by its id: the backend runs the deployed code."""
    from flyteidl2.common import identifier_pb2
    from flyteidl2.workflow import run_service_pb2

    assert cfg.endpoint is not None
    client = BackendClient(cfg.endpoint, insecure=cfg.insecure, auth=cfg.auth, ca_cert=cfg.ca_cert)
    where = scope(rc.project or cfg.project, rc.domain or cfg.domain, cfg.org, cfg.endpoint)
    run_name, inputs = _run_inputs(task, args, kwargs, rc)
    run_id = identifier_pb2.RunIdentifier(
        org=where.org, project=where.project, domain=where.domain, name=run_name
    )
    request = run_service_pb2.CreateRunRequest(run_id=run_id, inputs=inputs, run_spec=_run_spec(rc))
    if task.overridden:
        # Settings changed with override(): the deployed code, run with the changed spec.
        request.task_spec.CopyFrom(task.spec)
    else:
        request.task_id.CopyFrom(task.task_id)
    if task.queue and not request.run_spec.queue:
        request.run_spec.queue = task.queue
    created = run_sync(client.create_run(request))
    return _started(client, created, run_id, task)
