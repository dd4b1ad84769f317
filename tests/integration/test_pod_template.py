"""``flyte.PodTemplate``: the task's pod on a cluster. Its spec (a kubernetes V1PodSpec or the
API's JSON form) reaches the task's spec with the task's container merged into the primary
container; the embedded backend runs that primary container (its command line, environment
and memory limit); the helpers grant what they say and refuse conflicts."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
from google.protobuf import json_format
from kubernetes.client import V1Container, V1EnvVar, V1PodSpec, V1Toleration

import flyte
from flyte._internal._serialize import CodeRef, repodded, task_spec, template_container
from flyte.extend import pod_spec_from_resources

POD = flyte.PodTemplate(
    pod_spec={
        "containers": [
            {
                "name": "primary",
                "env": [{"name": "FROM_POD", "value": "pod"}, {"name": "SHARED", "value": "pod"}],
            },
            {"name": "sidecar", "image": "busybox:1", "args": ["sleep", "inf"]},
        ],
        "nodeSelector": {"pool": "gpu"},
    },
    labels={"team": "ml"},
    annotations={"note": "x"},
)

env = flyte.TaskEnvironment(
    name="pod_wf",
    pod_template=POD,
    env_vars={"SHARED": "task"},
    resources=flyte.Resources(cpu="1", memory="512Mi"),
)


@env.task
async def sees_env() -> tuple[str, str]:
    return os.environ.get("FROM_POD", "-"), os.environ.get("SHARED", "-")


def test_a_pod_task_runs_its_primary_container(mode: str) -> None:
    from_pod, shared = flyte.with_runcontext(mode=mode).run(sees_env).wait().outputs()
    # The task's own variables win over the pod's; the pod's reach the process on a backend.
    assert shared == "task"
    assert from_pod == ("pod" if mode == "remote" else "-")


def _spec(task: Any) -> Any:
    return task_spec(task, CodeRef("", "/code", "v1"), project="p", domain="d", org="o").task_template


def test_the_task_s_container_goes_into_the_primary_container() -> None:
    template = _spec(sees_env)
    assert (
        template.WhichOneof("target") == "k8s_pod" and template.config["primary_container_name"] == "primary"
    )
    pod = template.k8s_pod
    assert dict(pod.metadata.labels) == {"team": "ml"} and dict(pod.metadata.annotations) == {"note": "x"}
    spec = json_format.MessageToDict(pod.pod_spec)
    primary, sidecar = spec["containers"]
    assert sidecar == {"name": "sidecar", "image": "busybox:1", "args": ["sleep", "inf"]}
    assert spec["nodeSelector"] == {"pool": "gpu"}
    assert primary["args"][0] == "flyte-action" and primary["command"] == [] and primary["image"]
    assert primary["resources"] == {
        "requests": {"cpu": "1", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "512Mi"},
    }
    env_names = [e["name"] for e in primary["env"]]
    assert env_names.count("SHARED") == 1 and "FROM_POD" in env_names
    # Readers (the CLI, flyte.remote) see the primary container as the task's container.
    container = template_container(template)
    assert (
        container.args[0] == "flyte-action" and {kv.key: kv.value for kv in container.env}["SHARED"] == "task"
    )
    # An override of a deployed pod task changes the primary container, keeping the rest.
    container.ClearField("env")
    container.env.add(key="NEW", value="1")
    again = json_format.MessageToDict(repodded(template, container, env=True).pod_spec)
    assert again["containers"][0]["env"] == [{"name": "NEW", "value": "1"}] and again["nodeSelector"] == {
        "pool": "gpu"
    }


def test_kubernetes_objects_and_a_named_template() -> None:
    spec = V1PodSpec(
        containers=[V1Container(name="main", env=[V1EnvVar(name="A", value="1")])],
        tolerations=[V1Toleration(key="gpu", operator="Exists")],
    )
    pod = flyte.PodTemplate.from_spec(spec)
    assert pod.primary_container_name == "main"
    k8s_env = flyte.TaskEnvironment(name="pod_k8s", pod_template=pod)

    @k8s_env.task
    async def t() -> None: ...

    made = json_format.MessageToDict(_spec(t).k8s_pod.pod_spec)
    assert made["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert made["containers"][0]["name"] == "main" and made["containers"][0]["env"][-1] == {
        "name": "A",
        "value": "1",
    }

    named = flyte.TaskEnvironment(name="pod_named", pod_template="gpu-pods")

    @named.task
    async def n() -> None: ...

    template = _spec(n)
    assert template.WhichOneof("target") == "container" and template.metadata.pod_template_name == "gpu-pods"
    with pytest.raises(TypeError, match="pod_template must be a flyte.PodTemplate"):
        flyte.TaskEnvironment(name="pod_bad", pod_template={"containers": []})
    with pytest.raises(TypeError, match="override\\(\\): pod_template must be"):
        t.override(pod_template=spec)


def test_overriding_a_deployed_task_keeps_what_it_does_not_change() -> None:
    from flyteidl2.task import task_definition_pb2

    from flyte.remote import TaskDetails

    def details(task: Any) -> Any:
        spec = task_spec(task, CodeRef("", "/code", "v1"), project="p", domain="d", org="o")
        tid = task_definition_pb2.TaskIdentifier(name=task.name, version="v1")
        return TaskDetails(task_definition_pb2.TaskDetails(task_id=tid, spec=spec))

    pod = json_format.MessageToDict(
        details(sees_env).override(env_vars={"ONLY": "1"}).pb2.spec.task_template.k8s_pod.pod_spec
    )
    primary = pod["containers"][0]
    # The env is the override's (plus what the cluster fills in); resources and the rest stay.
    assert [e["name"] for e in primary["env"]] == ["ONLY"] and primary["resources"]["limits"][
        "memory"
    ] == "512Mi"
    assert pod["nodeSelector"] == {"pool": "gpu"}

    container_env = flyte.TaskEnvironment(name="pod_plain_container")

    @container_env.task
    async def c() -> None: ...

    changed = details(c).override(resources=flyte.Resources(cpu="1", gpu="A100:1")).pb2.spec.task_template
    assert changed.extended_resources.gpu_accelerator.device == "nvidia-tesla-a100"


def test_helpers_grant_what_they_say_and_refuse_conflicts() -> None:
    base = flyte.PodTemplate()
    graced = base.with_termination_grace_period(timedelta(minutes=2))
    assert graced.pod_spec == {"containers": [{"name": "primary"}], "terminationGracePeriodSeconds": 120}
    assert base.pod_spec is None  # copies, never changed in place
    with pytest.raises(ValueError, match="not be negative"):
        base.with_termination_grace_period(-1)
    with pytest.raises(TypeError, match="seconds"):
        base.with_termination_grace_period(True)

    fuse = base.allow_fuse()
    primary = fuse.pod_spec["containers"][0]
    assert primary["resources"]["limits"] == {"smarter-devices/fuse": "1"}
    assert primary["securityContext"]["capabilities"]["add"] == ["SYS_ADMIN"]
    assert fuse.annotations == {"flyte.org/capability-fuse": "true"}
    sandboxed = fuse.allow_nested_sandboxing()
    security = sandboxed.pod_spec["containers"][0]["securityContext"]
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["add"] == ["SYS_ADMIN"]
    assert sandboxed.annotations["container.apparmor.security.beta.kubernetes.io/primary"] == "unconfined"
    with pytest.raises(ValueError, match="allowPrivilegeEscalation: false"):
        sandboxed.allow_fuse(privileged=True)
    privileged = base.allow_fuse(privileged=True)
    assert privileged.pod_spec["volumes"] == [
        {"name": "fuse-device", "hostPath": {"path": "/dev/fuse", "type": "CharDevice"}}
    ]
    with pytest.raises(ValueError, match="is privileged"):
        privileged.allow_nested_sandboxing()

    with pytest.raises(ValueError, match="cannot tell which container"):
        flyte.PodTemplate.from_spec({"containers": [{"name": "a"}, {"name": "b"}]})
    with pytest.raises(ValueError, match="'c' is not a container"):
        flyte.PodTemplate.from_spec({"containers": [{"name": "a"}]}, primary_container_name="c")
    with pytest.raises(TypeError, match="pod_spec must be"):
        flyte.PodTemplate(pod_spec="spec")
    assert base.to_k8s_pod().primary_container_name == "primary"

    made = pod_spec_from_resources(
        requests=flyte.Resources(cpu="2", memory="1Gi", gpu=1), limits=flyte.Resources(memory="2Gi")
    )
    assert made.containers[0].resources.requests == {"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": "1"}
    assert made.containers[0].resources.limits == {"memory": "2Gi"}
