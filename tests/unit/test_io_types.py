"""flyte.io values on their own and through the type engine (no tasks)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from flyteidl2.core import types_pb2

import flyte.errors
from flyte._types import LiteralEngine
from flyte.io import DataFrame, Dir, File, new_remote_uri


def _python(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_flyte_does_not_load_io_and_io_does_not_load_frames():
    assert (
        _python(
            """
        import sys, flyte
        print("flyte.io" in sys.modules)
        """
        )
        == "False"
    )
    assert (
        _python(
            """
        import sys
        from flyte.io import File, Dir, DataFrame
        import flyte
        assert flyte.io.File is File
        print(sorted(m for m in ("pandas", "pyarrow", "polars") if m in sys.modules))
        """
        )
        == "[]"
    )


def test_new_remote_uri_outside_task_and_with_prefix(monkeypatch):
    uri = new_remote_uri("x.txt")
    data = Path(os.environ["FLYTE_DATA_DIR"]).resolve()
    assert uri.startswith((data / "raw" / "_").as_uri() + "/")
    assert uri.endswith("/x.txt")
    assert new_remote_uri("x.txt") != uri
    monkeypatch.setenv("_FLYTE_RAW_DATA_PREFIX", "s3://bucket/raw/run/a0/")
    other = new_remote_uri()
    assert other.startswith("s3://bucket/raw/run/a0/") and "//" not in other[len("s3://") :]


def test_file_from_string_read_and_hash():
    f = File.from_string("hello", "h.txt")
    g = File.from_string("hello", "h.txt")
    assert f.path != g.path and f.hash == g.hash
    assert f.name == "h.txt" and f.read() == "hello" and f.read_bytes() == b"hello"
    assert f.exists_sync() and asyncio.run(f.exists())
    assert Path(os.fspath(f)).read_text() == "hello"


def test_file_from_local_sync_and_async(tmp_path):
    """As in the reference SDK: ``from_local`` is a coroutine function, ``from_local_sync`` its twin."""
    src = tmp_path / "a.bin"
    src.write_bytes(b"\x00\x01")
    f = File.from_local_sync(src)
    assert isinstance(f, File) and f.path.startswith("file://") and f.name == "a.bin"

    async def main() -> File:
        pending = File.from_local(src)
        assert asyncio.iscoroutine(pending)
        return await pending

    g = asyncio.run(main())
    assert g.hash == f.hash and g.path != f.path
    assert g.read_bytes() == b"\x00\x01"
    with pytest.raises(FileNotFoundError):
        File.from_local_sync(tmp_path / "missing")


def test_file_download_and_open(tmp_path):
    f = File.new_remote("s.txt")
    with f.open("w") as w:
        w.write("line1\nline2\n")
    with f.open("r") as r:
        assert r.read().splitlines() == ["line1", "line2"]
    target = f.download_sync(tmp_path / "copy.txt")
    assert Path(target).read_text() == "line1\nline2\n"
    into_dir = f.download_sync(tmp_path)
    assert into_dir == str(tmp_path / "s.txt")

    async def main() -> str:
        return await f.download()

    assert Path(asyncio.run(main())).read_text().startswith("line1")
    with pytest.raises(ValueError):
        f.open_sync("a")

    async def streamed() -> bytes:
        g = File.new_remote("async.bin")
        async with g.open("wb") as w:
            await w.write(b"async ")
            await w.write(b"bytes")
        async with g.open("rb") as r:
            return bytes(await r.read())

    assert asyncio.run(streamed()) == b"async bytes"


def test_file_literal_round_trip_and_hash(tmp_path):
    lt = LiteralEngine.to_literal_type(File)
    assert lt.blob.dimensionality == types_pb2.BlobType.SINGLE
    a = LiteralEngine.to_literal(File.from_string("same", "n.txt"), File)
    b = LiteralEngine.to_literal(File.from_string("same", "n.txt"), File)
    assert a.hash and a.hash == b.hash
    assert a.scalar.blob.uri.startswith("file://")
    back = LiteralEngine.to_python(a, File)
    assert isinstance(back, File) and back.read() == "same" and back.hash == a.hash and back.name == "n.txt"

    # a plain local path is uploaded when it becomes a literal
    p = tmp_path / "plain.txt"
    p.write_text("plain")
    lit = LiteralEngine.to_literal(File(path=str(p)), File)
    assert lit.scalar.blob.uri.startswith("file://") and lit.scalar.blob.uri != p.as_uri()
    assert LiteralEngine.to_python(lit, File).read() == "plain"

    with pytest.raises(flyte.errors.RuntimeDataValidationError):
        LiteralEngine.to_literal(File(path=str(tmp_path / "nope.txt")), File)
    with pytest.raises(flyte.errors.RuntimeDataValidationError):
        LiteralEngine.to_literal("not a file", File)


def test_file_in_containers():
    files = [File.from_string(str(i), f"{i}.txt") for i in range(3)]
    lit = LiteralEngine.to_literal(files, list[File])
    assert [f.read() for f in LiteralEngine.to_python(lit, list[File])] == ["0", "1", "2"]
    lit = LiteralEngine.to_literal(None, File | None)
    assert LiteralEngine.to_python(lit, File | None) is None
    lit = LiteralEngine.to_literal(files[0], File | None)
    assert LiteralEngine.to_python(lit, File | None).read() == "0"


@dataclass
class Holder:
    f: File
    d: Dir


def _tree(root: Path) -> Path:
    (root / "b").mkdir(parents=True)
    (root / "a.txt").write_text("A")
    (root / "b" / "c.txt").write_text("C")
    return root


def test_dir_round_trip_walk_and_list(tmp_path):
    d = Dir.from_local_sync(_tree(tmp_path / "tree"))
    assert isinstance(d, Dir) and d.path.startswith("file://") and d.hash
    lit = LiteralEngine.to_literal(d, Dir)
    assert lit.scalar.blob.metadata.type.dimensionality == types_pb2.BlobType.MULTIPART
    assert lit.hash == d.hash
    back = LiteralEngine.to_python(lit, Dir)
    walked = list(back.walk())
    assert [Path(p).read_text() for p in walked] == ["A", "C"]
    assert all(os.path.isabs(p) for p in walked)
    files = back.list_files_sync()
    assert [f.name for f in files] == ["a.txt", "c.txt"]
    assert [f.name for f in asyncio.run(back.list_files())] == ["a.txt", "c.txt"]
    assert [f.read() for f in files] == ["A", "C"]
    copy = back.download_sync(tmp_path / "copy")
    assert (Path(copy) / "b" / "c.txt").read_text() == "C"
    # same content, same hash
    assert Dir.from_local_sync(_tree(tmp_path / "tree2")).hash == d.hash

    # a File literal is not a Dir
    with pytest.raises(flyte.errors.RuntimeDataValidationError):
        LiteralEngine.to_python(LiteralEngine.to_literal(File.from_string("x"), File), Dir)

    # plain local directory: listed in place, uploaded when it becomes a literal
    local = Dir(path=str(tmp_path / "tree"))
    assert [f.name for f in local.list_files_sync()] == ["a.txt", "c.txt"]
    assert LiteralEngine.to_literal(local, Dir).scalar.blob.uri.startswith("file://")


def test_file_and_dir_in_dataclass(tmp_path):
    h = Holder(f=File.from_string("x", "x.txt"), d=Dir.from_local_sync(_tree(tmp_path / "t")))
    back = LiteralEngine.to_python(LiteralEngine.to_literal(h, Holder), Holder)
    assert back.f == h.f and back.d == h.d
    assert back.f.read() == "x"


def test_dataframes():
    pdf = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    lit = LiteralEngine.to_literal(pdf, pd.DataFrame)
    assert lit.scalar.structured_dataset.metadata.structured_dataset_type.format == "parquet"
    assert LiteralEngine.to_literal_type(pd.DataFrame).structured_dataset_type.format == "parquet"
    pd.testing.assert_frame_equal(LiteralEngine.to_python(lit, pd.DataFrame), pdf)
    table = LiteralEngine.to_python(lit, pa.Table)
    assert isinstance(table, pa.Table) and table.num_rows == 3
    ref = LiteralEngine.to_python(lit, DataFrame)
    assert isinstance(ref, DataFrame) and ref.hash == lit.hash
    pd.testing.assert_frame_equal(ref.open(pd.DataFrame).all_sync(), pdf)
    assert asyncio.run(ref.open(pa.Table).all()).num_rows == 3

    tlit = LiteralEngine.to_literal(pa.table({"v": [1.5]}), pa.Table)
    assert LiteralEngine.to_python(tlit, pa.Table).column("v").to_pylist() == [1.5]

    ref2 = DataFrame.from_local_sync(pa.table({"v": [1]}))
    assert LiteralEngine.to_python(LiteralEngine.to_literal(ref2, DataFrame), DataFrame) == ref2
    wrapped = DataFrame.wrap_df(pd.DataFrame({"v": [7]}))
    assert wrapped.uri is None and wrapped.val is not None  # written only when it leaves the task
    stored = LiteralEngine.to_python(LiteralEngine.to_literal(wrapped, DataFrame), DataFrame)
    assert stored.uri and stored.open(pd.DataFrame).all_sync()["v"].tolist() == [7]

    f = File.from_dataframe(pdf, "d.parquet")
    assert f.format == "parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(f.download_sync()), pdf)
    with pytest.raises(TypeError):
        DataFrame.from_local_sync([1, 2])
    with pytest.raises(flyte.errors.RuntimeDataValidationError):  # wrapped: fails where it is written
        LiteralEngine.to_literal(DataFrame.from_df([1, 2]), DataFrame)


def test_user_supplied_hashes(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("content")
    assert File.from_local_sync(p).hash == File.from_string("content", "x.txt").hash
    assert File.from_local_sync(p, hash_method="v1").hash == "v1"
    assert File.from_local_sync(p, hash_method=lambda path: "len" + str(os.path.getsize(path))).hash == "len7"
    with pytest.raises(TypeError, match="hash_method"):
        File.from_local_sync(p, hash_method=lambda path: "")
    d = tmp_path / "d"
    d.mkdir()
    (d / "a").write_text("a")
    same = tmp_path / "e"
    same.mkdir()
    (same / "a").write_text("a")
    assert Dir.from_local_sync(d).hash == Dir.from_local_sync(same).hash
    assert Dir.from_local_sync(d, hash_method="dir-v1").hash == "dir-v1"
    assert File.from_existing_remote("s3://b/k", file_cache_key="k1").hash == "k1"
    assert Dir.from_existing_remote("s3://b/p", dir_cache_key="k2").hash == "k2"
    assert File.from_existing_remote("s3://b/k").hash is None


@dataclass
class _Holder:
    label: str
    f: File
    frames: list[DataFrame]


_id_env = flyte.TaskEnvironment(name="io_identity_unit")


@_id_env.task
def _takes_holder(h: _Holder) -> str:
    return h.label


def test_references_inside_dataclasses_are_identified_by_hash():
    from flyte._internal._identity import identity_bytes

    task = _takes_holder
    assert task.inputs_have_references

    def ident(path: str, digest: str | None, uri: str = "s3://b/df") -> bytes:
        h = _Holder("x", File(path=path, hash=digest), [DataFrame(uri=uri, hash="d1")])
        inputs = task.interface.inputs_to_literals({"h": h}, task.name)
        return identity_bytes(inputs, task.inputs_have_references)

    assert ident("s3://b/one", "h1") == ident("s3://b/two", "h1", uri="s3://b/other")
    assert ident("s3://b/one", "h1") != ident("s3://b/one", "h2")
    # Without a hash, the location is all there is to tell files apart.
    assert ident("s3://b/one", None) != ident("s3://b/two", None)


def test_a_bare_path_or_uri_validates_as_a_reference():
    from pydantic import TypeAdapter

    assert TypeAdapter(File).validate_python("s3://b/k.txt") == File(path="s3://b/k.txt")
    assert TypeAdapter(Dir).validate_python(Path("/tmp/x")).path == "/tmp/x"
    assert TypeAdapter(DataFrame).validate_python("s3://b/df").uri == "s3://b/df"
    held = TypeAdapter(_Holder).validate_json('{"label": "l", "f": "data.txt", "frames": ["s3://b/f"]}')
    assert held.f.name == "data.txt" and held.frames[0].uri == "s3://b/f"
