"""flyte.extras in both modes: sleep tasks (the backend waits without a process; local mode
waits in the process) and task specs made offline."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

import flyte
import flyte.errors
import flyte.remote as remote
from flyte.extras import Sleep, SleepTask, serialize, serialize_env
from flyte.models import ActionPhase

naps = flyte.TaskEnvironment(name="extras_naps", plugin_config=Sleep())
plain = flyte.TaskEnvironment(name="extras_plain")


@naps.task
async def nap(duration: timedelta) -> None:
    raise AssertionError("a sleep task's body never runs")


@naps.task
async def counts(duration: int) -> None:
    """Not a sleep: the duration must be a timedelta."""


@plain.task
async def naps_twice(seconds: float) -> str:
    started = time.monotonic()
    await nap(duration=timedelta(seconds=seconds))
    await nap(duration=timedelta(0))
    return f"{time.monotonic() - started:.2f}"


def test_a_sleep_task_waits_its_input_and_runs_nothing(mode: str) -> None:
    assert isinstance(nap, SleepTask) and nap.task_type == "core-sleep"
    took = float(flyte.with_runcontext(mode=mode).run(naps_twice, 0.6).wait().outputs()[0])
    assert took >= 0.6
    if mode == "remote":
        run = flyte.with_runcontext(mode=mode).run(nap, duration=timedelta(seconds=0.2)).wait()
        assert run.phase == ActionPhase.SUCCEEDED
        # No process ran: the attempt has no log file.
        details = remote.Action.get(run_name=run.name, name="a0")._details
        assert details is not None
        log_uri = details.pb2.attempts[0].log_info[0].uri
        assert log_uri.startswith("file://") and not Path(log_uri.removeprefix("file://")).exists()


def test_a_sleep_that_is_not_one_fails_with_the_backends_reason(mode: str) -> None:
    with pytest.raises(flyte.errors.RuntimeUserError, match=r"input \[duration\] must be typed as duration"):
        flyte.with_runcontext(mode=mode).run(counts, duration=3).wait().outputs()
    with pytest.raises(flyte.errors.RuntimeUserError, match="must be non-negative"):
        flyte.with_runcontext(mode=mode).run(nap, duration=timedelta(seconds=-1)).wait().outputs()


def test_specs_are_made_offline() -> None:
    spec = serialize(nap)
    assert spec.task_template.type == "core-sleep"
    assert spec.task_template.id.name == "extras_naps.nap" and spec.task_template.id.version == "serialized"
    assert [v.key for v in spec.task_template.interface.inputs.variables] == ["duration"]
    from flyte.models import SerializationContext

    versioned = serialize(naps_twice, SerializationContext(version="v7", project="p", domain="d"))
    assert versioned.task_template.id.version == "v7" and versioned.task_template.id.project == "p"
    assert [s.task_template.id.name for s in serialize_env(naps)] == ["extras_naps.nap", "extras_naps.counts"]
    with pytest.raises(TypeError, match="serialize takes a task"):
        serialize("nap")  # type: ignore[arg-type]
