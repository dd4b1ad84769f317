"""Every public name of the reference SDK exists here, with a compatible signature and the
same sync/async shape — or is listed, with its reason, in `deliberately_absent.toml`.

Both surfaces are read by `surface.py`, run once in the reference's virtualenv and once in
ours; the comparison lives here. An entry in the list that no longer excuses anything fails
too, so the list only ever says what is true.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    import tomli as tomllib

HERE = Path(__file__).parent
SURFACE = HERE / "surface.py"
ABSENT = HERE / "deliberately_absent.toml"
UNFINISHED = HERE / "unfinished.txt"

_POSITIONAL = ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")
_FAMILY = {"class": "class", "enum": "class", "function": "callable", "method": "callable"}


def _read_surface(python: str | Path, modules: list[str] | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), str(SURFACE), *(modules or [])],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _params(where: str, ref: list[dict[str, Any]] | None, ours: list[dict[str, Any]] | None) -> list[str]:
    if ref is None or ours is None:
        return []
    problems = []
    by_name = {p["name"]: p for p in ours}
    ours_positional = [p["name"] for p in ours if p["kind"] in _POSITIONAL and not p["name"].startswith("_")]
    ref_positional = [p["name"] for p in ref if p["kind"] in _POSITIONAL and not p["name"].startswith("_")]
    if ours_positional[: len(ref_positional)] != ref_positional:
        problems.append(f"{where}: positional parameters {ref_positional}, ours {ours_positional}")
    for p in ref:
        kind = p["kind"]
        if p["name"].startswith("_"):  # the reference's private knobs are not what users type
            continue
        if kind in ("VAR_POSITIONAL", "VAR_KEYWORD"):
            if not any(q["kind"] == kind for q in ours):
                problems.append(
                    f"{where}: takes {'*args' if kind == 'VAR_POSITIONAL' else '**kwargs'}, ours does not"
                )
            continue
        mine = by_name.get(p["name"])
        if mine is None:
            problems.append(f"{where}: parameter {p['name']!r} missing")
            continue
        if kind == "KEYWORD_ONLY" and mine["kind"] not in ("KEYWORD_ONLY", "POSITIONAL_OR_KEYWORD"):
            problems.append(f"{where}: {p['name']!r} is keyword-only there, {mine['kind']} here")
        if kind == "POSITIONAL_OR_KEYWORD" and mine["kind"] != kind:
            problems.append(f"{where}: {p['name']!r} is {kind} there, {mine['kind']} here")
        ref_default, our_default = p["default"], mine["default"]
        if "none" not in ref_default and "none" in our_default:
            problems.append(f"{where}: {p['name']!r} has a default there, none here")
        elif "value" in ref_default and ref_default != our_default:
            problems.append(f"{where}: {p['name']!r} defaults to {ref_default} there, {our_default} here")
    ref_names = {p["name"] for p in ref}
    for q in ours:
        if (
            q["name"] not in ref_names
            and q["kind"] not in ("VAR_POSITIONAL", "VAR_KEYWORD")
            and "none" in q["default"]
        ):
            problems.append(f"{where}: ours requires {q['name']!r}, which the reference does not take")
    return problems


def _shape(where: str, ref: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    problems = []
    for flag, meaning in (
        ("coroutine", "is a coroutine function"),
        ("aio", "has .aio"),
        ("async_generator", "is an async generator function"),
        ("generator", "is a generator function"),
        ("context_manager", "is a context manager"),
        ("async_context_manager", "is an async context manager"),
        ("iterator", "is iterable"),
        ("async_iterator", "is async-iterable"),
    ):
        if flag not in ref:
            continue
        if ref[flag] and not ours.get(flag):
            problems.append(f"{where}: {meaning} there, not here")
        # A sync function here where the reference's is async would hand callers a value
        # where they await one; the other way round hands them a coroutine.
        if flag in ("coroutine", "async_generator") and ours.get(flag) and not ref[flag]:
            problems.append(f"{where}: {meaning} here, not there")
    return problems


def _compare_item(where: str, ref: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    if ref["kind"] in ("missing", "module", "value", "attribute", "property"):
        return []
    ref_family, our_family = _FAMILY.get(ref["kind"], ref["kind"]), _FAMILY.get(ours["kind"], ours["kind"])
    if ref["kind"] in ("staticmethod", "classmethod") or ours["kind"] in ("staticmethod", "classmethod"):
        ref_family = our_family = "callable"
    if ref_family != our_family:
        return [f"{where}: a {ref['kind']} there, a {ours['kind']} here"]
    problems = _shape(where, ref, ours)
    # A class's constructor is named "Class()" so it can be excused apart from its members.
    call = f"{where}()" if ref["kind"] in ("class", "enum") else where
    problems += _params(call, ref.get("signature"), ours.get("signature"))
    if ref["kind"] in ("class", "enum"):
        for name in ref.get("enum_members", []):
            if name not in ours.get("enum_members", []):
                problems.append(f"{where}.{name}: enum member missing")
        # A class attribute that holds a class is recorded without members.
        for name, member in ref.get("members", {}).items():
            mine = ours.get("members", {}).get(name)
            if mine is None:
                problems.append(f"{where}.{name}: missing")
            else:
                problems += _compare_item(f"{where}.{name}", member, mine)
    return problems


def compare(ref: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    problems = []
    for module, ref_module in ref["surface"].items():
        our_module = ours["surface"].get(module)
        if our_module is None or "error" in our_module:
            problems.append(f"{module}: module missing ({(our_module or {}).get('error', 'not found')})")
            continue
        if "error" in ref_module:
            continue
        for name, item in ref_module["names"].items():
            mine = our_module["names"].get(name)
            if mine is None or mine["kind"] == "missing":
                problems.append(f"{module}.{name}: missing")
            else:
                problems += _compare_item(f"{module}.{name}", item, mine)
    return problems


def _excused(problem: str, absent: dict[str, str]) -> str | None:
    # A key with ": " names one difference of a name (e.g. one parameter) by its text.
    for key in absent:
        if ": " in key and problem.startswith(key):
            return key
    path = problem.split(":", 1)[0]
    parts = path.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in absent:
            return key
    return None


def load_absent() -> dict[str, str]:
    table = tomllib.loads(ABSENT.read_text())
    absent: dict[str, str] = {}
    for section in table.values():
        absent.update(section)
    return absent


def load_unfinished() -> set[str]:
    """Differences not yet worked off: not excuses (nothing here is on purpose), a to-do list
    the tests keep exact — a line that no longer happens must be deleted."""
    if not UNFINISHED.exists():
        return set()
    lines = (line.strip() for line in UNFINISHED.read_text().splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def test_the_absence_list_gives_a_reason_for_each_entry() -> None:
    for name, reason in load_absent().items():
        assert isinstance(reason, str) and len(reason.split()) >= 4, f"{name}: say why it is absent"


@pytest.fixture(scope="module")
def surfaces(reference_venv: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    ref = _read_surface(reference_venv / "bin" / "python")
    ours = _read_surface(sys.executable, ref["modules"])
    return ref, ours


def test_every_public_name_of_the_reference_is_here_or_listed(
    surfaces: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    ref, ours = surfaces
    absent, unfinished = load_absent(), load_unfinished()
    left = [p for p in compare(ref, ours) if _excused(p, absent) is None and p not in unfinished]
    assert not left, f"{len(left)} differences from the reference:\n" + "\n".join(left)


def test_every_listed_absence_is_still_absent(surfaces: tuple[dict[str, Any], dict[str, Any]]) -> None:
    ref, ours = surfaces
    absent = load_absent()
    problems = compare(ref, ours)
    used = {_excused(p, absent) for p in problems}
    stale = sorted(set(absent) - used)
    assert not stale, f"listed as absent or different but now matching the reference: {stale}"
    done = sorted(load_unfinished() - set(problems))
    assert not done, "unfinished.txt lists differences that are gone; delete these lines:\n" + "\n".join(done)
