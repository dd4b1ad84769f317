"""The bridge to the Rust core: one package imports it, its stub says exactly what it holds,
and the names both sides use are Rust's."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import flyte
from flyte import _core
from flyte._bridge import contract

PACKAGE = Path(flyte.__file__).resolve().parent
STUB = PACKAGE / "_core.pyi"


def _imports_core(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name == "flyte._core" for a in node.names):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.module == "flyte._core" or (
                node.module == "flyte" and any(a.name == "_core" for a in node.names)
            ):
                lines.append(node.lineno)
    return lines


def test_only_the_bridge_imports_the_core() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "_bridge" in path.relative_to(PACKAGE).parts:
            continue
        for line in _imports_core(ast.parse(path.read_text(), str(path))):
            offenders.append(f"{path.relative_to(PACKAGE)}:{line}")
    assert offenders == []


def _stub_names() -> set[str]:
    names = set()
    for node in ast.parse(STUB.read_text()).body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_the_stub_declares_exactly_what_the_core_holds() -> None:
    held = {name for name in dir(_core) if not name.startswith("__")}
    # Registered for the interpreter's exit, not for the SDK to call.
    held.discard("quiesce")
    assert _stub_names() == held


def test_contract_names_are_rusts() -> None:
    assert set(contract.__all__) - {"check_run_name", "sleep_seconds"} == set(_core.CONTRACT)
    for name, value in _core.CONTRACT.items():
        assert getattr(contract, name) == value
    # A few that a cluster's pod contract fixes.
    assert contract.ACTION_NAME == "ACTION_NAME"
    assert contract.RUN_BASE == "_U_RUN_BASE"
    assert contract.ATTEMPT_NUMBER == "FLYTE_ATTEMPT_NUMBER"


def test_core_errors_are_typed() -> None:
    assert issubclass(_core.RunConflictError, ValueError)
    assert issubclass(_core.DataDirInUseError, OSError)
    assert issubclass(_core.ControllerError, Exception)
    with pytest.raises(ValueError, match="not a core.TaskMetadata"):
        _core.TaskPolicy(b"\xff\xff")


def test_ledger_records_are_typed() -> None:
    ledger = _core.Ledger("r")
    ledger.record_root("env.main")
    record = ledger.get(_core.ROOT_ACTION)
    assert record is not None
    assert (record.name, record.phase, record.kind, record.attempts) == ("a0", "QUEUED", "task", 0)
    with pytest.raises(AttributeError):
        record.phase = "SUCCEEDED"  # type: ignore[misc]


def test_one_rule_for_terminal_and_successful_phases() -> None:
    from flyte._bridge import ledger

    for phase in ("SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT", "RECOVERED", "ACTION_PHASE_RECOVERED"):
        assert ledger.is_terminal(phase), phase
    for phase in ("QUEUED", "WAITING_FOR_RESOURCES", "INITIALIZING", "RUNNING"):
        assert not ledger.is_terminal(phase), phase
    assert ledger.is_success("SUCCEEDED") and ledger.is_success("RECOVERED")
    assert not ledger.is_success("FAILED")
    with pytest.raises(ValueError, match="unknown phase"):
        ledger.is_terminal("DONE")
