"""Loading a user's workflow file: the module it defines and the tasks in it (for the CLI,
deploy, and Rust programs that embed the SDK)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from flyte._task import TaskTemplate
from flyte.errors import ModuleLoadError


def load_module(path: Path, root_dir: Path | None) -> ModuleType:
    """Imports a user's file as a module, with its directory (or ``root_dir``) importable."""
    path = path.resolve()
    root = (root_dir or path.parent).resolve()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        rel = path.relative_to(root).with_suffix("")
        module_name = ".".join(rel.parts)
    except ValueError:
        module_name = path.stem
    if module_name in sys.modules and getattr(sys.modules[module_name], "__file__", None) == str(path):
        return sys.modules[module_name]
    try:
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ModuleLoadError(message=f"cannot load {path}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    except ModuleLoadError:
        raise
    except SyntaxError as e:
        sys.modules.pop(module_name, None)
        raise ModuleLoadError(message=f"{path}:{e.lineno}: syntax error: {e.msg}") from e
    except Exception as e:
        sys.modules.pop(module_name, None)
        raise ModuleLoadError(message=f"importing {path} failed: {type(e).__name__}: {e}") from e
    return module


def tasks_in(module: ModuleType) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for attr, value in vars(module).items():
        if isinstance(value, TaskTemplate):
            found[attr] = value
    return found
