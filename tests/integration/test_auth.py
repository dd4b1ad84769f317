"""Signing in to a backend that requires it, against a real OAuth2 authorization server
(authlib, tests/oauth_server.py) on 127.0.0.1 and the embedded backend started with
authentication required: discovery, client credentials (config and API key), the device flow,
PKCE through a real browser (chromium), tokens cached for this user only, renewed before they
expire, and a rejected token replaced without failing the call."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent.parent
AUDIENCE = "flyte-test"
APP_CLIENT, APP_SECRET = "pipeline-bot", "bot secret/with+odd chars"
FLYTE = str(Path(sys.executable).parent / "flyte")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class AuthServer:
    issuer: str
    proc: subprocess.Popen[str]

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.issuer}/stats", timeout=10) as r:
            return dict(json.loads(r.read()))


def _start_auth_server(lifetime: int) -> AuthServer:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(TESTS / "oauth_server.py"), str(port), AUDIENCE, str(lifetime)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return AuthServer(f"http://127.0.0.1:{port}", proc)


@pytest.fixture
def auth_server() -> Iterator[AuthServer]:
    server = _start_auth_server(3600)
    try:
        yield server
    finally:
        server.proc.terminate()
        server.proc.wait(timeout=10)


@pytest.fixture
def backend(auth_server: AuthServer, tmp_path: Path) -> Iterator[str]:
    from flyte import _core

    b = _core.Backend(
        str(tmp_path / "backend"),
        str(Path(sys.executable).parent),
        port=0,
        fork_server=[sys.executable, "-m", "flyte._runtime._forkserver"],
        auth_issuer=auth_server.issuer,
        auth_audience=AUDIENCE,
        auth_client_id="flyte-cli",
    )
    try:
        yield b.endpoint
    finally:
        b.shutdown()


WORKFLOW = """
import flyte

env = flyte.TaskEnvironment(name="authed")


@env.task
async def double(x: int) -> int:
    return x * 2


@env.task
async def main(x: int) -> int:
    return await double(x) + 1
"""


@dataclass
class User:
    """A user's machine: a home (where tokens are cached) and a project with a config file."""

    home: Path
    project: Path

    def flyte(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 240
    ) -> subprocess.CompletedProcess[str]:
        full = {**os.environ, "HOME": str(self.home), "NO_COLOR": "1", **(env or {})}
        return subprocess.run(
            [FLYTE, *args], cwd=self.project, capture_output=True, text=True, env=full, timeout=timeout
        )

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        full = {**os.environ, "HOME": str(self.home), "NO_COLOR": "1", **(env or {})}
        return subprocess.Popen(
            [FLYTE, *args],
            cwd=self.project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full,
        )


def _user(tmp_path: Path, endpoint: str, admin: dict[str, Any]) -> User:
    home, project = tmp_path / "home", tmp_path / "project"
    home.mkdir()
    (project / ".flyte").mkdir(parents=True)
    settings = {"endpoint": endpoint, "insecure": True, **admin}
    lines = ["admin:"] + [f"  {k}: {json.dumps(v)}" for k, v in settings.items()]
    (project / ".flyte" / "config.yaml").write_text("\n".join(lines) + "\n")
    (project / "wf.py").write_text(textwrap.dedent(WORKFLOW))
    return User(home, project)


def _token_files(user: User) -> list[Path]:
    return sorted((user.home / ".flyte" / "tokens").glob("*.json"))


def test_calls_without_a_token_are_refused_and_sign_in_is_described(
    backend: str, auth_server: AuthServer
) -> None:
    from flyteidl2.auth import auth_service_pb2

    from flyte import _core
    from flyte._remote._client import BackendClient, run_sync
    from flyte.errors import RuntimeSystemError

    client = BackendClient(backend, insecure=True)
    with pytest.raises(RuntimeSystemError, match="requires authentication"):
        run_sync(client.list_projects(""))
    # Discovery needs no token: it says how to get one.
    rpc = _core.RpcClient(backend, insecure=True)

    async def call(method: str, request: Any) -> bytes:
        return await rpc.unary(f"/flyteidl2.auth.AuthMetadataService/{method}", request.SerializeToString())

    raw = run_sync(call("GetOAuth2Metadata", auth_service_pb2.GetOAuth2MetadataRequest()))
    metadata = auth_service_pb2.GetOAuth2MetadataResponse.FromString(raw)
    assert metadata.token_endpoint == f"{auth_server.issuer}/token"
    assert metadata.device_authorization_endpoint == f"{auth_server.issuer}/device_authorization"
    raw = run_sync(call("GetPublicClientConfig", auth_service_pb2.GetPublicClientConfigRequest()))
    public = auth_service_pb2.GetPublicClientConfigResponse.FromString(raw)
    assert (public.client_id, public.redirect_uri) == ("flyte-cli", "http://localhost:53593/callback")
    assert public.audience == AUDIENCE
    # A token the authorization server did not sign is refused, saying why.
    forged = BackendClient(
        backend, insecure=True, auth={"flow": "ExternalCommand", "command": ["echo", "x.y.z"]}
    )
    with pytest.raises(RuntimeSystemError, match="malformed|not accepted"):
        run_sync(forged.list_projects(""))


def test_client_credentials_from_the_config_run_a_workflow(
    backend: str, auth_server: AuthServer, tmp_path: Path
) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(APP_SECRET + "\n")
    user = _user(
        tmp_path,
        backend,
        {"authType": "ClientSecret", "clientId": APP_CLIENT, "clientSecretLocation": str(secret_file)},
    )
    # Tasks call the backend back from their own processes: they are let in too.
    ran = user.flyte("run", "--follow", "wf.py", "main", "--x", "20")
    assert ran.returncode == 0, ran.stderr
    assert "41" in ran.stdout
    # The token is kept where only this user can read it, and reused by the next process.
    (cached,) = _token_files(user)
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600
    assert stat.S_IMODE(cached.parent.stat().st_mode) == 0o700
    assert json.loads(cached.read_text())["access_token"].count(".") == 2
    issued = auth_server.stats().get("client_credentials", 0)
    assert user.flyte("get", "run").returncode == 0
    assert auth_server.stats().get("client_credentials", 0) == issued
    # A wrong secret is a clear error, not a hang.
    secret_file.write_text("wrong")
    for f in _token_files(user):
        f.unlink()
    refused = user.flyte("get", "run")
    assert refused.returncode != 0 and "pipeline-bot was refused" in refused.stderr, refused.stderr


def test_an_api_key_signs_in_as_its_application(
    backend: str, auth_server: AuthServer, tmp_path: Path
) -> None:
    user = _user(tmp_path, backend, {})
    # As the reference encodes keys (its format has no room for a port in the endpoint; the
    # configured endpoint is the one used).
    key = base64.b64encode(f"flyte.example.com:{APP_CLIENT}:{APP_SECRET}:acme".encode()).decode()
    ran = user.flyte("run", "--follow", "wf.py", "main", "--x", "1", env={"FLYTE_API_KEY": key})
    assert ran.returncode == 0, ran.stderr
    assert "3" in ran.stdout
    bad = user.flyte("get", "run", env={"FLYTE_API_KEY": "not-a-key"})
    assert bad.returncode != 0 and "FLYTE_API_KEY" in bad.stderr


def test_the_device_flow_signs_in_once(backend: str, auth_server: AuthServer, tmp_path: Path) -> None:
    user = _user(tmp_path, backend, {"authType": "DeviceFlow"})
    proc = user.popen("get", "run")
    assert proc.stderr is not None
    prompt = ""
    deadline = time.monotonic() + 60
    while "To sign in" not in prompt and time.monotonic() < deadline:
        prompt += proc.stderr.readline()
    match = re.search(r"open (\S+) and confirm the code (\S+)", prompt)
    assert match, prompt
    # The user opens the URL on another device and confirms.
    with urllib.request.urlopen(match.group(1), timeout=10) as r:
        assert r.read() == b"approved"
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, prompt + err
    # The refresh token is cached: the next command signs in silently.
    assert user.flyte("get", "run").returncode == 0
    assert auth_server.stats().get("urn:ietf:params:oauth:grant-type:device_code") == 1


def test_pkce_signs_in_through_a_real_browser(backend: str, auth_server: AuthServer, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed; `make test-tools` installs it"
    user = _user(tmp_path, backend, {"authType": "Pkce"})
    # The browser the sign-in opens: headless chromium, which follows the authorization
    # server's redirect to the local callback.
    browser = tmp_path / "browser.sh"
    browser.write_text(
        "#!/bin/sh\n"
        f"exec {chromium} --headless=new --no-sandbox --disable-gpu --no-first-run "
        f'--user-data-dir={tmp_path / "chromium"} --dump-dom "$1" >/dev/null 2>&1\n'
    )
    browser.chmod(0o755)
    ran = user.flyte("get", "run", env={"BROWSER": str(browser)}, timeout=180)
    assert ran.returncode == 0, ran.stderr
    assert "Opening a browser to sign in" in ran.stderr
    assert auth_server.stats().get("authorization_code") == 1
    assert user.flyte("get", "run").returncode == 0
    assert auth_server.stats().get("authorization_code") == 1


def test_a_rejected_token_is_replaced_and_the_call_still_succeeds(
    backend: str, auth_server: AuthServer, tmp_path: Path
) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(APP_SECRET)
    user = _user(
        tmp_path,
        backend,
        {"authType": "ClientSecret", "clientId": APP_CLIENT, "clientSecretLocation": str(secret_file)},
    )
    assert user.flyte("get", "run").returncode == 0
    (cached,) = _token_files(user)
    token = json.loads(cached.read_text())
    # The token stops being accepted (revoked, or signed with a retired key) while cached.
    token["access_token"] = token["access_token"][:-8] + "AAAAAAAA"
    cached.write_text(json.dumps(token))
    before = auth_server.stats()["client_credentials"]
    assert user.flyte("get", "run").returncode == 0
    assert auth_server.stats()["client_credentials"] == before + 1


RENEWING = """
import sys, time
from flyte._remote._client import BackendClient, run_sync

client = BackendClient(sys.argv[1], insecure=True, auth={
    "flow": "ClientSecret", "client_id": "pipeline-bot", "client_secret": "bot secret/with+odd chars",
})
run_sync(client.list_projects(""))
time.sleep(6)
run_sync(client.list_projects(""))
print("ok")
"""


def test_tokens_are_renewed_before_they_expire(tmp_path: Path) -> None:
    from flyte import _core

    # Tokens that live 63 s are renewed a minute early: about 3 s after they are issued.
    short = _start_auth_server(63)
    b = _core.Backend(
        str(tmp_path / "backend"),
        str(Path(sys.executable).parent),
        port=0,
        auth_issuer=short.issuer,
        auth_audience=AUDIENCE,
    )
    try:
        script = tmp_path / "renewing.py"
        script.write_text(RENEWING)
        out = subprocess.run(
            [sys.executable, str(script), b.endpoint], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0 and "ok" in out.stdout, out.stderr
        assert short.stats()["client_credentials"] >= 2
    finally:
        b.shutdown()
        short.proc.terminate()
        short.proc.wait(timeout=10)


def test_listening_beyond_loopback_needs_authentication(auth_server: AuthServer, tmp_path: Path) -> None:
    open_to_all = subprocess.run(
        [FLYTE, "start", "local", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path / "a")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert open_to_all.returncode != 0
    assert "without authentication" in open_to_all.stderr, open_to_all.stderr
    guarded = subprocess.Popen(
        [
            FLYTE,
            "start",
            "local",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "b"),
            "--auth-issuer",
            auth_server.issuer,
            "--auth-audience",
            AUDIENCE,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert guarded.stdout is not None
        endpoint = guarded.stdout.readline().strip()
        assert endpoint.startswith("0.0.0.0:") or endpoint.split(":")[-1].isdigit(), endpoint
    finally:
        guarded.terminate()
        guarded.wait(timeout=30)


def test_passthrough_sends_the_callers_auth_metadata(backend: str, auth_server: AuthServer) -> None:
    """Behind flyte.init_passthrough a proxy authenticates: the caller's own token travels as
    request metadata, only inside flyte.remote.auth_metadata blocks."""
    import flyte
    import flyte.remote as remote
    from flyte.errors import RuntimeSystemError

    basic = base64.b64encode(f"{APP_CLIENT}:{APP_SECRET}".encode()).decode()
    request = urllib.request.Request(
        f"{auth_server.issuer}/token",
        data=b"grant_type=client_credentials",
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        token = json.loads(r.read())["access_token"]
    flyte.init_passthrough(endpoint=backend, insecure=True)
    with pytest.raises(RuntimeSystemError, match="requires authentication"):
        list(remote.Project.listall())
    with remote.auth_metadata(("authorization", f"Bearer {token}")):
        assert remote.User.get().subject()
        assert isinstance(list(remote.Project.listall()), list)
    with pytest.raises(RuntimeSystemError, match="requires authentication"):
        list(remote.Project.listall())
    with pytest.raises(ValueError, match="at least one"):
        with remote.auth_metadata():
            pass
    with pytest.raises(ValueError, match="not a metadata key"):
        with remote.auth_metadata(("Authorization", "x")):
            pass
