"""schemathesis against the served OpenAPI (Iceberg REST + management API), quick version of
benchmarks/fuzz.py: no 5xx, and status codes, content types and bodies as the document says."""

from __future__ import annotations

import pytest

from icemesh.reliability.fuzz import run_fuzz

pytestmark = pytest.mark.reliability


def test_fuzzed_requests_get_documented_answers(tmp_path):
    from icemesh.server.process import CatalogProcess

    with CatalogProcess(db=f"sqlite:///{tmp_path}/catalog.db", warehouse=str(tmp_path / "wh"), cwd=str(tmp_path)) as server:
        result = run_fuzz(server, max_examples=1, workdir=str(tmp_path), seed=1)
        log = server.log()
    for name in ("free", "targeted"):
        assert result[name]["exit_code"] == 0, result[name]["failures"] or result[name]["output_tail"]
        assert result[name]["failed"] == 0
    assert result["cases"] >= 1000
    assert "Traceback" not in log
