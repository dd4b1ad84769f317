"""What the CLI and the backend share with a Flyte 2 cluster: run-name rules, TLS, the image
mapping of `flyte start local`, and code bundles uploaded through the data proxy."""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_cli_backend import cli, flyte_exe  # noqa: E402

WORKFLOW = textwrap.dedent(
    """
    import os
    import flyte

    env = flyte.TaskEnvironment(name="contract")
    custom = flyte.TaskEnvironment(name="custom", image="registry.example.com/team/custom:1")

    @env.task
    async def add(a: int, b: int) -> int:
        return a + b

    @env.task
    async def plain_environment() -> str:
        return os.environ.get("STAND_IN_ENV", "default")

    @custom.task
    async def which_environment() -> str:
        return os.environ.get("STAND_IN_ENV", "default")
    """
)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "wf.py").write_text(WORKFLOW)
    return tmp_path


def start_backend(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [flyte_exe(), "start", "local", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    endpoint = proc.stdout.readline().strip()
    if not endpoint:
        proc.wait(timeout=30)
        raise AssertionError(proc.stderr.read() if proc.stderr else "the backend did not start")
    return proc, endpoint


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_a_bad_run_name_is_refused_before_anything_is_sent(workdir: Path) -> None:
    env = {**os.environ, "FLYTE_DATA_DIR": str(workdir / "data"), "HOME": str(workdir)}
    for bad in ["Upper", "has_underscore", "9starts-with-digit", "a" * 31]:
        out = cli("run", "--name", bad, "wf.py", "add", "--a", "1", "--b", "2", cwd=workdir, env=env)
        assert out.returncode == 2, out.stderr
        assert "1-30 characters" in out.stderr and bad in out.stderr
    # Nothing was started, so nothing was sent.
    assert not (workdir / "data" / "backend.json").exists()

    good = cli(
        "run", "--local", "--name", "my-run-1", "wf.py", "add", "--a", "1", "--b", "2", cwd=workdir, env=env
    )
    assert good.returncode == 0, good.stderr
    assert "3" in good.stdout


def _tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for 127.0.0.1 it signed: (ca.pem, cert.pem, key.pem)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flyte test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


def test_grpc_over_tls(workdir: Path) -> None:
    ca, cert, key = _tls_files(workdir)
    # Clients and the tasks (which inherit the backend's environment) trust the test CA.
    env = {**os.environ, "SSL_CERT_FILE": str(ca), "FLYTE_DATA_DIR": str(workdir / "client")}
    data = workdir / "backend-data"
    proc, endpoint = start_backend(
        "--data-dir", str(data), "--tls-cert", str(cert), "--tls-key", str(key), env=env
    )
    try:
        out = cli(
            "--endpoint",
            endpoint,
            "run",
            "-f",
            "wf.py",
            "add",
            "--a",
            "20",
            "--b",
            "22",
            cwd=workdir,
            env=env,
        )
        assert out.returncode == 0, out.stderr
        assert "42" in out.stdout

        # A plaintext client gets an error, not a hang.
        plain = cli("--endpoint", endpoint, "--insecure", "get", "run", cwd=workdir, env=env, timeout=60)
        assert plain.returncode != 0
        # Without the CA, the certificate is not trusted.
        untrusted_env = {k: v for k, v in env.items() if k != "SSL_CERT_FILE"}
        untrusted = cli("--endpoint", endpoint, "get", "run", cwd=workdir, env=untrusted_env, timeout=60)
        assert untrusted.returncode != 0
        # ... unless the config names it (admin.caCertFilePath).
        private_ca = {**untrusted_env, "FLYTE_ADMIN_CACERTFILEPATH": str(ca)}
        trusted = cli("--endpoint", endpoint, "get", "run", cwd=workdir, env=private_ca, timeout=60)
        assert trusted.returncode == 0, trusted.stderr
    finally:
        stop(proc)


def test_tls_needs_a_key_and_a_readable_certificate(workdir: Path) -> None:
    _, cert, key = _tls_files(workdir)
    env = {**os.environ, "FLYTE_DATA_DIR": str(workdir / "d")}
    only_cert = cli(
        "start", "local", "--port", "0", "--tls-cert", str(cert), cwd=workdir, env=env, timeout=60
    )
    assert only_cert.returncode != 0 and "--tls-key" in only_cert.stderr
    garbage = workdir / "garbage.pem"
    garbage.write_text("not a certificate")
    bad = cli(
        "start",
        "local",
        "--port",
        "0",
        "--tls-cert",
        str(garbage),
        "--tls-key",
        str(key),
        cwd=workdir,
        env=env,
        timeout=60,
    )
    assert bad.returncode != 0 and "not PEM" in bad.stderr


@pytest.fixture
def stand_in_environment(tmp_path: Path) -> Path:
    """An environment whose `flyte-action` marks the tasks it runs, then runs them as usual."""
    bin_dir = tmp_path / "stand-in" / "bin"
    bin_dir.mkdir(parents=True)
    program = bin_dir / "flyte-action"
    real = Path(sys.executable).parent / "flyte-action"
    program.write_text(f'#!/bin/sh\nexport STAND_IN_ENV=stand-in\nexec "{real}" "$@"\n')
    program.chmod(0o755)
    return bin_dir.parent


def test_image_mapping_from_the_config_file(workdir: Path, stand_in_environment: Path) -> None:
    config = workdir / "config.yaml"
    config.write_text(f"local:\n  images:\n    registry.example.com/team/: {stand_in_environment}\n")
    env = {**os.environ, "FLYTE_CONFIG": str(config), "FLYTE_DATA_DIR": str(workdir / "client")}
    proc, endpoint = start_backend("--data-dir", str(workdir / "backend-data"), env=env)
    try:
        base = ["--endpoint", endpoint, "--insecure", "run", "-f", "wf.py"]
        mapped = cli(*base, "which_environment", cwd=workdir, env=env)
        assert mapped.returncode == 0, mapped.stderr
        assert "stand-in" in mapped.stdout
        # `flyte run --image` gives environments without an image of their own one.
        default = cli(*base, "plain_environment", cwd=workdir, env=env)
        assert default.returncode == 0 and "default" in default.stdout, default.stderr
        overridden = [
            "--endpoint",
            endpoint,
            "--insecure",
            "run",
            "--image",
            "registry.example.com/team/x:1",
            "-f",
        ]
        imaged = cli(*overridden, "wf.py", "plain_environment", cwd=workdir, env=env)
        assert imaged.returncode == 0, imaged.stderr
        assert "stand-in" in imaged.stdout
        bad = cli(
            *base[:4],
            "--image",
            "nosuchenv=x:1",
            "-f",
            "wf.py",
            "add",
            "--a",
            "1",
            "--b",
            "2",
            cwd=workdir,
            env=env,
        )
        assert bad.returncode != 0 and "nosuchenv" in bad.stderr
    finally:
        stop(proc)

    # A mapping to a directory that does not exist is a clear error.
    config.write_text("local:\n  images:\n    registry.example.com/: /no/such/env\n")
    bad = cli(
        "start", "local", "--port", "0", "--data-dir", str(workdir / "d2"), cwd=workdir, env=env, timeout=60
    )
    assert bad.returncode != 0 and "/no/such/env" in bad.stderr and "local.images" in bad.stderr
