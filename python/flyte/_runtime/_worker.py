"""A reusable worker: one warm process running many attempts of one task environment.

The embedded backend keeps pools of these for task environments with a ``ReusePolicy``: up to
``replicas`` workers per environment, each sent up to ``concurrency`` attempts at a time.
Async task bodies share the worker's event loop; sync ones run on its threads. The protocol
it speaks with the backend is defined in ``rs_backend/src/executor/worker.rs``.

What the attempts of one worker share is what the tasks of one container share on a
cluster: the process (imported modules, globals, the working directory, and memory — the
environment's memory limit bounds the worker as a whole) and the environment variables,
except the attempt's identity (run, action, attempt number), which each attempt gets through
``flyte.ctx()``. What an attempt prints goes to its own log, from its body and from the
threads the SDK runs it on; threads the task starts itself, and C code writing to the file
descriptors, write to the worker's log.

    python -m flyte._runtime._worker
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any, TextIO

# Deferred imports: the SDK is imported only after the worker has taken over stdout and
# stderr, so that nothing it sets up holds on to the streams the protocol uses.


#: The worker's own log (its stderr), where output outside any attempt goes.
_worker_log: TextIO = sys.stderr

#: Threads for sync task bodies: the backend bounds how many attempts run at once; a sync
#: parent waiting for its children holds a thread, so there are more than that.
_SYNC_THREADS = 256


class _AttemptLog:
    """An attempt's log file, created when the attempt first writes: most attempts print
    nothing (the backend reads a missing log as an empty one)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._file: TextIO | None = None

    def _open(self) -> TextIO:
        if self._file is None:
            try:
                os.makedirs(os.path.dirname(self._path), exist_ok=True)
                self._file = open(self._path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
            except OSError as e:
                # What it prints still goes somewhere: the worker's own log.
                self._file = _worker_log
                print(f"worker: cannot open the attempt's log {self._path}: {e}", file=self._file, flush=True)
        return self._file

    def write(self, text: str) -> int:
        return self._open().write(text)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None and self._file is not _worker_log:
            self._file.close()


#: The log of the attempt the current code runs for (None: the worker's own log).
_attempt_log: ContextVar[_AttemptLog | None] = ContextVar("flyte_attempt_log", default=None)


class _AttemptOutput(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` of a worker: the current attempt's log, else ``fallback``."""

    def __init__(self, fallback: TextIO) -> None:
        self._fallback = fallback

    def _target(self) -> _AttemptLog | TextIO:
        return _attempt_log.get() or self._fallback

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fallback.fileno()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._fallback.encoding


class Worker:
    def __init__(self, answers: IO[bytes]) -> None:
        self._answers = answers
        self._running: dict[int, asyncio.Task[None]] = {}
        self._executor = ThreadPoolExecutor(max_workers=_SYNC_THREADS, thread_name_prefix="flyte-worker")
        self._controller: Any = None
        #: The code sources (bundle or root) already importable here.
        self._placed: set[tuple[str, str]] = set()

    def _send(self, message: dict[str, Any]) -> None:
        self._answers.write(json.dumps(message).encode() + b"\n")
        self._answers.flush()

    async def serve(self, requests: IO[bytes]) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 24)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), requests)
        self._send({"ready": True})
        while line := await reader.readline():
            if line.strip():
                self._handle(line)
        # The backend is done with this worker (or gone): finish what runs, then exit.
        if self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)
        if self._controller is not None:
            self._controller.close()

    def _handle(self, line: bytes) -> None:
        try:
            request = json.loads(line)
            if "cancel" in request:
                task = self._running.get(int(request["cancel"]))
                if task is not None:
                    task.cancel()
                return
            rid = int(request["id"])
            args = [str(a) for a in request["args"]]
            env = {str(k): str(v) for k, v in request["env"].items()}
            log = str(request["log"])
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            print(f"worker: bad request {line[:200]!r}: {e}", file=sys.stderr, flush=True)
            return
        self._running[rid] = asyncio.get_running_loop().create_task(self._attempt(rid, args, env, log))

    async def _attempt(self, rid: int, args: list[str], env: dict[str, str], log_path: str) -> None:
        from flyte._runtime import _execute

        stuck = False
        sync = _execute.SyncBody(self._executor)
        log = _AttemptLog(log_path)
        token = _attempt_log.set(log)
        try:
            attempt = _execute.begin(args, {**os.environ, **env})
            if not isinstance(attempt, int):
                source = (attempt.args.bundle, attempt.args.root)
                # The worker's directory is the code root of all its attempts, as a container's is.
                code_dir = None if source in self._placed else Path.cwd()
                loaded = _execute.load(attempt, code_dir)
                if any(p and p in sys.path for p in (str(code_dir or ""), attempt.args.root)):
                    self._placed.add(source)
                if loaded is not None:
                    if self._controller is None:
                        self._controller = _execute.controller_for(attempt.env)
                    await _execute.run(attempt, loaded, self._controller, sync)
        except asyncio.CancelledError:
            stuck = sync.stuck
            print("flyte-action: the attempt was stopped by the backend", file=sys.stderr)
        except BaseException:  # noqa: BLE001 - reported in the attempt's log; the backend sees no outputs
            traceback.print_exc()
        finally:
            _attempt_log.reset(token)
            log.close()
            del self._running[rid]
            self._send({"done": rid, "stuck": True} if stuck else {"done": rid})


def main() -> int:
    # The protocol keeps the real stdout to itself; everything else printed to fd 1 (by
    # subprocesses, C code) goes to the worker's log, where stderr goes.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    global _worker_log
    _worker_log = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stdout = _AttemptOutput(open(1, "w", buffering=1, closefd=False))  # noqa: SIM115
    sys.stderr = _AttemptOutput(_worker_log)
    requests = os.fdopen(0, "rb", buffering=0)

    from flyte._internal import _task_process
    from flyte._runtime._forkserver import _warm_up

    _task_process.serves_attempts = True
    _warm_up()
    asyncio.run(Worker(answers).serve(requests))
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # As for one attempt's process: the Rust runtime's threads must not outlive teardown.
    os._exit(code)
