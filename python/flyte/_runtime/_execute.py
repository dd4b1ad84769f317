"""One attempt of one task action, as a backend runs it (the ``flyte-action`` program).

This is the first container arg of every task the SDK serializes, so it needs nothing but
what a Flyte 2 cluster gives a task pod: the locations as arguments (``--inputs``, the
inputs file; ``--outputs-path``; ``--raw-data-path``), the code (``--bundle`` or ``--root``,
``--task module:qualname``), and the identity of the action and the controller endpoint in
the pod's environment (``RUN_NAME``, ``ACTION_NAME``, ``_U_RUN_BASE``, ``_U_EP_OVERRIDE``,
``_U_INSECURE``, ``_U_ORG_NAME``, ``FLYTE_INTERNAL_EXECUTION_PROJECT`` / ``_DOMAIN``,
``FLYTE_ATTEMPT_NUMBER``). The protocol back is two files under the outputs path:
``outputs.pb`` (a flyteidl2 ``Outputs``) on success, or ``error.pb`` (a flyteidl2
``core.ErrorDocument``, plus ``error.pkl`` with the pickled exception when it pickles); a
reported failure still exits 0, as a cluster expects.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flyte._aio import finish_returned_coroutine
from flyte._bridge import contract
from flyte._bridge.controller import Controller
from flyte._checkpoint import Checkpoint
from flyte._context import ActionContext, _current
from flyte._internal import _interactive, _uris
from flyte._runtime._stages import Stages
from flyte._task import TaskTemplate
from flyte._task_errors import is_recoverable
from flyte.errors import BaseRuntimeError

# Deferred imports: an attempt loads the parts of the SDK it uses (the backend client, code
# bundles, sign-in) when it uses them, so the runtime starts short.


class _LoadError(Exception):
    """The task's code could not be loaded: a user error, not a crash."""


_parser: argparse.ArgumentParser | None = None


def _parse(argv: list[str]) -> argparse.Namespace:
    # Built once: a reusable worker parses the arguments of every attempt it runs, and
    # building the parser costs more than using it.
    global _parser
    if _parser is None:
        _parser = _build_parser()
    return _parser.parse_args(argv)


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=contract.RUNTIME_PROGRAM, description=__doc__)
    p.add_argument("--inputs", required=True)
    p.add_argument("--outputs-path", required=True)
    p.add_argument("--raw-data-path", default="")
    p.add_argument("--checkpoint-path", default="")
    p.add_argument("--prev-checkpoint", default="")
    p.add_argument("--run-name", default="")
    p.add_argument("--name", default="")
    p.add_argument("--run-start-time", default="", help="when the run started (RFC 3339)")
    p.add_argument("--task", required=True, help="module:qualname")
    p.add_argument(contract.CODE_VERSION_ARG, dest="version", default="")
    p.add_argument(contract.CODE_BUNDLE_ARG, dest="bundle", default="")
    p.add_argument(contract.CODE_ROOT_ARG, dest="root", default="")
    p.add_argument("--plugin-config", default="", help="the plugin_config an override gave the task")
    return p


loading_user_code = False


def _place_code(args: argparse.Namespace, code_dir: Path) -> None:
    """Makes the task's code importable: a bundle is extracted into ``code_dir``."""
    if args.bundle:
        from flyte._internal import _bundle

        _bundle.extract(_uris.read_bytes(args.bundle), code_dir)
        sys.path.insert(0, str(code_dir))
    elif args.root:
        sys.path.insert(0, args.root)


def _load_task(args: argparse.Namespace) -> Any:
    global loading_user_code
    import importlib

    module_name, _, qualname = args.task.partition(":")
    loading_user_code = True
    try:
        if module_name == "__main__":
            # A notebook's task: pickled into the bundle, extracted where the process runs.
            obj: Any = _interactive.load_session_task(Path.cwd(), qualname)
        else:
            obj = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
    except Exception as e:
        raise _LoadError(f"cannot load task {args.task}: {type(e).__name__}: {e}") from e
    finally:
        loading_user_code = False
    if not isinstance(obj, TaskTemplate):
        raise _LoadError(f"{args.task} is not a task (got {type(obj).__name__})")
    if args.plugin_config:
        from flyte._internal._serialize import decode_plugin_config

        try:
            obj = obj.override(plugin_config=decode_plugin_config(args.plugin_config))
        except Exception as e:
            raise _LoadError(f"cannot apply the plugin_config of {args.task}: {type(e).__name__}: {e}") from e
    return obj


def _write_error(prefix: str, exc: BaseException, *, recoverable: bool = True) -> None:
    """Reports the failure as a cluster reads it: ``error.pb``, a ``core.ErrorDocument``.

    ``recoverable`` says whether another attempt could help (the task's retries apply).
    The exception itself goes to ``error.pkl`` beside it, for a caller that can unpickle it.
    """
    from flyteidl2.core import execution_pb2

    is_system = isinstance(exc, BaseRuntimeError) and exc.kind == "system"
    code = getattr(exc, "code", None) if isinstance(exc, BaseRuntimeError) else type(exc).__name__
    kind = execution_pb2.ContainerError.Kind
    origin = execution_pb2.ExecutionError.ErrorKind
    doc = execution_pb2.ErrorDocument(
        error=execution_pb2.ContainerError(
            code=str(code or type(exc).__name__),
            message=str(exc) or type(exc).__name__,
            kind=kind.RECOVERABLE if recoverable else kind.NON_RECOVERABLE,
            origin=origin.SYSTEM if is_system else origin.USER,
        )
    )
    try:
        import cloudpickle

        _uris.write_bytes(_uris.join(prefix, "error.pkl"), cloudpickle.dumps(exc))
    except Exception:  # noqa: BLE001 - the code and message still travel
        pass
    _uris.write_bytes(_uris.join(prefix, "error.pb"), doc.SerializeToString())


def _sync_body(func: Any, kwargs: dict[str, Any]) -> Any:
    return finish_returned_coroutine(func(**kwargs))


class SyncBody:
    """Where a sync task's body runs: a thread of ``executor`` (the runner's own when None).
    ``stuck`` tells, after a cancellation, whether the body still runs on its thread."""

    def __init__(self, executor: Any = None) -> None:
        self.executor = executor
        self.future: Any = None

    @property
    def stuck(self) -> bool:
        return self.future is not None and not self.future.done()


async def _run_body(runner: Any, task: Any, kwargs: dict[str, Any], ctx: Any, sync: SyncBody) -> Any:
    import asyncio
    import contextvars
    import functools

    from flyte._task_errors import explain_await_error

    runner.loop = asyncio.get_running_loop()
    token = _current.set(ctx)
    try:
        if task.is_async:
            return await task.body(**kwargs)
        call = functools.partial(contextvars.copy_context().run, _sync_body, task.body, kwargs)
        sync.future = (sync.executor or runner.executor).submit(call)
        return await asyncio.wrap_future(sync.future)
    except Exception as e:
        raise explain_await_error(e, ctx) from None
    finally:
        _current.reset(token)


#: What a cluster's executor and charts set on every task pod; the runtime needs no more.
_REQUIRED_ENV = (contract.ENDPOINT, contract.RUN_BASE)


def _placeholder(value: str) -> bool:
    """An argument a backend left unsubstituted (a cluster does not fill in every one)."""
    return not value or value.startswith("{{")


def _run_start_time(value: str) -> Any:
    """The run's start from its RFC 3339 argument (None when the backend left it unfilled)."""
    if _placeholder(value):
        return None
    import re
    from datetime import datetime, timezone

    # Python before 3.11 reads neither "Z" nor more than microseconds (Go writes nanoseconds).
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip()).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        print(f"flyte-action: ignoring --run-start-time {value!r}: not an RFC 3339 time", file=sys.stderr)
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


class Attempt:
    """One attempt as its arguments and environment describe it."""

    def __init__(
        self, args: argparse.Namespace, env: Mapping[str, str], run_name: str, action_name: str
    ) -> None:
        self.args = args
        self.env = env
        self.run_name = run_name
        self.action_name = action_name
        self.prefix: str = args.outputs_path
        self.stages = Stages()


def begin(argv: list[str], env: Mapping[str, str]) -> Attempt | int:
    """The attempt ``argv`` and ``env`` describe, or the exit code of a usage error."""
    stages = Stages()
    args = _parse(argv)
    missing = [k for k in _REQUIRED_ENV if not env.get(k)]
    run_name = args.run_name if not _placeholder(args.run_name) else env.get(contract.RUN_NAME, "")
    action_name = args.name if not _placeholder(args.name) else env.get(contract.ACTION_NAME, "")
    missing += [k for k, v in ((contract.RUN_NAME, run_name), (contract.ACTION_NAME, action_name)) if not v]
    if missing:
        print(
            f"{contract.RUNTIME_PROGRAM} runs one attempt of an action for a backend; "
            f"it needs {', '.join(missing)} in its environment (a Flyte backend sets them)",
            file=sys.stderr,
        )
        return 2
    attempt = Attempt(args, env, run_name, action_name)
    attempt.stages = stages
    stages.mark("parse")
    return attempt


def raw_data_path(attempt: Attempt) -> str | None:
    """Where the backend wants the attempt's new data (None: under the run's base)."""
    path = attempt.args.raw_data_path
    return None if not path or _placeholder(path) else path


def load(attempt: Attempt, code_dir: Path | None) -> tuple[Any, Any, dict[str, Any]] | None:
    """The task, its inputs and its arguments; None when that failed (the failure is
    reported in the attempt's outputs). ``code_dir`` is where a code bundle is extracted
    (None: the code is in place already)."""
    try:
        if code_dir is not None:
            _place_code(attempt.args, code_dir)
        task = _load_task(attempt.args)
        attempt.stages.mark("load")
        from flyteidl2.task import common_pb2

        inputs = common_pb2.Inputs.FromString(_uris.read_bytes(attempt.args.inputs))
        kwargs = task.interface.literals_to_inputs(inputs, task.name)
        attempt.stages.mark("inputs")
    except _LoadError as e:
        traceback.print_exc()
        _write_error(attempt.prefix, e, recoverable=False)
        return None
    except Exception as e:
        traceback.print_exc()
        _write_error(attempt.prefix, e)
        return None
    return task, inputs, kwargs


def controller_for(env: Mapping[str, str]) -> Controller:
    """The controller an attempt in ``env`` starts and watches its children with."""
    from flyte._remote._auth import API_KEY_ENV, from_api_key

    # The embedded backend gives its actions a token of their own; elsewhere an API key
    # (an application's credentials) signs the action in.
    headers = []
    auth = None
    if env.get(contract.EXTRA_ACTION_TOKEN):
        headers.append(("authorization", f"Bearer {env[contract.EXTRA_ACTION_TOKEN]}"))
    elif env.get(API_KEY_ENV):
        auth = from_api_key(env[API_KEY_ENV])
    return Controller(
        env[contract.ENDPOINT], insecure=_truthy(env.get(contract.INSECURE)), headers=headers, auth=auth
    )


async def run(
    attempt: Attempt, loaded: tuple[Any, Any, dict[str, Any]], controller: Controller, sync: SyncBody
) -> None:
    """Runs the task's body and writes its outputs, or its error, where the backend reads them."""
    from flyte._internal._serialize import CodeRef
    from flyte._remote._action_runner import ActionRunner

    task, inputs, kwargs = loaded
    args, env = attempt.args, attempt.env
    runner = ActionRunner(
        attempt.run_name,
        action_name=attempt.action_name,
        controller=controller,
        run_output_base=env[contract.RUN_BASE],
        code=CodeRef(bundle_uri=args.bundle, root=args.root, version=args.version),
        outputs_prefix=attempt.prefix,
        project=env.get(contract.EXECUTION_PROJECT) or None,
        domain=env.get(contract.EXECUTION_DOMAIN) or None,
        org=env.get(contract.ORG_NAME) or None,
        run_start_time=_run_start_time(args.run_start_time),
        raw_data_path=raw_data_path(attempt),
    )
    attempt.stages.mark("setup")
    runner.inputs_uri = args.inputs
    ctx = ActionContext(
        run=runner,
        action_name=attempt.action_name,
        task=task,
        attempt=int(env.get(contract.ATTEMPT_NUMBER, "0")) + 1,
        custom_context={kv.key: kv.value for kv in inputs.context},
        checkpoint=Checkpoint(args.checkpoint_path, args.prev_checkpoint or None)
        if args.checkpoint_path
        else None,
    )
    try:
        result = await _run_body(runner, task, kwargs, ctx, sync)
        attempt.stages.mark("run")
        outputs = task.interface.outputs_to_literals(result, task.name, task.max_inline_io_bytes)
    except Exception as e:
        print_user_traceback(e)
        _write_error(attempt.prefix, e, recoverable=is_recoverable(e))
        return
    finally:
        runner.close()
    _uris.write_bytes(_uris.join(attempt.prefix, "outputs.pb"), outputs.SerializeToString())
    attempt.stages.mark("outputs")
    attempt.stages.record()


_SDK_DIR = str(Path(__file__).resolve().parents[1])


def _users_frames(te: traceback.TracebackException) -> None:
    """Drops the SDK's own frames from ``te`` and what it chains, unless nothing else is left
    (then the error is the SDK's, and its frames are what explains it)."""
    seen: set[int] = set()
    pending: list[traceback.TracebackException | None] = [te]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        users = [f for f in current.stack if not (f.filename or "").startswith(_SDK_DIR)]
        if users:
            current.stack = traceback.StackSummary.from_list(users)
        pending += [current.__cause__, current.__context__]


def print_user_traceback(exc: BaseException) -> None:
    """Prints the task's failure as its author wants to read it: the frames of their code."""
    te = traceback.TracebackException.from_exception(exc)
    _users_frames(te)
    print("".join(te.format()), end="", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    if argv[:1] == [contract.RAW_CONTAINER_FLAG]:
        from flyte._runtime._copilot import main as run_raw_container

        return run_raw_container(argv[1:])
    attempt = begin(argv, os.environ)
    if isinstance(attempt, int):
        return attempt
    path = raw_data_path(attempt)
    if path:
        from flyte._internal._raw_data import RAW_DATA_PREFIX_ENV

        # What runs outside the task's context (threads it starts) writes there too.
        os.environ[RAW_DATA_PREFIX_ENV] = path
    # The attempt's own work dir becomes the code root, as in a container: files that travel
    # with the code are found by relative paths, and what the task writes next to them stays
    # private to this attempt.
    loaded = load(attempt, Path.cwd())
    if loaded is None:
        return 0

    import asyncio

    controller = controller_for(attempt.env)
    try:
        asyncio.run(run(attempt, loaded, controller, SyncBody()))
    finally:
        controller.close()
    return 0


def entry() -> None:
    """The ``flyte-action`` console script."""
    code = main(sys.argv[1:])
    # Everything the attempt produced is written by now. Interpreter teardown would run while
    # the Rust runtime's and the object store's threads may still be alive, which can abort the
    # process after it succeeded (about once in 25 runs); a forked attempt ends the same way.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
