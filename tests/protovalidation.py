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
            protovalidate.validate(message)
        except protovalidate.ValidationError as e:
            for v in e.violations:
                field = ".".join(el.field_name for el in v.proto.field.elements) or "(message)"
                found[f"{method}: {field}: {v.proto.rule_id}: {v.proto.message}"] += 1
    return checked, [f"{what} (x{count})" for what, count in sorted(found.items())]


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
        request_log=str(log),
    )
    try:
        yield backend
    finally:
        backend.shutdown()
    checked, found = violations(log)
    assert checked > 0, "the backend logged no requests"
    assert not found, f"requests that break flyteidl2's rules, of {checked}:\n" + "\n".join(found)
