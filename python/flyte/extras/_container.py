"""Tasks that run a container image's own program (task type ``raw-container``), without
this SDK inside the image: inputs are staged as files, outputs read back from files
(see :mod:`flyte.extras._copilot` for the contract)."""

from __future__ import annotations

import hashlib
import inspect
import json
import pathlib
import tempfile
from dataclasses import dataclass
from typing import Any, Literal

from flyte._bridge import contract
from flyte._image import Image
from flyte._internal._serialize import image_uri
from flyte._task import TaskTemplate
from flyte._types._interface import NativeInterface
from flyte.errors import RuntimeUserError
from flyte.extras._copilot import collect_outputs, render_args, stage_inputs
from flyte.extras._runtime import run_container
from flyte.models import SerializationContext

#: How many of the container's last log lines a failure quotes.
_LOG_TAIL = 30


@dataclass(frozen=True)
class DataContract:
    """Where a raw container finds its inputs and leaves its outputs."""

    input_dir: str = "/var/inputs"
    output_dir: str = "/var/outputs"
    metadata_format: str = "JSON"
    named_dir: bool = False

    @classmethod
    def from_proto(cls, config: Any) -> DataContract:
        from flyteidl2.core import tasks_pb2

        formats = {tasks_pb2.DataLoadingConfig.YAML: "YAML", tasks_pb2.DataLoadingConfig.PROTO: "PROTO"}
        return cls(
            input_dir=config.input_path or "/var/inputs",
            output_dir=config.output_path or "/var/outputs",
            metadata_format=formats.get(config.format, "JSON"),
            named_dir=config.file_input_layout == tasks_pb2.DataLoadingConfig.NAMED_DIR,
        )


class ContainerExitError(RuntimeUserError):
    """The container's program ended with a non-zero exit status."""

    def __init__(self, returncode: int, image: str, logs: str) -> None:
        tail = "\n".join(logs.splitlines()[-_LOG_TAIL:])
        super().__init__(
            "ContainerExitError",
            f"the container of {image} exited with status {returncode}:\n{tail}".rstrip(),
        )
        self.returncode = returncode


async def run_raw_container(
    image: str,
    args: list[str],
    inputs: Any,
    iface: NativeInterface,
    contract: DataContract,
    env: dict[str, str],
) -> dict[str, Any]:
    """Runs ``args`` in ``image`` with ``inputs`` (a ``task.Inputs``) staged by ``contract``;
    the outputs it left, by name. Local mode and the embedded backend both run containers so."""
    import asyncio

    with tempfile.TemporaryDirectory(prefix="flyte-container-") as scratch:
        input_dir = pathlib.Path(scratch, "inputs")
        output_dir = pathlib.Path(scratch, "outputs")
        output_dir.mkdir()
        await stage_inputs(
            inputs, input_dir, contract.input_dir, contract.metadata_format, contract.named_dir
        )
        rendered = render_args(args, inputs)
        volumes = {str(input_dir): contract.input_dir, str(output_dir): contract.output_dir}
        finished = await asyncio.to_thread(run_container, image, rendered, volumes, env)
        if finished.logs:
            print(finished.logs, end="" if finished.logs.endswith("\n") else "\n")
        if finished.returncode != 0:
            raise ContainerExitError(finished.returncode, image, finished.logs)
        return await collect_outputs(output_dir, iface)


def in_output_order(iface: NativeInterface, values: dict[str, Any]) -> Any:
    """Outputs by name as a task returns them: one value, a tuple, or None."""
    ordered = [values[name] for name in iface.outputs]
    if not ordered:
        return None
    return ordered[0] if len(ordered) == 1 else tuple(ordered)


class ContainerTask(TaskTemplate):  # type: ignore[type-arg]
    """A task that runs ``command`` (then ``arguments``) in ``image``, a container image that
    needs nothing of this SDK.

    Each input is a file (or directory) under ``input_data_dir`` named after it; an argument
    may also hold an input's value with ``{{.inputs.<name>}}``. The program writes each output
    to a file named after it under ``output_data_dir`` (a primitive's text, a file, or a
    directory). ``metadata_format`` picks the summary of all inputs written beside them
    (``inputs.json``, ``inputs.yaml``; ``inputs.pb`` always). ``file_input_layout="NAMED_DIR"``
    puts a file input in a directory under its own name (tools that look at file extensions
    keep working). Locally and on the embedded backend the image runs with Docker (when a
    daemon answers) or buildah; on a cluster, in a pod.
    """

    MetadataFormat = Literal["JSON", "YAML", "PROTO"]

    def __init__(
        self,
        name: str,
        image: str | Image,
        command: list[str],
        inputs: dict[str, type] | None = None,
        arguments: list[str] | None = None,
        outputs: dict[str, type] | None = None,
        input_data_dir: str | pathlib.Path = "/var/inputs",
        output_data_dir: str | pathlib.Path = "/var/outputs",
        metadata_format: MetadataFormat = "JSON",
        local_logs: bool = True,
        file_input_layout: Literal["DIRECT", "NAMED_DIR"] = "DIRECT",
        **kwargs: Any,
    ) -> None:
        where = f"ContainerTask({name!r})"
        if isinstance(image, str):
            image = Image.from_debian_base() if image == "auto" else Image.from_base(image)
        if not isinstance(image, Image):
            raise TypeError(f"{where}: image must be an image URI or a flyte.Image, got {image!r}")
        for label, items in (("command", command), ("arguments", arguments or [])):
            if not isinstance(items, list) or any(not isinstance(c, str) for c in items):
                raise ValueError(f"{where}: {label} must be a list of strings, got {items!r}")
        if not command and not arguments:
            raise ValueError(f"{where}: give the command to run")
        if metadata_format not in ("JSON", "YAML", "PROTO"):
            raise ValueError(f"{where}: metadata_format must be JSON, YAML or PROTO, got {metadata_format!r}")
        if file_input_layout not in ("DIRECT", "NAMED_DIR"):
            raise ValueError(
                f"{where}: file_input_layout must be DIRECT or NAMED_DIR, got {file_input_layout!r}"
            )
        interface = NativeInterface(
            {k: (v, inspect.Parameter.empty) for k, v in (inputs or {}).items()},
            dict(outputs or {}),
            name=name,
        )
        super().__init__(
            name=name, image=image, interface=interface, task_type=contract.RAW_CONTAINER_TASK_TYPE, **kwargs
        )
        self._cmd = list(command)
        self._args = list(arguments or [])
        self._input_data_dir = pathlib.PurePosixPath(input_data_dir)
        self._output_data_dir = pathlib.PurePosixPath(output_data_dir)
        self._metadata_format = metadata_format
        self._file_input_layout = file_input_layout
        self._inputs = inputs
        self._outputs = outputs
        self.local_logs = local_logs

    @property
    def contract(self) -> DataContract:
        return DataContract(
            input_dir=str(self._input_data_dir),
            output_dir=str(self._output_data_dir),
            metadata_format=self._metadata_format,
            named_dir=self._file_input_layout == "NAMED_DIR",
        )

    @property
    def body_hash(self) -> str:  # type: ignore[override]
        """What the container runs identifies the task's code (its cache version): the image,
        the command and arguments, and the data contract (not its environment variables)."""
        image = self.image
        what = {
            "image": image.uri if isinstance(image, Image) else str(image),
            "command": self._cmd,
            "args": self._args,
            "contract": [self.contract.input_dir, self.contract.output_dir, self._metadata_format],
            "layout": self._file_input_layout,
        }
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()

    async def execute(self, **kwargs: Any) -> Any:
        iface = self.interface
        inputs = iface.inputs_to_literals(iface.bind((), kwargs, self.name), self.name)
        values = await run_raw_container(
            image_uri(self), self._cmd + self._args, inputs, iface, self.contract, dict(self.env_vars or {})
        )
        return in_output_order(iface, values)

    def container_args(self, serialize_context: SerializationContext) -> list[str]:
        return self._cmd + self._args

    def data_loading_config(self, sctx: SerializationContext) -> Any:
        from flyteidl2.core import tasks_pb2

        formats = {
            "JSON": tasks_pb2.DataLoadingConfig.JSON,
            "YAML": tasks_pb2.DataLoadingConfig.YAML,
            "PROTO": tasks_pb2.DataLoadingConfig.PROTO,
        }
        config = tasks_pb2.DataLoadingConfig(
            enabled=True,
            input_path=str(self._input_data_dir),
            output_path=str(self._output_data_dir),
            format=formats[self._metadata_format],
        )
        if self._file_input_layout == "NAMED_DIR":
            config.file_input_layout = tasks_pb2.DataLoadingConfig.NAMED_DIR
        return config
