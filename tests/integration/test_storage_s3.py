"""flyte._storage against a real S3 API: moto's server mode on 127.0.0.1, started by the tests."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flyte import _storage as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from s3server import S3, aws_env, moto_server  # noqa: E402


@pytest.fixture(autouse=True)
def _reapply_aws_env(s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    # The root conftest's per-test monkeypatching must not hide the session's AWS settings.
    for name, value in aws_env(s3.endpoint).items():
        monkeypatch.setenv(name, value)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def test_file_and_bytes_round_trip(s3: S3, tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("hello s3")
    uri = s3.uri("a", "in.txt")

    async def scenario() -> None:
        assert await st.put(src, uri) == uri
        assert await st.exists(uri)
        assert await st.size(uri) == 8
        assert await st.get_bytes(uri) == b"hello s3"
        await st.get(uri, tmp_path / "out.txt")
        assert (tmp_path / "out.txt").read_text() == "hello s3"
        other = uri.rsplit("/", 1)[0] + "/x.bin"
        await st.put_bytes(b"\x00" * 10, other)
        assert await st.get_bytes(other) == b"\x00" * 10

    asyncio.run(scenario())
    assert st.get_bytes_sync(uri) == b"hello s3"
    assert st.exists_sync(uri) and st.size_sync(uri) == 8


def test_directory_of_1000_files_both_ways(s3: S3, tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i in range(1000):
        d = src / f"d{i % 10}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:04d}.txt").write_text(f"file {i}")
    uri = s3.uri("dir")
    st.put_sync(src, uri, recursive=True)

    listed = st.list_files_sync(uri)
    assert len(listed) == 1000 and listed == sorted(listed)
    assert listed[0] == st.join(uri, "d0", "f0000.txt")
    assert st.exists_sync(uri)  # a prefix with objects counts as existing

    out = tmp_path / "out"
    st.get_sync(uri, out, recursive=True)
    got = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    want = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    assert got == want
    assert (out / "d7" / "f0577.txt").read_text() == "file 577"


def test_reader_and_writer_stream(s3: S3) -> None:
    uri = s3.uri("stream.bin")
    block = os.urandom(1 << 20)
    with st.open_writer(uri) as w:
        for _ in range(12):  # 12 MB: more than one multipart part
            w.write(block)
        assert not st.exists_sync(uri)  # nothing visible before commit
    assert st.size_sync(uri) == 12 << 20
    with st.open_reader(uri, chunk_size=1 << 20) as r:
        assert r.read(5) == block[:5]
        assert r.read(len(block) - 5) == block[5:]
        rest = r.read()
    assert len(rest) == 11 << 20 and rest[: len(block)] == block

    aborted = s3.uri("aborted.bin")
    with pytest.raises(RuntimeError), st.open_writer(aborted) as w:
        w.write(block * 9)
        raise RuntimeError("boom")
    assert not st.exists_sync(aborted)


def test_large_file_streams_without_loading_into_memory(s3: S3, tmp_path: Path) -> None:
    size = 120 << 20
    big = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    with open(big, "wb") as f:
        for i in range(size >> 20):
            f.write(i.to_bytes(8, "little") + block[8:])
    uri = s3.uri("big.bin")
    script = textwrap.dedent(
        f"""
        import resource, sys
        from flyte import _storage as st

        def status_kb(field):
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])

        warm = {s3.uri("warm")!r}
        st.put_bytes_sync(b"x" * 1024, warm)
        assert st.get_bytes_sync(warm) == b"x" * 1024
        try:  # Linux: reset the peak-RSS mark so import-time peaks cannot hide growth
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            before = status_kb("VmRSS")
            peak = lambda: status_kb("VmHWM")
        except OSError:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        st.put_sync({str(big)!r}, {uri!r})
        assert st.size_sync({uri!r}) == {size}
        st.get_sync({uri!r}, {str(tmp_path / "back.bin")!r})
        with st.open_reader({uri!r}, chunk_size=4 << 20) as r:
            total = 0
            while chunk := r.read(1 << 20):
                total += len(chunk)
        assert total == {size}, total
        print((peak() - before) // 1024)
        """
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(st.__file__).parents[2]), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    growth_mb = int(proc.stdout.strip().splitlines()[-1])
    print(f"peak RSS growth: {growth_mb} MB")
    assert growth_mb < 60, f"peak RSS grew by {growth_mb} MB while moving a {size >> 20} MB file"
    assert _sha256(tmp_path / "back.bin") == _sha256(big)


def test_missing_bucket_is_named(s3: S3, tmp_path: Path) -> None:
    uri = "s3://no-such-bucket-here/k.txt"
    for call in (
        lambda: st.get_bytes_sync(uri),
        lambda: st.put_bytes_sync(b"x", uri),
        lambda: st.size_sync(uri),
        lambda: st.list_files_sync("s3://no-such-bucket-here/prefix"),
        lambda: st.open_reader(uri),
    ):
        with pytest.raises(st.StorageError, match="bucket 'no-such-bucket-here' does not exist"):
            call()
    (tmp_path / "f").write_text("x")
    with pytest.raises(st.BucketNotFoundError):
        st.put_sync(tmp_path, "s3://no-such-bucket-here/dir", recursive=True)


def test_missing_object(s3: S3, tmp_path: Path) -> None:
    uri = s3.uri("missing.txt")
    with pytest.raises(st.StorageError, match=f"no object at {uri}") as info:
        st.get_bytes_sync(uri)
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(FileNotFoundError, match="no object at"):
        st.get_sync(uri, tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="no object at"):
        st.size_sync(uri)
    with pytest.raises(FileNotFoundError, match="no object at"):
        st.open_reader(uri)
    assert not st.exists_sync(uri)
    assert st.list_files_sync(s3.uri("empty")) == []
    with pytest.raises(FileNotFoundError, match="no objects under"):
        st.get_sync(s3.uri("empty"), tmp_path / "y", recursive=True)
    assert not (tmp_path / "x").exists()


def test_bad_credentials_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # moto checks credentials only when IAM auth is on: INITIAL_NO_AUTH_ACTION_COUNT=1 lets the
    # bucket creation through unauthenticated, then every request must carry a known access key.
    with moto_server(auth_after=1) as server:
        server.create_bucket("auth-bucket")
        for name, value in aws_env(server.endpoint, key="AKIAWRONGKEY", secret="wrong").items():
            monkeypatch.setenv(name, value)
        uri = "s3://auth-bucket/k.txt"
        with pytest.raises(
            st.StorageError, match=r"access denied to s3://auth-bucket/k.txt \(check AWS credentials\)"
        ) as info:
            st.put_bytes_sync(b"x", uri)
        assert isinstance(info.value, PermissionError)
        with pytest.raises(PermissionError, match="access denied"):
            st.get_bytes_sync(uri)


def test_init_storage_settings_reach_the_store(
    s3: S3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """flyte.init(storage=S3(...)) alone (no AWS_* variables) is enough to reach the store;
    enable_debug logs storage calls; objects written inside a task name their run and action."""
    import logging

    import flyte
    import flyte.storage

    for name in list(aws_env(s3.endpoint)):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    settings = flyte.storage.S3(
        endpoint=s3.endpoint,
        access_key_id="testing",
        secret_access_key="testing",
        region="us-east-1",
        addressing_style="path",
        enable_debug=True,
        retries=1,
    )
    flyte.init(storage=settings)
    src = tmp_path / "data.txt"
    src.write_text("configured")
    uri = s3.uri("settings", "data.txt")
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Keep()
    logging.getLogger("flyte").addHandler(handler)
    try:
        assert asyncio.run(flyte.storage.put(src, uri)) == uri
        assert flyte.storage.exists_sync(uri)
        assert open(asyncio.run(flyte.storage.get(uri))).read() == "configured"
    finally:
        logging.getLogger("flyte").removeHandler(handler)
    assert any(m.startswith("put ") and uri in m for m in records), records

    env = flyte.TaskEnvironment(name="storage_meta")

    @env.task
    async def writes(where: str) -> str:
        return await flyte.storage.put_stream([b"from ", b"a task"], to_path=where)

    written = s3.uri("settings", "from-task.bin")
    run = flyte.with_runcontext(mode="local").run(writes, written)
    assert run.result == written
    from obstore import head

    from flyte._storage._store import store_for

    store, key = store_for(written)
    import obstore

    got = obstore.get(store, key)
    assert bytes(got.bytes()) == b"from a task"
    assert got.attributes.get("flyte-run") == run.name and got.attributes.get("flyte-action") == "a0"
    assert head(store, key)["size"] == 11

    # Turned off, the object carries nothing.
    flyte.init(
        storage=flyte.storage.S3(
            endpoint=s3.endpoint,
            access_key_id="testing",
            secret_access_key="testing",
            attach_execution_metadata=False,
        )
    )
    other = s3.uri("settings", "plain.bin")
    flyte.with_runcontext(mode="local").run(writes, other)
    store, key = store_for(other)
    assert "flyte-run" not in obstore.get(store, key).attributes
    with pytest.raises(TypeError, match="flyte.storage"):
        flyte.init(storage={"endpoint": s3.endpoint})
    with pytest.raises(TypeError, match="filesystem options"):
        flyte.storage.exists_sync(uri, anon=True)
    with pytest.raises(ValueError, match="addressing_style"):
        flyte.storage.S3(addressing_style="sideways")
    flyte.init()
