"""Our task container run exactly as a Flyte 2 cluster runs a pod: the container args of the
task spec our SDK builds, with the cluster's template variables filled in, the environment the
cluster's executor sets (nothing private to the embedded backend), the code bundle and all data
on S3 (moto on 127.0.0.1). Outputs come back as a LiteralMap in `outputs.pb`, failures as a
`core.ErrorDocument` in `error.pb`."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from flyte import _storage as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from podspec import pod_for  # noqa: E402
from s3server import S3, aws_env  # noqa: E402

MODULE = textwrap.dedent(
    """
    import flyte

    env = flyte.TaskEnvironment(name="podlike")

    @env.task
    async def greet(who: str, times: int) -> str:
        return " ".join([f"hello {who}"] * times)

    @env.task
    def refuse(who: str, times: int) -> str:
        raise PermissionError(f"{who} may not pass")
    """
)


def _load(tmp_path: Path, name: str) -> Any:
    import importlib

    (tmp_path / "podlike.py").write_text(MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("podlike")
    finally:
        sys.path.remove(str(tmp_path))
    return getattr(module, name)


def _run_pod(task: Any, tmp_path: Path, s3: S3) -> tuple[subprocess.CompletedProcess[str], str]:
    """Uploads the bundle and inputs to S3, runs the container, returns (process, output prefix)."""
    pod = pod_for(task, tmp_path, {"who": "pod", "times": 2}, s3.uri)
    # The pod's image environment (PATH, credentials) beside what the cluster's executor sets.
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        **pod.env,
        **aws_env(s3.endpoint),
    }
    work = tmp_path / "pod"
    work.mkdir()
    proc = subprocess.run(pod.args, cwd=work, env=env, capture_output=True, text=True, timeout=120)
    return proc, pod.output_prefix


def test_a_task_runs_from_its_container_args_with_code_and_data_on_s3(s3: S3, tmp_path: Path) -> None:
    from flyteidl2.core import literals_pb2

    task = _load(tmp_path, "greet")
    proc, out = _run_pod(task, tmp_path, s3)
    assert proc.returncode == 0, proc.stderr
    outputs = literals_pb2.LiteralMap.FromString(st.get_bytes_sync(out + "outputs.pb"))
    assert outputs.literals["o0"].scalar.primitive.string_value == "hello pod hello pod"
    assert not st.exists_sync(out + "error.pb")


def test_a_failing_task_writes_an_error_document(s3: S3, tmp_path: Path) -> None:
    from flyteidl2.core import execution_pb2

    task = _load(tmp_path, "refuse")
    proc, out = _run_pod(task, tmp_path, s3)
    # The process ends normally: the failure is reported in error.pb, as the cluster reads it.
    assert proc.returncode == 0, proc.stderr
    document = execution_pb2.ErrorDocument.FromString(st.get_bytes_sync(out + "error.pb"))
    assert document.error.code == "PermissionError"
    assert "pod may not pass" in document.error.message
    # A user error may pass on another attempt: the task's retries decide.
    assert document.error.kind == execution_pb2.ContainerError.RECOVERABLE
    assert document.error.origin == execution_pb2.ExecutionError.USER
    assert not st.exists_sync(out + "outputs.pb")


@pytest.fixture(autouse=True)
def _aws(s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in aws_env(s3.endpoint).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delitem(sys.modules, "podlike", raising=False)
