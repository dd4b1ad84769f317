"""Offloading of large input/output values: written by content hash, read back, identified by hash."""

from __future__ import annotations

from pathlib import Path

import pytest

import flyte
from flyte._internal import _raw_data
from flyte._internal._identity import identity_bytes
from flyte._types._offload import MAX_INLINE_ENV, max_inline_bytes, parse_size

env = flyte.TaskEnvironment(name="offload_unit")


@env.task
def consume(xs: list[int], tag: str) -> list[int]:
    return xs


def test_sizes_parse_and_bad_values_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_size("4096") == 4096
    assert parse_size("512k") == 512 * 1024
    assert parse_size("8MB") == 8 << 20
    assert parse_size(" 1g ") == 1 << 30
    for bad in ("", "lots", "-1", "1.5m", "10x"):
        with pytest.raises(ValueError, match=MAX_INLINE_ENV):
            parse_size(bad)
    monkeypatch.delenv(MAX_INLINE_ENV, raising=False)
    assert max_inline_bytes() == 4 << 20
    monkeypatch.setenv(MAX_INLINE_ENV, "2k")
    assert max_inline_bytes() == 2048


def _inputs(prefix: str, xs: list[int]):
    iface = consume.interface
    with _raw_data.scope(prefix):
        return iface.inputs_to_literals({"xs": xs, "tag": "t"}, consume.name)


def test_large_inputs_are_offloaded_and_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_INLINE_ENV, "1k")
    xs = list(range(2000))
    inputs = _inputs((tmp_path / "one").as_uri(), xs)
    big, small = inputs.literals
    assert big.value.WhichOneof("value") == "offloaded_metadata"
    assert small.value.WhichOneof("value") == "scalar"  # small values stay inline
    meta = big.value.offloaded_metadata
    assert meta.uri.startswith((tmp_path / "one").as_uri() + "/offloaded/")
    assert meta.size_bytes == Path(meta.uri.removeprefix("file://")).stat().st_size
    assert meta.inferred_type.WhichOneof("type") == "collection_type"
    assert len(big.value.hash) == 64
    assert consume.interface.literals_to_inputs(inputs) == {"xs": xs, "tag": "t"}


def test_identity_depends_on_content_not_on_where_it_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MAX_INLINE_ENV, "1k")
    a = _inputs((tmp_path / "a").as_uri(), list(range(2000)))
    b = _inputs((tmp_path / "b").as_uri(), list(range(2000)))
    c = _inputs((tmp_path / "a").as_uri(), list(range(2001)))
    assert a.literals[0].value.offloaded_metadata.uri != b.literals[0].value.offloaded_metadata.uri
    assert identity_bytes(a, False) == identity_bytes(b, False)
    assert identity_bytes(a, False) != identity_bytes(c, False)


def test_a_changed_offloaded_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_INLINE_ENV, "1k")
    inputs = _inputs(tmp_path.as_uri(), list(range(2000)))
    stored = Path(inputs.literals[0].value.offloaded_metadata.uri.removeprefix("file://"))
    other = _inputs((tmp_path / "x").as_uri(), list(range(3000))).literals[0].value.offloaded_metadata.uri
    stored.write_bytes(Path(other.removeprefix("file://")).read_bytes())
    with pytest.raises(ValueError, match="does not match its hash"):
        consume.interface.literals_to_inputs(inputs)


def test_a_missing_offloaded_file_names_its_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_INLINE_ENV, "1k")
    inputs = _inputs(tmp_path.as_uri(), list(range(2000)))
    uri = inputs.literals[0].value.offloaded_metadata.uri
    Path(uri.removeprefix("file://")).unlink()
    with pytest.raises(FileNotFoundError):
        consume.interface.literals_to_inputs(inputs)


def test_outputs_are_offloaded_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_INLINE_ENV, "1k")
    with _raw_data.scope(tmp_path.as_uri()):
        outputs = consume.interface.outputs_to_literals(list(range(5000)), consume.name)
    assert outputs.literals[0].value.WhichOneof("value") == "offloaded_metadata"
    assert consume.interface.literals_to_outputs(outputs) == list(range(5000))


def test_raw_data_paths_are_normalized(tmp_path: Path) -> None:
    assert _raw_data.normalize_raw_data_path(str(tmp_path)) == tmp_path.resolve().as_uri()
    assert _raw_data.normalize_raw_data_path("s3://bucket/x/") == "s3://bucket/x"
    with pytest.raises(ValueError, match="unsupported scheme"):
        _raw_data.normalize_raw_data_path("ftp://x/y")
    with pytest.raises(ValueError, match="empty"):
        _raw_data.normalize_raw_data_path("  ")
