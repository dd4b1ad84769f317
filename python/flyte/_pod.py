"""``flyte.PodTemplate``: the Kubernetes pod a task runs in on a cluster.

The pod spec is a ``kubernetes.client.V1PodSpec`` or the same thing as a plain dict in the
Kubernetes API's JSON form (``{"containers": [...], "nodeSelector": {...}}``), so a template
needs the ``kubernetes`` package only when it is written with its classes. When the task is
sent to a backend, the task's image, command line, resources and environment go into the
*primary* container (``primary_container_name``); every other field and container (sidecars,
volumes, tolerations, ...) is the cluster's to apply.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flyte._resources import Resources

# Deferred imports: the kubernetes package is the user's (optional); it loads only for a
# template written with its classes.

#: The name of the container that runs the task when a template names no other.
PRIMARY_CONTAINER_DEFAULT_NAME = "primary"

_CAPABILITY_ANNOTATION = "flyte.org/capability-"
_APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
_FUSE_RESOURCE = "smarter-devices/fuse"
_FUSE_VOLUME = "fuse-device"
_FUSE_DEVICE = "/dev/fuse"

TerminationGracePeriod = int | timedelta


def spec_as_dict(pod_spec: Any) -> dict[str, Any]:
    """A pod spec in the Kubernetes API's JSON form (a copy)."""
    if pod_spec is None:
        return {}
    if isinstance(pod_spec, dict):
        return copy.deepcopy(pod_spec)
    if hasattr(pod_spec, "openapi_types"):
        from kubernetes.client import ApiClient

        return dict(ApiClient().sanitize_for_serialization(pod_spec))
    raise TypeError(
        f"pod_spec must be a kubernetes.client.V1PodSpec or a dict in the Kubernetes API's form, "
        f"got {type(pod_spec).__name__}"
    )


def primary_container(spec: dict[str, Any], name: str) -> dict[str, Any]:
    """The container called ``name`` in a pod spec (a dict), added when it has none."""
    containers = spec.setdefault("containers", [])
    primary = next((c for c in containers if c.get("name") == name), None)
    if primary is None:
        primary = {"name": name}
        containers.append(primary)
    return primary


def _container_names(spec: dict[str, Any]) -> list[str]:
    return [str(c.get("name")) for c in spec.get("containers") or [] if isinstance(c, dict)]


@dataclass
class PodTemplate:
    """The pod a task runs in on a cluster: a pod spec, the name of its container that runs
    the task, and the pod's labels and annotations."""

    pod_spec: Any = None
    primary_container_name: str = PRIMARY_CONTAINER_DEFAULT_NAME
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None

    def __post_init__(self) -> None:
        spec_as_dict(self.pod_spec)  # refuses what is not a pod spec, now
        if not isinstance(self.primary_container_name, str) or not self.primary_container_name:
            raise ValueError(
                f"primary_container_name must be a container's name, got {self.primary_container_name!r}"
            )
        for field in ("labels", "annotations"):
            value = getattr(self, field)
            if value is not None and (
                not isinstance(value, dict)
                or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
            ):
                raise TypeError(f"PodTemplate {field} must map strings to strings, got {value!r}")

    @classmethod
    def from_spec(
        cls,
        pod_spec: Any,
        *,
        primary_container_name: str | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> PodTemplate:
        """A template of a copy of ``pod_spec``. The primary container is the one named
        ``primary_container_name``, else the one named ``primary``, else the only one."""
        names = _container_names(spec_as_dict(pod_spec))
        if primary_container_name is not None:
            if primary_container_name not in names:
                raise ValueError(
                    f"primary_container_name {primary_container_name!r} is not a container of the pod spec "
                    f"(it has {names})"
                )
            primary = primary_container_name
        elif PRIMARY_CONTAINER_DEFAULT_NAME in names:
            primary = PRIMARY_CONTAINER_DEFAULT_NAME
        elif len(names) == 1 and names[0]:
            primary = names[0]
        else:
            raise ValueError(
                f"cannot tell which container runs the task: the pod spec has {names} and none is named "
                f"{PRIMARY_CONTAINER_DEFAULT_NAME!r}; pass primary_container_name="
            )
        return cls(
            pod_spec=copy.deepcopy(pod_spec),
            primary_container_name=primary,
            labels=dict(labels) if labels else None,
            annotations=dict(annotations) if annotations else None,
        )

    # -- copies with more granted ------------------------------------------------------------

    def _with_primary(self) -> tuple[PodTemplate, dict[str, Any], dict[str, Any]]:
        """A copy whose spec (a dict) has the primary container; (copy, spec, primary)."""
        spec = spec_as_dict(self.pod_spec)
        primary = primary_container(spec, self.primary_container_name)
        clone = PodTemplate(
            pod_spec=spec,
            primary_container_name=self.primary_container_name,
            labels=dict(self.labels) if self.labels else None,
            annotations=dict(self.annotations or {}),
        )
        return clone, spec, primary

    def with_termination_grace_period(self, termination_grace_period: TerminationGracePeriod) -> PodTemplate:
        """A copy whose pod gets this long (seconds, or a timedelta) between SIGTERM and SIGKILL
        when it is stopped (an aborted run): time for the task to save its work."""
        if isinstance(termination_grace_period, bool) or not isinstance(
            termination_grace_period, (int, timedelta)
        ):
            raise TypeError(
                f"termination_grace_period must be seconds (int) or a timedelta, got {termination_grace_period!r}"
            )
        seconds = (
            int(termination_grace_period.total_seconds())
            if isinstance(termination_grace_period, timedelta)
            else termination_grace_period
        )
        if seconds < 0:
            raise ValueError(f"termination_grace_period must not be negative, got {seconds} s")
        clone, spec, _ = self._with_primary()
        spec["terminationGracePeriodSeconds"] = seconds
        clone.annotations = clone.annotations or None
        return clone

    def allow_fuse(self, privileged: bool = False) -> PodTemplate:
        """A copy whose primary container may mount FUSE file systems: it asks the cluster's
        FUSE device plugin for ``/dev/fuse`` and gets ``CAP_SYS_ADMIN`` (``privileged=True``
        instead mounts the host's ``/dev/fuse`` into a privileged container, for clusters
        without the plugin)."""
        clone, spec, primary = self._with_primary()
        security = primary.setdefault("securityContext", {})
        if privileged:
            if security.get("privileged") is False:
                raise ValueError("allow_fuse(privileged=True): the primary container sets privileged: false")
            if security.get("allowPrivilegeEscalation") is False:
                raise ValueError(
                    "allow_fuse(privileged=True): the primary container sets allowPrivilegeEscalation: false "
                    "(as allow_nested_sandboxing does), which Kubernetes refuses for a privileged container; "
                    "use allow_fuse()"
                )
            volumes = spec.setdefault("volumes", [])
            if not any(v.get("name") == _FUSE_VOLUME for v in volumes):
                volumes.append(
                    {"name": _FUSE_VOLUME, "hostPath": {"path": _FUSE_DEVICE, "type": "CharDevice"}}
                )
            mounts = primary.setdefault("volumeMounts", [])
            if not any(m.get("name") == _FUSE_VOLUME for m in mounts):
                mounts.append({"name": _FUSE_VOLUME, "mountPath": _FUSE_DEVICE})
            security["privileged"] = True
        else:
            resources = primary.setdefault("resources", {})
            for kind in ("requests", "limits"):
                resources.setdefault(kind, {})[_FUSE_RESOURCE] = "1"
        _add_capability(security, "SYS_ADMIN")
        clone.annotations = {**(clone.annotations or {}), f"{_CAPABILITY_ANNOTATION}fuse": "true"}
        return clone

    def allow_nested_sandboxing(self) -> PodTemplate:
        """A copy whose primary container may create nested sandboxes (user namespaces, as
        bubblewrap does): ``CAP_SYS_ADMIN``, no privilege escalation, AppArmor unconfined."""
        clone, _, primary = self._with_primary()
        security = primary.setdefault("securityContext", {})
        if security.get("privileged") is True:
            raise ValueError("allow_nested_sandboxing(): the primary container is privileged")
        if security.get("allowPrivilegeEscalation") is True:
            raise ValueError("allow_nested_sandboxing(): the primary container allows privilege escalation")
        apparmor = f"{_APPARMOR_ANNOTATION}{self.primary_container_name}"
        current = (clone.annotations or {}).get(apparmor)
        if current not in (None, "unconfined"):
            raise ValueError(f"allow_nested_sandboxing(): the template pins {apparmor}={current!r}")
        _add_capability(security, "SYS_ADMIN")
        security["allowPrivilegeEscalation"] = False
        clone.annotations = {
            **(clone.annotations or {}),
            apparmor: "unconfined",
            f"{_CAPABILITY_ANNOTATION}nested-sandboxing": "true",
        }
        return clone

    def to_k8s_pod(self) -> Any:
        """The template as a ``core.K8sPod`` (its spec as given, nothing of a task in it)."""
        from flyteidl2.core import tasks_pb2

        pod = tasks_pb2.K8sPod(primary_container_name=self.primary_container_name)
        pod.metadata.labels.update(self.labels or {})
        pod.metadata.annotations.update(self.annotations or {})
        pod.pod_spec.update(spec_as_dict(self.pod_spec))
        return pod


def _add_capability(security: dict[str, Any], capability: str) -> None:
    added = security.setdefault("capabilities", {}).setdefault("add", [])
    if capability not in added:
        added.append(capability)


def pod_spec_from_resources(
    primary_container_name: str = PRIMARY_CONTAINER_DEFAULT_NAME,
    requests: Any = None,
    limits: Any = None,
    k8s_gpu_resource_key: str = "nvidia.com/gpu",
) -> Any:
    """A ``kubernetes.client.V1PodSpec`` with one container asking for ``requests`` and
    ``limits`` (``flyte.Resources``) as Kubernetes names them."""
    from kubernetes.client import V1Container, V1PodSpec, V1ResourceRequirements

    def quantities(res: Any, kind: str) -> dict[str, str] | None:
        if res is None:
            return None
        if not isinstance(res, Resources):
            raise TypeError(f"{kind} must be flyte.Resources, got {type(res).__name__}")
        out: dict[str, str] = {}
        for value, key in ((res.cpu, "cpu"), (res.memory, "memory"), (res.disk, "ephemeral-storage")):
            if value is None:
                continue
            if isinstance(value, tuple):
                raise ValueError(f"{kind}: give a single {key} quantity, not a (request, limit) range")
            out[key] = str(value)
        gpus = res.gpu_count()
        if gpus:
            out[k8s_gpu_resource_key] = str(gpus)
        return out

    return V1PodSpec(
        containers=[
            V1Container(
                name=primary_container_name,
                resources=V1ResourceRequirements(
                    requests=quantities(requests, "requests"), limits=quantities(limits, "limits")
                ),
            )
        ]
    )
