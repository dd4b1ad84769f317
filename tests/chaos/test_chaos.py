"""The chaos suite in its bounded form (`make chaos` runs the full one): a few trials of every
kind of fault and a few hundred malformed requests, with the invariants asserted — no run lost
or stuck, no finished child re-run, no panic, an intact database. Never timings."""

from __future__ import annotations

import os
import random

import pytest
import suite


@pytest.mark.parametrize("kind", suite.ALL_KINDS)
def test_invariants_hold_under_faults(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    if kind in suite.STORAGE_KINDS and os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root (CI runs as root)")
    seed = int(os.environ.get("FLYTE_CHAOS_SEED") or random.SystemRandom().randrange(10**9))
    rows = suite.run_suite(seed, trials=2, requests=300, only=(kind,))
    broken = suite.report(seed, rows)
    row = rows[kind]
    assert row.trials > 0
    assert row.faults > 0 or kind == "malformed requests", capsys.readouterr().out
    assert broken == [], capsys.readouterr().out
