"""Caching in local mode: keys, behaviours, and persistence across processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import flyte

env = flyte.TaskEnvironment(name="cached_env", cache="auto")
plain_env = flyte.TaskEnvironment(name="plain_env")

executions: list[str] = []


@pytest.fixture(autouse=True)
def _reset() -> None:
    executions.clear()


def local(task, **kwargs):
    return flyte.with_runcontext(mode="local").run(task, **kwargs)


@env.task
def square(x: int) -> int:
    executions.append(f"square({x})")
    return x * x


@env.task(cache="disable")
def not_cached(x: int) -> int:
    executions.append(f"not_cached({x})")
    return x


@plain_env.task(cache=flyte.Cache(behavior="auto", ignored_inputs=("debug",), salt="s1"))
def ignores_debug(x: int, debug: bool = False) -> int:
    executions.append(f"ignores_debug({x},{debug})")
    return x


@plain_env.task(cache=flyte.Cache(behavior="auto", version_override="v1"))
def versioned(x: int) -> int:
    executions.append(f"versioned({x})")
    return x


@plain_env.task(cache="override")
def overrides(x: int) -> int:
    executions.append(f"overrides({x})")
    return x


@env.task
def parent(xs: list[int]) -> int:
    return sum(square(x) for x in xs)


def test_env_level_auto_cache_hits_across_runs() -> None:
    assert local(square, x=3).result == 9
    run = local(square, x=3)
    assert run.result == 9
    assert executions == ["square(3)"]
    assert run.actions()[0]["cache_hit"] is True
    local(square, x=4)
    assert executions == ["square(3)", "square(4)"]


def test_sub_task_cache_hits_inside_a_run() -> None:
    assert local(parent, xs=[2, 2, 3]).result == 17
    assert executions == ["square(2)", "square(3)"]


def test_task_level_disable_wins_over_env() -> None:
    local(not_cached, x=1)
    local(not_cached, x=1)
    assert executions == ["not_cached(1)", "not_cached(1)"]


def test_ignored_inputs_do_not_change_the_key() -> None:
    local(ignores_debug, x=1, debug=False)
    local(ignores_debug, x=1, debug=True)
    local(ignores_debug, x=2, debug=True)
    assert executions == ["ignores_debug(1,False)", "ignores_debug(2,True)"]


def test_override_always_recomputes_and_overwrite_cache_flag() -> None:
    local(overrides, x=1)
    local(overrides, x=1)
    assert executions == ["overrides(1)", "overrides(1)"]
    local(square, x=7)
    flyte.with_runcontext(mode="local", overwrite_cache=True).run(square, x=7)
    local(square, x=7)
    assert executions.count("square(7)") == 2


def test_version_override_and_salt_are_part_of_the_key() -> None:
    local(versioned, x=1)
    local(versioned, x=1)
    assert executions == ["versioned(1)"]
    changed_version = versioned.override(cache=flyte.Cache(behavior="auto", version_override="v2"))
    local(changed_version, x=1)
    changed_salt = ignores_debug.override(cache=flyte.Cache(behavior="auto", salt="s2"))
    local(ignores_debug, x=5)
    local(changed_salt, x=5)
    assert executions == ["versioned(1)", "versioned(1)", "ignores_debug(5,False)", "ignores_debug(5,False)"]


WORKFLOW = textwrap.dedent(
    """
    import sys
    import flyte

    env = flyte.TaskEnvironment(name="xproc", cache="auto")

    @env.task
    def work(x: int) -> int:
        print("EXECUTED", flush=True)
        return x + 1

    if __name__ == "__main__":
        run = flyte.with_runcontext(mode="local").run(work, x=int(sys.argv[1]))
        print("RESULT", run.result, flush=True)
    """
)


def _run_script(path: Path, x: int, data_dir: Path) -> str:
    env_vars = {**os.environ, "FLYTE_DATA_DIR": str(data_dir)}
    out = subprocess.run(
        [sys.executable, str(path), str(x)], capture_output=True, text=True, env=env_vars, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_cache_persists_across_processes_and_follows_the_body(tmp_path: Path) -> None:
    script = tmp_path / "wf.py"
    script.write_text(WORKFLOW)
    data = tmp_path / "data"
    first = _run_script(script, 1, data)
    second = _run_script(script, 1, data)
    assert "EXECUTED" in first and "RESULT 2" in first
    assert "EXECUTED" not in second and "RESULT 2" in second
    # Comments and formatting are not behaviour: still a hit.
    script.write_text(WORKFLOW.replace("return x + 1", "return x + 1  # same thing"))
    assert "EXECUTED" not in _run_script(script, 1, data)
    # A changed body is a new version: a miss.
    script.write_text(WORKFLOW.replace("return x + 1", "return x + 1 + 0"))
    assert "EXECUTED" in _run_script(script, 1, data)


serial_env = flyte.TaskEnvironment(name="serial_env")


@serial_env.task(cache=flyte.Cache(behavior="auto", serialize=True))
async def slow_serialized(x: int) -> int:
    import asyncio

    executions.append(f"slow_serialized({x})")
    await asyncio.sleep(0.05)
    return x


@serial_env.task
async def many_identical(n: int) -> list[int]:
    import asyncio

    return list(await asyncio.gather(*[slow_serialized(7) for _ in range(n)]))


def test_serialize_runs_identical_concurrent_calls_once() -> None:
    assert local(many_identical, n=5).result == [7] * 5
    assert executions == ["slow_serialized(7)"]


@env.task
def square_and_flag(x: int) -> tuple[int, bool]:
    executions.append(f"square_and_flag({x})")
    ctx = flyte.ctx()
    assert ctx is not None
    return x * x, ctx.disable_run_cache


def test_a_run_with_disable_run_cache_neither_reads_nor_writes_the_cache() -> None:
    def run(**settings: bool) -> tuple[int, bool]:
        return flyte.with_runcontext(mode="local", **settings).run(square_and_flag, x=7).outputs()  # type: ignore[return-value]

    assert run(disable_run_cache=True) == (49, True)
    assert run(disable_run_cache=True) == (49, True)
    assert executions == ["square_and_flag(7)"] * 2
    # Nothing was written: the next ordinary run computes, and the one after hits the cache.
    assert run() == (49, False)
    assert run() == (49, False)
    assert executions == ["square_and_flag(7)"] * 3
