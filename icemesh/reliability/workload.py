"""Write workloads and integrity checks shared by the reliability benchmarks and their quick tests.

- `contention_writer`: one pyiceberg client appending to one table, retrying every 409 (refresh, append
  again) and counting the retries; each append carries (writer, seq), so the final table proves exactly
  which commits landed.
- `widen_tables`: a multi-table transaction over raw HTTP (`POST /transactions/commit`) that adds the
  same column to every table in a group, guarded by `assert-current-schema-id` and
  `assert-last-assigned-field-id`: a group whose tables' columns differ shows a half-applied transaction.
- `verify_catalog`: after anything (contention, a kill -9), every pointer in the database names an existing
  metadata file, every table loads and scans, and transaction groups are whole.

Only the standard library is imported at module level, so spawned writer processes start fast.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import time
import uuid
from typing import Any


ROWS_PER_APPEND = 2
NO_CLIENT_RETRIES = {"commit.retry.num-retries": "0"}  # every 409 reaches our loop, where it is counted


def rest_catalog(uri: str, token: str, name: str = "reliability", **properties: str):
    from pyiceberg.catalog.rest import RestCatalog

    return RestCatalog(name, uri=uri, token=token, **{"oauth2-server-uri": f"{uri}/v1/oauth/tokens"}, **properties)


def append_schema():
    import pyarrow as pa

    return pa.schema([("writer", pa.int64()), ("seq", pa.int64())])


def append_batch(writer: int, seq: int):
    import pyarrow as pa

    return pa.table({"writer": [writer] * ROWS_PER_APPEND, "seq": [seq] * ROWS_PER_APPEND}, schema=append_schema())


def percentile_ms(samples: list[float], p: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000, 1)


# -- appends under contention ---------------------------------------------------------------------


def contention_writer(uri: str, token: str, ident: str, writer: int, commits: int, start_at: float = 0.0,
                      backoff_ms: float = 0.0, snapshot_loading: str = "all") -> dict[str, Any]:
    """Append `commits` batches, each retried until it lands; returns what was acknowledged. With
    `snapshot_loading="refs"` a refresh after a 409 fetches only the branch heads (`?snapshots=refs`), not
    the whole history an append never reads."""
    import logging

    from pyiceberg.exceptions import CommitFailedException

    logging.getLogger("pyiceberg").setLevel(logging.ERROR)
    loading = {"snapshot-loading-mode": snapshot_loading}
    table = rest_catalog(uri, token, f"writer{writer}", **loading).load_table(ident)
    while time.time() < start_at:
        time.sleep(0.005)
    acked, latencies, retries, errors = [], [], 0, []
    for seq in range(commits):
        batch, first, attempt = append_batch(writer, seq), time.perf_counter(), 0
        while True:
            try:
                table.append(batch)
                break
            except CommitFailedException:
                retries += 1
                attempt += 1
                if backoff_ms:
                    time.sleep(random.uniform(0, backoff_ms * 2 ** min(attempt, 4)) / 1000)
                table.refresh()
            except Exception as exc:  # anything but a 409 is a failure of the catalog: report it
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
                table = rest_catalog(uri, token, f"writer{writer}", **loading).load_table(ident)
                if len(errors) > 20:
                    return {"writer": writer, "acked": acked, "latencies": latencies, "retries": retries, "errors": errors}
        acked.append(table.metadata.current_snapshot_id)  # the commit response: its current snapshot is ours
        latencies.append(time.perf_counter() - first)
    return {"writer": writer, "acked": acked, "latencies": latencies, "retries": retries, "errors": errors,
            "finished": time.time()}


def _writer_star(args):
    return contention_writer(*args)


def run_contention(uri: str, token: str, writers: int, commits: int, processes: bool = True,
                   backoff_ms: float = 0.0, snapshot_loading: str = "all", progress=None,
                   progress_s: float = 30.0) -> dict[str, Any]:
    """`writers` clients x `commits` appends to ONE new table; then check the table holds exactly those.
    `progress(landed, expected)` is called every `progress_s` while writer processes run (a run can take
    half an hour)."""
    admin = rest_catalog(uri, token)
    ns = f"contention_{uuid.uuid4().hex[:8]}"
    admin.create_namespace(ns)
    ident = f"{ns}.target"
    admin.create_table(ident, schema=append_schema(), properties=NO_CLIENT_RETRIES)
    start_at = time.time() + (8.0 if processes else 0.5)  # spawned writers import pyiceberg first
    jobs = [(uri, token, ident, w, commits, start_at, backoff_ms, snapshot_loading) for w in range(writers)]
    if processes:
        with mp.get_context("spawn").Pool(writers) as pool:
            pending = pool.map_async(_writer_star, jobs)
            while not pending.ready():
                pending.wait(progress_s)
                if progress and not pending.ready():
                    progress(landed_commits(admin, ident), writers * commits)
            outs = pending.get()
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(writers) as pool:
            outs = list(pool.map(_writer_star, jobs))
    elapsed = max(o.get("finished", time.time()) for o in outs) - start_at
    return {"table": ident, "writers": writers, "commits_per_writer": commits, "duration_s": round(elapsed, 2),
            **check_appends(admin, ident, outs, writers, commits, elapsed)}


def landed_commits(admin, ident: str) -> int:
    """How many appends the table holds now, from its current snapshot's summary (no scan)."""
    snapshot = admin.load_table(ident).current_snapshot()
    total = int(snapshot.summary.get("total-records", 0)) if snapshot and snapshot.summary else 0
    return total // ROWS_PER_APPEND


def check_appends(admin, ident: str, outs: list[dict], writers: int, commits: int, elapsed: float) -> dict[str, Any]:
    """Exactly the acknowledged appends are in the table: in its main history and in its rows."""
    table = admin.load_table(ident)
    by_id = {s.snapshot_id: s for s in table.metadata.snapshots}
    history, sid = [], table.metadata.current_snapshot_id
    while sid is not None and sid in by_id:
        history.append(sid)
        sid = by_id[sid].parent_snapshot_id
    acked = [s for o in outs for s in o["acked"]]
    rows = table.scan().to_arrow().to_pylist()
    expected_rows = sorted((o["writer"], seq) for o in outs for seq in range(len(o["acked"])) for _ in range(ROWS_PER_APPEND))
    latencies = [x for o in outs for x in o["latencies"]]
    return {
        "expected_commits": writers * commits,
        "acknowledged": len(acked),
        "snapshots": len(table.metadata.snapshots),
        "snapshots_in_main_history": len(history),
        "acknowledged_missing": len(set(acked) - set(history)),
        "unacknowledged_in_history": len(set(history) - set(acked)),
        "rows": len(rows),
        "rows_match": sorted((r["writer"], r["seq"]) for r in rows) == expected_rows,
        "retries": sum(o["retries"] for o in outs),
        "errors": [e for o in outs for e in o["errors"]],
        "commits_per_s": round(len(acked) / elapsed, 2) if elapsed > 0 else 0.0,
        "commit_latency_ms": {"p50": percentile_ms(latencies, 50), "p99": percentile_ms(latencies, 99),
                              "max": percentile_ms(latencies, 100)},
    }


def contention_exact(result: dict[str, Any]) -> bool:
    return (result["acknowledged"] == result["expected_commits"] == result["snapshots"] == result["snapshots_in_main_history"]
            and result["acknowledged_missing"] == 0 and result["rows_match"] and not result["errors"])


# -- multi-table transactions ---------------------------------------------------------------------


def widen_request(http, prefix: str, ns: str, tables: list[str], column: str) -> dict[str, Any]:
    """The transaction adding `column` to every table, with requirements pinning each table's schema."""
    changes = []
    for name in tables:
        meta = http.get(f"/v1/{prefix}/namespaces/{ns}/tables/{name}").raise_for_status().json()["metadata"]
        current = next(s for s in meta["schemas"] if s["schema-id"] == meta["current-schema-id"])
        last = meta["last-column-id"]
        schema = {"type": "struct", "schema-id": max(s["schema-id"] for s in meta["schemas"]) + 1,
                  "fields": current["fields"] + [{"id": last + 1, "name": column, "type": "long", "required": False}]}
        changes.append({
            "identifier": {"namespace": [ns], "name": name},
            "requirements": [{"type": "assert-current-schema-id", "current-schema-id": meta["current-schema-id"]},
                             {"type": "assert-last-assigned-field-id", "last-assigned-field-id": last}],
            "updates": [{"action": "add-schema", "schema": schema, "last-column-id": last + 1},
                        {"action": "set-current-schema", "schema-id": -1}],
        })
    return {"table-changes": changes}


def widen_tables(http, prefix: str, ns: str, tables: list[str], column: str,
                 idempotency_key: str | None = None) -> tuple[int, int]:
    """Add `column` to every table in one transaction, retried on 409; returns (status, retries).

    `http` is an httpx.Client with the caller's Authorization header. With `idempotency_key`, the
    first attempt sends it (a retry after a lost answer then replays instead of repeating)."""
    retries = 0
    while True:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = http.post(f"/v1/{prefix}/transactions/commit", json=widen_request(http, prefix, ns, tables, column),
                             headers=headers)
        if response.status_code == 409 and response.json()["error"]["type"] == "CommitFailedException":
            idempotency_key = None  # the key now names the refused attempt: the next one is a new request
            retries += 1
            continue
        return response.status_code, retries


# -- integrity after anything ---------------------------------------------------------------------


def local_path(location: str) -> str:
    return location.removeprefix("file://")


def verify_catalog(db_url: str, uri: str, token: str, groups: list[list[str]] = (),
                   namespace: str | None = None) -> dict[str, Any]:
    """Check the catalog (or one top-level `namespace`): pointers name existing files, tables load and
    scan, groups are whole.

    `groups` lists tables ("ns.name") changed together by `widen_tables`: their column lists must be equal.
    Returns counts and a list of problems (empty when all is well)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT namespace, name, metadata_location, previous_metadata_location "
                                     "FROM icemesh_tables")).all()
        if namespace is not None:
            rows = [r for r in rows if r[0].split("\x1f")[0] == namespace]
    finally:
        engine.dispose()
    problems, catalog = [], rest_catalog(uri, token, "verifier")
    columns: dict[str, list[str]] = {}
    for ns_key, name, location, previous in rows:
        ident = ".".join(ns_key.split("\x1f") + [name])
        if location.startswith("file://") and not os.path.isfile(local_path(location)):
            problems.append(f"{ident}: pointer names a missing metadata file {location}")
            continue
        if previous and previous.startswith("file://") and not os.path.isfile(local_path(previous)):
            problems.append(f"{ident}: previous pointer names a missing metadata file {previous}")
        try:
            table = catalog.load_table(ident)
            table.scan().to_arrow()
            columns[ident] = [f.name for f in table.schema().fields]
        except Exception as exc:
            problems.append(f"{ident}: does not load and scan: {type(exc).__name__}: {exc}"[:400])
    for group in groups:
        seen = {t: columns.get(t) for t in group}
        if len({tuple(c) for c in seen.values() if c is not None}) > 1:
            problems.append(f"half-applied transaction: {seen}")
    return {"tables": len(rows), "problems": problems}


# -- process memory ---------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn workers), MB, from /proc."""
    total, pids = 0, [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)
