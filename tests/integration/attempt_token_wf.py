"""A child that tries ActionsService.Update on its own action and on its parent's, with and
without the token the backend gave its attempt; and a parent slow enough to be updated from
outside while it runs."""

from __future__ import annotations

import asyncio
import os

import flyte

env = flyte.TaskEnvironment(name="attempt_tokens")

UPDATE = "/flyteidl2.actions.ActionsService/Update"


async def _update(action: str, phase: str, token: str | None) -> str:
    """ "ok", or the status code the backend answered with."""
    from flyteidl2.actions import actions_service_pb2
    from flyteidl2.common import identifier_pb2, phase_pb2
    from flyteidl2.workflow import run_definition_pb2

    from flyte._bridge import contract, controller, rpc

    run = identifier_pb2.RunIdentifier(
        org=os.environ[contract.ORG_NAME],
        project=os.environ[contract.EXECUTION_PROJECT],
        domain=os.environ[contract.EXECUTION_DOMAIN],
        name=os.environ[contract.RUN_NAME],
    )
    request = actions_service_pb2.UpdateRequest(
        action_id=identifier_pb2.ActionIdentifier(run=run, name=action),
        status=run_definition_pb2.ActionStatus(phase=phase_pb2.ActionPhase.Value(phase)),
    )
    headers = [("authorization", f"Bearer {token}")] if token else []
    client = rpc.RpcClient(os.environ[contract.ENDPOINT], insecure=True, headers=headers)
    try:
        await client.unary(UPDATE, request.SerializeToString())
    except controller.ControllerError as e:
        return e.code
    return "ok"


@env.task
async def child() -> list[str]:
    from flyte._bridge import contract

    own = os.environ[contract.ACTION_NAME]
    token = os.environ[contract.EXTRA_ACTION_TOKEN]
    return [
        await _update(own, "ACTION_PHASE_RUNNING", token),
        await _update(own, "ACTION_PHASE_RUNNING", None),
        await _update(own, "ACTION_PHASE_RUNNING", token.replace(".", "x", 1)),
        await _update("a0", "ACTION_PHASE_SUCCEEDED", token),
    ]


@env.task
async def parent() -> list[str]:
    return await child()


@env.task
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "finished"


@env.task
async def fingerprint_of(variable: str) -> str:
    """The SHA-256 of a variable's value: proves the task got it without putting it in outputs."""
    import hashlib

    return hashlib.sha256(os.environ.get(variable, "").encode()).hexdigest()


@env.task
async def square(x: int) -> int:
    return x * x


@env.task
async def squares(n: int) -> int:
    return sum(await asyncio.gather(*(square(i) for i in range(n))))


def _peek() -> dict[str, int]:
    """How many bytes of each of the backend's private files this process can read."""
    from pathlib import Path

    from flyte._bridge import contract

    data = Path(os.environ[contract.EXTRA_DATA_DIR])
    names = ["backend.db", "backend.db-wal", "secrets.key", "attempt.key", "signing.key"]
    return {name: len((data / name).read_bytes()) for name in names if (data / name).exists()}


@env.task
async def peek() -> dict[str, int]:
    return _peek()


pooled_env = flyte.TaskEnvironment(name="attempt_tokens_pooled", reusable=flyte.ReusePolicy(replicas=1))


@pooled_env.task
async def pooled_peek() -> dict[str, int]:
    return _peek()
