"""Task plugins (``flyte.extend``): a TaskTemplate subclass registered for a configuration type
changes what ``@env.task`` makes — its hooks run around the body in both modes, and what it
tells the backend (task type, custom config) reaches the task's spec."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from counters import bump, count

import flyte
import flyte.errors
import flyte.remote as remote
from flyte.extend import AsyncFunctionTaskTemplate, TaskPluginRegistry, TaskTemplate
from flyte.models import SerializationContext


@dataclasses.dataclass
class Scaling:
    factor: int = 2


@dataclasses.dataclass(kw_only=True, eq=False, repr=False)
class ScalingTask(AsyncFunctionTaskTemplate):
    """Gives the body a factor through ``flyte.ctx().data``; counts finished bodies."""

    task_type: str = "scaling"
    task_type_version: int = 3
    plugin_config: Scaling

    async def pre(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {"factor": self.plugin_config.factor}

    async def post(self, return_vals: Any) -> Any:
        bump(f"post-{self.short_name}-{return_vals}")
        return return_vals

    def custom_config(self, sctx: SerializationContext) -> dict[str, Any]:
        return {"factor": self.plugin_config.factor, "version": sctx.version}

    def config(self, sctx: SerializationContext) -> dict[str, str]:
        return {"scaling/mode": "linear"}


TaskPluginRegistry.register(Scaling, ScalingTask)

scaled_env = flyte.TaskEnvironment(name="plugin_scaled", plugin_config=Scaling(factor=3))
env = flyte.TaskEnvironment(name="plugin_plain", depends_on=[scaled_env])


@scaled_env.task
async def scale(x: int) -> int:
    ctx = flyte.ctx()
    assert ctx is not None
    return x * ctx.data["factor"]


@scaled_env.task
def scale_sync(x: int) -> int:
    ctx = flyte.ctx()
    assert ctx is not None
    return x * ctx.data["factor"]


@env.task
async def plain_double(x: int) -> int:
    ctx = flyte.ctx()
    return x * (ctx.data.get("factor", 2) if ctx is not None else 2)


@dataclasses.dataclass(kw_only=True, eq=False, repr=False)
class Countdown(TaskTemplate):
    """A task whose body is not a function: ``execute`` counts down from ``start``."""

    task_type: str = "countdown"
    step: int = 1

    async def execute(self, start: int) -> list[int]:
        await asyncio.sleep(0)
        return list(range(start, -1, -self.step))


def _countdown_interface() -> Any:
    from flyte._types import NativeInterface

    return NativeInterface({"start": (int, 3)}, {"o0": list[int]})


countdown = Countdown(name="plugin_countdown.countdown", interface=_countdown_interface(), step=2)
countdown_env = flyte.TaskEnvironment.from_task("plugin_countdown", countdown)


@env.task
async def uses_everything(x: int) -> tuple[int, int, int, list[int]]:
    a, b, c, d = await asyncio.gather(
        scale(x),
        scale_sync.aio(x),
        plain_double.override(plugin_config=Scaling(factor=5))(x),
        countdown(start=x),
    )
    return a, b, c, d


def test_plugin_hooks_run_around_function_bodies_and_plain_templates_run_execute(run) -> None:
    assert run(uses_everything, 4) == (12, 12, 20, [4, 2, 0])
    # post ran once per body, after it, with what the body returned.
    assert count("post-scale-12") == 1
    assert count("post-scale_sync-12") == 1
    assert count("post-plain_double-20") == 1


def test_a_plain_template_runs_as_a_run_of_its_own(run) -> None:
    assert run(countdown, start=5) == [5, 3, 1]
    # An override's copy is found as the template it was made from.
    assert run(countdown.override(retries=1), start=2) == [2, 0]


def test_what_env_task_makes_follows_the_environment_s_plugin() -> None:
    assert type(scale) is ScalingTask and type(plain_double).__name__ == "AsyncFunctionTaskTemplate"
    assert scale.task_type == "scaling" and scale.plugin_config == Scaling(3)
    assert scale.parent_env_name == "plugin_scaled" and scale.env is scaled_env
    assert countdown.env is countdown_env and countdown.parent_env_name == "plugin_countdown"
    assert countdown_env.tasks == {"plugin_countdown.countdown": countdown}
    # Outside a run a function task is its function (without hooks), a plain template has no local form.
    assert asyncio.run(plain_double(3)) == 6
    with pytest.raises(NotImplementedError, match="flyte.run"):
        countdown(start=1)
    moved = plain_double.override(plugin_config=Scaling(7))
    assert type(moved) is ScalingTask and moved.task_type == "scaling" and moved.task_type_version == 3
    assert moved.name == plain_double.name and moved.func is plain_double.func
    # From one plugin to another: fields the other plugin lacks are left behind.
    other = scale.override(plugin_config=BadPre())
    assert type(other) is BadPreTask and other.task_type == "python" and other.plugin_config == BadPre()
    twins = [
        Countdown(name=f"plugin_twins.c{i}", interface=_countdown_interface(), image="img:1")
        for i in range(2)
    ]
    assert flyte.TaskEnvironment.from_task("plugin_twins", *twins).image == "img:1"


def test_the_spec_carries_the_plugin_s_type_custom_config_and_config() -> None:
    from flyte._internal._serialize import CodeRef, task_spec

    spec = task_spec(scale, CodeRef("", "/code", "v7"), project="p", domain="d", org="o")
    template = spec.task_template
    assert template.type == "scaling" and template.task_type_version == 3
    assert dict(template.custom) == {"factor": 3.0, "version": "v7"}
    assert dict(template.config) == {"scaling/mode": "linear"}
    assert template.metadata.debuggable  # a function task is debuggable unless reusable
    assert spec.environment.name == "plugin_scaled"
    plain = task_spec(countdown, CodeRef("", "/code", "v7"), project="p", domain="d", org="o").task_template
    assert plain.type == "countdown" and not plain.metadata.debuggable
    assert "test_task_plugins:countdown" in list(plain.container.args)


def test_a_deployed_plugin_task_keeps_its_type_and_custom_config(backend_endpoint: str) -> None:
    flyte.init(endpoint=backend_endpoint, insecure=True)
    deployment = flyte.deploy(scaled_env)[0]
    details = asyncio.run(remote.TaskDetails.fetch(scale.name, version=deployment.version))
    assert details.task_type == "scaling"
    assert dict(details.pb2.spec.task_template.custom)["factor"] == 3.0


def test_bad_plugin_settings_are_refused_clearly() -> None:
    @dataclasses.dataclass
    class Unregistered:
        pass

    with pytest.raises(
        ValueError, match="no task plugin is registered for plugin_config of type Unregistered"
    ):
        flyte.TaskEnvironment(name="plugin_bad", plugin_config=Unregistered())
    with pytest.raises(ValueError, match="no task plugin is registered for Unregistered"):
        plain_double.override(plugin_config=Unregistered())
    with pytest.raises(ValueError, match="cannot run in reusable workers"):
        flyte.TaskEnvironment(
            name="plugin_reused", plugin_config=Scaling(), reusable=flyte.ReusePolicy(replicas=1)
        )
    with pytest.raises(TypeError, match="subclass of flyte.extend.AsyncFunctionTaskTemplate"):
        TaskPluginRegistry.register(Scaling, dict)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name cannot be overridden"):
        plain_double.override(name="other")
    with pytest.raises(TypeError, match=r"unexpected settings \['bogus'\]"):
        plain_double.override(bogus=1)
    with pytest.raises(ValueError, match="task_resolver is not supported"):
        ScalingTask(
            name="x.y",
            interface=scale.interface,
            func=scale.func,
            plugin_config=Scaling(),
            task_resolver=object(),
        )
    with pytest.raises(ValueError, match="already belongs to environment 'plugin_scaled'"):
        flyte.TaskEnvironment.from_task("plugin_again", scale)


def test_pre_must_return_a_dict(run) -> None:
    with pytest.raises(flyte.errors.RuntimeUserError, match=r"pre\(\) must return a dict"):
        run(bad_pre, 1)


@dataclasses.dataclass
class BadPre:
    pass


@dataclasses.dataclass(kw_only=True, eq=False, repr=False)
class BadPreTask(AsyncFunctionTaskTemplate):
    plugin_config: BadPre

    async def pre(self, *args: Any, **kwargs: Any) -> Any:
        return ["not", "a", "dict"]


TaskPluginRegistry.register(BadPre, BadPreTask)
bad_env = flyte.TaskEnvironment(name="plugin_badpre", plugin_config=BadPre())


@bad_env.task
async def bad_pre(x: int) -> int:
    return x
