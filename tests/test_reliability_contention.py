"""Many writers on one table, on SQLite and PostgreSQL: every commit lands or is told 409 and retried,
and the final table holds exactly the acknowledged commits (quick version of benchmarks/contention.py)."""

from __future__ import annotations

import threading
import uuid

import httpx
import pytest

from icemesh.reliability.workload import (append_batch, append_schema, contention_exact, rest_catalog, run_contention,
                                 verify_catalog, widen_tables)

pytestmark = pytest.mark.reliability


def server_db(server) -> str:
    return server.args[server.args.index("--db") + 1]


def test_writers_on_one_table_lose_nothing(catalog_server):
    token = catalog_server.client().token()
    result = run_contention(catalog_server.uri, token, writers=4, commits=10, processes=False)
    assert not result["errors"], result["errors"]
    assert contention_exact(result), result
    assert result["snapshots"] == 40 and result["rows_match"]


def test_transactions_racing_appends_are_whole(catalog_server):
    """Multi-table transactions (add a column to two tables) race each other and appends to one of them."""
    admin = catalog_server.client()
    token, prefix = admin.token(), admin.prefix()
    ns = f"tx_{uuid.uuid4().hex[:8]}"
    catalog = rest_catalog(catalog_server.uri, token)
    catalog.create_namespace(ns)
    for name in ("a", "b"):
        catalog.create_table(f"{ns}.{name}", schema=append_schema())
    statuses, failures = [], []

    def transactions(worker: int) -> None:
        with httpx.Client(base_url=catalog_server.uri, headers=admin.headers(), timeout=60) as http:
            for i in range(4):
                statuses.append(widen_tables(http, prefix, ns, ["a", "b"], f"c{worker}_{i}")[0])

    def appends() -> None:
        table = rest_catalog(catalog_server.uri, token, "appender").load_table(f"{ns}.a")
        for seq in range(8):
            try:
                table.append(append_batch(99, seq))  # pyiceberg retries its own 409s
            except Exception as exc:
                failures.append(exc)

    threads = [threading.Thread(target=transactions, args=(w,)) for w in range(3)] + [threading.Thread(target=appends)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [204] * 12 and not failures
    columns = {name: [f.name for f in catalog.load_table(f"{ns}.{name}").schema().fields] for name in ("a", "b")}
    assert columns["a"] == columns["b"] and len(columns["a"]) == 2 + 12
    assert len(catalog.load_table(f"{ns}.a").metadata.snapshots) == 8
    report = verify_catalog(server_db(catalog_server), catalog_server.uri, token, [[f"{ns}.a", f"{ns}.b"]], namespace=ns)
    assert report["problems"] == []
