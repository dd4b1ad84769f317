"""Recovery through the action-ID ledger: a killed parent is re-executed by the backend,
re-derives the same sub-action names, and reuses what already ran."""

from __future__ import annotations

import os

import recovery_wf
from counters import count

import flyte


def test_killed_parent_reuses_finished_children_and_replays_traces(backend_endpoint: str) -> None:
    flyte.init(endpoint=backend_endpoint, insecure=True)
    env_vars = {"FLYTE_TEST_COUNTERS": os.environ["FLYTE_TEST_COUNTERS"]}
    run = flyte.with_runcontext(mode="remote", env_vars=env_vars).run(recovery_wf.parent, n=4)
    assert run.result == (0 + 10 + 20 + 30) + 1 + 1
    # The parent ran twice (the crash, then the system retry)...
    assert count("parent") == 2
    # ...but every child ran once: finished ones were found, the running one was awaited.
    assert [count(f"child-{i}") for i in range(4)] == [1, 1, 1, 1]
    assert count("slow-1") == 1
    # The trace's result was replayed from the backend, not recomputed.
    assert count("trace") == 1
    root = next(a for a in run.actions() if a["name"] == "a0")
    assert root["attempts"] == 2 and root["phase"] == "SUCCEEDED"
    children = [a for a in run.actions() if a["parent"] == "a0"]
    assert len(children) == 6  # 4 children, 1 slow child, 1 trace: no duplicates
