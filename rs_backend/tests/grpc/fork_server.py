"""A fork server for the backend's tests (stdlib only), speaking the backend's protocol.

    fork_server.py RUNTIME_SCRIPT [--ballast-mb N]

Each forked child runs RUNTIME_SCRIPT in-process as its main script, with the request's
args as sys.argv[1:], and exits with its exit code. FAKE_FORKED=<server pid> is added to the
child's environment so tests can tell a forked attempt from a spawned one. --ballast-mb
makes the server hold N MiB of touched memory that every child shares copy-on-write.
"""
import json
import os
import runpy
import selectors
import signal
import sys
import traceback

SCRIPT = sys.argv[1]
extra = dict(zip(sys.argv[2::2], sys.argv[3::2]))
ballast = b"\x01" * (int(extra.get("--ballast-mb", "0")) * 1024 * 1024)


def child(request, inherited):
    code = 1
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        # 0 and 1 (the protocol pipes) are replaced by dup2 below; closing them first would
        # let the next open() reuse fd 0 and then close it again.
        for fd in inherited:
            if fd > 2:
                os.close(fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        os.chdir(request["cwd"])
        os.environ.update(request["env"])
        os.environ["FAKE_FORKED"] = str(os.getppid())
        sys.argv = [SCRIPT, *request["args"]]
        runpy.run_path(SCRIPT, run_name="__main__")
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def main():
    out = sys.stdout.buffer
    in_fd = sys.stdin.fileno()
    os.set_blocking(in_fd, False)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sel = selectors.DefaultSelector()
    sel.register(in_fd, selectors.EVENT_READ, "requests")
    sel.register(wake_r, selectors.EVENT_READ, "children")
    inherited = [in_fd, sys.stdout.fileno(), wake_r, wake_w]
    pending = b""

    def send(message):
        out.write(json.dumps(message).encode() + b"\n")
        out.flush()

    def reap():
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
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
                return 0
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                try:
                    pid = os.fork()
                except OSError as e:
                    send({"id": request["id"], "error": f"fork failed: {e}"})
                    continue
                if pid == 0:
                    child(request, inherited)
                send({"id": request["id"], "pid": pid})
        reap()


if __name__ == "__main__":
    sys.exit(main())
