"""Turning a shell task's script into the bash program its container runs.

Scalar and boolean values reach bash as positional arguments (``{{.inputs.x}}`` rendered by the
runtime), so any content survives without quoting; file inputs are globs over their staged
directories; dicts travel as one string split on a record separator. ``{inputs.x}``,
``{flags.x}`` and ``{outputs.x}`` in the script become references to those.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from typing import Any

from flyte.extras.shell._types import FlagSpec, Stderr, Stdout, input_kind, optional_inner

PLACEHOLDER = re.compile(r"\{(inputs|flags|outputs)\.([A-Za-z_][A-Za-z0-9_]*)\}")
_ANY_PLACEHOLDER = re.compile(r"\{[A-Za-z_]\w*\.[A-Za-z_]\w*\}")
#: Separates a dict input's keys and values in the one string it travels as.
DICT_SEPARATOR = "\x1e"


class _Program:
    """What the rendering of one script accumulates: bash lines run before the body, and the
    runtime templates whose values become the positional arguments."""

    def __init__(self, kinds: dict[str, str], optional: dict[str, bool], input_dir: str) -> None:
        self.kinds = kinds
        self.optional = optional
        self.input_dir = input_dir
        self.preamble: list[str] = []
        self.positionals: list[str] = []
        self.slots: dict[str, str] = {}
        self.flags: set[str] = set()
        self.arrays: set[str] = set()

    def path(self, name: str) -> str:
        return posixpath.join(self.input_dir, name)

    def slot(self, name: str) -> str:
        """The bash variable holding input ``name``'s value (a positional argument)."""
        if name not in self.slots:
            self.positionals.append(f"{{{{.inputs.{name}}}}}")
            variable = f"_VAL_{name}"
            # ${10}, not $10: bash reads $10 as $1 followed by 0.
            self.preamble.append(f'{variable}="${{{len(self.positionals)}}}"')
            self.slots[name] = variable
        return self.slots[name]

    def array(self, name: str) -> str:
        """The bash array of a dict input's keys and values, in turn."""
        array = f"_ARR_{name}"
        if name not in self.arrays:
            self.arrays.add(name)
            value = self.slot(name)
            self.preamble.append(
                f'{array}=(); if [ -n "${{{value}}}" ]; then '
                f"IFS=$'\\x1e' read -ra {array} <<< \"${{{value}}}\"; fi"
            )
        return array

    def input_ref(self, name: str) -> str:
        kind = self.kinds.get(name)
        if kind is None:
            raise KeyError(f"{{inputs.{name}}} is in the script, but {name!r} is not one of the inputs")
        if kind == "dir":
            return self.path(name)
        if kind in ("file", "list_file"):
            return f"{self.path(name)}/*"
        if kind in ("scalar", "bool"):
            return f'"${{{self.slot(name)}}}"'
        return f'"${{{self.array(name)}[@]}}"'

    def flag_ref(self, name: str, spec: FlagSpec) -> str:
        kind = self.kinds[name]
        variable = f"_FLAG_{name}"
        if name not in self.flags:
            self.flags.add(name)
            self.preamble.append(self._flag_setter(name, kind, spec, variable))
        if kind in ("file", "list_file", "dict_str"):
            return f'"${{{variable}[@]}}"'
        return f"${{{variable}}}"

    def _flag_setter(self, name: str, kind: str, spec: FlagSpec, variable: str) -> str:
        flag = shlex.quote(spec.flag)
        if kind == "bool":
            value = self.slot(name)
            return f'if [ "${{{value}}}" = "true" ]; then {variable}={flag}; else {variable}=""; fi'
        if kind == "scalar":
            value = self.slot(name)
            prefix = shlex.quote(spec.flag + spec.separator)
            return f'if [ -n "${{{value}}}" ]; then {variable}={prefix}"${{{value}}}"; else {variable}=""; fi'
        if kind == "dir":
            path = shlex.quote(self.path(name))
            whole = shlex.quote(spec.flag + spec.separator + self.path(name))
            if self.optional[name]:
                return f'if [ -d {path} ] && [ -n "$(ls -A {path} 2>/dev/null)" ]; then {variable}={whole}; else {variable}=""; fi'
            return f"{variable}={whole}"
        if kind in ("file", "list_file"):
            # nullglob: an absent (optional) input expands to nothing, and so does its flag.
            files = f"shopt -s nullglob; _files=({shlex.quote(self.path(name))}/*); shopt -u nullglob; {variable}=()"
            if spec.list_mode == "repeat":
                return f'{files}; for _f in "${{_files[@]}}"; do {variable}+=({flag} "$_f"); done'
            if spec.list_mode == "comma":
                return (
                    f'{files}; if [ "${{#_files[@]}}" -gt 0 ]; then '
                    f'{variable}=({flag} "$(IFS=,; echo "${{_files[*]}}")"); fi'
                )
            return f'{files}; if [ "${{#_files[@]}}" -gt 0 ]; then {variable}=({flag} "${{_files[@]}}"); fi'
        array = self.array(name)
        if spec.dict_mode == "equals":
            return (
                f"{variable}=(); for ((_i=0; _i<${{#{array}[@]}}; _i+=2)); do "
                f'{variable}+=({flag}"${{{array}[_i]}}=${{{array}[_i+1]}}"); done'
            )
        return f'{variable}=("${{{array}[@]}}")'


def render(
    script: str,
    inputs: dict[str, Any],
    outputs: dict[str, Any],
    flag_specs: dict[str, FlagSpec],
    input_dir: str,
    output_dir: str,
) -> tuple[str, list[str]]:
    """The bash body of ``script`` and the runtime templates of its positional arguments."""
    program = _Program(
        {name: input_kind(name, tp) for name, tp in inputs.items()},
        {name: optional_inner(tp)[0] for name, tp in inputs.items()},
        input_dir,
    )

    def replace(match: re.Match[str]) -> str:
        namespace, name = match.group(1), match.group(2)
        if namespace == "inputs":
            return program.input_ref(name)
        if namespace == "flags":
            if name not in flag_specs:
                raise KeyError(f"{{flags.{name}}} is in the script, but {name!r} is not one of the inputs")
            return program.flag_ref(name, flag_specs[name])
        if name not in outputs:
            raise KeyError(f"{{outputs.{name}}} is in the script, but the outputs are {list(outputs)}")
        if isinstance(outputs[name], (Stdout, Stderr)):
            raise KeyError(
                f"{{outputs.{name}}}: a {type(outputs[name]).__name__} output is the script's stream, "
                "which the task captures itself; the script does not write it"
            )
        return posixpath.join(output_dir, name)

    body = PLACEHOLDER.sub(replace, script)
    leftover = _ANY_PLACEHOLDER.search(body)
    if leftover:
        raise ValueError(
            f"{leftover.group(0)} in the script is not a placeholder; use {{inputs.<name>}}, "
            "{flags.<name>} or {outputs.<name>}"
        )
    if program.preamble:
        body = "\n".join(program.preamble) + "\n" + body
    return body, program.positionals
