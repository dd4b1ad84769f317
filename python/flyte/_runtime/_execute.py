"""One attempt of one task action, as a backend runs it.

The backend passes the locations (``--inputs``, ``--outputs-path``), the code
(``--bundle`` or ``--root``, ``--task module:qualname``) and the identity of the action
(``_FLYTE_*`` environment variables). The protocol back is two files under the outputs
path: ``outputs.pb`` (a flyteidl2 ``Outputs``) on success, or ``error.pb`` (a flyteidl2
``ExecutionError``, plus ``error.pkl`` with the pickled exception when it pickles).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from flyte._internal import _uris


class _LoadError(Exception):
    """The task's code could not be loaded: a user error, not a crash."""


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m flyte._runtime", description=__doc__)
    p.add_argument("--inputs", required=True)
    p.add_argument("--outputs-path", required=True)
    p.add_argument("--raw-data-path", default="")
    p.add_argument("--task", required=True, help="module:qualname")
    p.add_argument("--version", default="")
    p.add_argument("--bundle", default="")
    p.add_argument("--root", default="")
    return p.parse_args(argv)


loading_user_code = False


def _load_task(args: argparse.Namespace) -> Any:
    global loading_user_code
    import importlib

    from flyte._task import TaskTemplate

    if args.bundle:
        from flyte._internal import _bundle

        # The attempt's own work dir becomes the code root, as in a container: files that
        # travel with the code are found by relative paths, and what the task writes next to
        # them stays private to this attempt.
        dest = Path.cwd()
        _bundle.extract(_uris.read_bytes(args.bundle), dest)
        sys.path.insert(0, str(dest))
    elif args.root:
        sys.path.insert(0, args.root)
    module_name, _, qualname = args.task.partition(":")
    loading_user_code = True
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except Exception as e:
        raise _LoadError(f"cannot load task {args.task}: {type(e).__name__}: {e}") from e
    finally:
        loading_user_code = False
    if not isinstance(obj, TaskTemplate):
        raise _LoadError(f"{args.task} is not a task (got {type(obj).__name__})")
    return obj


def _write_error(prefix: str, exc: BaseException, *, system: bool = False) -> None:
    from flyteidl2.core import execution_pb2

    from flyte.errors import BaseRuntimeError

    kind = execution_pb2.ExecutionError.ErrorKind
    is_system = system or (isinstance(exc, BaseRuntimeError) and exc.kind == "system")
    code = getattr(exc, "code", None) if isinstance(exc, BaseRuntimeError) else type(exc).__name__
    err = execution_pb2.ExecutionError(
        code=str(code or type(exc).__name__),
        message=str(exc) or type(exc).__name__,
        kind=kind.SYSTEM if is_system else kind.USER,
        worker=os.uname().nodename,
    )
    err.timestamp.GetCurrentTime()
    try:
        import cloudpickle

        pickled = cloudpickle.dumps(exc)
        _uris.write_bytes(_uris.join(prefix, "error.pkl"), pickled)
        err.error_uri = _uris.join(prefix, "error.pkl")
    except Exception:  # noqa: BLE001 - the code and message still travel
        pass
    _uris.write_bytes(_uris.join(prefix, "error.pb"), err.SerializeToString())


async def _run_body(runner: Any, task: Any, kwargs: dict[str, Any], ctx: Any) -> Any:
    import asyncio
    import contextvars
    import functools

    from flyte._context import _current
    from flyte._task_errors import explain_await_error

    runner.loop = asyncio.get_running_loop()
    token = _current.set(ctx)
    try:
        if task.is_async:
            return await task.func(**kwargs)
        call = functools.partial(contextvars.copy_context().run, task.func, **kwargs)
        return await runner.loop.run_in_executor(runner.executor, call)
    except Exception as e:
        raise explain_await_error(e, ctx) from None
    finally:
        _current.reset(token)


_REQUIRED_ENV = ("_FLYTE_ENDPOINT", "_FLYTE_RUN", "_FLYTE_ACTION", "_FLYTE_RUN_OUTPUT_BASE")


def main(argv: list[str]) -> int:
    args = _parse(argv)
    env = os.environ
    missing = [k for k in _REQUIRED_ENV if not env.get(k)]
    if missing:
        print(
            f"python -m flyte._runtime runs one attempt of an action for a backend; "
            f"it needs {', '.join(missing)} in its environment",
            file=sys.stderr,
        )
        return 2
    prefix = args.outputs_path
    try:
        task = _load_task(args)
        from flyteidl2.task import common_pb2

        inputs = common_pb2.Inputs.FromString(_uris.read_bytes(args.inputs))
        kwargs = task.interface.literals_to_inputs(inputs, task.name)
    except Exception as e:
        traceback.print_exc()
        _write_error(prefix, e)
        return 1

    import asyncio

    from flyte import _core
    from flyte._context import ActionContext
    from flyte._internal._serialize import CodeRef
    from flyte._remote._action_runner import ActionRunner

    headers = []
    if env.get("FLYTE_API_KEY"):
        headers.append(("authorization", f"Bearer {env['FLYTE_API_KEY']}"))
    controller = _core.Controller(
        env["_FLYTE_ENDPOINT"], insecure=env.get("_FLYTE_INSECURE") == "1", headers=headers
    )
    action_name = env["_FLYTE_ACTION"]
    runner = ActionRunner(
        env["_FLYTE_RUN"],
        action_name=action_name,
        controller=controller,
        run_output_base=env["_FLYTE_RUN_OUTPUT_BASE"],
        code=CodeRef(bundle_uri=args.bundle, root=args.root, version=args.version),
        run_dir=_uris.to_path(prefix),
        project=env.get("_FLYTE_PROJECT") or None,
        domain=env.get("_FLYTE_DOMAIN") or None,
        org=env.get("_FLYTE_ORG") or None,
    )
    ctx = ActionContext(
        run=runner,
        action_name=action_name,
        task=task,
        attempt=int(env.get("_FLYTE_ATTEMPT", "1")),
        custom_context={kv.key: kv.value for kv in inputs.context},
    )
    try:
        result = asyncio.run(_run_body(runner, task, kwargs, ctx))
        outputs = task.interface.outputs_to_literals(result, task.name)
    except Exception as e:
        traceback.print_exc()
        _write_error(prefix, e)
        return 1
    finally:
        runner.close()
        controller.close()
    _uris.write_bytes(_uris.join(prefix, "outputs.pb"), outputs.SerializeToString())
    return 0
