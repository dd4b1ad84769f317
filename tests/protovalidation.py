"""Checks the requests a backend logged (its request log) against flyteidl2's validation rules.

Every request message is decoded as its method's input type and validated with protovalidate,
the rules a Flyte 2 cluster's services apply to what they receive.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import json
import pkgutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _load_flyteidl2() -> Any:
    """The descriptor pool with every flyteidl2 service in it."""
    import flyteidl2
    from google.protobuf import descriptor_pool

    for info in pkgutil.walk_packages(flyteidl2.__path__, "flyteidl2."):
        if info.name.endswith("_pb2"):
            importlib.import_module(info.name)
    return descriptor_pool.Default()


def violations(log: Path) -> tuple[int, list[str]]:
    """(number of requests checked, one line per distinct violation with how often it occurred)."""
    import protovalidate
    from google.protobuf import message_factory

    pool = _load_flyteidl2()
    found: Counter[str] = Counter()
    checked = 0
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        method = entry["method"]
        if "error" in entry:
            found[f"{method}: unreadable request body ({entry['error']})"] += 1
            continue
        service, name = method.strip("/").split("/")
        descriptor = pool.FindServiceByName(service).FindMethodByName(name).input_type
        message = message_factory.GetMessageClass(descriptor).FromString(base64.b64decode(entry["message"]))
        checked += 1
        try:
            _validate(message, method, found)
        except protovalidate.EvaluationError as e:
            # protovalidate's CEL cannot resolve the enum constant in InlineRule's one message
            # rule; that rule is checked here, and everything else by protovalidate.
            if "paused_rule_exclusive" not in str(e):
                raise
            paused = _paused_rules_not_exclusive(message)
            if paused:
                found[f"{method}: notification rule: paused_rule_exclusive (x{paused})"] += 1
            _validate(_without_rule_lists(message), method, found)
            for m in _messages(message):
                if m.DESCRIPTOR.full_name == "flyteidl2.task.InlineRule" and m.HasField("delivery_template"):
                    _validate(m.delivery_template, method, found)
    return checked, [f"{what} (x{count})" for what, count in sorted(found.items())]


def _validate(message: Any, method: str, found: Counter[str]) -> None:
    import protovalidate

    try:
        protovalidate.validate(message)
    except protovalidate.ValidationError as e:
        for v in e.violations:
            field = ".".join(el.field_name for el in v.proto.field.elements) or "(message)"
            found[f"{method}: {field}: {v.proto.rule_id}: {v.proto.message}"] += 1


def _messages(message: Any) -> Iterator[Any]:
    """``message`` and every message inside it."""
    yield message
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            values = value.values() if field.message_type.fields_by_name["value"].message_type else []
        else:
            values = value if field.is_repeated else [value]
        for item in values:
            yield from _messages(item)


def _paused_rules_not_exclusive(message: Any) -> int:
    from flyteidl2.common import phase_pb2

    paused = phase_pb2.ActionPhase.ACTION_PHASE_PAUSED
    return sum(
        1
        for m in _messages(message)
        if m.DESCRIPTOR.full_name == "flyteidl2.task.InlineRule"
        and paused in m.on_phases
        and len(m.on_phases) > 1
    )


def _without_rule_lists(message: Any) -> Any:
    copy = type(message)()
    copy.CopyFrom(message)
    for m in _messages(copy):
        if m.DESCRIPTOR.full_name == "flyteidl2.task.RunSpec" and m.HasField("notification_rules"):
            m.ClearField("notification_rules")
    return copy


@contextlib.contextmanager
def checked_backend(data: Path, max_parallel: int = 8) -> Iterator[Any]:
    """The embedded backend on `data`, logging every request it receives; when it stops, each
    one must pass flyteidl2's validation rules, as a Flyte 2 cluster checks them."""
    import sys

    from flyte import _core

    log = data / "requests.jsonl"
    backend = _core.Backend(
        str(data),
        str(Path(sys.executable).parent),
        port=0,
        max_parallel=max_parallel,
        fork_server=[sys.executable, "-m", "flyte._runtime._forkserver"],
        worker=[sys.executable, "-m", "flyte._runtime._worker"],
        request_log=str(log),
    )
    try:
        yield backend
    finally:
        backend.shutdown()
    checked, found = violations(log)
    assert checked > 0, "the backend logged no requests"
    assert not found, f"requests that break flyteidl2's rules, of {checked}:\n" + "\n".join(found)
