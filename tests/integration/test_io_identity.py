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
    # The second run's child was a cache hit: it did not run.
    assert count("measure-hello") == 1
    assert count("measure-other text") == 1


def _run_keyed(mode: str, text: str, key: str):
    env_vars = {"FLYTE_TEST_COUNTERS": os.environ["FLYTE_TEST_COUNTERS"]}
    r = flyte.with_runcontext(mode=mode, env_vars=env_vars).run(wf.keyed_parent, text=text, key=key)
    r.wait()
    return r


def test_user_supplied_hash_identifies_the_file(mode: str) -> None:
    first, same_key = _run_keyed(mode, "abc", "k1"), _run_keyed(mode, "abcdef", "k1")
    assert _children(first) == _children(same_key)
    other_key = _run_keyed(mode, "abc", "k2")
    assert _children(other_key) != _children(first)
    assert first.result == 3 and other_key.result == 3
    # Same key: a cache hit, although the content differs (the user said it is the same).
    assert same_key.result == 3
    assert count("measure-abc") == 2 and count("measure-abcdef") == 0


def test_files_inside_dataclasses_are_identified_by_content(mode: str) -> None:
    env_vars = {"FLYTE_TEST_COUNTERS": os.environ["FLYTE_TEST_COUNTERS"]}

    def go(text: str):
        r = flyte.with_runcontext(mode=mode, env_vars=env_vars).run(wf.holder_parent, text=text)
        r.wait()
        return r

    first, second, other = go("same"), go("same"), go("different")
    assert first.result == second.result == 4 and other.result == 9
    assert _children(first) == _children(second) != _children(other)
    assert count("holder-same") == 1 and count("holder-different") == 1
