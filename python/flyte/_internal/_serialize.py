"""A task as the backend sees it: a flyteidl2 ``TaskSpec``.

The container's args are the runtime's command line (``flyte-action ...``, a program the
wheel installs, as a cluster runs ``args[0]`` in the task's image), with the placeholders a
backend fills in per attempt ({{.input}}, {{.outputPrefix}}, ...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flyte._bridge import contract
from flyte._context import ctx
from flyte._doc import documentation_of
from flyte._image import DEFAULT_IMAGE_ENV, IMAGE_REFS_ENV, Image, default_image_uri, image_refs, placed
from flyte._internal import _interactive
from flyte._internal._serialization_context import SerializationContext
from flyte._pod import PodTemplate, primary_container, spec_as_dict
from flyte._policy import policy_metadata
from flyte._retry import normalize_retries
from flyte._reusable import ReusePolicy
from flyte._timeout import timeout_from_request
from flyte._version import __version__

if TYPE_CHECKING:
    from flyte._resources import Resources
    from flyte._secret import Secret
    from flyte._task import TaskTemplate


@dataclass(frozen=True)
class CodeRef:
    """Where a task's code comes from, as the runtime needs to find it."""

    bundle_uri: str  # "" when the code is read in place (copy_style="none")
    root: str  # directory on sys.path in place of a bundle ("" with a bundle)
    version: str  # bundle digest (or a hash of the sources in place)


def task_module(task: TaskTemplate[Any, Any, Any]) -> tuple[str, str]:
    """(module, qualname) under which the runtime can import ``task``."""
    import sys

    module, qualname = task._import_location()
    if module == "__main__":
        if _interactive.loaded_task(qualname) is not None or _interactive.session_is_interactive():
            # A notebook's tasks travel pickled in the bundle and load from there as __main__.
            return module, qualname
        # A script's tasks are imported by file name in action processes.
        from pathlib import Path

        module = Path(sys.modules["__main__"].__file__ or "").stem
    return module, qualname


def runtime_args(task: TaskTemplate[Any, Any, Any], code: CodeRef) -> list[str]:
    module, qualname = task_module(task)
    args = [
        contract.RUNTIME_PROGRAM,
        "--inputs",
        "{{.input}}",
        "--outputs-path",
        "{{.outputPrefix}}",
        "--raw-data-path",
        "{{.rawOutputDataPrefix}}",
        "--checkpoint-path",
        "{{.checkpointOutputPrefix}}",
        "--prev-checkpoint",
        "{{.prevCheckpointPrefix}}",
        "--run-name",
        "{{.runName}}",
        "--name",
        "{{.actionName}}",
        "--run-start-time",
        "{{.runStartTime}}",
        "--task",
        f"{module}:{qualname}",
        "--version",
        code.version,
    ]
    config = getattr(task, "plugin_config", None)
    env = task.env
    if config is not None and (env is None or config is not env.plugin_config):
        # An override's plugin: the action's process applies it to the task it imports.
        args += ["--plugin-config", encode_plugin_config(config)]
    if code.bundle_uri:
        args += ["--bundle", code.bundle_uri]
    if code.root:
        args += ["--root", code.root]
    return args


def encode_plugin_config(config: Any) -> str:
    import base64

    import cloudpickle

    try:
        return base64.b64encode(cloudpickle.dumps(config)).decode()
    except Exception as e:
        raise ValueError(f"plugin_config {config!r} cannot be sent to the task's process: {e}") from e


def decode_plugin_config(text: str) -> Any:
    import base64

    import cloudpickle

    return cloudpickle.loads(base64.b64decode(text))


def _container_env(task: TaskTemplate[Any, Any, Any]) -> dict[str, str]:
    env = {**(task.env_vars or {}), DEFAULT_IMAGE_ENV: default_image_uri()}
    refs = image_refs()
    if refs:
        # Tasks this task calls may name images by reference too.
        env[IMAGE_REFS_ENV] = json.dumps(refs, sort_keys=True)
    return env


def image_uri(task: TaskTemplate[Any, Any, Any]) -> str:
    image = task.image
    if isinstance(image, Image):
        return placed(image).uri
    if isinstance(image, str) and image != "auto":
        return image

    return default_image_uri()


def resources_proto(res: Resources | None) -> Any:
    """The container requests and limits of ``res``."""
    from flyteidl2.core import tasks_pb2

    out = tasks_pb2.Resources()
    if res is None:
        return out
    names = tasks_pb2.Resources.ResourceName

    def add(name: int, value: Any) -> None:
        if value is None:
            return
        request, limit = value if isinstance(value, tuple) else (value, value)
        if request is not None:
            out.requests.add(name=name, value=str(request))
        if limit is not None:
            out.limits.add(name=name, value=str(limit))

    add(names.CPU, res.cpu)
    add(names.MEMORY, res.memory)
    add(names.EPHEMERAL_STORAGE, res.disk)
    gpus = res.gpu_count()
    if gpus:
        add(names.GPU, str(gpus))
    return out


#: Node labels clouds give accelerator models (what a cluster matches GPUAccelerator.device to).
ACCELERATOR_LABELS: dict[str, str] = {
    "A100": "nvidia-tesla-a100",
    "A100_80G": "nvidia-a100-80gb",
    "H100": "nvidia-tesla-h100",
    "A10": "nvidia-a10",
    "A10G": "nvidia-a10g",
    "L4": "nvidia-l4",
    "L40s": "nvidia-l40s",
    "RTX_PRO_4500": "nvidia-rtx-pro-4500",
    "RTX_PRO_6000": "nvidia-rtx-pro-6000",
    "T4": "nvidia-tesla-t4",
    "V100": "nvidia-tesla-v100",
    "V5E": "tpu-v5-lite-podslice",
    "V5P": "tpu-v5p-slice",
    "V6E": "tpu-v6e-slice",
}


def _log_links(task: TaskTemplate[Any, Any, Any]) -> list[Any]:
    """The task's links as TaskLogs, rendered for the action submitting it (a sub-task's
    parent); a run's root task has no parent to render them for."""
    from flyteidl2.core import execution_pb2

    c = ctx()
    if not task.links or c is None:
        return []
    action = c.action
    return [
        execution_pb2.TaskLog(
            name=link.name,
            uri=link.get_link(
                run_name=action.run_name or "",
                project=action.project or "",
                domain=action.domain or "",
                context=dict(c.custom_context),
                parent_action_name=action.name or "",
                action_name="{{.actionName}}",
                pod_name="{{.podName}}",
            ),
            icon_uri=link.icon_uri or "",
        )
        for link in task.links
    ]


def extended_resources_proto(res: Resources | None) -> Any:
    """The accelerator model / partition and shared memory ``res`` asks for (None: neither)."""
    from flyteidl2.core import tasks_pb2

    if res is None:
        return None
    device = res.gpu_spec()
    shm = res.get_shared_memory()
    if device is None and shm is None:
        return None
    out = tasks_pb2.ExtendedResources()
    if device is not None:
        assert device.device is not None
        classes = tasks_pb2.GPUAccelerator.DeviceClass
        out.gpu_accelerator.device = ACCELERATOR_LABELS.get(device.device, device.device)
        out.gpu_accelerator.device_class = {
            "GPU": classes.NVIDIA_GPU,
            "TPU": classes.GOOGLE_TPU,
            "NEURON": classes.AMAZON_NEURON,
            "AMD_GPU": classes.AMD_GPU,
            "HABANA_GAUDI": classes.HABANA_GAUDI,
        }[device.device_class]
        if device.partition:
            out.gpu_accelerator.partition_size = device.partition
    if shm is not None:
        out.shared_memory.mount_path = "/dev/shm"
        out.shared_memory.mount_name = "flyte-shm"
        out.shared_memory.size_limit = shm
    return out


def task_version(task: TaskTemplate[Any, Any, Any], code: CodeRef) -> str:
    """Every task of one bundle (one run's code, or one deployment) has the bundle's version."""
    return code.version


#: What a version may look like: it names a deployment in commands (``env.task:VERSION``).
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def check_version(version: str) -> None:
    if not isinstance(version, str) or not _VERSION.match(version):
        raise ValueError(
            f"version {version!r} is not valid: use 1-63 letters, digits, '.', '_' and '-', "
            "starting with a letter or digit (e.g. v1.0.0)"
        )


#: TaskMetadata tag of a task whose cache behavior is "override" (see rs_backend's engine/submit.rs).
CACHE_OVERRIDE_TAG = "flyte.cache.override"


def add_secrets(security_context: Any, secrets: Iterable[Secret]) -> None:
    """Adds the secrets a task gets to its security context, and how: an env var (its name
    decided here) or a file."""
    from flyteidl2.core import security_pb2

    for secret in secrets:
        security_context.secrets.add(
            group=secret.group or "",
            key=secret.key,
            mount_requirement=security_pb2.Secret.MountType.FILE
            if secret.mount is not None
            else security_pb2.Secret.MountType.ENV_VAR,
            env_var=secret.env_var_name() or "",
        )


def task_spec(
    task: TaskTemplate[Any, Any, Any],
    code: CodeRef,
    *,
    project: str | None,
    domain: str | None,
    org: str | None,
) -> Any:
    """The flyteidl2 ``task.TaskSpec`` of ``task``."""
    from flyteidl2.core import identifier_pb2, literals_pb2, tasks_pb2
    from flyteidl2.task import task_definition_pb2

    iface = task.interface
    metadata = tasks_pb2.TaskMetadata(
        discoverable=task.cache.behavior != "disable",
        discovery_version=task.cache_version if task.cache.behavior != "disable" else "",
        cache_serializable=task.cache.serialize,
        cache_ignore_input_vars=list(task.cache.ignored_inputs),
        interruptible=bool(task.interruptible),
        runtime=tasks_pb2.RuntimeMetadata(
            type=tasks_pb2.RuntimeMetadata.RuntimeType.FLYTE_SDK, version=__version__, flavor="python"
        ),
    )
    # Retries, backoff and time limits: the fields local mode's policy is made from, too.
    metadata.MergeFrom(policy_metadata(normalize_retries(task.retries), timeout_from_request(task.timeout)))
    max_age = task.cache.max_age_ms()
    if max_age is not None and task.cache.behavior != "disable":
        metadata.cache_max_age.FromMilliseconds(max_age)
    if task.cache.behavior == "override":
        # The embedded backend runs such a task every time, refreshing its cache entry.
        metadata.tags[CACHE_OVERRIDE_TAG] = "true"
    if task.report:
        metadata.generates_deck.value = True
    if task.entrypoint:
        metadata.is_entrypoint = True
    for link in _log_links(task):
        metadata.log_links.append(link)
    if task.debuggable and task.reusable is None:
        metadata.debuggable = True
    if task.produces_artifacts:
        metadata.produces_artifacts = True
    if isinstance(task.pod_template, str) and task.pod_template:
        metadata.pod_template_name = task.pod_template
    sctx = serialization_context(code, project=project, domain=domain, org=org)
    container = tasks_pb2.Container(
        image=image_uri(task),
        args=task.container_args(sctx) or runtime_args(task, code),
        resources=resources_proto(task.resources),
        env=[literals_pb2.KeyValuePair(key=k, value=v) for k, v in sorted(_container_env(task).items())],
    )
    data_config = task.data_loading_config(sctx)
    if data_config is not None:
        container.data_config.CopyFrom(data_config)
    template = tasks_pb2.TaskTemplate(
        id=identifier_pb2.Identifier(
            resource_type=identifier_pb2.ResourceType.TASK,
            project=project or "",
            domain=domain or "",
            org=org or "",
            name=task.name,
            version=task_version(task, code),
        ),
        type=task.task_type,
        task_type_version=task.task_type_version,
        metadata=metadata,
        interface=iface.to_typed_interface(),
        container=container,
    )
    _add_plugin_settings(template, task, sctx)
    pod = task.pod_template
    if pod is not None and not isinstance(pod, str):
        # The task runs in the template's pod: its container becomes the pod's primary one.
        template.k8s_pod.CopyFrom(k8s_pod(container, pod))
        template.config[PRIMARY_CONTAINER_CONFIG] = pod.primary_container_name
    if task.service_account:
        # A cluster runs the task's pods as this Kubernetes service account.
        template.security_context.run_as.k8s_service_account = task.service_account
    extended = extended_resources_proto(task.resources)
    if extended is not None:
        template.extended_resources.CopyFrom(extended)
    add_secrets(template.security_context, task.secrets)
    if task.reusable is not None:
        _add_reuse_policy(template, task, code)
    docs = documentation_of(task.docs, None)
    return task_definition_pb2.TaskSpec(
        task_template=template,
        default_inputs=iface.default_inputs(),
        short_name=task.short_name,
        environment=_environment_proto(task),
        documentation=task_definition_pb2.DocumentationEntity(
            short_description=docs.short_description[:255], long_description=docs.description
        ),
    )


#: TaskTemplate.config key naming the pod's container that runs the task.
PRIMARY_CONTAINER_CONFIG = "primary_container_name"


def _resource_key(entry: Any) -> str:
    from flyteidl2.core import tasks_pb2

    return str(tasks_pb2.Resources.ResourceName.Name(entry.name)).lower().replace("_", "-")


def k8s_pod(container: Any, pod: PodTemplate) -> Any:
    """``pod`` with the task's ``container`` (image unless the pod names one, command line,
    resources, environment) merged into its primary container."""
    from flyteidl2.core import tasks_pb2

    spec = spec_as_dict(pod.pod_spec)
    primary = primary_container(spec, pod.primary_container_name)
    primary["image"] = primary.get("image") or container.image
    primary["command"] = []
    primary["args"] = list(container.args)
    requests = {_resource_key(e): e.value for e in container.resources.requests}
    limits = {_resource_key(e): e.value for e in container.resources.limits}
    if requests or limits:
        # The pod's own entries (extended resources only a pod can ask for) stay; the task's win.
        resources = primary.setdefault("resources", {})
        resources["requests"] = {**(resources.get("requests") or {}), **requests}
        resources["limits"] = {**(resources.get("limits") or {}), **limits}
    task_env = [{"name": kv.key, "value": kv.value} for kv in container.env]
    primary["env"] = task_env + [
        e for e in primary.get("env") or [] if e.get("name") not in {kv.key for kv in container.env}
    ]
    out = tasks_pb2.K8sPod(primary_container_name=pod.primary_container_name)
    out.metadata.labels.update(pod.labels or {})
    out.metadata.annotations.update(pod.annotations or {})
    out.pod_spec.update(spec)
    return out


def template_container(template: Any) -> Any:
    """The container that runs a ``core.TaskTemplate``'s task: its ``container``, or its pod's
    primary container (as a ``core.Container``: image, arguments, environment, resources)."""
    from flyteidl2.core import tasks_pb2
    from google.protobuf import json_format

    if template.WhichOneof("target") != "k8s_pod":
        return template.container
    pod = template.k8s_pod
    name = pod.primary_container_name or template.config.get(PRIMARY_CONTAINER_CONFIG) or "primary"
    spec = json_format.MessageToDict(pod.pod_spec)
    primary: dict[str, Any] = next((c for c in spec.get("containers", []) if c.get("name") == name), {})
    out = tasks_pb2.Container(
        image=primary.get("image", ""), args=[*primary.get("command", []), *primary.get("args", [])]
    )
    for e in primary.get("env", []):
        if "value" in e:
            out.env.add(key=e["name"], value=e["value"])
    names = tasks_pb2.Resources.ResourceName
    for kind in ("requests", "limits"):
        for key, value in (primary.get("resources", {}).get(kind) or {}).items():
            enum = key.upper().replace("-", "_")
            if enum in names.keys():
                getattr(out.resources, kind).add(name=names.Value(enum), value=str(value))
    return out


def repodded(template: Any, container: Any, *, env: bool) -> Any:
    """A pod task's ``k8s_pod`` with ``container`` (a changed copy of its primary container)
    merged into its primary container. With ``env``, the container's variables replace the
    primary container's plain ones (those the cluster fills in, ``valueFrom``, stay); resources
    it names replace the pod's, other resources (extended ones only a pod can ask for) stay."""
    from google.protobuf import json_format

    pod = template.k8s_pod
    name = pod.primary_container_name or template.config.get(PRIMARY_CONTAINER_CONFIG) or "primary"
    spec = json_format.MessageToDict(pod.pod_spec)
    for c in spec.get("containers", []):
        if c.get("name") == name and env:
            c["env"] = [e for e in c.get("env") or [] if "value" not in e]
    again = PodTemplate(
        pod_spec=spec,
        primary_container_name=name,
        labels=dict(pod.metadata.labels) or None,
        annotations=dict(pod.metadata.annotations) or None,
    )
    return k8s_pod(container, again)


def _environment_proto(task: TaskTemplate[Any, Any, Any]) -> Any:
    from flyteidl2.task import environment_pb2

    env = task.env
    if env is None:
        return environment_pb2.Environment(name=task.parent_env_name or "")
    return environment_pb2.Environment(name=env.name, description=env.description or "")


def serialization_context(code: CodeRef, *, project: str | None, domain: str | None, org: str | None) -> Any:
    """What plugins' serialization hooks are told about the code they are sent with."""
    from pathlib import Path

    return SerializationContext(
        version=code.version,
        project=project,
        domain=domain,
        org=org,
        code_bundle=code.bundle_uri or None,
        root_dir=Path(code.root) if code.root else None,
    )


#: The task type of a Python task that runs on a pool of reusable workers, and the kind in
#: its ``custom`` spec (what clusters that predate ``TaskTemplate.reuse_policy`` read).
ACTOR_TASK_TYPE = "actor"


def _add_reuse_policy(template: Any, task: TaskTemplate[Any, Any, Any], code: CodeRef) -> None:
    """``reuse_policy``: the task runs on the warm workers of its environment's pool. Tasks
    whose workers would differ (image, resources, environment, secrets, policy, code) get
    different versions, so they never share a worker."""
    import hashlib

    from flyteidl2.core import tasks_pb2
    from google.protobuf import json_format

    policy = task.reusable
    if not isinstance(policy, ReusePolicy):
        raise TypeError(f"{task.name}: reusable must be a flyte.ReusePolicy, got {type(policy).__name__}")
    name = task.parent_env_name or task.name.split(".")[0]
    shape = tasks_pb2.TaskTemplate()
    shape.CopyFrom(template)
    shape.ClearField("id")
    shape.ClearField("interface")
    shape.metadata.Clear()
    shape.metadata.interruptible = template.metadata.interruptible
    shape.metadata.pod_template_name = template.metadata.pod_template_name
    if shape.HasField("container"):
        del shape.container.args[:]
    digest = hashlib.sha256()
    for part in (name, code.version or code.bundle_uri or code.root or "", repr(policy)):
        digest.update(part.encode() + b"\0")
    digest.update(shape.SerializeToString(deterministic=True))
    version = digest.hexdigest()[:15]
    pb = template.reuse_policy
    pb.min_replicas = policy.min_replicas
    pb.max_replicas = policy.max_replicas
    pb.concurrency = policy.concurrency
    pb.scope = tasks_pb2.ReusePolicy.RUN if policy.scope == "run" else tasks_pb2.ReusePolicy.GLOBAL
    pb.name = name
    pb.version = version
    idle, scaledown = policy.idle_ttl, policy.get_scaledown_ttl()
    if idle is not None:
        pb.idle_ttl.FromTimedelta(idle)  # type: ignore[arg-type]  # a timedelta after __post_init__
    if scaledown is not None:
        pb.scaledown_ttl.FromTimedelta(scaledown)
    if template.type != "python":
        return  # a plugin's task: its own custom spec stays
    if template.HasField("custom"):
        raise ValueError(f"{task.name}: a task whose plugin sets a custom spec cannot have a ReusePolicy")
    template.type = ACTOR_TASK_TYPE
    json_format.ParseDict(
        {
            "name": name,
            "version": version,
            "type": ACTOR_TASK_TYPE,
            "spec": {
                "container_image": template.container.image,
                "backlog_length": None,
                "parallelism": policy.concurrency,
                "min_replica_count": policy.min_replicas,
                "replica_count": policy.max_replicas,
                "ttl_seconds": idle.total_seconds() if idle is not None else None,  # type: ignore[union-attr]
                "scaledown_ttl_seconds": scaledown.total_seconds() if scaledown is not None else None,
            },
        },
        template.custom,
    )


def _add_plugin_settings(template: Any, task: TaskTemplate[Any, Any, Any], sctx: Any) -> None:
    """What a task plugin adds for its backend plugin: ``custom``, ``config`` and ``sql``."""
    from flyteidl2.core import tasks_pb2
    from google.protobuf import json_format

    custom = task.custom_config(sctx)
    if custom:
        if not isinstance(custom, dict):
            raise TypeError(
                f"{type(task).__name__}.custom_config() must return a dict, got {type(custom).__name__}"
            )
        try:
            json_format.ParseDict(custom, template.custom)
        except (json_format.ParseError, TypeError, ValueError) as e:
            raise TypeError(f"{type(task).__name__}.custom_config() must return JSON values: {e}") from None
    config = task.config(sctx)
    if config:
        bad = {k: v for k, v in config.items() if not isinstance(k, str) or not isinstance(v, str)}
        if bad:
            raise TypeError(f"{type(task).__name__}.config() must map strings to strings, got {bad!r}")
        template.config.update(config)
    sql = task.sql(sctx)
    if sql is not None:
        if isinstance(sql, str):
            sql = tasks_pb2.Sql(statement=sql, dialect=tasks_pb2.Sql.Dialect.ANSI)
        template.sql.CopyFrom(sql)


def task_identifier(
    task: TaskTemplate[Any, Any, Any],
    code: CodeRef,
    *,
    project: str | None,
    domain: str | None,
    org: str | None,
) -> Any:
    from flyteidl2.task import task_definition_pb2

    return task_definition_pb2.TaskIdentifier(
        org=org or "",
        project=project or "",
        domain=domain or "",
        name=task.name,
        version=task_version(task, code),
    )
