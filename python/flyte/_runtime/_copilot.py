"""The runtime's second program: one attempt of a raw container (``flyte.extras.ContainerTask``)
for the embedded backend. Given the task's template, it stages the attempt's inputs, runs the
image with this machine's container runtime, and writes ``outputs.pb`` (or ``error.pb``) where
the backend reads them, as a cluster's data sidecar does around a pod."""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import traceback

from flyte._bridge import contract
from flyte._internal import _raw_data, _uris
from flyte._task_errors import is_recoverable
from flyte.extras._container import DataContract, in_output_order, run_raw_container
from flyte.types import guess_interface

# Deferred imports: protobufs load, and the task runtime's error reporting, only once an
# attempt runs (argument errors answer without them).


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"{contract.RUNTIME_PROGRAM} {contract.RAW_CONTAINER_FLAG}")
    p.add_argument("--inputs", required=True)
    p.add_argument("--outputs-path", required=True)
    p.add_argument("--raw-data-path", default="")
    p.add_argument("--template", required=True, help="the task's core.TaskTemplate, base64")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    from flyteidl2.core import tasks_pb2
    from flyteidl2.task import common_pb2

    from flyte._runtime._execute import _write_error

    args = _parse(argv)
    prefix = args.outputs_path
    try:
        template = tasks_pb2.TaskTemplate.FromString(base64.b64decode(args.template))
        container = template.container
        inputs = common_pb2.Inputs.FromString(_uris.read_bytes(args.inputs))
        iface = guess_interface(template.interface)
        env = {kv.key: kv.value for kv in container.env}
        raw = args.raw_data_path or _uris.join(prefix, "raw")
        if args.raw_data_path:
            os.environ[_raw_data.RAW_DATA_PREFIX_ENV] = args.raw_data_path
        with _raw_data.scope(raw):
            values = asyncio.run(
                run_raw_container(
                    container.image,
                    list(container.args),
                    inputs,
                    iface,
                    DataContract.from_proto(container.data_config),
                    env,
                )
            )
            outputs = iface.outputs_to_literals(in_output_order(iface, values), template.id.name)
    except Exception as e:
        traceback.print_exc()
        _write_error(prefix, e, recoverable=is_recoverable(e))
        return 0
    _uris.write_bytes(_uris.join(prefix, "outputs.pb"), outputs.SerializeToString())
    return 0
