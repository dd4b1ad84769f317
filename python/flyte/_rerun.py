"""``flyte.rerun``: run an action of an earlier run again, as a new run on the same backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flyte.models import generate_random_name
from flyte.syncify import syncify

# Deferred imports: protobufs, the type engine and flyte.remote's run objects load when a run
# is started, not with `import flyte`.

if TYPE_CHECKING:
    from flyte.remote._run import Run


@syncify
async def rerun(
    run_name: str,
    action_name: str = "a0",
    recover: bool = False,
    force_rerun_actions: list[str] | None = None,
    allow_missing_source_outputs: bool = False,
    **inputs: Any,
) -> Run:
    """Starts a new run of the task that action ``action_name`` (default: the root) of run
    ``run_name`` ran, as it ran then (same task spec, same inputs; the root's run settings
    too), with the ``inputs`` given here replacing those of the same names."""
    from flyteidl2.common import identifier_pb2
    from flyteidl2.task import common_pb2, run_pb2
    from flyteidl2.workflow import run_service_pb2

    from flyte._types._guess import interface_of
    from flyte.remote._common import connection
    from flyte.remote._run import created_run

    if recover or force_rerun_actions or allow_missing_source_outputs:
        raise ValueError(
            "flyte.rerun(recover=...): reusing the finished actions of the earlier run is not offered by "
            "this backend; rerun runs the task again from the start (without recover, "
            "force_rerun_actions or allow_missing_source_outputs)"
        )
    client, where = connection()
    source_run = identifier_pb2.RunIdentifier(
        org=where.org, project=where.project, domain=where.domain, name=run_name
    )
    source = identifier_pb2.ActionIdentifier(run=source_run, name=action_name)
    details = await client.get_action_details(source)
    if not details.HasField("task"):
        raise ValueError(
            f"{run_name}/{action_name} is not a task action (a trace or a condition): nothing to rerun"
        )
    spec = details.task
    data = await client.get_action_data(source)
    merged = common_pb2.Inputs()
    merged.CopyFrom(data.inputs)
    if inputs:
        task_name = spec.task_template.id.name
        iface = interface_of(spec.task_template.interface, {}, task_name)
        unknown = sorted(set(inputs) - set(iface.inputs))
        if unknown:
            raise TypeError(
                f"rerun of {task_name}: {unknown} are not inputs (inputs: {sorted(iface.inputs)})"
            )
        given = type(iface)({name: (iface.inputs[name][0], iface.inputs[name][1]) for name in inputs}, {})
        replaced = {nl.name: nl for nl in given.inputs_to_literals(dict(inputs), task_name).literals}
        for nl in merged.literals:
            if nl.name in replaced:
                nl.value.CopyFrom(replaced.pop(nl.name).value)
        for nl in replaced.values():
            merged.literals.append(nl)
    run_spec = run_pb2.RunSpec()
    if action_name == "a0":
        # The root ran with the run's own settings (labels, env vars, ...): the rerun does too.
        run_spec.CopyFrom((await client.get_run_details(source_run)).run_spec)
    new_run = identifier_pb2.RunIdentifier(
        org=where.org, project=where.project, domain=where.domain, name=generate_random_name()
    )
    created = await client.create_run(
        run_service_pb2.CreateRunRequest(run_id=new_run, task_spec=spec, inputs=merged, run_spec=run_spec)
    )
    return created_run(created, new_run)
