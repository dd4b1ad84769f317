"""Run-level calls to a backend (RunService, DataProxyService) over the Rust gRPC client.

Messages are built and decoded here with the flyteidl2 ``_pb2`` modules; the Rust side
only moves bytes, so every call speaks the real protocol.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

from flyte._aio import loop_running_here
from flyte._bridge import contract, controller, ledger, rpc
from flyte.errors import ActionNotFoundError, InitializationError, RuntimeSystemError
from flyte.remote._auth_metadata import current_auth_metadata

T = TypeVar("T")

_RUNS = "/flyteidl2.workflow.RunService/"
_DATA = "/flyteidl2.dataproxy.DataProxyService/"
_TASKS = "/flyteidl2.task.TaskService/"
_TRIGGERS = "/flyteidl2.trigger.TriggerService/"
_SECRETS = "/flyteidl2.secret.SecretService/"
_PROJECTS = "/flyteidl2.project.ProjectService/"
_IDENTITY = "/flyteidl2.auth.IdentityService/"


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine to completion from sync code, even inside a running event loop."""
    if not loop_running_here():
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            box["error"] = e

    t = threading.Thread(target=target, name="flyte-client")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


#: Most characters of the caller's description (names it was given) an error repeats.
_WHAT_CHARS = 200


def _translate(e: Exception, what: str) -> Exception:
    if len(what) > _WHAT_CHARS:
        what = f"{what[:_WHAT_CHARS]}... ({len(what)} characters)"
    code = getattr(e, "code", "")
    message = getattr(e, "message", str(e))
    if code == "NOT_FOUND":
        return ActionNotFoundError(message=f"{what}: {message}")
    if code in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
        return InitializationError.because(f"{what}: the backend is not reachable ({message})")
    return RuntimeSystemError(code or "RpcError", f"{what}: {message}")


class BackendClient:
    """A connection to one backend endpoint."""

    def __init__(
        self,
        endpoint: str,
        insecure: bool = False,
        auth: dict[str, Any] | None = None,
        ca_cert: bytes | None = None,
    ) -> None:
        """``auth``: how to sign in (``flyte._remote._auth.settings_for``), None for not at all;
        ``ca_cert``: PEM certificates of a private CA to trust besides the system's."""
        self.endpoint = endpoint
        self.insecure = insecure
        headers = list(current_auth_metadata())
        self._rpc = rpc.RpcClient(endpoint, insecure=insecure, auth=auth, ca_cert=ca_cert, headers=headers)

    async def _unary(self, method: str, request: Any, response_type: Any, what: str) -> Any:
        try:
            raw = await self._rpc.unary(method, request.SerializeToString())
        except controller.ControllerError as e:
            raise _translate(e, what) from None
        return response_type.FromString(raw)

    async def _stream(self, method: str, request: Any, response_type: Any, what: str) -> AsyncIterator[Any]:
        stream = self._rpc.stream(method, request.SerializeToString())
        try:
            async for raw in stream:
                yield response_type.FromString(raw)
        except controller.ControllerError as e:
            raise _translate(e, what) from None
        finally:
            stream.cancel()

    async def runs_images(self) -> bool:
        """Whether the backend runs tasks in the images they name (a cluster), so they must be
        built and pushed first; the embedded backend says it runs them on its own machine."""
        from flyteidl2.auth import identity_pb2

        try:
            _, headers = await self._rpc.unary_with_headers(
                "/flyteidl2.auth.IdentityService/UserInfo", identity_pb2.UserInfoRequest().SerializeToString()
            )
        except controller.ControllerError as e:
            raise _translate(e, "asking the backend what it is") from None
        return headers.get(contract.BACKEND_KIND_HEADER) != contract.EMBEDDED_BACKEND_KIND

    # -- runs -----------------------------------------------------------------------------

    async def create_run(self, request: Any) -> Any:
        from flyteidl2.workflow import run_service_pb2

        resp = await self._unary(
            _RUNS + "CreateRun", request, run_service_pb2.CreateRunResponse, "creating the run"
        )
        return resp.run

    async def get_run_details(self, run_id: Any) -> Any:
        from flyteidl2.workflow import run_service_pb2

        req = run_service_pb2.GetRunDetailsRequest(run_id=run_id)
        resp = await self._unary(
            _RUNS + "GetRunDetails", req, run_service_pb2.GetRunDetailsResponse, f"run {run_id.name}"
        )
        return resp.details

    async def watch_run_details(self, run_id: Any) -> AsyncIterator[Any]:
        """RunDetails, first as they are, then at every change."""
        from flyteidl2.workflow import run_service_pb2

        req = run_service_pb2.WatchRunDetailsRequest(run_id=run_id)
        what = f"run {run_id.name}"
        async for resp in self._stream(
            _RUNS + "WatchRunDetails", req, run_service_pb2.WatchRunDetailsResponse, what
        ):
            yield resp.details

    async def get_action_details(self, action_id: Any) -> Any:
        from flyteidl2.workflow import run_service_pb2

        req = run_service_pb2.GetActionDetailsRequest(action_id=action_id)
        what = f"action {action_id.name} of run {action_id.run.name}"
        resp = await self._unary(
            _RUNS + "GetActionDetails", req, run_service_pb2.GetActionDetailsResponse, what
        )
        return resp.details

    async def get_action_data(self, action_id: Any) -> Any:
        from flyteidl2.workflow import run_service_pb2

        req = run_service_pb2.GetActionDataRequest(action_id=action_id)
        what = f"data of action {action_id.name} of run {action_id.run.name}"
        return await self._unary(_RUNS + "GetActionData", req, run_service_pb2.GetActionDataResponse, what)

    async def list_runs(self, project_id: Any, limit: int = 50) -> list[Any]:
        from flyteidl2.common import list_pb2
        from flyteidl2.workflow import run_service_pb2

        req = run_service_pb2.ListRunsRequest(
            request=list_pb2.ListRequest(limit=limit), project_id=project_id
        )
        resp = await self._unary(_RUNS + "ListRuns", req, run_service_pb2.ListRunsResponse, "listing runs")
        return list(resp.runs)

    async def list_actions(self, run_id: Any, limit: int = 1000) -> list[Any]:
        from flyteidl2.common import list_pb2
        from flyteidl2.workflow import run_service_pb2

        req = run_service_pb2.ListActionsRequest(request=list_pb2.ListRequest(limit=limit), run_id=run_id)
        resp = await self._unary(
            _RUNS + "ListActions", req, run_service_pb2.ListActionsResponse, f"actions of run {run_id.name}"
        )
        return list(resp.actions)

    async def list_runs_page(
        self, project_id: Any, request: Any, paused_actions_only: bool = False
    ) -> tuple[list[Any], str]:
        """One page of runs (``request``: a ``ListRequest`` with filters, sort and token) and the
        token of the next page ("" after the last)."""
        from flyteidl2.workflow import run_service_pb2

        req = run_service_pb2.ListRunsRequest(
            request=request, project_id=project_id, paused_actions_only=paused_actions_only
        )
        resp = await self._unary(_RUNS + "ListRuns", req, run_service_pb2.ListRunsResponse, "listing runs")
        return list(resp.runs), resp.token

    async def list_actions_page(self, run_id: Any, request: Any) -> tuple[list[Any], str]:
        """One page of a run's actions and the token of the next page ("" after the last)."""
        from flyteidl2.workflow import run_service_pb2

        req = run_service_pb2.ListActionsRequest(request=request, run_id=run_id)
        resp = await self._unary(
            _RUNS + "ListActions", req, run_service_pb2.ListActionsResponse, f"actions of run {run_id.name}"
        )
        return list(resp.actions), resp.token

    async def watch_actions(self, run_id: Any) -> AsyncIterator[list[Any]]:
        """The run's actions (``EnrichedAction``: the action and its children's phase counts),
        every one first, then each batch of changes, until the run ends."""
        from flyteidl2.workflow import run_service_pb2

        req = run_service_pb2.WatchActionsRequest(run_id=run_id)
        what = f"actions of run {run_id.name}"
        async for resp in self._stream(
            _RUNS + "WatchActions", req, run_service_pb2.WatchActionsResponse, what
        ):
            yield list(resp.enriched_actions)

    async def watch_action_details(self, action_id: Any) -> AsyncIterator[Any]:
        """ActionDetails, first as they are, then at every change."""
        from flyteidl2.workflow import run_service_pb2

        req = run_service_pb2.WatchActionDetailsRequest(action_id=action_id)
        what = f"action {action_id.name} of run {action_id.run.name}"
        async for resp in self._stream(
            _RUNS + "WatchActionDetails", req, run_service_pb2.WatchActionDetailsResponse, what
        ):
            yield resp.details

    async def abort_action(self, action_id: Any, reason: str) -> None:
        from flyteidl2.workflow import run_service_pb2

        req = run_service_pb2.AbortActionRequest(action_id=action_id, reason=reason)
        what = f"aborting action {action_id.name} of run {action_id.run.name}"
        await self._unary(_RUNS + "AbortAction", req, run_service_pb2.AbortActionResponse, what)

    async def signal_event(self, action_id: Any, parent_action_name: str, payload: Any) -> None:
        """Resolves a condition action with ``payload`` (a ``run_service.EventPayload``)."""
        from flyteidl2.workflow import run_service_pb2

        req = run_service_pb2.SignalEventRequest(
            action_id=action_id, parent_action_name=parent_action_name, payload=payload
        )
        what = f"signalling condition {action_id.name} of run {action_id.run.name}"
        await self._unary(_RUNS + "SignalEvent", req, run_service_pb2.SignalEventResponse, what)

    async def report_link(self, action_id: Any, attempt: int) -> str:
        """A signed URL to download the report of an attempt (1-based) of an action."""
        from flyteidl2.common import identifier_pb2
        from flyteidl2.dataproxy import dataproxy_service_pb2

        req = dataproxy_service_pb2.CreateDownloadLinkRequest(
            artifact_type=dataproxy_service_pb2.ARTIFACT_TYPE_REPORT,
            action_attempt_id=identifier_pb2.ActionAttemptIdentifier(action_id=action_id, attempt=attempt),
        )
        what = f"report of action {action_id.name} of run {action_id.run.name}"
        resp = await self._unary(
            _DATA + "CreateDownloadLink", req, dataproxy_service_pb2.CreateDownloadLinkResponse, what
        )
        urls = list(resp.pre_signed_urls.signed_url)
        if not urls:
            raise ActionNotFoundError(message=f"{what}: the backend gave no download link")
        return urls[0]

    async def abort_run(self, run_id: Any, reason: str) -> None:
        from flyteidl2.workflow import run_service_pb2

        req = run_service_pb2.AbortRunRequest(run_id=run_id, reason=reason)
        await self._unary(
            _RUNS + "AbortRun", req, run_service_pb2.AbortRunResponse, f"aborting run {run_id.name}"
        )

    async def tail_logs(self, action_id: Any, attempt: int = 0) -> AsyncIterator[Any]:
        """Log lines of an attempt (1-based; 0: the latest), then new ones until it ends."""
        from flyteidl2.dataproxy import dataproxy_service_pb2

        if attempt == 0:
            attempt = await self._latest_attempt(action_id)
        req = dataproxy_service_pb2.TailLogsRequest(action_id=action_id, attempt=attempt)
        what = f"logs of action {action_id.name} of run {action_id.run.name}"
        async for resp in self._stream(_DATA + "TailLogs", req, dataproxy_service_pb2.TailLogsResponse, what):
            yield resp

    async def _latest_attempt(self, action_id: Any) -> int:
        """The action's latest attempt (the service names them from 1 and has no "latest"),
        waiting for the first one if the action has not started yet."""
        from flyteidl2.common import phase_pb2

        while True:
            status = (await self.get_action_details(action_id)).status
            if status.attempts > 0 or ledger.is_terminal(phase_pb2.ActionPhase.Name(status.phase)):
                return max(status.attempts, 1)
            await asyncio.sleep(0.2)

    # -- deployed tasks -------------------------------------------------------------------

    async def deploy_task(self, task_id: Any, spec: Any, triggers: list[Any]) -> None:
        from flyteidl2.task import task_service_pb2

        req = task_service_pb2.DeployTaskRequest(task_id=task_id, spec=spec, triggers=triggers)
        await self._unary(
            _TASKS + "DeployTask", req, task_service_pb2.DeployTaskResponse, f"deploying {task_id.name}"
        )

    async def get_task_details(self, task_id: Any) -> Any:
        from flyteidl2.task import task_service_pb2

        req = task_service_pb2.GetTaskDetailsRequest(task_id=task_id)
        what = f"task {task_id.name} version {task_id.version}"
        resp = await self._unary(
            _TASKS + "GetTaskDetails", req, task_service_pb2.GetTaskDetailsResponse, what
        )
        return resp.details

    async def list_tasks(
        self, project_id: Any, name: str | None = None, name_contains: str | None = None, limit: int = 100
    ) -> list[Any]:
        """The latest version of each task (newest first), optionally of one name or with names
        containing some text."""
        from flyteidl2.common import list_pb2
        from flyteidl2.task import task_service_pb2

        request = list_pb2.ListRequest(limit=min(limit, 1000))
        request.sort_by_fields.add(key="created_at", direction=list_pb2.Sort.DESCENDING)
        if name is not None:
            request.filters.add(function=list_pb2.Filter.EQUAL, field="name", values=[name])
        if name_contains is not None:
            request.filters.add(function=list_pb2.Filter.CONTAINS, field="name", values=[name_contains])
        out: list[Any] = []
        while True:
            req = task_service_pb2.ListTasksRequest(request=request, project_id=project_id)
            resp = await self._unary(
                _TASKS + "ListTasks", req, task_service_pb2.ListTasksResponse, "listing tasks"
            )
            out.extend(resp.tasks)
            if not resp.token or len(out) >= limit:
                return out[:limit]
            request.token = resp.token

    async def list_versions(self, task_name: Any, limit: int = 100) -> list[Any]:
        from flyteidl2.common import list_pb2
        from flyteidl2.task import task_service_pb2

        req = task_service_pb2.ListVersionsRequest(
            request=list_pb2.ListRequest(limit=limit), task_name=task_name
        )
        what = f"versions of {task_name.name}"
        resp = await self._unary(_TASKS + "ListVersions", req, task_service_pb2.ListVersionsResponse, what)
        return list(resp.versions)

    # -- triggers ---------------------------------------------------------------------------

    async def list_triggers(self, scope: Any, limit: int = 100) -> list[Any]:
        """Triggers of a project (``ProjectIdentifier``) or of one task (``TaskName``)."""
        from flyteidl2.common import identifier_pb2, list_pb2
        from flyteidl2.trigger import trigger_service_pb2

        request = list_pb2.ListRequest(limit=min(limit, 1000))
        if isinstance(scope, identifier_pb2.ProjectIdentifier):
            req = trigger_service_pb2.ListTriggersRequest(request=request, project_id=scope)
        else:
            req = trigger_service_pb2.ListTriggersRequest(request=request, task_name=scope)
        resp = await self._unary(
            _TRIGGERS + "ListTriggers", req, trigger_service_pb2.ListTriggersResponse, "listing triggers"
        )
        return list(resp.triggers)

    async def get_trigger(self, name: Any) -> Any:
        from flyteidl2.trigger import trigger_service_pb2

        req = trigger_service_pb2.GetTriggerDetailsRequest(name=name)
        what = f"trigger {name.name} of {name.task_name}"
        resp = await self._unary(
            _TRIGGERS + "GetTriggerDetails", req, trigger_service_pb2.GetTriggerDetailsResponse, what
        )
        return resp.trigger

    async def deploy_trigger(self, name: Any, spec: Any, automation_spec: Any) -> Any:
        """Creates (or replaces) a trigger of a deployed task; returns its details."""
        from flyteidl2.trigger import trigger_service_pb2

        req = trigger_service_pb2.DeployTriggerRequest(name=name, spec=spec, automation_spec=automation_spec)
        what = f"deploying trigger {name.name} of {name.task_name}"
        resp = await self._unary(
            _TRIGGERS + "DeployTrigger", req, trigger_service_pb2.DeployTriggerResponse, what
        )
        return resp.trigger

    async def set_triggers_active(self, names: list[Any], active: bool) -> None:
        from flyteidl2.trigger import trigger_service_pb2

        req = trigger_service_pb2.UpdateTriggersRequest(names=names, active=active)
        what = ("activating " if active else "deactivating ") + ", ".join(n.name for n in names)
        await self._unary(_TRIGGERS + "UpdateTriggers", req, trigger_service_pb2.UpdateTriggersResponse, what)

    async def delete_triggers(self, names: list[Any]) -> None:
        from flyteidl2.trigger import trigger_service_pb2

        req = trigger_service_pb2.DeleteTriggersRequest(names=names)
        what = "deleting " + ", ".join(n.name for n in names)
        await self._unary(_TRIGGERS + "DeleteTriggers", req, trigger_service_pb2.DeleteTriggersResponse, what)

    # -- identity ---------------------------------------------------------------------------

    async def user_info(self) -> Any:
        from flyteidl2.auth import identity_pb2

        return await self._unary(
            _IDENTITY + "UserInfo", identity_pb2.UserInfoRequest(), identity_pb2.UserInfoResponse, "who am I"
        )

    # -- projects ---------------------------------------------------------------------------

    async def create_project(self, project: Any) -> None:
        from flyteidl2.project import project_service_pb2 as ps

        req = ps.CreateProjectRequest(project=project)
        await self._unary(
            _PROJECTS + "CreateProject", req, ps.CreateProjectResponse, f"creating project {project.id}"
        )

    async def update_project(self, project: Any) -> None:
        from flyteidl2.project import project_service_pb2 as ps

        req = ps.UpdateProjectRequest(project=project)
        await self._unary(
            _PROJECTS + "UpdateProject", req, ps.UpdateProjectResponse, f"updating project {project.id}"
        )

    async def get_project(self, project_id: str, org: str) -> Any:
        from flyteidl2.project import project_service_pb2 as ps

        req = ps.GetProjectRequest(id=project_id, org=org)
        resp = await self._unary(
            _PROJECTS + "GetProject", req, ps.GetProjectResponse, f"project {project_id}"
        )
        return resp.project

    async def list_projects(self, org: str, filters: str = "") -> list[Any]:
        from flyteidl2.project import project_service_pb2 as ps

        out: list[Any] = []
        token = ""
        while True:
            req = ps.ListProjectsRequest(limit=100, token=token, org=org, filters=filters)
            resp = await self._unary(
                _PROJECTS + "ListProjects", req, ps.ListProjectsResponse, "listing projects"
            )
            out.extend(resp.projects.projects)
            token = resp.projects.token
            if not token:
                return out

    # -- secrets ----------------------------------------------------------------------------

    async def create_secret(self, secret_id: Any, value: bytes, image_pull: bool = False) -> None:
        from flyteidl2.secret import definition_pb2, payload_pb2

        kind = (
            definition_pb2.SECRET_TYPE_IMAGE_PULL_SECRET if image_pull else definition_pb2.SECRET_TYPE_GENERIC
        )
        spec = definition_pb2.SecretSpec(binary_value=value, type=kind)
        req = payload_pb2.CreateSecretRequest(id=secret_id, secret_spec=spec)
        await self._unary(
            _SECRETS + "CreateSecret",
            req,
            payload_pb2.CreateSecretResponse,
            f"creating secret {secret_id.name}",
        )

    async def get_secret(self, secret_id: Any) -> Any:
        from flyteidl2.secret import payload_pb2

        req = payload_pb2.GetSecretRequest(id=secret_id)
        resp = await self._unary(
            _SECRETS + "GetSecret", req, payload_pb2.GetSecretResponse, f"secret {secret_id.name}"
        )
        return resp.secret

    async def list_secrets(
        self, org: str, project: str, domain: str, limit: int = 1000, page_size: int = 1000
    ) -> list[Any]:
        from flyteidl2.secret import payload_pb2

        out: list[Any] = []
        token = ""
        while True:
            req = payload_pb2.ListSecretsRequest(
                organization=org,
                project=project,
                domain=domain,
                limit=min(limit, page_size, 1000),
                token=token,
            )
            resp = await self._unary(
                _SECRETS + "ListSecrets", req, payload_pb2.ListSecretsResponse, "listing secrets"
            )
            out.extend(resp.secrets)
            token = resp.token
            if not token or len(out) >= limit:
                return out[:limit]

    async def delete_secret(self, secret_id: Any) -> None:
        from flyteidl2.secret import payload_pb2

        req = payload_pb2.DeleteSecretRequest(id=secret_id)
        await self._unary(
            _SECRETS + "DeleteSecret",
            req,
            payload_pb2.DeleteSecretResponse,
            f"deleting secret {secret_id.name}",
        )

    # -- data -----------------------------------------------------------------------------

    async def create_upload_location(self, request: Any) -> Any:
        from flyteidl2.dataproxy import dataproxy_service_pb2

        return await self._unary(
            _DATA + "CreateUploadLocation",
            request,
            dataproxy_service_pb2.CreateUploadLocationResponse,
            f"asking where to upload {request.filename}",
        )
