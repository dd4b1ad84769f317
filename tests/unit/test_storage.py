"""flyte._storage on local paths and file:// URIs, plus URI helpers and error mapping."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flyte import _storage as st


def test_join_has_no_double_slashes() -> None:
    assert st.join("s3://b/", "/x/", "y") == "s3://b/x/y"
    assert st.join("s3://b", "x//y", "") == "s3://b/x/y"
    assert st.join("file:///", "a", "b") == "file:///a/b"
    assert st.join("file:///tmp/", "a") == "file:///tmp/a"
    assert st.join("/tmp/", "/a/") == "/tmp/a"
    assert st.join("/", "a") == "/a"
    assert st.join("", "a", "b") == "a/b"
    assert st.join("gs://bucket") == "gs://bucket"


def test_is_remote_and_to_local_path(tmp_path: Path) -> None:
    assert not st.is_remote("/tmp/x")
    assert not st.is_remote("relative/x")
    assert not st.is_remote("file:///tmp/x")
    assert not st.is_remote("C://windows")  # a drive letter is not a scheme
    for uri in ("s3://b/k", "gs://b/k", "abfs://c@acct.dfs.core.windows.net/k", "az://c/k"):
        assert st.is_remote(uri)
    assert st.to_local_path("file:///tmp/a%20b") == Path("/tmp/a b")
    assert st.to_local_path(str(tmp_path)) == tmp_path
    with pytest.raises(ValueError):
        st.to_local_path("s3://b/k")


def test_remote_locations_map_to_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    from obstore.store import AzureStore, GCSStore, S3Store

    from flyte._storage._uri import parse_remote

    loc = parse_remote("abfs://data@myacct.dfs.core.windows.net/a/b")
    assert (loc.scheme, loc.bucket, loc.account, loc.key) == ("az", "data", "myacct", "a/b")
    assert loc.uri("a/c") == "abfs://data@myacct.dfs.core.windows.net/a/c"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    s3, key = st.store_for("s3://bkt/x/y")
    assert isinstance(s3, S3Store) and key == "x/y"
    assert st.store_for("s3://bkt/other")[0] is s3  # cached per bucket
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    assert isinstance(st.store_for("gs://bkt/x")[0], GCSStore)
    monkeypatch.setenv("GOOGLE_SERVICE_ACCOUNT_KEY", "not json")
    with pytest.raises(st.StorageError, match="cannot configure storage for gs://bkt"):
        st.store_for("gs://bkt/x")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", "a2V5")
    assert isinstance(st.store_for("abfs://data@myacct.dfs.core.windows.net/x")[0], AzureStore)


@pytest.mark.parametrize("as_uri", [False, True])
def test_local_round_trips(tmp_path: Path, as_uri: bool) -> None:
    def u(p: Path) -> str:
        return p.as_uri() if as_uri else str(p)

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.bin").write_bytes(b"\x00\x01")
    store = tmp_path / "store"

    async def scenario() -> None:
        assert await st.put(src / "a.txt", u(store / "one" / "a.txt")) == u(store / "one" / "a.txt")
        assert await st.get_bytes(u(store / "one" / "a.txt")) == b"a"
        await st.put(src, u(store / "dir"), recursive=True)
        files = await st.list_files(u(store / "dir"))
        assert files == sorted([u(store / "dir" / "a.txt"), u(store / "dir" / "sub" / "b.bin")])
        out = tmp_path / "out"
        await st.get(u(store / "dir"), out, recursive=True)
        assert (out / "sub" / "b.bin").read_bytes() == b"\x00\x01"
        await st.get(u(store / "one" / "a.txt"), tmp_path / "single.txt")
        assert (tmp_path / "single.txt").read_text() == "a"
        await st.put_bytes(b"xyz", u(store / "bytes" / "x"))
        assert await st.exists(u(store / "bytes" / "x"))
        assert not await st.exists(u(store / "bytes" / "nope"))
        assert await st.size(u(store / "bytes" / "x")) == 3

    asyncio.run(scenario())


def test_local_missing_object_errors(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    with pytest.raises(st.StorageError, match="no object at") as info:
        st.get_bytes_sync(missing)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, OSError)
    with pytest.raises(st.StorageError, match="no object at"):
        st.get_sync(missing, tmp_path / "x")
    with pytest.raises(st.StorageError):
        st.size_sync(missing)
    with pytest.raises(FileNotFoundError):
        st.open_reader(missing)
    with pytest.raises(st.StorageError, match="recursive=True"):
        st.put_sync(tmp_path, str(tmp_path / "elsewhere"))


def test_local_reader_writer(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "file.bin"
    with st.open_writer(target.as_uri()) as w:
        for i in range(100):
            w.write(bytes([i % 256]) * 1000)
        assert not target.exists()  # only appears on close
    assert target.stat().st_size == 100_000
    with st.open_reader(str(target), chunk_size=4096) as r:
        assert r.read(10) == b"\x00" * 10
        rest = r.read()
    assert len(rest) == 100_000 - 10

    aborted = tmp_path / "aborted.bin"
    with pytest.raises(ValueError), st.open_writer(str(aborted)) as w:
        w.write(b"partial")
        raise ValueError("boom")
    assert not aborted.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_sync_twins_work_inside_a_running_loop(tmp_path: Path) -> None:
    uri = str(tmp_path / "x.txt")

    async def inside() -> bytes:
        st.put_bytes_sync(b"hi", uri)  # would deadlock if it ran on this loop
        assert st.exists_sync(uri) and st.size_sync(uri) == 2
        assert st.list_files_sync(str(tmp_path)) == [uri]
        return st.get_bytes_sync(uri)

    assert asyncio.run(inside()) == b"hi"
    assert st.get_bytes_sync(uri) == b"hi"


def test_error_mapping_messages() -> None:
    from obstore.exceptions import GenericError, PermissionDeniedError

    from flyte._storage._store import map_error

    err = map_error(GenericError("404 <Code>NoSuchBucket</Code>"), "s3://gone/k")
    assert isinstance(err, st.BucketNotFoundError) and str(err).startswith("bucket 'gone' does not exist")
    err = map_error(PermissionDeniedError("403 <Code>InvalidAccessKeyId</Code>"), "s3://b/k")
    assert isinstance(err, PermissionError)
    assert "access denied to s3://b/k (check AWS credentials)" in str(err)
    err = map_error(FileNotFoundError("x"), "gs://b/k")
    assert str(err) == "no object at gs://b/k"
    err = map_error(GenericError("connection refused\nmore"), "s3://b/k")
    assert type(err) is st.StorageError and "connection refused" in str(err) and "more" not in str(err)


def testpart_size_respects_s3_limits() -> None:
    from flyte._storage._ops import part_size

    assert part_size(0) == 5 << 20
    assert part_size(100 << 20) == 5 << 20
    big = 200 << 30  # 200 GB
    assert part_size(big) % (1 << 20) == 0 and big / part_size(big) < 10_000


def test_a_directory_is_never_copied_into_itself(tmp_path: Path) -> None:
    src = tmp_path / "d"
    src.mkdir()
    (src / "a.txt").write_text("a")
    with pytest.raises(st.StorageError, match="into itself"):
        st.put_sync(src, str(src / "inner"), recursive=True)
    assert sorted(p.name for p in src.iterdir()) == ["a.txt"]


def test_public_storage_functions_on_local_paths(tmp_path: Path) -> None:
    """flyte.storage as the reference's users call it, on this machine's files."""
    import asyncio

    import flyte.storage as fs

    assert fs.join("s3://bucket/", "a", "b.txt") == "s3://bucket/a/b.txt"
    assert fs.is_remote("s3://bucket/x") and not fs.is_remote(tmp_path)
    where = fs.get_random_local_path("report.csv")
    assert where.name == "report.csv" and where.parent.is_dir() and not where.exists()

    async def files() -> None:
        target = str(tmp_path / "out" / "blob.bin")
        assert await fs.put_stream([b"ab", b"cd"], to_path=target) == target
        assert b"".join([c async for c in fs.get_stream(target, chunk_size=1)]) == b"abcd"
        w = await fs.open(str(tmp_path / "w.bin"), "wb")
        with w:
            w.write(b"written")
        r = await fs.open(str(tmp_path / "w.bin"))
        with r:
            assert r.read() == b"written"
        copied = await fs.get(str(tmp_path / "w.bin"))
        assert Path(copied).read_bytes() == b"written" and await fs.exists(copied)
        with pytest.raises(ValueError, match="modes"):
            await fs.open(str(tmp_path / "w.bin"), "a")

    asyncio.run(files())
    assert not fs.exists_sync(str(tmp_path / "nothing"))
    with pytest.raises(TypeError, match="filesystem options"):
        fs.exists_sync(str(tmp_path), anon=True)
    assert fs.get_configured_fsspec_kwargs("s3")["retry_config"]["max_retries"] == 3
    with pytest.raises(ValueError, match="protocol"):
        fs.get_configured_fsspec_kwargs("ftp")


def test_put_stream_sizes_parts_from_the_size_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    import flyte.storage as fs
    from flyte._storage import _ops

    asked: list[int | None] = []
    real = _ops.open_writer

    def recording(uri: str, **kw: object) -> object:
        asked.append(kw.get("chunk_size"))  # type: ignore[arg-type]
        return real(uri, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(_ops, "open_writer", recording)
    hundred_gb = 100 << 30
    target = str(tmp_path / "big.bin")
    asyncio.run(fs.put_stream([b"x"], to_path=target, size_hint=hundred_gb))
    asyncio.run(fs.put_stream([b"x"], to_path=target, size_hint=hundred_gb, chunk_size=64 << 20))
    asyncio.run(fs.put_stream([b"x"], to_path=target))
    assert asked == [_ops.part_size(hundred_gb), 64 << 20, None]
    assert asked[0] * _ops.MAX_PARTS >= hundred_gb  # within the store's part count
    with pytest.raises(ValueError, match="size_hint"):
        asyncio.run(fs.put_stream([b"x"], to_path=target, size_hint=-1))
