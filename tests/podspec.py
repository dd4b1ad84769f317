"""A task's container command and environment, as a Flyte 2 cluster makes them for a pod.

The task spec our SDK builds supplies the container args; the cluster's template variables are
filled in with URIs under a storage prefix (S3, or file:// for a container that sees the same
folder); the environment is what the cluster's executor sets, nothing private to our backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flyte import _storage as st


@dataclass
class Pod:
    args: list[str]
    env: dict[str, str]
    output_prefix: str


def pod_for(task: Any, code_root: Path, inputs: dict[str, Any], uri: Callable[..., str]) -> Pod:
    """Uploads ``code_root`` as the code bundle and ``inputs``; ``uri(*parts)`` makes a fresh
    storage URI for the given path parts."""
    from flyte._internal import _bundle
    from flyte._internal._serialize import CodeRef, task_spec

    bundle = _bundle.build(code_root, "all")
    assert bundle is not None
    bundle_uri = uri("bundles", f"{bundle.digest}.tar.gz")
    st.put_bytes_sync(bundle.data, bundle_uri)
    spec = task_spec(
        task,
        CodeRef(bundle_uri=bundle_uri, root="", version=bundle.digest),
        project="flytesnacks",
        domain="development",
        org="local",
    )
    iface = task.interface
    literals = iface.inputs_to_literals(iface.bind((), inputs, task.name), task.name)
    # The cluster keeps inputs in a directory, as inputs.pb; {{.input}} names that file.
    input_dir = uri("run", "a0", "inputs")
    st.put_bytes_sync(literals.SerializeToString(), input_dir + "/inputs.pb")
    out_prefix = uri("run", "a0", "attempt1") + "/"
    values = {
        "{{.input}}": input_dir + "/inputs.pb",
        "{{.inputPrefix}}": input_dir,
        "{{.outputPrefix}}": out_prefix,
        "{{.rawOutputDataPrefix}}": uri("raw"),
        "{{.checkpointOutputPrefix}}": uri("checkpoints"),
        "{{.prevCheckpointPrefix}}": "",
        "{{.runName}}": "rpodlike",
        "{{.actionName}}": "a0",
        "{{.runStartTime}}": "2026-01-02T03:04:05Z",
    }
    args = []
    for arg in spec.task_template.container.args:
        for placeholder, value in values.items():
            arg = arg.replace(placeholder, value)
        args.append(arg)
    assert "{{" not in " ".join(args), args
    env = {
        "ACTION_NAME": "a0",
        "RUN_NAME": "rpodlike",
        "_U_RUN_BASE": uri("run"),
        "_U_ORG_NAME": "local",
        "_U_EP_OVERRIDE": "127.0.0.1:9",
        "_U_INSECURE": "true",
        "_U_USE_ACTIONS": "1",
        "FLYTE_INTERNAL_EXECUTION_ID": "rpodlike",
        "FLYTE_INTERNAL_EXECUTION_PROJECT": "flytesnacks",
        "FLYTE_INTERNAL_EXECUTION_DOMAIN": "development",
        "FLYTE_ATTEMPT_NUMBER": "0",
    }
    return Pod(args, env, out_prefix)
