"""Which backend a command talks to: the configured endpoint, else the local one."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import rich_click as click

from flyte._initialize import data_dir, scope
from flyte.cli._get import config_from_context

# Deferred imports: a command loads what it uses when it runs, so `flyte --help` and every
# other command start without the rest.


@dataclass
class Target:
    client: Any  # flyte._remote._client.BackendClient
    project: str | None
    domain: str | None
    org: str | None

    def run_id(self, name: str) -> Any:
        from flyteidl2.common import identifier_pb2

        return identifier_pb2.RunIdentifier(
            org=self.org or "", project=self.project or "", domain=self.domain or "", name=name
        )

    def action_id(self, run: str, action: str) -> Any:
        from flyteidl2.common import identifier_pb2

        return identifier_pb2.ActionIdentifier(run=self.run_id(run), name=action)


def resolve(
    ctx: click.Context,
    project: str | None = None,
    domain: str | None = None,
    start: bool = False,
    start_for_records: bool = False,
) -> Target:
    """The configured endpoint; otherwise the local backend: started if ``start``, or if
    ``start_for_records`` and the data dir holds records (local runs are kept there too)."""
    from flyte._remote._client import BackendClient
    from flyte._remote._local_backend import ensure_running, running_endpoint

    cfg = config_from_context(ctx)
    endpoint, insecure = cfg.endpoint, cfg.insecure
    if not endpoint:
        start = start or (start_for_records and (data_dir() / "backend.db").exists())
        endpoint = ensure_running(data_dir()) if start else running_endpoint(data_dir())
        insecure = True
        if endpoint is None:
            raise click.ClickException(
                "no endpoint is configured and no local backend is running; start one with `flyte start local`"
            )
    where = scope(project or cfg.project, domain or cfg.domain, cfg.org, endpoint)
    from flyte._remote._auth import API_KEY_ENV, ca_cert_of, settings_for

    auth = settings_for(cfg, insecure=insecure, api_key=os.environ.get(API_KEY_ENV)) if cfg.endpoint else None
    ca_cert = ca_cert_of(cfg) if cfg.endpoint else None
    return Target(
        client=BackendClient(endpoint, insecure=insecure, auth=auth, ca_cert=ca_cert),
        project=where.project,
        domain=where.domain,
        org=where.org,
    )
