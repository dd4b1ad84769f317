"""A File input is identified by its content: stable action names (recovery) and cache hits."""

from __future__ import annotations

import os

import io_identity_wf as wf
from counters import count

import flyte


def _run(mode: str, text: str):
    env_vars = {"FLYTE_TEST_COUNTERS": os.environ["FLYTE_TEST_COUNTERS"]}
    r = flyte.with_runcontext(mode=mode, env_vars=env_vars).run(wf.parent, text=text)
    r.wait()
    return r


def _children(run) -> list[str]:
    return sorted(a["name"] for a in run.actions() if a["parent"] == "a0")


def test_same_content_same_child_name_and_cache_hit(mode: str) -> None:
    first, second = _run(mode, "hello"), _run(mode, "hello")
    assert first.result == second.result == 5
    assert _children(first) == _children(second)
    different = _run(mode, "other text")
    assert _children(different) != _children(first)
    if mode == "local":
        # The embedded backend does not serve cache hits yet; local mode does.
        assert count("measure-hello") == 1
        assert count("measure-other text") == 1
