"""The data contract of a raw container (``flyte.extras.ContainerTask``), as a cluster's data
sidecar keeps it: inputs are staged as files in the container's input directory, arguments
may name them (``{{.inputs.x}}``), and outputs are read back from files in its output
directory. Local mode and the embedded backend stage and collect with this one module.

Inputs, one entry per input at ``<input dir>/<name>``: a primitive is a file holding its
text (``true``/``false``, ``3``, ``0.5``, RFC 3339 times, Go-style durations such as
``1h2m3s``); a file is that file (``file_input_layout="NAMED_DIR"``: a directory holding it
under its own name); a directory or a list is a directory (list entries ``0``, ``1``, ...).
``inputs.pb`` (a ``core.LiteralMap`` naming the staged paths) is always written, and
``inputs.json`` / ``inputs.yaml`` for those metadata formats.

Outputs: ``<output dir>/<name>`` (or a single ``<name>.*``): a primitive's text, a file, or
a directory. A file ``_ERROR`` in the output directory fails the task with its content.
"""

from __future__ import annotations

import base64
import json
import math
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from flyte._storage import get
from flyte.io import Dir, File

# Deferred imports: protobufs load when a container task runs.

#: A file the container writes to fail the task with its content.
ERROR_FILE = "_ERROR"
#: Largest primitive output file read.
MAX_PRIMITIVE_OUTPUT = 1024

_TEMPLATE = re.compile(r"\{\{\s*[.$]inputs\.([A-Za-z0-9_]+)\s*\}\}", re.IGNORECASE)


class ContainerContractError(ValueError):
    """The container's inputs or outputs do not fit the data contract."""


# -- text forms ------------------------------------------------------------------------------


def float_text(x: float) -> str:
    """A float without an exponent, shortest form (``3`` for 3.0)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    text = format(Decimal(repr(x)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def float_arg(x: float) -> str:
    """A float as it appears in rendered arguments: shortest, an exponent only when very
    large or small (``3`` for 3.0, ``1e+21``)."""
    if math.isnan(x) or math.isinf(x):
        return float_text(x)
    exponent = Decimal(repr(x)).adjusted() if x else 0
    if -4 <= exponent < 21:
        return float_text(x)
    mantissa, _, power = f"{x:e}".partition("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    sign = power[0]
    return f"{mantissa}e{sign}{int(power[1:]):02d}"


def time_text(t: datetime) -> str:
    """RFC 3339 in UTC, with only the fraction of a second it has."""
    if t.tzinfo is not None:
        t = t.astimezone(timezone.utc)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += f".{t.microsecond:06d}".rstrip("0")
    return text + "Z"


def duration_text(d: timedelta) -> str:
    """A duration as Go writes one: ``1h2m3s``, ``1.5s``, ``300ms``, ``0s``."""
    nanos = (d.days * 86_400 + d.seconds) * 1_000_000_000 + d.microseconds * 1000
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)

    def frac(value: int, unit: int) -> str:
        whole, rest = divmod(value, unit)
        digits = f"{rest:0{len(str(unit)) - 1}d}".rstrip("0") if rest else ""
        return f"{whole}.{digits}" if digits else str(whole)

    if nanos < 1_000:
        return f"{sign}{nanos}ns"
    if nanos < 1_000_000:
        return f"{sign}{frac(nanos, 1_000)}µs"
    if nanos < 1_000_000_000:
        return f"{sign}{frac(nanos, 1_000_000)}ms"
    hours, rest = divmod(nanos, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = frac(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return f"{sign}{seconds}"


_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> timedelta:
    """A Go-style duration (``1h2m3.5s``, ``300ms``, ``-2m``); units are required."""
    body = text.strip()
    sign = -1 if body.startswith("-") else 1
    body = body.lstrip("+-")
    if body == "0":
        return timedelta(0)
    nanos = Decimal(0)
    pos = 0
    for match in _DURATION_PART.finditer(body):
        if match.start() != pos:
            break
        nanos += Decimal(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not body or pos != len(body):
        raise ValueError(f"{text!r} is not a duration such as 1h2m3s or 300ms")
    return timedelta(microseconds=sign * int(nanos / 1000))


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


# -- inputs ----------------------------------------------------------------------------------


def _primitive(literal: Any) -> tuple[str, Any] | None:
    """``(file text, JSON value)`` of a primitive literal; None if it is not one."""
    if literal.WhichOneof("value") != "scalar" or literal.scalar.WhichOneof("value") != "primitive":
        return None
    p = literal.scalar.primitive
    kind = p.WhichOneof("value")
    if kind == "integer":
        return str(p.integer), p.integer
    if kind == "float_value":
        return float_text(p.float_value), p.float_value
    if kind == "string_value":
        return p.string_value, p.string_value
    if kind == "boolean":
        return ("true" if p.boolean else "false"), p.boolean
    if kind == "datetime":
        text = time_text(p.datetime.ToDatetime(tzinfo=timezone.utc))
        return text, text
    if kind == "duration":
        d = p.duration.ToTimedelta()
        return duration_text(d), p.duration.seconds * 1_000_000_000 + p.duration.nanos
    return None


def _unwrap(literal: Any) -> Any:
    while literal.WhichOneof("value") == "scalar" and literal.scalar.WhichOneof("value") == "union":
        literal = literal.scalar.union.value
    return literal


async def _stage(literal: Any, path: Path, named_dir: bool, inside: Any) -> Any:
    """Writes ``literal`` at ``path``; returns its JSON value. Blob URIs in ``literal`` are
    changed to the staged paths as the container sees them (``inside(path)``)."""
    literal = _unwrap(literal)
    primitive = _primitive(literal)
    if primitive is not None:
        path.write_text(primitive[0])
        return primitive[1]
    kind = literal.WhichOneof("value")
    if kind == "scalar":
        scalar = literal.scalar
        which = scalar.WhichOneof("value")
        if which == "blob":
            multipart = scalar.blob.metadata.type.dimensionality == 1
            if multipart:
                path.mkdir(parents=True, exist_ok=True)
                await get(scalar.blob.uri, path, recursive=True)
                target = path
            else:
                target = (
                    path / (scalar.blob.uri.rstrip("/").rsplit("/", 1)[-1] or "file") if named_dir else path
                )
                target.parent.mkdir(parents=True, exist_ok=True)
                await get(scalar.blob.uri, target)
            scalar.blob.uri = inside(target)
            return inside(target)
        if which == "none_type":
            path.write_text("null")
            return None
        if which == "binary":
            path.write_bytes(scalar.binary.value)
            return base64.b64encode(scalar.binary.value).decode()
        if which == "generic":
            from google.protobuf.json_format import MessageToDict

            value = MessageToDict(scalar.generic)
            path.write_text(json.dumps(value, separators=(",", ":")))
            return value
        if which == "error":
            path.write_text(scalar.error.message)
            return scalar.error.message
    if kind == "collection":
        path.mkdir(parents=True, exist_ok=True)
        values = []
        used: set[str] = set()
        for i, item in enumerate(literal.collection.literals):
            inner = _unwrap(item)
            name = str(i)
            is_file = (
                inner.WhichOneof("value") == "scalar"
                and inner.scalar.WhichOneof("value") == "blob"
                and inner.scalar.blob.metadata.type.dimensionality == 0
            )
            if named_dir and is_file:
                base = inner.scalar.blob.uri.rstrip("/").rsplit("/", 1)[-1]
                name = base if base and base not in used else f"{i}_{base}"
                target = path / name
                await get(inner.scalar.blob.uri, target)
                inner.scalar.blob.uri = inside(target)
                values.append(inside(target))
            else:
                values.append(await _stage(item, path / name, False, inside))
            used.add(name)
        return values
    if kind == "map":
        path.mkdir(parents=True, exist_ok=True)
        return {
            key: await _stage(value, path / key, named_dir, inside)
            for key, value in literal.map.literals.items()
        }
    raise ContainerContractError(
        f"cannot stage {kind or 'an empty'} literal at {path} in a container's inputs"
    )


async def stage_inputs(
    inputs: Any, input_dir: Path, container_dir: str, metadata_format: str, named_dir: bool
) -> None:
    """Writes ``inputs`` (a ``task.Inputs``) into ``input_dir``, which the container sees as
    ``container_dir``, as the contract says."""
    import posixpath

    from flyteidl2.core import literals_pb2

    def inside(path: Path) -> str:
        return posixpath.join(container_dir, path.relative_to(input_dir).as_posix())

    input_dir.mkdir(parents=True, exist_ok=True)
    staged = literals_pb2.LiteralMap()
    values: dict[str, Any] = {}
    for named in inputs.literals:
        literal = literals_pb2.Literal()
        literal.CopyFrom(named.value)
        values[named.name] = await _stage(literal, input_dir / named.name, named_dir, inside)
        staged.literals[named.name].CopyFrom(literal)
    (input_dir / "inputs.pb").write_bytes(staged.SerializeToString())
    if metadata_format == "JSON":
        (input_dir / "inputs.json").write_text(json.dumps(values, sort_keys=True, separators=(",", ":")))
    elif metadata_format == "YAML":
        import yaml

        (input_dir / "inputs.yaml").write_text(yaml.safe_dump(values, sort_keys=True))


def _arg_text(literal: Any, name: str) -> str:
    literal = _unwrap(literal)
    if literal.WhichOneof("value") == "collection":
        return "[" + ",".join(_arg_text(item, name) for item in literal.collection.literals) + "]"
    primitive = _primitive(literal)
    if primitive is not None:
        p = literal.scalar.primitive
        if p.WhichOneof("value") == "float_value":
            return float_arg(p.float_value)
        return primitive[0]
    if literal.WhichOneof("value") == "scalar" and literal.scalar.WhichOneof("value") == "blob":
        return str(literal.scalar.blob.uri)
    raise ContainerContractError(
        f"input {name!r} cannot be put into an argument with {{{{.inputs.{name}}}}}: only primitives, "
        "files, directories and lists of them can; name its path under the input directory instead"
    )


def render_args(args: list[str], inputs: Any) -> list[str]:
    """Arguments with ``{{.inputs.<name>}}`` replaced by the inputs' values (primitives as
    their text, booleans ``true``/``false``, files and directories by their URI)."""
    values = {named.name: named.value for named in inputs.literals}

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ContainerContractError(
                f"{match.group(0)} names no input; the inputs are {', '.join(sorted(values)) or 'none'}"
            )
        return _arg_text(values[name], name)

    return [_TEMPLATE.sub(fill, arg) for arg in args]


# -- outputs ---------------------------------------------------------------------------------


def _output_path(output_dir: Path, name: str) -> Path:
    exact = output_dir / name
    if exact.exists():
        return exact
    matches = sorted(output_dir.glob(f"{glob_escape(name)}.*"))
    if len(matches) == 1:
        return matches[0]
    raise ContainerContractError(
        f"the container wrote no output {name!r}: expected the file {exact}"
        + (f" (found {len(matches)} files named {name}.*)" if matches else "")
    )


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _parse_primitive(text: str, simple: int, name: str) -> Any:
    from flyteidl2.core import types_pb2

    value = text.strip(" \n\t")
    try:
        if simple == types_pb2.INTEGER:
            return int(value, 10)
        if simple == types_pb2.FLOAT:
            return float(value)
        if simple == types_pb2.BOOLEAN:
            if value in _TRUE:
                return True
            if value in _FALSE:
                return False
            raise ValueError(f"{value!r} is not true or false")
        if simple == types_pb2.STRING:
            return value
        if simple == types_pb2.DURATION:
            return parse_duration(value)
        if simple == types_pb2.DATETIME:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                raise ValueError(f"{value!r} has no time zone (RFC 3339 needs one, e.g. Z)")
            return parsed
        if simple == types_pb2.STRUCT:
            return json.loads(value)
    except ValueError as e:
        raise ContainerContractError(f"output {name!r}: {e}") from None
    raise ContainerContractError(
        f"output {name!r}: a container cannot return a {types_pb2.SimpleType.Name(simple)}"
    )


async def collect_outputs(output_dir: Path, iface: Any) -> dict[str, Any]:
    """The outputs the container left in ``output_dir``, as Python values by output name
    (files and directories as ``flyte.io.File``/``Dir`` uploaded from there)."""
    error = output_dir / ERROR_FILE
    if error.is_file():
        raise ContainerContractError(
            f"the container reported an error: {error.read_text(errors='replace').strip()}"
        )
    typed = iface.to_typed_interface()
    values: dict[str, Any] = {}
    for entry in typed.outputs.variables:
        name, literal_type = entry.key, entry.value.type
        path = _output_path(output_dir, name)
        which = literal_type.WhichOneof("type")
        if which == "blob":
            if path.is_dir():
                if literal_type.blob.dimensionality == 0:
                    raise ContainerContractError(
                        f"output {name!r} is a file, but the container wrote a directory"
                    )
                values[name] = await Dir.from_local(str(path))
            else:
                if literal_type.blob.dimensionality == 1:
                    raise ContainerContractError(
                        f"output {name!r} is a directory, but the container wrote a file"
                    )
                values[name] = await File.from_local(str(path))
        elif which == "simple":
            if path.is_dir() or path.stat().st_size > MAX_PRIMITIVE_OUTPUT:
                raise ContainerContractError(
                    f"output {name!r} must be a file of at most {MAX_PRIMITIVE_OUTPUT} bytes holding its value"
                )
            values[name] = _parse_primitive(path.read_text(errors="replace"), literal_type.simple, name)
        else:
            raise ContainerContractError(
                f"output {name!r}: a container returns primitives, files and directories, not {which}"
            )
    return values
