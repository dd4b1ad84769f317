"""The SDK's layers, from the bottom: the bridge to the Rust core and the few modules that
depend on nothing, types and storage (with configuration), tasks, runners, the run API, and the
programs (the CLI and the task runtime). An import only ever goes down (or stays in its layer),
modules import each other without cycles, and an import inside a function is there only
because it keeps something a user imports light — never to hide a cycle.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import flyte

PACKAGE = Path(flyte.__file__).resolve().parent

LAYERS: list[tuple[str, list[str]]] = [
    # The context only holds the current action in a contextvar; data types need it.
    (
        "bridge",
        [
            "flyte._bridge",
            "flyte._core",
            "flyte.errors",
            "flyte._version",
            "flyte._task_errors",
            "flyte._aio",
            "flyte.syncify",
            "flyte._logging",
            "flyte._names",
            "flyte._context",
        ],
    ),
    (
        "types and storage",
        [
            "flyte._types",
            "flyte.types",
            "flyte._storage",
            "flyte.storage",
            "flyte._checkpoint",
            "flyte.io",
            "flyte._config",
            "flyte.config",
            "flyte._initialize",
            "flyte._internal",
            "flyte._resources",
            "flyte._pod",
            "flyte._doc",
            "flyte.git",
            "flyte._secret",
            "flyte._cache",
            "flyte._retry",
            "flyte._timeout",
            "flyte._policy",
            "flyte._image",
            "flyte._reusable",
            "flyte._remote._auth",
        ],
    ),
    (
        "tasks",
        [
            "flyte._task",
            "flyte._task_plugins",
            "flyte._trigger",
            "flyte._plugin_config",
            "flyte.notify",
            "flyte._environment",
            "flyte._trace",
            "flyte._condition",
            "flyte.durable",
            "flyte._map",
            "flyte.report",
            "flyte.models",
            "flyte._internal._modules",
        ],
    ),
    ("runners", ["flyte._internal._runner", "flyte._local", "flyte._remote._action_runner"]),
    (
        "run API",
        [
            "flyte",
            "flyte._run",
            "flyte._deploy",
            "flyte._build",
            "flyte.extend",
            "flyte.extras",
            "flyte._imagebuild",
            "flyte._remote",
            "flyte.remote",
            "flyte._internal._triggers",
        ],
    ),
    ("programs", ["flyte.cli", "flyte._runtime"]),
]

# What users import: keeping these light is what justifies an import inside a function.
PUBLIC = ["flyte", "flyte.io", "flyte.remote", "flyte.report", "flyte.errors", "flyte.storage"]

# Runs as a script from a source checkout, and (with --program) without the SDK at all: only
# the standard library at its top, by design.
STDLIB_ONLY = {"flyte._runtime._forkserver"}

DEFERRED_NOTE = "# Deferred imports"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> int:
    best: tuple[int, int] | None = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > best[1]
            ):
                best = (rank, len(prefix))
    assert best is not None, f"{module} has no layer in {__file__}"
    return best[0]


def _target(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The SDK modules an import statement loads."""
    mods = _modules()
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".") if mods[module].name == "__init__.py" else module.split(".")[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join(package + ([node.module] if node.module else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
    found = []
    for name in names:
        if name != "flyte" and not name.startswith("flyte."):
            continue
        while name not in mods and name != "flyte._core" and "." in name:
            name = name.rsplit(".", 1)[0]
        found.append(name)
    return found


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str) -> Iterator[tuple[int, str, bool]]:
    """(line, imported SDK module, inside a function) for every import that runs."""
    tree = ast.parse(_modules()[module].read_text())

    def walk(node: ast.AST, in_function: bool) -> Iterator[tuple[int, str, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield from walk(child, True)
            elif isinstance(child, ast.If) and _type_checking(child.test):
                yield from walk(ast.Module(body=child.orelse, type_ignores=[]), in_function)
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in _target(module, child):
                    yield child.lineno, target, in_function
            else:
                yield from walk(child, in_function)

    yield from walk(tree, False)


def _loaded_after(code: str) -> set[str]:
    """The SDK modules a fresh interpreter has loaded after running ``code``."""
    report = "import json, sys\nprint(json.dumps([m for m in sys.modules if m == 'flyte' or m.startswith('flyte.')]))"
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"], capture_output=True, text=True, check=True, cwd="/"
    )
    return set(json.loads(out.stdout))


@cache
def _loaded_by() -> dict[str, set[str]]:
    """What importing each public module loads, and what a program that touches every name
    `flyte` ("definitions") or `flyte.remote` ("remote objects") exports loads: both load their
    names' modules on first use."""
    sets = {name: _loaded_after(f"import {name}") for name in PUBLIC}
    sets["definitions"] = _loaded_after("import flyte\nfor name in flyte.__all__:\n    getattr(flyte, name)")
    sets["remote objects"] = _loaded_after(
        "import flyte.remote\nfor name in flyte.remote.__all__:\n    getattr(flyte.remote, name)"
    )
    return sets


def _is_program(module: str) -> bool:
    return layer_of(module) == len(LAYERS) - 1


def test_every_module_has_a_layer() -> None:
    for module in _modules():
        layer_of(module)


def test_imports_only_go_down_the_layers() -> None:
    offenders = []
    for module in _modules():
        for line, target, _ in _imports(module):
            if layer_of(target) > layer_of(module):
                offenders.append(
                    f"{module}:{line} ({LAYERS[layer_of(module)][0]}) imports {target} "
                    f"({LAYERS[layer_of(target)][0]})"
                )
    assert offenders == []


def test_nothing_below_the_cli_imports_it() -> None:
    offenders = [
        f"{module}:{line} imports {target}"
        for module in _modules()
        if not module.startswith("flyte.cli")
        for line, target, _ in _imports(module)
        if target.startswith("flyte.cli")
    ]
    assert offenders == []


def test_modules_import_each_other_without_cycles() -> None:
    graph = {m: {t for _, t, inside in _imports(m) if not inside and t in _modules()} for m in _modules()}
    # A package's __init__ runs before its modules; "flyte.io" importing "flyte.io._file" is
    # the package loading its own parts, not a cycle.
    for module, targets in graph.items():
        targets.discard(module)
        targets -= {t for t in targets if module.startswith(t + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(" -> ".join(stack[stack.index(target) :] + [target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == []


def test_imports_inside_functions_keep_what_users_import_light() -> None:
    """An SDK import inside a function must keep a public module (or defining tasks) from
    loading what it imports, or keep a program's start short; anything else belongs at the top.
    Each module that defers imports says why in a comment starting with "# Deferred imports"."""
    sets = _loaded_by()
    misplaced, unexplained = [], []
    for module in _modules():
        if module in STDLIB_ONLY:
            continue
        deferred = [(line, target) for line, target, inside in _imports(module) if inside]
        for line, target in deferred:
            lighter = any(module in loaded and target not in loaded for loaded in sets.values())
            starts_faster = _is_program(module) and target not in sets["flyte"]
            if not (lighter or starts_faster):
                misplaced.append(f"{module}:{line} imports {target} inside a function; import it at the top")
        source = _modules()[module].read_text()
        if deferred and not any(line.startswith(DEFERRED_NOTE) for line in source.splitlines()):
            unexplained.append(f"{module} defers imports without a '{DEFERRED_NOTE}' comment saying why")
    assert misplaced == []
    assert unexplained == []
