"""A real S3 API server for tests: moto's server mode on 127.0.0.1, in a subprocess.

``start_moto()`` picks a free port, starts ``python -m moto.server``, waits until it
answers HTTP and returns a handle with the endpoint URL. ``create_bucket`` sends a
``PUT /bucket`` with an
unchecked Authorization header, which moto accepts while authentication is off.

Pass ``auth_after=N`` to make moto enforce IAM authentication after the first N
requests (moto's ``INITIAL_NO_AUTH_ACTION_COUNT``); every later request signed with
unknown credentials is then refused with 403 ``InvalidAccessKeyId``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class S3:
    endpoint: str
    bucket: str

    def uri(self, *parts: str) -> str:
        """A fresh URI under the bucket (each call gets a unique prefix)."""
        return "/".join((f"s3://{self.bucket}", uuid.uuid4().hex[:12], *(p.strip("/") for p in parts)))


def aws_env(endpoint: str, key: str = "testing", secret: str = "testing") -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }


@dataclass
class MotoServer:
    endpoint: str
    process: subprocess.Popen[bytes]

    def create_bucket(self, name: str) -> None:
        # moto routes a request to a service by the credential scope in its Authorization
        # header; the signature itself is not checked while authentication is off.
        auth = (
            "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/s3/aws4_request, "
            "SignedHeaders=host, Signature=0"
        )
        req = urllib.request.Request(
            f"{self.endpoint}/{name}", method="PUT", data=b"", headers={"Authorization": auth}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto(*, auth_after: int | None = None, timeout: float = 30.0) -> MotoServer:
    port = _free_port()
    env = dict(os.environ)
    env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)
    if auth_after is not None:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(auth_after)
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited with code {proc.returncode} before answering")
        try:
            # moto's own health endpoint; it is not counted as an S3 action.
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1) as resp:
                resp.read()
            break
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"moto server did not answer on {endpoint} within {timeout}s") from None
            time.sleep(0.1)
    return MotoServer(endpoint=endpoint, process=proc)


@contextmanager
def moto_server(*, auth_after: int | None = None) -> Iterator[MotoServer]:
    server = start_moto(auth_after=auth_after)
    try:
        yield server
    finally:
        server.stop()
