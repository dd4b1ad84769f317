"""Tasks exchanging files, directories, data frames and offloaded values through S3 (moto on
127.0.0.1): the run's raw data path is a bucket, in both modes. On the embedded backend every
task is its own process and reaches S3 itself, with the credentials the run passes it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import test_io as wf

import flyte
from flyte import _storage as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from s3server import S3, aws_env  # noqa: E402


@pytest.fixture
def run_on_s3(s3: S3, mode: str, monkeypatch: pytest.MonkeyPatch):
    env = aws_env(s3.endpoint)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    raw = s3.uri("raw")

    def go(task, *args, **kwargs):
        r = flyte.with_runcontext(mode=mode, raw_data_path=raw, env_vars=env).run(task, *args, **kwargs)
        r.wait(quiet=True)
        r.raise_for_status()
        return r

    return go, raw


def test_files_dirs_and_frames_through_s3(run_on_s3) -> None:
    go, raw = run_on_s3
    total, names, fmt = go(wf.dir_main, 3).result
    assert total == 90 and fmt == "parquet"
    assert names == ["part0.csv", "part1.csv", "part2.csv", "notes.txt"]
    assert go(wf.frames_main, 5).result == (10, 5, 5, 5)
    r = go(wf.file_pipeline, "over s3")
    assert r.result == ("over s3", "over s3")
    stored = st.list_files_sync(f"{raw}/{r.name}")
    assert any(str(p).endswith("/note.txt") for p in stored), stored


def test_offloaded_values_and_nested_files_through_s3(run_on_s3, monkeypatch: pytest.MonkeyPatch) -> None:
    go, raw = run_on_s3
    monkeypatch.setenv("FLYTE_MAX_INLINE_BYTES", "1k")
    r = go(wf.offload_main, 5000)
    s, xs, f = r.result
    assert s == sum(range(5000)) and len(xs) == 5000
    assert f.path.startswith(f"{raw}/{r.name}/") and f.read() == "raw"
    stored = [str(p) for p in st.list_files_sync(f"{raw}/{r.name}")]
    assert any("/offloaded/" in p for p in stored), stored
    b, text = go(wf.nested_main).result
    assert text == "nestedx" and b.file.path.startswith(raw + "/")
