"""Requests a client should never send, answered with a clear status: undecodable bytes are
INVALID_ARGUMENT, and an error that quotes a client's huge value stays small."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import local_backend
import pytest
from protowire import varint

import flyte
from flyte._remote._client import BackendClient
from flyte.errors import ActionNotFoundError, RuntimeSystemError


@pytest.fixture
def backend_endpoint(tmp_path: Path) -> Iterator[str]:
    """A backend of its own: the session's checks that every request is valid do not apply."""
    with local_backend.running(tmp_path / "data") as endpoint:
        yield endpoint


def test_a_huge_value_quoted_in_an_error_is_cut(backend_endpoint: str) -> None:
    from flyteidl2.common import identifier_pb2

    client = BackendClient(backend_endpoint, insecure=True)
    huge = "r" + "x" * 10_000_000
    run_id = identifier_pb2.RunIdentifier(org="", project="flytesnacks", domain="development", name=huge)
    with pytest.raises((ActionNotFoundError, RuntimeSystemError)) as refused:
        asyncio.run(client.get_run_details(run_id))
    message = str(refused.value)
    assert len(message) < 2_000, len(message)
    assert "at most 255 are allowed" in message


def test_undecodable_requests_are_invalid_arguments(backend_endpoint: str) -> None:
    from flyteidl2.workflow import run_service_pb2

    from flyte._bridge import controller

    client = BackendClient(backend_endpoint, insecure=True)

    async def send() -> None:
        await client._rpc.unary("/flyteidl2.workflow.RunService/GetRunDetails", b"\xff\xff\xff\xff")

    with pytest.raises(controller.ControllerError) as refused:
        asyncio.run(send())
    assert refused.value.code == "INVALID_ARGUMENT"
    assert run_service_pb2.GetRunDetailsRequest  # the method exists: only the bytes were wrong


def test_an_error_never_repeats_a_huge_value_whole(backend_endpoint: str) -> None:
    from flyteidl2.common import identifier_pb2, list_pb2
    from flyteidl2.workflow import run_service_pb2

    from flyte._bridge import controller

    client = BackendClient(backend_endpoint, insecure=True)
    huge = "f" * 5_000_000
    request = run_service_pb2.ListRunsRequest(
        request=list_pb2.ListRequest(
            filters=[list_pb2.Filter(function=list_pb2.Filter.EQUAL, field=huge, values=["x"])]
        ),
        project_id=identifier_pb2.ProjectIdentifier(name="flytesnacks", domain="development"),
    )

    async def send() -> None:
        await client._rpc.unary("/flyteidl2.workflow.RunService/ListRuns", request.SerializeToString())

    with pytest.raises(controller.ControllerError) as refused:
        asyncio.run(send())
    assert refused.value.code == "INVALID_ARGUMENT"
    assert len(refused.value.message) < 2_000, len(refused.value.message)
    assert refused.value.message.endswith("bytes in all)")  # the backend quoted it, then cut it


def test_streams_past_the_per_connection_limit_wait_their_turn(tmp_path: Path) -> None:
    import os

    import restart_wf

    import flyte

    gate = tmp_path / "gate"
    # Two streams at most per connection: a third (on the same connection) waits until one ends.
    with local_backend.running(
        tmp_path / "data", "--port", "0", "--max-streams-per-connection", "2"
    ) as endpoint:
        flyte.init(endpoint=endpoint, insecure=True)
        env = {"FLYTE_TEST_COUNTERS": os.environ["FLYTE_TEST_COUNTERS"]}
        run = flyte.with_runcontext(env_vars=env).run(restart_wf.chain, n=1, gate_at=0, gate=str(gate))
        run_id = run.pb2.action.id.run
        client = BackendClient(endpoint, insecure=True)

        async def scenario() -> tuple[bool, bool]:
            async def first_details(stream) -> object:
                return await stream.__anext__()

            streams = [client.watch_run_details(run_id) for _ in range(3)]
            held = [asyncio.ensure_future(first_details(s)) for s in streams[:2]]
            await asyncio.wait_for(asyncio.gather(*held), timeout=20)
            third = asyncio.ensure_future(first_details(streams[2]))
            await asyncio.sleep(2)
            waited = not third.done()
            await streams[0].aclose()
            await asyncio.wait_for(third, timeout=20)
            for s in streams[1:]:
                await s.aclose()
            return waited, third.done()

        waited, served = asyncio.run(scenario())
        Path(f"{gate}.go").touch()
        assert run.wait(quiet=True).phase == flyte.models.ActionPhase.SUCCEEDED
    assert waited and served


def test_a_connection_over_its_request_rate_is_told_to_slow_down(tmp_path: Path) -> None:
    import http.client

    import attempt_token_wf

    with local_backend.running(
        tmp_path / "data", "--port", "0", "--max-requests-per-second", "20"
    ) as endpoint:
        host, port = endpoint.split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        statuses = []
        for _ in range(60):
            connection.request(
                "POST",
                "/flyteidl2.workflow.RunService/ListRuns",
                body=b"",
                headers={"content-type": "application/proto"},
            )
            response = connection.getresponse()
            body = response.read()
            statuses.append(response.status)
        connection.close()
        assert 20 <= statuses.count(200) < 60, statuses
        assert statuses.count(429) == 60 - statuses.count(200), statuses
        assert b"at most 20 a second" in body or statuses[-1] == 200

        # Our client backs off from RESOURCE_EXHAUSTED: a fan-out over the rate still completes.
        flyte.init(endpoint=endpoint, insecure=True)
        done = flyte.run(attempt_token_wf.squares, n=40).wait(quiet=True)
        assert done.phase == flyte.models.ActionPhase.SUCCEEDED, done
        assert done.outputs()[0] == sum(i * i for i in range(40))


def test_messages_over_the_configured_size_are_refused(tmp_path: Path) -> None:
    import http.client

    from flyteidl2.common import identifier_pb2

    from flyte._bridge import controller

    with local_backend.running(tmp_path / "data", "--port", "0", "--max-message-bytes", "4096") as endpoint:
        host, port = endpoint.split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        for size, expected in ((1_000, 200), (10_000, 429)):
            connection.request(
                "POST",
                "/flyteidl2.workflow.RunService/ListRuns",
                # Unknown field 15 (bytes): decodes, and only its size matters.
                body=b"\x7a" + varint(size) + b"x" * size,
                headers={"content-type": "application/proto"},
            )
            response = connection.getresponse()
            body = response.read()
            assert response.status == expected, (size, body)
        assert b"larger than the limit of 4096 bytes" in body
        connection.close()

        client = BackendClient(endpoint, insecure=True)
        run_id = identifier_pb2.RunIdentifier(
            org="", project="flytesnacks", domain="development", name="r" * 10_000
        )

        async def send() -> None:
            from flyteidl2.workflow import run_service_pb2

            request = run_service_pb2.GetRunDetailsRequest(run_id=run_id)
            await client._rpc.unary(
                "/flyteidl2.workflow.RunService/GetRunDetails", request.SerializeToString()
            )

        with pytest.raises(controller.ControllerError) as refused:
            asyncio.run(send())
        assert refused.value.code in ("OUT_OF_RANGE", "RESOURCE_EXHAUSTED"), refused.value
        assert "4096" in str(refused.value)
