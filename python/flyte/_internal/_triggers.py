"""A task's triggers as a backend receives them at deploy time (``task.TaskTrigger``).

The trigger's ``inputs`` are converted with the task's own input types; an input bound to
``flyte.TriggerTime`` is left out and named in the inputs' context instead, so that whoever
fires the trigger passes the scheduled time there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flyte._trigger import Cron, TriggerTime
from flyte.notify._serde import checked_rules

if TYPE_CHECKING:
    from flyte._task import TaskTemplate
    from flyte._trigger import Automation, Trigger
    from flyte.remote._task import RemoteTask

#: Inputs-context key naming the input that receives a scheduled run's kick-off time (the
#: name a Flyte 2 cluster and the reference SDK use).
KICKOFF_TIME_INPUT_KEY = "_u_kickoff_time_input_arg"


def automation_spec(automation: Automation, kickoff_input: str | None) -> Any:
    from datetime import timedelta

    from flyteidl2.task import common_pb2

    spec = common_pb2.TriggerAutomationSpec(type=common_pb2.TYPE_SCHEDULE)
    schedule = spec.schedule
    if isinstance(automation, Cron):
        schedule.cron.expression = automation.schedule
        schedule.cron.timezone = automation.timezone or ""
    else:
        interval = automation.interval
        for unit, size in (
            (common_pb2.FIXED_RATE_UNIT_DAY, timedelta(days=1)),
            (common_pb2.FIXED_RATE_UNIT_HOUR, timedelta(hours=1)),
            (common_pb2.FIXED_RATE_UNIT_MINUTE, timedelta(minutes=1)),
        ):
            if interval % size == timedelta(0):
                schedule.rate.value = interval // size
                schedule.rate.unit = unit
                break
        if automation.start_time is not None:
            schedule.rate.start_time.FromDatetime(automation.start_time)
    if kickoff_input:
        schedule.kickoff_time_input_arg = kickoff_input
    return spec


def task_trigger(task: TaskTemplate[Any, Any, Any] | RemoteTask, trigger: Trigger) -> Any:
    from flyteidl2.task import run_pb2, task_definition_pb2

    kickoff = trigger.trigger_time_input
    if kickoff not in task.interface.inputs:
        # The firing time is only delivered to a task that takes it.
        kickoff = None
    given = {k: v for k, v in (trigger.inputs or {}).items() if v is not TriggerTime}
    inputs = task.interface.partial_inputs_to_literals(given, f"{task.name} trigger {trigger.name}")
    if kickoff:
        inputs.context.add(key=KICKOFF_TIME_INPUT_KEY, value=kickoff)
    for key, value in sorted((trigger.custom_context or {}).items()):
        inputs.context.add(key=key, value=value)
    run_spec = run_pb2.RunSpec(overwrite_cache=trigger.overwrite_cache, queue=trigger.queue or "")
    for key, value in sorted((trigger.env_vars or {}).items()):
        run_spec.envs.values.add(key=key, value=value)
    for key, value in (trigger.labels or {}).items():
        run_spec.labels.values[key] = value
    for key, value in (trigger.annotations or {}).items():
        run_spec.annotations.values[key] = value
    if trigger.interruptible is not None:
        run_spec.interruptible.value = trigger.interruptible
    if trigger.notifications is not None:
        run_spec.MergeFrom(checked_rules(trigger.notifications))
    return task_definition_pb2.TaskTrigger(
        name=trigger.name,
        spec=task_definition_pb2.TaskTriggerSpec(
            active=trigger.auto_activate,
            inputs=inputs,
            run_spec=run_spec,
            description=trigger.description,
        ),
        automation_spec=automation_spec(_automation(trigger), kickoff),
    )


def _automation(trigger: Trigger) -> Automation:
    # A Trigger without automation is refused when it is made; this is for the type checker.
    assert trigger.automation is not None
    return trigger.automation


def task_triggers(task: TaskTemplate[Any, Any, Any]) -> list[Any]:
    return [task_trigger(task, t) for t in task.triggers]
