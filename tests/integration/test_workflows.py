"""Workflows in both modes (the `mode` fixture): calls, parallelism, errors, retries,
timeouts, groups, traces. In "remote" mode every task runs in its own process on the
embedded backend."""

from __future__ import annotations

import asyncio
import functools
import os
import random
import time
from dataclasses import dataclass
from datetime import timedelta

import pytest
from counters import bump, count, stamp, stamps

import flyte
import flyte.errors

env = flyte.TaskEnvironment(name="wf")


@pytest.fixture
def run(mode: str):
    """Runs a task in the test's mode and waits for it (raising its error)."""

    def go(task, *args, **kwargs):
        # The counters' location travels as the run's environment, as a user's settings would.
        env_vars = {"FLYTE_TEST_COUNTERS": os.environ["FLYTE_TEST_COUNTERS"]}
        r = flyte.with_runcontext(mode=mode, env_vars=env_vars).run(task, *args, **kwargs)
        r.wait(quiet=True)
        r.raise_for_status()
        return r

    return go


# -- sync and async composition ------------------------------------------------------------


@env.task
def inc(x: int) -> int:
    return x + 1


@env.task
def double(x: int) -> int:
    return x * 2


@env.task
def sync_main(x: int) -> str:
    return f"Result: {double(inc(x))}"


@env.task
async def ainc(x: int) -> int:
    return x + 1


@env.task
async def async_main(xs: list[int]) -> list[int]:
    firsts = await asyncio.gather(*[ainc(x) for x in xs])
    seconds = await asyncio.gather(*[double.aio(x) for x in firsts])
    return list(seconds)


def test_sync_tasks_call_sync_tasks(run, mode: str) -> None:
    r = run(sync_main, x=3)
    assert r.result == "Result: 8"
    assert r.outputs()[0] == "Result: 8"
    assert r.phase == flyte.models.ActionPhase.SUCCEEDED
    assert r.name.startswith("r") and len(r.name) == 20
    assert r.url.startswith("file://" if mode == "local" else "http://127.0.0.1:")


def test_async_gather_and_aio(run) -> None:
    assert run(async_main, xs=[1, 2, 3]).result == [4, 6, 8]


def test_task_outside_a_run_is_the_plain_function() -> None:
    assert inc(1) == 2
    assert sync_main(3) == "Result: 8"
    assert asyncio.run(ainc(1)) == 2
    assert asyncio.run(double.aio(4)) == 8


@env.task
async def awaits_sync(x: int) -> int:
    return await inc(x)  # type: ignore[misc]


def test_awaiting_a_sync_task_names_aio(run) -> None:
    with pytest.raises(TypeError, match=r"\.aio\(") as info:
        run(awaits_sync, x=1)
    assert "wf.inc" in str(info.value)


@env.task
async def calls_sync_directly(x: int) -> int:
    return inc(x) + 1


@env.task
def sync_calls_async(x: int) -> int:
    return ainc(x) * 10  # type: ignore[operator]


def test_sync_task_called_from_async_code_and_async_task_from_sync_code(run) -> None:
    assert run(calls_sync_directly, x=1).result == 3
    assert run(sync_calls_async, x=1).result == 20


@env.task
async def completes_in_any_order(n: int) -> list[int]:
    out = []
    for fut in asyncio.as_completed([slow_echo(i) for i in range(n)]):
        out.append(await fut)
    return sorted(out)


@env.task
async def slow_echo(i: int) -> int:
    await asyncio.sleep(random.random() / 100)
    return i


@env.task
async def bounded(n: int, limit: int) -> int:
    sem = asyncio.Semaphore(limit)
    active = 0
    peak = 0

    async def one(i: int) -> int:
        nonlocal active, peak
        async with sem:
            active += 1
            peak = max(peak, active)
            try:
                return await slow_echo(i)
            finally:
                active -= 1

    await asyncio.gather(*[one(i) for i in range(n)])
    return peak


def test_as_completed_and_semaphore(run) -> None:
    assert run(completes_in_any_order, n=20).result == list(range(20))
    assert run(bounded, n=30, limit=3).result <= 3


def test_run_inside_a_running_event_loop(run) -> None:
    async def notebook_cell() -> int:
        return run(inc, x=41).result

    assert asyncio.run(notebook_cell()) == 42


# -- flyte.map ------------------------------------------------------------------------------


@env.task
def scale(x: int, factor: int) -> int:
    time.sleep(random.random() / 200)
    return x * factor


@env.task
def maps(n: int, factor: int) -> list[int]:
    return list(flyte.map(functools.partial(scale, factor=factor), range(n), concurrency=4))


@env.task
def fails_on_odd(x: int) -> int:
    if x % 2:
        raise ValueError(f"odd {x}")
    return x


@env.task
def maps_with_errors(n: int) -> list[str]:
    return [
        type(r).__name__ if isinstance(r, Exception) else str(r)
        for r in flyte.map(fails_on_odd, range(n), return_exceptions=True)
    ]


@env.task
def returns_map_generator(n: int) -> list[int]:
    return flyte.map(inc, range(n))  # type: ignore[return-value]


@env.task
async def async_maps(n: int) -> list[int]:
    out = []
    async for r in flyte.map.aio(ainc, range(n), concurrency=5):
        out.append(r)
    return out


def test_map_preserves_order_and_accepts_partials(run) -> None:
    assert run(maps, n=50, factor=3).result == [i * 3 for i in range(50)]


def test_map_return_exceptions(run) -> None:
    assert run(maps_with_errors, n=4).result == ["0", "ValueError", "2", "ValueError"]


@env.task
def strict(n: int) -> list[int]:
    return list(flyte.map(fails_on_odd, range(n), return_exceptions=False))


def test_map_without_return_exceptions_raises(run) -> None:
    with pytest.raises(ValueError, match="odd 1"):
        run(strict, n=3)


def test_map_generator_as_list_output_and_map_aio(run) -> None:
    assert run(returns_map_generator, n=5).result == [1, 2, 3, 4, 5]
    assert run(async_maps, n=12).result == list(range(1, 13))


def test_map_outside_a_run() -> None:
    assert list(flyte.map(inc, [1, 2])) == [2, 3]


# -- errors, retries, timeouts ----------------------------------------------------------------


@env.task
async def raises_value_error(msg: str) -> int:
    raise ValueError(msg)


@env.task
async def catches(msg: str) -> str:
    try:
        await raises_value_error(msg)
    except ValueError as e:
        assert isinstance(e, flyte.errors.RuntimeUserError)
        return f"caught: {e}"
    return "not caught"


@env.task
async def catches_as_runtime_error(msg: str) -> str:
    try:
        await raises_value_error(msg)
    except flyte.errors.RuntimeUserError as e:
        return f"caught {type(e).__name__}: {e}"
    return "not caught"


def test_sub_task_exception_keeps_type_and_message(run) -> None:
    assert run(catches, msg="bad input").result == "caught: bad input"
    assert run(catches_as_runtime_error, msg="x").result == "caught ValueError: x"


def test_failed_run_raises_in_caller(run) -> None:
    with pytest.raises(ValueError, match="boom") as info:
        run(raises_value_error, msg="boom")
    assert isinstance(info.value, flyte.errors.RuntimeUserError)


@env.task(retries=2)
def flaky(key: str, fail_times: int) -> int:
    n = bump(key)
    if n <= fail_times:
        raise RuntimeError(f"attempt {n} failed")
    return n


def test_retries_rerun_until_success(run) -> None:
    run = run(flaky, key="a", fail_times=2)
    assert run.result == 3
    root = run.actions()[0]
    assert root["attempts"] == 3 and root["phase"] == "SUCCEEDED"


def test_retries_exhausted_raises_last_error(run) -> None:
    with pytest.raises(RuntimeError, match="attempt 3 failed"):
        run(flaky, key="b", fail_times=5)
    assert count("b") == 3


@env.task(timeout=3)
async def sleeps_async(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


@env.task(timeout=3)
def sleeps_sync(seconds: float) -> str:
    time.sleep(seconds)
    return "done"


@env.task
async def catches_timeout(seconds: float) -> str:
    try:
        return await sleeps_async(seconds)
    except flyte.errors.TaskTimeoutError as e:
        return f"timeout: {e}"


def test_timeouts_are_enforced(run) -> None:
    assert run(sleeps_async, seconds=0.01).result == "done"
    assert run(catches_timeout, seconds=30).result.startswith("timeout: ")
    with pytest.raises(flyte.errors.TaskTimeoutError):
        run(sleeps_sync, seconds=30)
    assert run(sleeps_sync, seconds=0.01).result == "done"


def test_timedelta_timeout_and_override(run) -> None:
    from datetime import timedelta

    t = sleeps_async.override(timeout=timedelta(seconds=60))
    assert run(t, seconds=3.5).result == "done"
    with pytest.raises(ValueError):
        sleeps_async.override(timeout=-1)
    with pytest.raises(TypeError, match="unexpected settings"):
        sleeps_async.override(colour="red")


# Retry pacing and deadlines are the core's rules (rs_backend/src/policy.rs), for both modes.


@env.task(
    retries=flyte.RetryStrategy(
        count=3, backoff=flyte.Backoff(base=timedelta(milliseconds=300), factor=2.0, cap=timedelta(seconds=5))
    )
)
def paced(key: str) -> int:
    n = len(stamp(key))
    if n <= 2:
        raise RuntimeError(f"attempt {n} failed")
    return n


def test_retries_wait_their_backoff(run) -> None:
    assert run(paced, key="p").result == 3
    first, second, third = stamps("p")
    # Lower bounds only: a retry may start late on a busy machine, never early.
    assert second - first >= 0.3
    assert third - second >= 0.6


@env.task(retries=3)
def gives_up(key: str) -> int:
    bump(key)
    raise flyte.errors.NonRecoverableError(f"no point retrying {key}")


def test_a_non_recoverable_error_is_not_retried(run) -> None:
    with pytest.raises(flyte.errors.RuntimeUserError, match="no point retrying nr"):
        run(gives_up, key="nr")
    assert count("nr") == 1


@env.task(retries=5, timeout=flyte.Timeout(max_runtime=timedelta(seconds=1), deadline=timedelta(seconds=2.5)))
async def always_slow(key: str) -> str:
    bump(key)
    await asyncio.sleep(30)
    return "never"


def test_the_deadline_ends_the_action_with_retries_left(run) -> None:
    with pytest.raises(flyte.errors.TaskTimeoutError, match="deadline"):
        run(always_slow, key="dl")
    # Each attempt is cut at 1 s and the action at 2.5 s: three attempts at most, of six allowed.
    assert 2 <= count("dl") <= 3


@env.task(cache=flyte.Cache(behavior="auto", serialize=True))
async def serialized_square(key: str, x: int) -> int:
    bump(key)
    await asyncio.sleep(0.3)
    return x * x


@env.task
async def same_call_four_times(key: str) -> list[int]:
    return list(await asyncio.gather(*[serialized_square(key, 9) for _ in range(4)]))


def test_serialized_cache_runs_identical_concurrent_calls_once(run) -> None:
    # The key is an input too, so each test run starts with an empty cache entry.
    key = f"ser-{random.randrange(1 << 30)}"
    assert run(same_call_four_times, key=key).result == [81] * 4
    assert count(key) == 1


@env.task
async def bad_caller() -> int:
    return await ainc("nope")  # type: ignore[arg-type]


def test_wrong_input_type_is_rejected_before_running(run, mode: str) -> None:
    with pytest.raises(TypeError, match="x") as info:
        run(inc, x="three")
    assert isinstance(info.value, flyte.errors.RuntimeDataValidationError)
    # Inside a run the child's inputs are rejected in the parent, which fails with that error.
    expected = flyte.errors.RuntimeDataValidationError if mode == "local" else flyte.errors.RuntimeUserError
    with pytest.raises(expected, match="x"):
        run(bad_caller)


def test_missing_argument_names_the_parameter(run) -> None:
    with pytest.raises(TypeError, match="x"):
        run(inc)


# -- groups, context, traces, IDs ---------------------------------------------------------------


@env.task
async def who_am_i() -> str:
    c = flyte.ctx()
    assert c is not None
    return f"{c.action.run_name}/{c.action.name}/{c.custom_context.get('team', '')}"


@env.task
async def grouped() -> list[str]:
    with flyte.group("first"):
        a = await who_am_i()
    with flyte.group("second"):
        b = await who_am_i()
    with flyte.custom_context(team="data"):
        c = await who_am_i()
    return [a, b, c]


def test_groups_give_distinct_actions_and_ctx_reports_them(run) -> None:
    run = run(grouped)
    a, b, c = run.result
    assert a.split("/")[0] == run.name
    assert a.split("/")[1] != b.split("/")[1]
    assert c.endswith("/data")
    groups = {act["group"] for act in run.actions() if act["task_name"] == "wf.who_am_i"}
    assert groups == {"first", "second", None}


def test_ctx_outside_task_is_none() -> None:
    assert flyte.ctx() is None


@flyte.trace
async def traced_llm(prompt: str) -> str:
    bump("llm")
    return f"llm({prompt})"


@flyte.trace
def traced_sync(x: int) -> int:
    return x * 100


@env.task
async def uses_traces(prompt: str) -> str:
    out = await traced_llm(prompt)
    return f"{out}+{traced_sync(2)}"


def test_traces_run_inline_and_are_recorded(run) -> None:
    run = run(uses_traces, prompt="hi")
    assert run.result == "llm(hi)+200"
    kinds = [(a["kind"], a["task_name"].rsplit(".", 1)[-1]) for a in run.actions()]
    assert ("trace", "traced_llm") in kinds and ("trace", "traced_sync") in kinds
    assert asyncio.run(traced_llm("direct")) == "llm(direct)"


@env.task
async def fan_out_same(n: int) -> int:
    async def jitter(i: int) -> int:
        await asyncio.sleep(random.random() / 100)
        return await ainc(1)

    await asyncio.gather(*[jitter(i) for i in range(n)])
    return n


def _child_names(run) -> list[str]:
    return [a["name"] for a in run.actions() if a["parent"] is not None]


def test_action_ids_are_stable_distinct_and_input_dependent(run) -> None:
    r1 = run(async_main, xs=[1, 2, 3])
    r2 = run(async_main, xs=[1, 2, 3])
    r3 = run(async_main, xs=[1, 2, 4])
    assert r1.name != r2.name
    assert sorted(_child_names(r1)) == sorted(_child_names(r2))
    assert len(set(_child_names(r1))) == 6
    assert set(_child_names(r1)) != set(_child_names(r3))


def test_identical_calls_get_ids_independent_of_scheduling(run) -> None:
    a = run(fan_out_same, n=15)
    b = run(fan_out_same, n=15)
    names_a, names_b = _child_names(a), _child_names(b)
    assert len(set(names_a)) == 15
    assert sorted(names_a) == sorted(names_b)


@dataclass
class Point:
    x: int
    y: int


@env.task
async def shift(p: Point, by: int) -> Point:
    return Point(p.x + by, p.y + by)


@env.task
async def multi() -> tuple[int, str]:
    return 1, "one"


def test_dataclass_inputs_and_tuple_outputs(run) -> None:
    assert run(shift, p=Point(1, 2), by=3).result == Point(4, 5)
    run = run(multi)
    assert run.result == (1, "one")
    assert run.outputs()[1] == "one" and len(run.outputs()) == 2


@env.task
def sync_mid(x: int) -> int:
    # Runs inline on the loop thread when called directly from async code, yet calls an
    # async task and maps over one.
    return ainc(x) + sum(flyte.map(ainc, [x, x]))


@env.task
async def async_top(x: int) -> int:
    return sync_mid(x) + await sync_mid.aio(x)


def test_sync_task_inline_on_the_loop_can_call_async_tasks(run) -> None:
    # sync_mid(1) = 2 + (2 + 2) = 6, twice
    assert run(async_top, x=1).result == 12


@env.task
async def async_maps_sync_way(n: int) -> list[int]:
    return list(flyte.map(ainc, range(n)))


def test_sync_map_of_async_tasks_from_async_code_is_refused(run) -> None:
    with pytest.raises(RuntimeError, match=r"flyte\.map\.aio"):
        run(async_maps_sync_way, n=2)


# -- caching -------------------------------------------------------------------------------

cached_env = flyte.TaskEnvironment(name="wf_cached", cache="auto")


@cached_env.task
def cached_square(x: int, tag: str) -> int:
    bump(f"square-{tag}-{x}")
    return x * x


@cached_env.task(cache="override")
def always_square(x: int, tag: str) -> int:
    bump(f"always-{tag}-{x}")
    return x * x


@env.task
async def cache_parent(xs: list[int], tag: str) -> int:
    total = 0
    for x in xs:  # one after another: a repeated call finds the first one's outputs
        total += await cached_square.aio(x, tag) + await always_square.aio(x, tag)
    return total


def test_cached_sub_tasks_hit_across_runs(run, mode):
    import uuid

    tag = uuid.uuid4().hex[:8]
    assert run(cache_parent, [2, 2, 3], tag).result == 34
    assert count(f"square-{tag}-2") == 1 and count(f"square-{tag}-3") == 1
    assert count(f"always-{tag}-2") == 2  # cache="override": runs every time
    second = run(cache_parent, [2, 3], tag)
    assert second.result == 26
    assert count(f"square-{tag}-2") == 1 and count(f"square-{tag}-3") == 1
    assert count(f"always-{tag}-2") == 3
    hits = [a for a in second.actions() if a["task_name"].endswith("cached_square")]
    assert len(hits) == 2 and all(a["cache_hit"] for a in hits), second.actions()
    env_vars = {"FLYTE_TEST_COUNTERS": os.environ["FLYTE_TEST_COUNTERS"]}
    flyte.with_runcontext(mode=mode, env_vars=env_vars, overwrite_cache=True).run(
        cache_parent, [3], tag
    ).wait()
    assert count(f"square-{tag}-3") == 2


@cached_env.task(cache=flyte.Cache(behavior="auto", max_age=1))
def fresh_square(x: int, tag: str) -> int:
    bump(f"fresh-{tag}-{x}")
    return x * x


@env.task
async def fresh_parent(x: int, tag: str, pause: float) -> int:
    first = await fresh_square.aio(x, tag)
    await asyncio.sleep(pause)
    return first + await fresh_square.aio(x, tag)


def test_cached_results_older_than_max_age_are_computed_again(run, mode):
    import uuid

    with pytest.raises(ValueError, match="negative"):
        flyte.Cache(behavior="auto", max_age=-1)
    assert flyte.Cache(behavior="auto", max_age=90).max_age == timedelta(seconds=90)
    tag = uuid.uuid4().hex[:8]
    assert run(fresh_parent, 3, tag, 0.0).result == 18
    assert count(f"fresh-{tag}-3") == 1  # the second call found the first's result
    assert run(fresh_parent, 4, tag, 1.5).result == 32
    assert count(f"fresh-{tag}-4") == 2  # older than a second by then: run again


def test_async_map_calls_are_in_the_maps_group(mode: str) -> None:
    import ui_wf

    done = flyte.with_runcontext(mode=mode).run(ui_wf.mapped, n=3).wait()
    assert done.outputs()[0] == "4 values, total 6"
    groups = sorted((a["task_name"], a["group"] or "") for a in done.actions() if a["parent"] == "a0")
    assert groups == [
        ("ui_demo.doubled", ""),
        ("ui_demo.doubled", "map-doubled"),
        ("ui_demo.doubled", "map-doubled"),
        ("ui_demo.doubled", "map-doubled"),
        ("ui_wf.summarize", ""),
    ]


@env.task(retries=1_000_000)
def hopeless() -> int:
    raise ValueError("never")


def test_more_retries_than_the_cap_are_refused_before_anything_runs(mode: str) -> None:
    with pytest.raises(Exception, match="at most 100"):
        flyte.with_runcontext(mode=mode).run(hopeless).wait()
