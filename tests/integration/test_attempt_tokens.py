"""An action's process may update only its own action: ActionsService.Update needs the token the
backend gave that very attempt. Another action's process, or anyone else, is refused, and a run
cannot be marked done from outside while its process still runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import attempt_token_wf
import local_backend
import pytest

import flyte


@pytest.fixture
def backend_endpoint(tmp_path: Path) -> Iterator[str]:
    with local_backend.running(tmp_path / "data") as endpoint:
        flyte.init(endpoint=endpoint, insecure=True)
        yield endpoint


def test_an_attempt_updates_its_own_action_only(backend_endpoint: str) -> None:
    done = flyte.run(attempt_token_wf.parent).wait(quiet=True)
    assert done.phase == flyte.models.ActionPhase.SUCCEEDED, done
    own, no_token, forged, parents = done.outputs()[0]
    assert own == "ok"
    assert no_token == "PERMISSION_DENIED"
    assert forged == "PERMISSION_DENIED"
    assert parents == "PERMISSION_DENIED"


def test_a_running_root_cannot_be_marked_done_from_outside(backend_endpoint: str) -> None:
    from flyteidl2.actions import actions_service_pb2
    from flyteidl2.common import identifier_pb2, phase_pb2
    from flyteidl2.workflow import run_definition_pb2

    from flyte._bridge import controller, rpc

    run = flyte.run(attempt_token_wf.slow, seconds=2.0)
    time.sleep(0.5)
    request = actions_service_pb2.UpdateRequest(
        action_id=identifier_pb2.ActionIdentifier(
            run=identifier_pb2.RunIdentifier(
                org="", project="flytesnacks", domain="development", name=run.name
            ),
            name="a0",
        ),
        status=run_definition_pb2.ActionStatus(phase=phase_pb2.ACTION_PHASE_SUCCEEDED),
    )

    async def update() -> None:
        client = rpc.RpcClient(backend_endpoint, insecure=True)
        await client.unary(attempt_token_wf.UPDATE, request.SerializeToString())

    with pytest.raises(controller.ControllerError) as refused:
        asyncio.run(update())
    assert refused.value.code == "PERMISSION_DENIED"
    assert "only the running attempt" in str(refused.value)
    done = run.wait(quiet=True)
    assert done.phase == flyte.models.ActionPhase.SUCCEEDED, done
    assert done.outputs()[0] == "finished"
