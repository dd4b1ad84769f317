"""Tasks defined in a notebook or a REPL: their ``__main__`` has no file to bundle.

Such tasks travel pickled (cloudpickle, by value) inside the run's code bundle, next to the
files of the modules the session imported from its directory, as one member named
``MAIN_TASKS``. An action's process loads the task it runs from there under the module name
``__main__``; the tasks it calls are the pickle's too, so their specs point at the same bundle
and the same member.
"""

from __future__ import annotations

import dataclasses
import io
import sys
from pathlib import Path
from typing import Any

#: The bundle member that holds a session's tasks: {qualname: task}.
MAIN_TASKS = "__flyte_main_tasks__.pkl"

#: The tasks this process loaded from a bundle's MAIN_TASKS (an action's process), by qualname.
_loaded: dict[str, Any] = {}


def session_is_interactive() -> bool:
    """Whether ``__main__`` is a notebook kernel or a REPL (it has no source file)."""
    main = sys.modules.get("__main__")
    return main is not None and not getattr(main, "__file__", None)


def defined_in_main(task: Any) -> bool:
    """Whether ``task``'s function was defined in ``__main__`` (container tasks have none)."""
    return getattr(getattr(task, "func", None), "__module__", None) == "__main__"


#: What the loaded tasks refer to only weakly (their environments), kept alive with them.
_kept: list[Any] = []


def keep(obj: Any) -> None:
    _kept.append(obj)


def loaded_task(qualname: str) -> Any:
    """The pickled session task ``qualname`` this process loaded, or None."""
    return _loaded.get(qualname)


#: True while a session's tasks are being pickled: tasks then travel by value, not by name.
_pickling = False


def pickling_session() -> bool:
    return _pickling


def pickle_session(tasks: dict[str, Any]) -> bytes:
    """The session's tasks (top-level name: task), pickled by value with what they use."""
    global _pickling
    import cloudpickle

    class _SessionPickler(cloudpickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            # Dataclass fields compare their defaults with these markers by identity: a copy
            # would make every field look like it had both a default and a default factory.
            if obj is dataclasses.MISSING or obj is dataclasses.KW_ONLY:
                return (_dataclass_marker, ("MISSING" if obj is dataclasses.MISSING else "KW_ONLY",))
            return super().reducer_override(obj)

    buffer = io.BytesIO()
    _pickling = True
    try:
        _SessionPickler(buffer).dump(tasks)
    finally:
        _pickling = False
    return buffer.getvalue()


def _dataclass_marker(name: str) -> Any:
    return getattr(dataclasses, name)


def load_session_task(code_dir: Path, qualname: str) -> Any:
    """The task ``qualname`` of the session pickled into the bundle extracted at ``code_dir``."""
    import cloudpickle

    if not _loaded:
        member = code_dir / MAIN_TASKS
        if not member.exists():
            raise LookupError(
                f"the code bundle has no {MAIN_TASKS}: it was not made by an interactive session"
            )
        _loaded.update(cloudpickle.loads(member.read_bytes()))
    try:
        return _loaded[qualname]
    except KeyError:
        raise LookupError(
            f"the session's tasks are {sorted(_loaded)}; {qualname!r} is not among them "
            "(only tasks assigned to a top-level name travel)"
        ) from None
