"""kill -9 during a commit storm, restart, verify (quick version of benchmarks/crash.py: 3 cycles per backend).

After each restart every pointer names an existing metadata file, every table loads and scans, no
multi-table transaction is half-applied, everything acknowledged is still there, and a transaction
that was in flight when the server died gets a definite answer when retried with its Idempotency-Key.
"""

from __future__ import annotations

import pytest

from icemesh.reliability.crash import run_crash_cycles

pytestmark = pytest.mark.reliability


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_during_commit_storm_loses_and_corrupts_nothing(backend, request, tmp_path):
    db = request.getfixturevalue("postgres_url") if backend == "postgres" else f"sqlite:///{tmp_path}/catalog.db"
    result = run_crash_cycles(db, str(tmp_path), cycles=3, seed=7)
    assert [o["problems"] for o in result["outcomes"]] == [[], [], []], result["outcomes"]
    assert result["appends"] > 0 and result["transactions"] > 0 and result["creates"] > 0  # the storm really ran
