"""Behaviour a user of the reference SDK (flyte 2.12.1) sees, in both modes: error classes,
failures returned by ``flyte.map``, the async and sync forms of File/Dir/DataFrame I/O, the
``.aio`` forms of report functions, and syncified functions. Written from the reference's
documented and observed behaviour."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pandas as pd
import pytest
from counters import bump, count

import flyte
import flyte.durable
import flyte.errors
import flyte.report
from flyte.io import DataFrame, Dir, File, HashFunction
from flyte.syncify import syncify

env = flyte.TaskEnvironment(name="parity")


# -- errors ---------------------------------------------------------------------------------


@env.task(retries=3)
def gives_up(key: str) -> int:
    bump(key)
    raise flyte.errors.NonRecoverableError(f"{key}: bad input, retrying cannot help")


def test_non_recoverable_error_is_not_retried(run) -> None:
    with pytest.raises(flyte.errors.RuntimeUserError, match="retrying cannot help") as caught:
        run(gives_up, key="nr")
    assert caught.value.code == "NonRecoverableError"
    assert count("nr") == 1


@env.task(timeout=1)
async def sleeps(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "woke"


@env.task
async def catches_timeout(seconds: float) -> str:
    try:
        return await sleeps(seconds)
    except flyte.errors.TaskTimeoutError as e:
        # The reference names the bound that fired; a plain timeout bounds one attempt's runtime.
        return type(e).__name__ if isinstance(e, flyte.errors.MaxRuntimeExceededError) else "other"


def test_a_timed_out_child_raises_max_runtime_exceeded(run) -> None:
    assert run(catches_timeout, seconds=30.0) == "MaxRuntimeExceededError"


@env.task
def fails_on_odd(x: int) -> int:
    if x % 2:
        raise ValueError(f"odd {x}")
    return x


@env.task
def mapped(n: int) -> list[str]:
    # The reference's default: a failed item comes back as its exception, in order.
    return [
        type(r).__name__ if isinstance(r, Exception) else str(r) for r in flyte.map(fails_on_odd, range(n))
    ]


@env.task
def sums_with_failures(n: int) -> int:
    return sum(flyte.map(fails_on_odd, range(n)))


def test_map_returns_failures_by_default_and_arithmetic_on_one_raises_it(run) -> None:
    assert run(mapped, n=4) == ["0", "ValueError", "2", "ValueError"]
    with pytest.raises(ValueError, match="odd 1"):
        run(sums_with_failures, n=3)


def test_errors_keep_the_reference_constructors() -> None:
    err = flyte.errors.RuntimeUserError("BadThing", "it broke", "worker-1")
    assert (err.code, err.kind, err.worker, str(err)) == ("BadThing", "user", "worker-1", "it broke")
    assert flyte.errors.InitializationError("NoConfig", "user", "call flyte.init").kind == "user"
    assert flyte.errors.DeadlineExceededError("late").code == "DeadlineExceededError"
    assert isinstance(flyte.errors.MaxQueuedTimeExceededError("q"), flyte.errors.TaskTimeoutError)
    assert flyte.errors.RuntimeDataValidationError("x", ValueError("bad"), "t").var == "x"
    fault = flyte.errors.GPUFaultSystemError("GpuXidError", "xid 79", fault_kind="xid", fault_code=79)
    assert (fault.xid, fault.sxid, fault.kind) == (79, None, "system")
    assert isinstance(flyte.errors.ResourceExhaustedError("quota"), flyte.errors.SlowDownError)


# -- File / Dir / DataFrame -----------------------------------------------------------------


@env.task
async def writes_async() -> File:
    f = File.new_remote("greeting.txt")
    async with f.open("wb") as fh:
        await fh.write(b"hello ")
        await fh.write(b"world")
    return f


@env.task
async def reads_async(f: File) -> str:
    assert await f.exists()
    async with f.open("rb") as fh:
        head = bytes(await fh.read())
    local = await f.download()
    return head.decode() + "|" + Path(local).read_text()


@env.task
def reads_sync(f: File) -> str:
    assert f.exists_sync()
    with f.open_sync("rb") as fh:
        return fh.read().decode() + "|" + Path(f.download_sync()).read_text()


@env.task
def uploads_without_await() -> File:
    # Seed 003 writes this in a sync task; the reference's from_local is a coroutine function,
    # whose result the task hands back and the SDK finishes.
    path = Path(tempfile.mkdtemp()) / "local.txt"
    path.write_text("from a sync task")
    return File.from_local(str(path))


@env.task
async def file_pipeline() -> list[str]:
    written = await writes_async()
    uploaded = uploads_without_await()
    return [await reads_async(written), reads_sync(written), uploaded.read()]


def test_file_io_in_async_and_sync_forms(run) -> None:
    assert run(file_pipeline) == ["hello world|hello world", "hello world|hello world", "from a sync task"]


@env.task
def hashed_by_function() -> File:
    f = File.new_remote("h.txt", hash_method=HashFunction.from_fn(lambda data: f"len-{len(data)}"))
    with f.open_sync("wb") as fh:
        fh.write(b"12345")
    return f


@env.task
def identity(f: File) -> str:
    return f.hash or ""


@env.task
def hash_main() -> str:
    return identity(hashed_by_function())


def test_hash_method_names_what_was_written(run) -> None:
    assert run(hash_main) == "len-5"


@env.task
async def make_tree() -> Dir:
    root = Path(tempfile.mkdtemp()) / "tree"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.csv").write_text("a")
    (root / "sub" / "b.csv").write_text("b")
    (root / "sub" / "deeper" / "c.txt").write_text("c")
    return await Dir.from_local(str(root))


@env.task
async def walks_async(d: Dir) -> list[str]:
    names = [f.name async for f in d.walk()]
    shallow = [f.name async for f in d.walk(max_depth=1)]
    csvs = [f.name for f in d.walk_sync(file_pattern="*.csv")]
    found = await d.get_file("sub/b.csv")
    missing = await d.get_file("nope.txt")
    listed = [f.name for f in await d.list_files()]
    return [
        ",".join(names),
        ",".join(shallow),
        ",".join(csvs),
        found.read() if found else "",
        str(missing),
        ",".join(listed),
    ]


@env.task
def walks_sync(d: Dir) -> list[str]:
    return sorted(Path(p).read_text() for p in d.walk())


@env.task
async def dir_pipeline() -> list[str]:
    d = await make_tree()
    return [*await walks_async(d), ",".join(walks_sync(d))]


def test_dir_walk_in_async_and_sync_forms(run) -> None:
    assert run(dir_pipeline) == [
        "a.csv,b.csv,c.txt",
        "a.csv,b.csv",
        "a.csv,b.csv",
        "b",
        "None",
        "a.csv,b.csv,c.txt",
        "a,b,c",
    ]


@env.task
def maybe_dir(make: bool) -> Dir:
    if make:
        root = Path(tempfile.mkdtemp()) / "made"
        root.mkdir()
        (root / "x.txt").write_text("x")
        return Dir.from_local_sync(str(root))
    return Dir.empty()


@env.task
def describe_dir(d: Dir) -> str:
    return "empty" if d.is_empty else ",".join(f.name or "" for f in d.list_files_sync())


@env.task
def empty_dir_main() -> list[str]:
    return [describe_dir(maybe_dir(True)), describe_dir(maybe_dir(False))]


def test_an_empty_dir_crosses_task_boundaries(run) -> None:
    assert run(empty_dir_main) == ["x.txt", "empty"]


@env.task
def wraps_frame(n: int) -> DataFrame:
    return DataFrame.wrap_df(pd.DataFrame({"v": list(range(n))}))


@env.task
async def reads_frame(df: DataFrame) -> list[int]:
    whole = await df.open(pd.DataFrame).all()
    parts = [len(part) async for part in await df.open(pd.DataFrame).iter()]
    return [int(whole["v"].sum()), sum(parts), len(df.open(pd.DataFrame).all_sync())]


@env.task
async def frame_main(n: int) -> list[int]:
    stored = await DataFrame.from_local(pd.DataFrame({"v": [1, 2], "w": [3, 4]}), columns=["v"])
    assert list(stored.open(pd.DataFrame).all_sync().columns) == ["v"]
    return await reads_frame(wraps_frame(n))


def test_dataframe_wrapping_and_typed_reads(run) -> None:
    assert run(frame_main, n=5) == [10, 5, 5]


# -- reports and syncified functions --------------------------------------------------------


@env.task(report=True)
async def reports(n: int) -> int:
    await flyte.report.log.aio("<p>async</p>")
    flyte.report.log("<p>sync</p>")
    timeline = flyte.report.Timeline()
    timeline.heading("steps")
    timeline.row(
        label="step 1", meta=flyte.report.duration_ms("2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z")
    )
    await flyte.report.flush.aio()
    return n


def test_report_functions_have_sync_and_async_forms(run) -> None:
    assert run(reports, n=3) == 3


@syncify
async def doubled(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


@env.task
async def uses_syncified(x: int) -> list[int]:
    return [await doubled.aio(x), doubled(x + 1)]


def test_syncified_functions_work_in_tasks(run) -> None:
    assert run(uses_syncified, x=2) == [4, 6]


def test_report_widgets_format_values() -> None:
    assert flyte.report.abbreviate("<b>", 10) == "&lt;b&gt;"
    long = flyte.report.abbreviate("x" * 50, 10)
    assert long.startswith("<details>") and "40 more" in long
    assert flyte.report.duration_ms("2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00.250+00:00") == "250 ms"
    assert flyte.report.duration_ms(None, "x") == "" and flyte.report.duration_ms("bad", "worse") == ""


# -- traced generators ----------------------------------------------------------------------


@flyte.trace
def countdown(n: int) -> Iterator[int]:
    yield from range(n, 0, -1)


@flyte.trace
async def squares(n: int) -> AsyncIterator[int]:
    for i in range(n):
        await asyncio.sleep(0)
        yield i * i


@flyte.trace
def fails_midway(n: int) -> Iterator[int]:
    yield n
    raise ValueError("generator broke")


@env.task
async def uses_traced_generators(n: int) -> list[int]:
    got = list(countdown(n)) + [x async for x in squares(n)]
    try:
        list(fails_midway(n))
    except ValueError:
        got.append(-1)
    return got


def test_traced_generators_pass_their_items_through(run, mode: str) -> None:
    env_vars = {"FLYTE_TEST_COUNTERS": os.environ["FLYTE_TEST_COUNTERS"]}
    r = flyte.with_runcontext(mode=mode, env_vars=env_vars).run(uses_traced_generators, n=3).wait()
    assert r.result == [3, 2, 1, 0, 1, 4, -1]
    traces = sorted(
        (a["task_name"].rsplit(".", 1)[-1], a["phase"]) for a in r.actions() if a["kind"] == "trace"
    )
    assert traces == [("countdown", "SUCCEEDED"), ("fails_midway", "FAILED"), ("squares", "SUCCEEDED")]


# -- durable time -------------------------------------------------------------------------


@env.task
def naps_sync(seconds: float) -> float:
    started = flyte.durable.time()
    flyte.durable.sleep(seconds)
    return flyte.durable.time() - started


@env.task
async def naps_async(seconds: float) -> list[float]:
    start = await flyte.durable.now.aio()
    await flyte.durable.sleep.aio(seconds)
    slept = (await flyte.durable.now.aio() - start).total_seconds()
    return [slept, naps_sync(seconds)]


def test_durable_sleep_and_clock_are_recorded(run, mode: str) -> None:
    env_vars = {"FLYTE_TEST_COUNTERS": os.environ["FLYTE_TEST_COUNTERS"]}
    r = flyte.with_runcontext(mode=mode, env_vars=env_vars).run(naps_async, seconds=0.3).wait()
    assert all(slept >= 0.3 for slept in r.result)
    traced = {a["task_name"].rsplit(".", 1)[-1] for a in r.actions() if a["kind"] == "trace"}
    assert {"durable_deadline", "durable_deadline_async", "durable_clock", "durable_clock_async"} <= traced


def test_durable_time_outside_a_task_is_the_clock() -> None:
    import time

    assert abs(flyte.durable.time() - time.time()) < 5
    assert flyte.durable.now().tzinfo is not None
    with pytest.raises(ValueError, match="non-negative"):
        flyte.durable.sleep(-1)


# -- the run object -------------------------------------------------------------------------


@env.task
def pair(x: int, label: str = "x") -> tuple[int, str]:
    return x * 2, f"{label}={x}"


def test_run_object_in_both_modes(mode: str) -> None:
    """flyte.run returns a flyte.remote.Run in every mode: wait() gives it back without raising,
    outputs() is a tuple readable by name, inputs() a dict."""
    import flyte.remote as remote
    from flyte.models import ActionPhase

    r = flyte.with_runcontext(mode=mode).run(pair, 4)
    assert isinstance(r, remote.Run)
    assert r.wait(quiet=True) is r and r.done() and r.phase == ActionPhase.SUCCEEDED
    outs = r.outputs()
    assert isinstance(outs, remote.ActionOutputs) and isinstance(outs, tuple)
    assert outs == (8, "x=4") and outs.named_outputs == {"o0": 8, "o1": "x=4"} and outs.o0 == 8
    assert r.inputs() == {"x": 4, "label": "x"}
    assert r.result == (8, "x=4") and r.task_name == "parity.pair"
    r.raise_for_status()
    assert r.first_failure() is None

    async def in_async() -> None:
        again = await flyte.with_runcontext(mode=mode).run.aio(pair, 1, label="y")
        await again.wait.aio(quiet=True)
        assert (await again.outputs.aio()).named_outputs["o1"] == "y=1"

    asyncio.run(in_async())


def test_a_local_run_has_no_backend_record() -> None:
    r = flyte.with_runcontext(mode="local").run(pair, 2)
    for read in (r.details, r.get_report, r.output_literals):
        with pytest.raises(flyte.errors.RuntimeUserError, match="ran in local mode"):
            read()
    assert r.input_literals()["x"].scalar.primitive.integer == 2
    assert r.abort() is None and r.code_bundle() is None


# -- checkpoints ----------------------------------------------------------------------------


@env.task(retries=2)
def resumes_from_checkpoints(tag: str) -> str:
    c = flyte.ctx()
    assert c is not None and c.checkpoint is not None
    cp = c.checkpoint
    restored = cp.load_sync()
    if c.attempt_number == 1:
        assert restored is None and not cp.prev_exists()
        cp.save_sync(b"step-5")
        raise RuntimeError(f"{tag}: the machine went away")
    if c.attempt_number == 2:
        assert restored is not None and restored.read_bytes() == b"step-5"
        (cp.path / "epoch-1").mkdir()
        (cp.path / "epoch-1" / "last.ckpt").write_text("weights")
        (cp.path / "notes.txt").write_text("two epochs")
        cp.save_sync(cp.path)  # a directory: saved as one archive
        raise RuntimeError(f"{tag}: and again")
    assert restored == cp.path
    latest = flyte.latest_checkpoint(restored)
    assert latest is not None
    return f"{c.attempt_number}:{latest.parent.name}/{latest.name}:{(restored / 'notes.txt').read_text()}"


@env.task(retries=1)
async def resumes_async(tag: str) -> str:
    c = flyte.ctx()
    assert c is not None and c.checkpoint is not None
    restored = await c.checkpoint.load()
    if restored is None:
        await c.checkpoint.save(b"half-way")
        raise RuntimeError(f"{tag}: crash")
    return restored.read_text()


def test_a_retried_attempt_resumes_from_the_checkpoint_of_the_one_before(run, mode: str) -> None:
    assert run(resumes_from_checkpoints, "t") == "3:epoch-1/last.ckpt:two epochs"
    assert run(resumes_async, "t") == "half-way"
    with pytest.raises(TypeError, match="bytes, a file or a directory"):
        flyte.Checkpoint(str(Path(tempfile.mkdtemp()) / "cp")).save_sync(42)  # type: ignore[arg-type]


# -- the task context -------------------------------------------------------------------------


@env.task(report=True)
def describes_itself() -> dict[str, str]:
    c = flyte.ctx()
    assert c is not None
    c.report.get_tab("main").log("<p>hello</p>")
    assert c.replace(group="elsewhere").group == "elsewhere" and c.group_data is None
    return {
        "run_base_dir": c.run_base_dir,
        "output_path": c.output_path or "",
        "input_path": c.input_path or "",
        "version": c.version or "",
        "interactive": str(c.interactive_mode),
        "report": type(c.report).__name__,
    }


def test_the_task_context_tells_where_the_action_reads_and_writes(run, mode: str) -> None:
    seen = run(describes_itself)
    assert seen["report"] == "Report" and seen["interactive"] == "False"
    assert seen["output_path"].startswith(seen["run_base_dir"].rstrip("/"))
    if mode == "remote":
        # A backend's action reads its inputs from storage and runs a versioned code bundle.
        assert seen["input_path"].endswith("inputs.pb") and seen["version"]
    else:
        assert seen["input_path"] == "" and seen["version"] == ""


@env.task
async def start_times() -> tuple[str, str]:
    ctx = flyte.ctx()
    assert ctx is not None and ctx.run_start_time is not None
    child = await child_start_time()
    return ctx.run_start_time.isoformat(), child


@env.task
async def child_start_time() -> str:
    ctx = flyte.ctx()
    assert ctx is not None and ctx.run_start_time is not None
    return ctx.run_start_time.isoformat()


def test_tasks_know_when_their_run_started(mode: str) -> None:
    import datetime as dt

    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    parent, child = flyte.with_runcontext(mode=mode).run(start_times).wait().outputs()
    after = dt.datetime.now(dt.timezone.utc)
    started = dt.datetime.fromisoformat(parent)
    assert started.tzinfo is not None and before <= started <= after
    assert child == parent  # every action of a run sees the run's start
    if mode == "remote":
        # A backfill says when its run counts as started; the tasks see that time.
        backfill = dt.datetime(2021, 3, 4, 5, 6, 7, 250000, tzinfo=dt.timezone.utc)
        run = flyte.with_runcontext(mode=mode, run_start_time=backfill).run(start_times).wait()
        assert run.outputs() == (backfill.isoformat(), backfill.isoformat())
