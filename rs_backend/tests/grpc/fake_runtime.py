"""A stand-in for the real task runtime, driven by its arguments (stdlib only).

Arguments come in pairs: --mode M --out {{.outputPrefix}} --ctl DIR [--release NAME] ...
Outputs/errors to write are hex-encoded protobuf bytes in FAKE_OUTPUTS / FAKE_ERROR.
"""
import os
import signal
import subprocess
import sys
import time

argv = sys.argv[1:]
opts = dict(zip(argv[0::2], argv[1::2]))
mode = opts.get("--mode", "succeed")
out_dir = opts["--out"][len("file://"):]
ctl = opts["--ctl"]
run = os.environ.get("RUN_NAME", "?")
action = os.environ.get("ACTION_NAME", "?")
attempt = int(os.environ.get("_FLYTE_ATTEMPT", "0"))
os.makedirs(out_dir, exist_ok=True)


def put(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def put_ctl(name, text):
    put(os.path.join(ctl, name), text.encode())


def succeed():
    put(os.path.join(out_dir, "outputs.pb"), bytes.fromhex(os.environ.get("FAKE_OUTPUTS", "")))
    sys.exit(0)


def fail_user():
    put(os.path.join(out_dir, "error.pb"), bytes.fromhex(os.environ["FAKE_ERROR"]))
    sys.exit(1)


def crash():
    os.kill(os.getpid(), signal.SIGKILL)


def wait_release():
    path = os.path.join(ctl, opts.get("--release", "release"))
    while not os.path.exists(path):
        time.sleep(0.02)


with open(os.path.join(out_dir, "env.txt"), "w") as f:
    for key in sorted(os.environ):
        if key.startswith(("_FLYTE", "_U_", "FLYTE_", "_F_", "FAKE_", "EXTRA_", "PYTHONUNBUFFERED")) or key in (
            "ACTION_NAME",
            "RUN_NAME",
            "FSSPEC_FILE",
        ):
            f.write(f"{key}={os.environ[key]}\n")
    f.write(f"CWD={os.getcwd()}\n")
    f.write("ARGS=" + "|".join(argv) + "\n")

print(f"fake runtime: mode={mode} action={action} attempt={attempt}", flush=True)
put_ctl(f"pid.{run}.{action}.{attempt}", str(os.getpid()))

if mode == "succeed":
    succeed()
elif mode == "fail-user":
    fail_user()
elif mode == "fail-user-once":
    fail_user() if attempt == 1 else succeed()
elif mode == "crash":
    crash()
elif mode == "crash-once":
    crash() if attempt == 1 else succeed()
elif mode == "sleep":
    time.sleep(float(opts.get("--seconds", "3600")))
    succeed()
elif mode == "alloc":
    hog = b"\x01" * (int(opts["--mb"]) * 1024 * 1024)
    time.sleep(3600)
elif mode == "logs":
    for i in range(int(opts.get("--lines", "5"))):
        print(f"line {i}", flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    wait_release()
    print("after release", flush=True)
    succeed()
elif mode == "hold":
    wait_release()
    succeed()
elif mode == "hold-first":
    if attempt == 1:
        time.sleep(3600)
    succeed()
elif mode == "tree":
    child = subprocess.Popen(["sleep", "3600"])
    put_ctl(f"grandchild.{run}.{action}", str(child.pid))
    time.sleep(3600)
else:
    print(f"unknown mode {mode}", file=sys.stderr)
    sys.exit(2)
