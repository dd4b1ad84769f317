"""The SDK's layers: the CLI is the top one, so nothing else in the SDK imports it."""

from __future__ import annotations

import ast
from pathlib import Path

import flyte

PACKAGE = Path(flyte.__file__).resolve().parent


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def test_nothing_below_the_cli_imports_it() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "cli":
            continue
        for line, module in _imported_modules(ast.parse(path.read_text(), str(path))):
            if module == "flyte.cli" or module.startswith("flyte.cli."):
                offenders.append(f"{rel}:{line} imports {module}")
    assert offenders == []
