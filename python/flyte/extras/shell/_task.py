"""``flyte.extras.shell.create``: a CLI tool in a container image as a typed task."""

from __future__ import annotations

import pathlib
import posixpath
import shlex
from dataclasses import dataclass, field
from typing import Any

from flyte._build import build
from flyte._environment import TaskEnvironment
from flyte._image import Image
from flyte._resources import Resources
from flyte.extras._container import ContainerTask
from flyte.extras.shell._script import DICT_SEPARATOR, render
from flyte.extras.shell._types import (
    FlagSpec,
    Glob,
    Stderr,
    Stdout,
    check_output,
    input_kind,
    listMode,
    optional_inner,
)
from flyte.io import Dir, File

INPUT_DIR = "/var/inputs"
OUTPUT_DIR = "/var/outputs"
#: How much of the script's stdout and stderr a failure quotes.
_TAIL_BYTES = 4000


def _wire_input(tp: Any) -> Any:
    """The type an input travels as: dicts and optional scalars as strings."""
    optional, inner = optional_inner(tp)
    kind = input_kind("", tp)
    if kind == "dict_str" or (optional and kind in ("scalar", "bool")):
        return str
    return inner | None if optional else inner


def _wire_output(spec: Any) -> Any:
    if isinstance(spec, Glob):
        return Dir
    if isinstance(spec, (Stdout, Stderr)):
        return spec.type
    return spec


@dataclass
class _Shell:
    """A configured shell task (what :func:`create` returns): ``await shell(**inputs)`` inside a
    task runs it; ``.env`` is its environment (for ``depends_on`` and deploys); ``.as_task()``
    is the container task itself."""

    name: str
    image: str | Image
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    script: str
    flag_aliases: dict[str, FlagSpec] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    shell: str = "/bin/bash"
    debug: bool = False
    input_data_dir: pathlib.Path = pathlib.Path(INPUT_DIR)
    output_data_dir: pathlib.Path = pathlib.Path(OUTPUT_DIR)
    resources: Resources | None = None
    retries: int = 0
    timeout: int | None = None
    cache: str = "auto"
    env_vars: dict[str, str] | None = None
    secrets: list[Any] | None = None
    local_logs: bool = True
    _task: ContainerTask | None = field(default=None, repr=False, compare=False)
    _env: TaskEnvironment | None = field(default=None, repr=False, compare=False)

    def command(self) -> list[str]:
        """The container's command: the rendered script, wrapped to capture its streams."""
        out = str(self.output_data_dir)
        body, positionals = render(
            self.script,
            self.inputs,
            self.outputs,
            {name: self.flag_aliases.get(name) or FlagSpec.coerce(name, None) for name in self.inputs},
            str(self.input_data_dir),
            out,
        )
        stdout = posixpath.join(out, "_stdout")
        stderr = posixpath.join(out, "_stderr")
        for name, spec in self.outputs.items():
            if isinstance(spec, Stdout):
                stdout = posixpath.join(out, name)
            elif isinstance(spec, Stderr):
                stderr = posixpath.join(out, name)
        dirs = [
            posixpath.join(out, name)
            for name, spec in self.outputs.items()
            if isinstance(spec, Glob) or spec is Dir
        ]
        lines = [f"mkdir -p {' '.join(shlex.quote(d) for d in dirs)}"] if dirs else []
        if self.debug:
            lines += [
                f"echo {shlex.quote(f'--- {self.name}: staged inputs ---')} >&2",
                f"ls -la {shlex.quote(str(self.input_data_dir))} >&2 || true",
                f"echo {shlex.quote(f'--- {self.name}: script ---')} >&2",
                f"cat >&2 <<'_FLYTE_SHELL_SCRIPT_'\n{body}\n_FLYTE_SHELL_SCRIPT_",
            ]
        lines += [
            "set -o pipefail",
            f"( {body}\n) > {shlex.quote(stdout)} 2> {shlex.quote(stderr)}",
            "_rc=$?",
            f"echo $_rc > {shlex.quote(posixpath.join(out, '_returncode'))}",
            # A failure shows what the script said (the streams went to files).
            f'if [ "$_rc" -ne 0 ] || [ -n "{"1" if self.debug else ""}" ]; then '
            f'echo "--- stdout ---" >&2; tail -c {_TAIL_BYTES} {shlex.quote(stdout)} >&2; '
            f'echo "--- stderr ---" >&2; tail -c {_TAIL_BYTES} {shlex.quote(stderr)} >&2; fi',
            "exit $_rc",
        ]
        return [self.shell, "-c", "\n".join(lines), "_shell_task", *positionals]

    def as_task(self) -> ContainerTask:
        if self._task is None:
            self._task = ContainerTask(
                name=self.name,
                image=self.image,
                command=self.command(),
                inputs={name: _wire_input(tp) for name, tp in self.inputs.items()},
                outputs={name: _wire_output(spec) for name, spec in self.outputs.items()},
                input_data_dir=str(self.input_data_dir),
                output_data_dir=str(self.output_data_dir),
                resources=self.resources or Resources(cpu=1, memory="1Gi"),
                retries=self.retries,
                timeout=self.timeout,
                cache=self.cache,
                env_vars=self.env_vars,
                secrets=self.secrets,
                local_logs=self.local_logs,
                # Files land under their own names in a directory per input, which the
                # script's globs expand (and tools that look at extensions keep working).
                file_input_layout="NAMED_DIR",
            )
        return self._task

    @property
    def env(self) -> TaskEnvironment:
        if self._env is None:
            self._env = TaskEnvironment.from_task(self.name, self.as_task())
        return self._env

    async def __call__(self, **kwargs: Any) -> Any:
        """Runs the tool with these inputs; ``Glob`` outputs come back as ``list[File]``."""
        if isinstance(self.image, Image) and not self.image.is_reference:
            # A definition is built (or found in its registry) once; the task then names it.
            self.image = (await build.aio(self.image)).uri
            self._task = None
        raw = await self.as_task().aio(**self.wire_inputs(kwargs))
        return await self._unpack(raw)

    def wire_inputs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's inputs as they travel: defaults filled in, dicts joined, an absent
        optional scalar or dict as an empty string."""
        unknown = set(kwargs) - set(self.inputs)
        if unknown:
            raise TypeError(
                f"{self.name}: no input named {', '.join(sorted(unknown))}; inputs: {list(self.inputs)}"
            )
        given = {**self.defaults, **kwargs}
        out: dict[str, Any] = {}
        for name, tp in self.inputs.items():
            optional, _ = optional_inner(tp)
            kind = input_kind(name, tp)
            value = given.get(name)
            if value is None:
                if name not in given and not optional:
                    raise TypeError(f"{self.name}: missing required input {name!r}")
                if not optional:
                    raise TypeError(f"{self.name}: input {name!r} is not optional; declare it {tp!r} | None")
                out[name] = "" if kind in ("scalar", "bool", "dict_str") else None
            elif kind == "dict_str":
                if not isinstance(value, dict):
                    raise TypeError(
                        f"{self.name}: input {name!r} takes a dict[str, str], got {type(value).__name__}"
                    )
                parts: list[str] = []
                for k, v in value.items():
                    if not isinstance(k, str) or not isinstance(v, str):
                        raise TypeError(f"{self.name}: input {name!r}: keys and values must be strings")
                    if DICT_SEPARATOR in k or DICT_SEPARATOR in v:
                        raise ValueError(f"{self.name}: input {name!r}: keys and values cannot hold \\x1e")
                    parts += [k, v]
                out[name] = DICT_SEPARATOR.join(parts)
            elif optional and kind == "bool":
                out[name] = "true" if value else "false"
            elif optional and kind == "scalar":
                out[name] = str(value)
            else:
                out[name] = value
        return out

    async def _unpack(self, raw: Any) -> Any:
        specs = list(self.outputs.values())
        values = [raw] if len(specs) == 1 else list(raw or ())
        unpacked = []
        for spec, value in zip(specs, values, strict=True):
            if isinstance(spec, Glob) and isinstance(value, Dir):
                local = pathlib.Path(await value.download())
                matched = sorted(p for p in local.glob(spec.pattern) if p.is_file())
                unpacked.append([await File.from_local(str(p)) for p in matched])
            else:
                unpacked.append(value)
        if not specs:
            return None
        return unpacked[0] if len(specs) == 1 else tuple(unpacked)


def _check_defaults(defaults: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    for name, value in defaults.items():
        if name not in inputs:
            raise KeyError(f"defaults names {name!r}, which is not one of the inputs")
        if value is None:
            raise ValueError(
                f"defaults[{name!r}] = None: declare the input as T | None and leave it out instead"
            )
        kind = input_kind(name, inputs[name])
        _, inner = optional_inner(inputs[name])
        expected: Any = {
            "file": File,
            "dir": Dir,
            "list_file": list,
            "bool": bool,
            "dict_str": dict,
            "scalar": (int, float) if inner is float else inner,
        }[kind]
        ok = isinstance(value, expected) and not (kind == "scalar" and isinstance(value, bool))
        if kind == "list_file" and ok:
            ok = all(isinstance(item, File) for item in value)
        if kind == "dict_str" and ok:
            ok = all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        if not ok:
            raise TypeError(f"defaults[{name!r}] = {value!r} does not fit the input's type {inputs[name]!r}")
    return dict(defaults)


def create(
    name: str,
    *,
    image: str | Image,
    inputs: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
    script: str,
    flag_aliases: dict[str, str | tuple[str, listMode] | FlagSpec] | None = None,
    defaults: dict[str, Any] | None = None,
    shell: str = "/bin/bash",
    debug: bool = False,
    resources: Resources | None = None,
    retries: int = 0,
    timeout: int | None = None,
    cache: str = "auto",
    env_vars: dict[str, str] | None = None,
    secrets: list[Any] | None = None,
    local_logs: bool = True,
) -> _Shell:
    """A task that runs ``script`` (bash) in ``image``, a CLI tool's container.

    ``inputs`` are File, Dir, list[File], dict[str, str], int, float, str, bool, or one of them
    ``| None``; the script names them ``{inputs.x}`` (a value, a path, or a glob of the staged
    files; do not quote them again) and ``{flags.x}`` (``-x value``, a switch for a bool, see
    ``flag_aliases``/:class:`FlagSpec`). ``outputs`` are File, Dir, int, float, str, bool (the
    script writes ``{outputs.x}``), :class:`Glob` (files the script writes into
    ``{outputs.x}/``, returned as ``list[File]``), :class:`Stdout` or :class:`Stderr` (the
    streams). ``defaults`` fill in inputs a caller leaves out. The image needs bash (4+) and
    no entrypoint of its own; a ``flyte.Image`` is built before it first runs.
    """
    inputs = dict(inputs or {})
    outputs = dict(outputs or {})
    if not isinstance(name, str) or not name:
        raise ValueError("a shell task needs a name")
    if not isinstance(image, (str, Image)):
        raise TypeError(f"{name}: image must be an image URI or a flyte.Image, got {type(image).__name__}")
    if not isinstance(script, str) or not script.strip():
        raise ValueError(f"{name}: the script is empty")
    helpers: dict[str, str] = {}
    for input_name, tp in inputs.items():
        input_kind(input_name, tp)
        for helper in (f"_VAL_{input_name}", f"_FLAG_{input_name}", f"_ARR_{input_name}"):
            if helper in helpers:
                raise ValueError(
                    f"inputs {helpers[helper]!r} and {input_name!r} clash in the script as {helper}"
                )
            helpers[helper] = input_name
    for output_name, spec in outputs.items():
        check_output(output_name, spec)
    if (
        sum(isinstance(s, Stdout) for s in outputs.values()) > 1
        or sum(isinstance(s, Stderr) for s in outputs.values()) > 1
    ):
        raise ValueError(f"{name}: at most one Stdout and one Stderr output")
    aliases: dict[str, FlagSpec] = {}
    for input_name, alias in (flag_aliases or {}).items():
        if input_name not in inputs:
            raise KeyError(f"flag_aliases names {input_name!r}, which is not one of the inputs")
        aliases[input_name] = FlagSpec.coerce(input_name, alias)
    shell_task = _Shell(
        name=name,
        image=image,
        inputs=inputs,
        outputs=outputs,
        script=script,
        flag_aliases=aliases,
        defaults=_check_defaults(defaults or {}, inputs),
        shell=shell,
        debug=debug,
        resources=resources,
        retries=retries,
        timeout=timeout,
        cache=cache,
        env_vars=env_vars,
        secrets=secrets,
        local_logs=local_logs,
    )
    shell_task.command()  # the script's placeholders are checked now, not when it first runs
    return shell_task
