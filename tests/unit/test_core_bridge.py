"""The Rust module as Python sees it: ledger, action names, cache keys, local store."""

from __future__ import annotations

from pathlib import Path

import pytest

from flyte import _core


def test_ledger_names_follow_the_call_sequence() -> None:
    ledger = _core.Ledger("r1")
    assert ledger.record_root("env.main") == _core.ROOT_ACTION == "a0"
    first, new = ledger.submit("a0", "identity", b"inputs", None, "env.t")
    second, _ = ledger.submit("a0", "identity", b"inputs", None, "env.t")
    assert new and first != second
    assert first == _core.action_name("a0", "identity", b"inputs", None, 0)
    assert second == _core.action_name("a0", "identity", b"inputs", None, 1)
    other_ledger = _core.Ledger("r2")
    assert other_ledger.submit("a0", "identity", b"inputs", None, "env.t")[0] == first


def test_every_part_of_a_call_changes_its_name() -> None:
    base = _core.action_name("a0", "t", b"i", None, 0)
    assert base != _core.action_name("a1", "t", b"i", None, 0)
    assert base != _core.action_name("a0", "t2", b"i", None, 0)
    assert base != _core.action_name("a0", "t", b"j", None, 0)
    assert base != _core.action_name("a0", "t", b"i", "g", 0)


def test_ledger_records_phases_and_rejects_bad_input() -> None:
    ledger = _core.Ledger("r")
    ledger.record_root("env.main")
    name, _ = ledger.submit("a0", "t", b"", "grp", "env.child", "trace")
    assert ledger.start_attempt(name) == 1
    ledger.finish(name, "FAILED", "ValueError: x")
    record = ledger.get(name)
    assert record is not None
    assert (record["phase"], record["kind"], record["group"], record["error"]) == (
        "FAILED",
        "trace",
        "grp",
        "ValueError: x",
    )
    assert len(ledger) == 2
    with pytest.raises(KeyError, match="nope"):
        ledger.finish("nope", "SUCCEEDED")
    with pytest.raises(ValueError, match="phase"):
        ledger.finish(name, "DONE")
    with pytest.raises(ValueError, match="kind"):
        ledger.submit("a0", "t", b"", None, "env.child", "workflow")


def test_cache_keys() -> None:
    k = _core.cache_key("t", "iface", "v1", b"in", "")
    assert k == _core.cache_key("t", "iface", "v1", b"in", "")
    assert k != _core.cache_key("t", "iface", "v1", b"in", "salt")
    assert (
        len(k) == 64
        and _core.sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_store_round_trip_and_runs(tmp_path: Path) -> None:
    store = _core.LocalStore(tmp_path / "s" / "local.db")
    assert store.cache_get("k") is None
    store.cache_put("k", "env.t", b"\x00value")
    assert store.cache_get("k") == b"\x00value"
    assert _core.LocalStore(tmp_path / "s" / "local.db").cache_get("k") == b"\x00value"
    ledger = _core.Ledger("run1")
    ledger.record_root("env.main")
    ledger.save(store, "env.main", "local", "SUCCEEDED", 1.0, 2.0)
    assert store.get_run("run1")["phase"] == "SUCCEEDED"
    assert [a["name"] for a in store.run_actions("run1")] == ["a0"]
    assert store.cache_clear() == 1


def test_store_in_unwritable_place_is_an_os_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="local.db"):
        _core.LocalStore(blocker / "local.db")
