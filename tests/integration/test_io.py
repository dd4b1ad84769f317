"""flyte.io File / Dir / DataFrame and pandas / pyarrow frames passed between tasks, in both modes
(in "remote" mode every task is its own process on the embedded backend)."""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from pydantic import BaseModel

import flyte
import flyte.io
from flyte.io import Dir, File

env = flyte.TaskEnvironment(name="io")


def run_local(task, *args, **kwargs):
    return flyte.with_runcontext(mode="local").run(task, *args, **kwargs).wait().result


# -- File ---------------------------------------------------------------------------------


@env.task
async def write_local_file(text: str) -> File:
    import tempfile

    p = Path(tempfile.mkdtemp()) / "note.txt"
    p.write_text(text)
    return await File.from_local(str(p))


@env.task
async def read_file_async(f: File) -> str:
    local = await f.download()
    return Path(local).read_text()


@env.task
def read_file_sync(f: File) -> str:
    return f.read()


@env.task
async def file_pipeline(text: str) -> tuple[str, str]:
    f = await write_local_file(text)
    return await read_file_async(f), read_file_sync(f)


def test_file_from_local_round_trip(run):
    assert run(file_pipeline, "hello") == ("hello", "hello")


def process_data(content: str) -> str:
    return content.upper()


# seed 003 "Files and Directories", as written
@env.task
def process_file(input_file: flyte.io.File) -> flyte.io.File:
    # Read file content
    content = input_file.read()

    # Process content
    result = process_data(content)

    # Create output file
    return flyte.io.File.from_string(result, "output.txt")


@env.task
def upload_local():
    # Upload local file
    return flyte.io.File.from_local("./local_file.txt")


@env.task
def seed_file_main(text: str) -> str:
    out = process_file(File.from_string(text, "in.txt"))
    assert out.name == "output.txt"
    return out.read()


def test_seed_003_process_file(run):
    assert run(seed_file_main, "abc") == "ABC"


def test_seed_003_upload_local_in_sync_task(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "local_file.txt").write_text("local content")
    with pytest.warns(UserWarning):  # no return annotation: the File travels pickled
        f = run_local(upload_local)
    assert isinstance(f, File)
    assert f.read() == "local content"
    assert f.path.startswith("file://")


@env.task
def stream_write(lines: list[str]) -> File:
    f = File.new_remote("streamed.txt")
    with f.open("wb") as w:
        for line in lines:
            w.write(line.encode() + b"\n")
    return f


@env.task
def stream_read(f: File) -> list[str]:
    with f.open("rb") as r:
        return r.read().decode().splitlines()


@env.task
async def stream_main(lines: list[str]) -> list[str]:
    f = stream_write(lines)
    assert f.name == "streamed.txt"
    return stream_read(f)


def test_file_streaming_new_remote(run):
    assert run(stream_main, ["a", "b", "c"]) == ["a", "b", "c"]


@env.task
def local_path_file(text: str) -> File:
    import tempfile

    p = Path(tempfile.mkdtemp()) / "plain.txt"
    p.write_text(text)
    return File(path=str(p))  # a plain local path is uploaded on the way out


def test_plain_local_path_is_uploaded(run):
    f = run(local_path_file, "xyz")
    assert f.path.startswith("file://") and f.path.endswith("/plain.txt")
    assert f.hash is not None
    assert f.read() == "xyz"


# -- Dir ----------------------------------------------------------------------------------


@env.task
def make_dir(n: int) -> Dir:
    import tempfile

    root = Path(tempfile.mkdtemp()) / "data"
    (root / "sub").mkdir(parents=True)
    for i in range(n):
        pd.DataFrame({"x": [i, i + 1], "y": ["a", "b"]}).to_csv(root / f"part{i}.csv", index=False)
    (root / "sub" / "notes.txt").write_text("not a csv")
    return Dir.from_local(root)


def process_dataframe(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(z=df["x"] * 10)


# seed 003 "File Processing Pipeline", as written
@env.task
def process_dataset(input_dir: flyte.io.Dir) -> flyte.io.File:
    results = []

    # Process files in directory
    for file_path in input_dir.walk():
        if file_path.endswith(".csv"):
            data = pd.read_csv(file_path)
            processed = process_dataframe(data)
            results.append(processed)

    # Combine results
    combined = pd.concat(results)

    # Return as Flyte file
    return flyte.io.File.from_dataframe(combined, "processed_data.parquet")


@env.task
def list_dir(d: Dir) -> list[str]:
    return [f.name or "" for f in d.list_files_sync()]


@env.task
async def dir_main(n: int) -> tuple[int, list[str], str]:
    d = make_dir(n)
    out = process_dataset(d)
    df = pd.read_parquet(await out.download())
    return int(df["z"].sum()), list_dir(d), out.format


def test_dir_walk_list_files_and_seed_pipeline(run):
    total, names, fmt = run(dir_main, 3)
    # x values: (0,1), (1,2), (2,3) -> sum 9, times 10
    assert total == 90
    assert names == ["part0.csv", "part1.csv", "part2.csv", "notes.txt"]
    assert fmt == "parquet"


# -- data frames --------------------------------------------------------------------------


@env.task
async def make_frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"a": list(range(n)), "b": [str(i) for i in range(n)]})


@env.task
async def frame_sum(df: pd.DataFrame) -> int:
    assert isinstance(df, pd.DataFrame)
    return int(df["a"].sum())


@env.task
def make_table(n: int) -> pa.Table:
    return pa.table({"v": list(range(n))})


@env.task
def table_len(t: pa.Table) -> int:
    assert isinstance(t, pa.Table)
    return t.num_rows


@env.task
def as_ref(df: flyte.io.DataFrame) -> int:
    return len(df.open(pd.DataFrame).all_sync())


@env.task
def make_ref(n: int) -> flyte.io.DataFrame:
    return flyte.io.DataFrame.from_df(pd.DataFrame({"q": range(n)}))


@env.task
async def frames_main(n: int) -> tuple[int, int, int, int]:
    df = await make_frame(n)
    t = make_table(n)
    ref = make_ref(n)
    # a pandas frame read where a reference is declared, and a reference read as a pyarrow table
    return await frame_sum(df), table_len(t), as_ref(ref), table_len(ref.to_arrow())


@env.task
def make_polars(n: int) -> pl.DataFrame:
    return pl.DataFrame({"a": list(range(n)), "b": [str(i) for i in range(n)]})


@env.task
def polars_sum(df: pl.DataFrame) -> int:
    assert isinstance(df, pl.DataFrame)
    return int(df["a"].sum())


@env.task
async def polars_main(n: int) -> tuple[int, int, int]:
    df = make_polars(n)
    # a polars frame as a reference, read back as polars and as pandas
    ref = flyte.io.DataFrame.from_df(df)
    return polars_sum(df), len(await ref.open(pl.DataFrame).all()), await frame_sum(ref.to_pandas())


def test_polars_frames_between_tasks(run):
    assert run(polars_main, 4) == (6, 4, 6)


def test_frames_between_tasks(run):
    assert run(frames_main, 5) == (10, 5, 5, 5)


# -- offloaded types inside dataclasses and pydantic models -------------------------------


@dataclass
class Bundle:
    label: str
    file: File
    folder: Dir


class Report(BaseModel):
    title: str
    attachment: File | None = None


@env.task
def make_bundle() -> Bundle:
    import tempfile

    root = Path(tempfile.mkdtemp()) / "bundle"
    root.mkdir()
    (root / "one.txt").write_text("1")
    return Bundle(label="b", file=File.from_string("payload", "p.txt"), folder=Dir.from_local_sync(root))


@env.task
def read_bundle(b: Bundle) -> Report:
    files = [Path(p).read_text() for p in b.folder.walk()]
    return Report(title=b.label + b.file.read() + "".join(files), attachment=b.file)


@env.task
def bundle_main() -> str:
    r = read_bundle(make_bundle())
    assert r.attachment is not None
    return r.title + ":" + r.attachment.read()


def test_file_and_dir_as_fields(run):
    assert run(bundle_main) == "bpayload1:payload"


# -- seed 000 Example 1, minus sklearn and the network --------------------------------------


class MeanModel:
    """A trivial "model": predicts the majority class and scores its accuracy."""

    def fit(self, X: pd.DataFrame, y: pd.Series) -> None:
        self.label = y.mode()[0]

    def score(self, X: pd.DataFrame, y: pd.Series) -> float:
        return float((y == self.label).mean())


@env.task
async def load_data() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sepal_length": [5.1, 4.9, 6.3, 5.8],
            "petal_length": [1.4, 1.4, 4.9, 5.1],
            "species": ["setosa", "setosa", "setosa", "virginica"],
        }
    )


@env.task
async def train_model(data: pd.DataFrame) -> File:
    model = MeanModel()
    X = data.drop("species", axis=1)
    y = data["species"]
    model.fit(X, y)

    root_dir = os.getcwd()
    model_path = os.path.join(root_dir, "model.pkl")
    with open(model_path, "wb") as f:
        pickle.dump(model, f)
    return await File.from_local(model_path)


@env.task
async def evaluate(model_file: File, data: pd.DataFrame) -> float:
    local_path = await model_file.download()
    with open(local_path, "rb") as f:
        model = pickle.load(f)

    X = data.drop("species", axis=1)
    y = data["species"]
    return float(model.score(X, y))


@env.task
async def ml_pipeline() -> float:
    data = await load_data()
    model = await train_model(data)
    score = await evaluate(model, data)
    return score


def test_seed_000_ml_pipeline(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(ml_pipeline) == 0.75


# -- local paths nested in values, raw data path, offloading ------------------------------


@env.task
def nested_local_paths() -> Bundle:
    import tempfile

    root = Path(tempfile.mkdtemp())
    (root / "f.txt").write_text("nested")
    (root / "d").mkdir()
    (root / "d" / "x.txt").write_text("x")
    # Plain local paths inside a dataclass: stored on the way out, like top-level ones.
    return Bundle(label="n", file=File(path=str(root / "f.txt")), folder=Dir(path=str(root / "d")))


@env.task
def read_nested(b: Bundle) -> str:
    return b.file.read() + "".join(Path(p).read_text() for p in b.folder.walk())


@env.task
async def nested_main() -> tuple[Bundle, str]:
    b = nested_local_paths()
    return b, read_nested(b)


def test_local_paths_nested_in_a_dataclass_are_stored(run):
    b, text = run(nested_main)
    assert text == "nestedx"
    assert b.file.path.startswith("file://") and b.file.hash is not None
    assert b.folder.path.startswith("file://") and b.folder.hash is not None
    assert b.file.read() == "nested"


@env.task
def big_list(n: int) -> list[float]:
    return [float(i) for i in range(n)]


@env.task
def total(xs: list[float]) -> float:
    return sum(xs)


@env.task
async def offload_main(n: int) -> tuple[float, list[float], File]:
    xs = big_list(n)
    return total(xs), xs, File.from_string("raw", "r.txt")


def test_raw_data_path_and_offloaded_values(mode, tmp_path, monkeypatch):
    # 1 KiB inline limit: a list of 5,000 floats (~45 KB) travels as a reference. The limit
    # set here reaches the backend's action processes through the run (see _FORWARDED_ENV).
    monkeypatch.setenv("FLYTE_MAX_INLINE_BYTES", "1k")
    raw = tmp_path / "raw"
    r = flyte.with_runcontext(mode=mode, raw_data_path=str(raw)).run(offload_main, 5000).wait()
    s, xs, f = r.result
    assert s == sum(range(5000)) and xs == [float(i) for i in range(5000)]
    base = (raw / r.name).as_uri()
    assert f.path.startswith(base + "/") and f.read() == "raw"
    offloaded = sorted(p.name for p in (raw / r.name).rglob("offloaded/*.pb"))
    # the child's output and the parent's (the same list, so the same content-named file) + its input
    assert offloaded and all(len(name) == len("0" * 64 + ".pb") for name in offloaded)


def test_bad_raw_data_path_is_refused():
    with pytest.raises(ValueError, match="unsupported scheme"):
        flyte.with_runcontext(raw_data_path="ftp://host/x")
    with pytest.raises(ValueError, match="no bucket"):
        flyte.with_runcontext(raw_data_path="s3://")
