"""The Rust module as Python sees it: ledger, action names, cache keys, run journal."""

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
    assert (record.phase, record.kind, record.group, record.error) == (
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


def test_a_journal_records_a_run_and_caches(tmp_path: Path) -> None:
    data = tmp_path / "data"
    journal, resumed = _core.RunJournal.open(data, "", "p", "d", "run1", "env.main", b"in")
    assert resumed is None
    ledger = _core.Ledger("run1", journal)
    ledger.record_root("env.main")
    ledger.start_attempt("a0")
    child, _ = ledger.submit("a0", "t", b"x", None, "env.child", "task", b"child-in")
    ledger.start_attempt(child)
    ledger.finish(child, "SUCCEEDED", outputs=b"child-out")
    assert journal.cache_get("k") is None
    journal.cache_put("k", "env.t", b"\x00value")
    assert journal.cache_get("k") == b"\x00value"
    journal.close()
    assert (data / "backend.db").exists()

    # Reopened by name: what succeeded comes back; other inputs are refused.
    with pytest.raises(_core.RunConflictError, match="other inputs"):
        _core.RunJournal.open(data, "", "p", "d", "run1", "env.main", b"other")
    again, resumed = _core.RunJournal.open(data, "", "p", "d", "run1", "env.main", b"in")
    assert resumed == [(child, b"child-out")]
    assert again.cache_get("k") == b"\x00value"
    again.close()


def test_a_journal_in_an_unwritable_place_is_an_os_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="file"):
        _core.RunJournal.open(blocker / "data", "", "p", "d", "r", "env.main", b"")
