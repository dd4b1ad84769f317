"""A warm process that forks one fresh child per action attempt.

Starting a Python process and importing the SDK and its protobuf modules costs far more
CPU than running a small task. The backend therefore keeps this process: it imports
everything an attempt needs (but no user code, and it starts no threads and no event
loop, so forking it is safe) and forks a child per attempt. Each child is still its own
OS process — own session and process group, own log file, own exit status — and runs the
same entry point as the ``flyte-action`` program.

The protocol it speaks with the backend is defined in ``rs_backend/src/executor/forkserver.rs``.

    python -m flyte._runtime._forkserver [--program SCRIPT] [--preload SCRIPT]

``--program`` makes the children run SCRIPT (as ``__main__``, with the request's args)
instead of the SDK's runtime, and skips importing the SDK; ``--preload`` runs SCRIPT in the
server before it serves, so what it imports or builds is shared by every child. Only the
standard library is imported at the top, so the server also runs from a source checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import selectors
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

#: Runs one attempt in the forked child with the request's args; returns its exit code.
Runner = Callable[[list[str]], int]

#: What --preload scripts left behind, kept alive for the children to share.
_preloaded: list[dict[str, Any]] = []


def _warm_up() -> None:
    """Imports what every attempt needs, so forked children start with it loaded."""
    import asyncio  # noqa: F401
    import asyncio.base_events  # noqa: F401

    import cloudpickle  # noqa: F401
    from flyteidl2.actions import actions_service_pb2  # noqa: F401
    from flyteidl2.core import execution_pb2, literals_pb2, tasks_pb2  # noqa: F401
    from flyteidl2.task import common_pb2, task_definition_pb2  # noqa: F401
    from flyteidl2.workflow import run_definition_pb2, state_service_pb2  # noqa: F401

    import flyte  # noqa: F401
    import flyte._bridge.controller  # noqa: F401 - the extension only; its runtime starts on first use
    import flyte._internal._bundle  # noqa: F401
    import flyte._internal._serialize  # noqa: F401
    import flyte._remote._action_runner  # noqa: F401
    import flyte._remote._auth  # noqa: F401 - the runtime reads its API key setting
    import flyte._runtime._execute  # noqa: F401
    import flyte._types  # noqa: F401


def _run_sdk_attempt(args: list[str]) -> int:
    from flyte._bridge import contract
    from flyte._runtime._execute import main

    sys.argv = [contract.RUNTIME_PROGRAM, *args]
    return main(args)


def _program_runner(script: str) -> Runner:
    def run(args: list[str]) -> int:
        sys.argv = [script, *args]
        runpy.run_path(script, run_name="__main__")
        return 0

    return run


def _child(
    request: dict[str, Any], inherited: list[int], gate: int, gate_writers: list[int], run: Runner
) -> None:
    """In the forked child: become the attempt's own process, wait until the backend has
    recorded its pid (``gate`` gives one byte then), run the attempt, exit. Never returns."""
    code = 1
    try:
        # Only the server may hold the writing ends: once it is gone, the gate reads as closed.
        for fd in gate_writers:
            os.close(fd)
        os.setsid()
        # Nothing to read: the server exited before the backend let this attempt start, so
        # the backend may not know this process. Running it could only run the attempt twice.
        if not os.read(gate, 1):
            os._exit(code)
        os.close(gate)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDONLY)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        # 0-2 now are the child's own; the server's other descriptors must not leak into it.
        for fd in {devnull, log, *inherited} - {0, 1, 2}:
            os.close(fd)
        # Python's own file objects still point at the old descriptors' buffers: reopen.
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        view = request.get("view")
        if view is not None:
            # Deferred imports: the server itself runs on the standard library alone.
            from flyte._bridge.sandbox import enter_view

            # Once the log is open: the view hides every log, and every other run's data.
            enter_view(view["root"], [(str(p), bool(w)) for p, w in view["openings"]], request["cwd"])
        os.chdir(request["cwd"])
        env = dict(request.get("env", {}))
        if "env_file" in request:
            # The backend's way: the environment never passed through the server (whose memory
            # every child has a copy of), and the file goes once read.
            with open(request["env_file"], "rb") as f:
                env.update(json.loads(f.read()))
            os.unlink(request["env_file"])
        os.environ.update({str(k): str(v) for k, v in env.items()})
        code = run([str(a) for a in request["args"]])
    except SystemExit as e:
        # Like the interpreter: sys.exit() is success, a non-int argument is failure.
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported in the attempt's log, then a crash exit
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve(run: Runner) -> int:
    out = sys.stdout.buffer
    in_fd = sys.stdin.fileno()
    os.set_blocking(in_fd, False)

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    # A handler (even an empty one) makes SIGCHLD write to the wakeup fd.
    signal.signal(signal.SIGCHLD, lambda *_: None)

    sel = selectors.DefaultSelector()
    sel.register(in_fd, selectors.EVENT_READ, "requests")
    sel.register(wake_r, selectors.EVENT_READ, "children")
    inherited = [in_fd, sys.stdout.fileno(), wake_r, wake_w, sel.fileno()]
    # Per request: the write end of the pipe its child waits on (see _child).
    gates: dict[Any, int] = {}
    waiting: dict[int, Any] = {}  # pid -> request id, while its child waits
    pending = b""

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message).encode() + b"\n")
        out.flush()

    def reap() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            # A child that never got its go-ahead (killed meanwhile) needs its gate no more.
            gate = gates.pop(waiting.pop(pid, None), None)
            if gate is not None:
                os.close(gate)
            send({"exited": pid, "status": status})

    while True:
        for key, _ in sel.select():
            if key.data == "children":
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
                reap()
                continue
            try:
                chunk = os.read(in_fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                return 0  # the backend is gone
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if not line.strip():
                    continue
                try:
                    request = json.loads(line)
                    if "go" in request:
                        gate = gates.pop(request["go"], None)
                        if gate is not None:
                            waiting.pop(request.get("pid"), None)
                            os.write(gate, b"g")
                            os.close(gate)
                        continue
                    rid = request["id"]
                except (ValueError, KeyError, TypeError) as e:
                    print(f"forkserver: bad request {line[:200]!r}: {e}", file=sys.stderr, flush=True)
                    continue
                gate_r, gate_w = os.pipe()
                try:
                    pid = os.fork()
                except OSError as e:
                    os.close(gate_r)
                    os.close(gate_w)
                    send({"id": rid, "error": f"fork failed: {e}"})
                    continue
                if pid == 0:
                    _child(request, inherited, gate_r, [gate_w, *gates.values()], run)
                os.close(gate_r)
                gates[rid] = gate_w
                waiting[pid] = rid
                send({"id": rid, "pid": pid})
        reap()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m flyte._runtime._forkserver", description=__doc__)
    parser.add_argument("--program", help="run SCRIPT in each child instead of the SDK's runtime")
    parser.add_argument("--preload", action="append", default=[], help="run SCRIPT in the server first")
    args = parser.parse_args(argv)
    for script in args.preload:
        _preloaded.append(runpy.run_path(script, run_name="__preload__"))
    if args.program is None:
        _warm_up()
        return serve(_run_sdk_attempt)
    return serve(_program_runner(args.program))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
