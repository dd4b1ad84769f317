"""Where new data goes: the raw data prefix of the running action.

Files, directories, data frames and offloaded values written by an action are put under a
prefix of its own, so actions never overwrite each other's data and a run's data can be
found (and removed) together. The prefix is, in order of precedence:

- inside a task, the prefix of its action: on a backend the one the backend handed the
  process (``_FLYTE_RAW_DATA_PREFIX``), in local mode ``<run raw data base>/<action>``;
- inside a ``scope(...)`` block (a run's inputs, prepared before the run exists);
- otherwise ``<data dir>/raw/_``.

A run's raw data base is ``<raw_data_path>/<run>`` when the run was given a ``raw_data_path``
(``flyte run --raw-data-path``, ``with_runcontext(raw_data_path=...)``), else
``<data dir>/raw/<run>``.
"""

from __future__ import annotations

import contextvars
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from flyte._context import current
from flyte._initialize import data_dir
from flyte._storage._uri import REMOTE_SCHEMES, _scheme, join, parse_remote, to_local_path

#: Set by the backend per attempt: where an action's new data goes (a URI prefix, used as is).
RAW_DATA_PREFIX_ENV = "_FLYTE_RAW_DATA_PREFIX"

_scope: contextvars.ContextVar[str | None] = contextvars.ContextVar("flyte_raw_data_scope", default=None)


def normalize_raw_data_path(path: str) -> str:
    """A user's ``raw_data_path`` as a URI: local paths become absolute ``file://`` URIs.

    Raises ValueError for a URI no storage backend understands.
    """
    from pathlib import Path

    text = path.strip()
    if not text:
        raise ValueError("raw_data_path is empty")
    scheme = _scheme(text)
    if scheme in ("", "file"):
        local = to_local_path(text)
        return Path(local).expanduser().resolve().as_uri()
    if scheme not in REMOTE_SCHEMES:
        raise ValueError(
            f"raw_data_path {path!r} has an unsupported scheme {scheme!r} (use a path, file://, s3://, gs:// or abfs://)"
        )
    parse_remote(text)  # names a bucket
    return text.rstrip("/")


def default_run_base(run_name: str) -> str:
    """``<data dir>/raw/<run>`` as a URI."""
    return (data_dir().expanduser().resolve() / "raw" / run_name).as_uri()


def run_base(run_name: str, raw_data_path: str | None) -> str:
    """Where a run's raw data goes (see the module docstring)."""
    if raw_data_path:
        return join(raw_data_path, run_name)
    return default_run_base(run_name)


@contextmanager
def scope(prefix: str) -> Iterator[str]:
    """New data written outside tasks in this block goes under ``prefix``."""
    token = _scope.set(prefix.rstrip("/"))
    try:
        yield prefix
    finally:
        _scope.reset(token)


def raw_data_prefix() -> str:
    """The URI prefix new data of the current action (or of this block, outside tasks) goes under."""
    c = current()
    if c is not None:
        return c.run.raw_data_prefix(c.action_name)
    scoped = _scope.get()
    if scoped:
        return scoped
    env = os.environ.get(RAW_DATA_PREFIX_ENV)
    if env:
        return env.rstrip("/")
    return default_run_base("_")


def new_remote_uri(name: str | None = None) -> str:
    """A fresh, unique URI under the current raw data prefix, ending in ``name`` if given."""
    uri = f"{raw_data_prefix()}/{uuid.uuid4().hex}"
    if name:
        uri += "/" + name.strip("/")
    return uri


def stable_remote_uri(name: str) -> str:
    """A URI for ``name`` that every attempt of the current action computes alike (a retry
    writes where the failed attempt did). A backend's per-attempt prefix ends in the attempt —
    ``.../<action>/<n>`` on the embedded backend, ``...-<n>`` on a cluster — which is dropped."""
    import re

    base = raw_data_prefix()
    c = current()
    attempt_prefix = c.run.attempt_raw_data_path if c is not None else None
    if base == (attempt_prefix or os.environ.get(RAW_DATA_PREFIX_ENV, "").rstrip("/")):
        head, _, last = base.rpartition("/")
        base = head if last.isdigit() and head else re.sub(r"-\d+$", "", base)
    return f"{base}/named/{name}"
