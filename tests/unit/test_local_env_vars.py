"""Environment variables reach tasks in local mode as they do on a backend: the environment's,
then the run's over them; the process environment is put back when the run ends."""

from __future__ import annotations

import os

import pytest

import flyte

env = flyte.TaskEnvironment(
    name="env_vars_env", env_vars={"FLYTE_T_ENV_ONLY": "from-env", "FLYTE_T_BOTH": "env"}
)
other = flyte.TaskEnvironment(name="env_vars_other", env_vars={"FLYTE_T_OTHER": "other"})

NAMES = ("FLYTE_T_ENV_ONLY", "FLYTE_T_BOTH", "FLYTE_T_RUN_ONLY", "FLYTE_T_OTHER")


@other.task
def read_other() -> str:
    return os.environ.get("FLYTE_T_OTHER", "unset")


@env.task
def read_sync() -> list[str]:
    return [os.environ.get(name, "unset") for name in NAMES]


@env.task
async def main() -> list[str]:
    seen = await read_sync.aio()
    return [*seen, read_other()]


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLYTE_T_BOTH", "before")


def test_task_and_run_env_vars_reach_tasks_and_are_put_back() -> None:
    run = flyte.with_runcontext(
        mode="local", env_vars={"FLYTE_T_RUN_ONLY": "run", "FLYTE_T_BOTH": "run"}
    ).run(main)
    assert run.outputs()[0] == ["from-env", "run", "run", "unset", "other"]
    assert os.environ.get("FLYTE_T_ENV_ONLY") is None
    assert os.environ.get("FLYTE_T_RUN_ONLY") is None
    assert os.environ["FLYTE_T_BOTH"] == "before"


def test_without_run_env_vars_the_environment_s_own_apply() -> None:
    run = flyte.with_runcontext(mode="local").run(main)
    assert run.outputs()[0] == ["from-env", "env", "unset", "unset", "other"]
