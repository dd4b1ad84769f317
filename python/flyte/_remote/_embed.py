"""What a Rust program embedding Python asks of the SDK: build a run request from a file,
a task name and JSON inputs, and turn the run's outputs back into JSON.

The Rust side does the networking (CreateRun, watching); these functions only load user
code and convert types, which is Python's job.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import flyte
from flyte._initialize import current_config
from flyte._internal._modules import load_module, tasks_in
from flyte._remote._client import BackendClient
from flyte._remote._submit import create_run_request as build
from flyte._types._interface import output_values


def _load(file: str, task_name: str) -> Any:
    tasks = tasks_in(load_module(Path(file), None))
    task = tasks.get(task_name) or next((t for t in tasks.values() if t.name == task_name), None)
    if task is None:
        raise ValueError(
            f"no task named {task_name!r} in {file} (tasks: {', '.join(sorted(tasks)) or 'none'})"
        )
    return task


def _inputs(task: Any, inputs_json: str) -> dict[str, Any]:
    from pydantic import TypeAdapter, ValidationError

    try:
        raw = json.loads(inputs_json or "{}")
    except json.JSONDecodeError as e:
        raise ValueError(f"inputs are not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ValueError("inputs must be a JSON object of input name to value")
    known = task.interface.inputs
    unknown = set(raw) - set(known)
    if unknown:
        raise ValueError(f"{task.name} has no inputs {sorted(unknown)}; it takes {sorted(known)}")
    out: dict[str, Any] = {}
    for name, value in raw.items():
        tp = known[name][0]
        try:
            out[name] = TypeAdapter(tp).validate_python(value) if tp is not Any else value
        except (ValidationError, TypeError) as e:
            raise ValueError(f"input {name!r}: {e}") from None
    return out


def create_run_request(
    file: str, task_name: str, inputs_json: str, project: str, domain: str, endpoint: str
) -> tuple[bytes, str]:
    """(serialized CreateRunRequest, full task name)."""
    flyte.init(endpoint=endpoint, insecure=True, project=project or None, domain=domain or None)
    task = _load(file, task_name)
    rc = flyte.with_runcontext(mode="remote")
    client = BackendClient(endpoint, insecure=True)
    request = build(task, (), _inputs(task, inputs_json), rc, current_config(), client)
    return request.SerializeToString(), str(task.name)


def outputs_json(file: str, task_name: str, outputs: bytes) -> str:
    """The run's outputs (a serialized flyteidl2 Outputs) as a JSON object."""
    from flyteidl2.task import common_pb2
    from pydantic import TypeAdapter

    task = _load(file, task_name)
    iface = task.interface
    value = iface.literals_to_outputs(common_pb2.Outputs.FromString(outputs), task.name)
    names = list(iface.outputs)
    values = output_values(names, value)
    named = dict(zip(names, values, strict=True))
    return json.dumps(TypeAdapter(Any).dump_python(named, mode="json"), default=repr)
