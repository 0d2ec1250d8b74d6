"""Contention benchmark: W writer processes x N appends to ONE table, on SQLite and on PostgreSQL.

    .venv/bin/python benchmarks/contention.py                     # 16 writers x 100 commits, both backends
    .venv/bin/python benchmarks/contention.py --writers 4 --commits 10 --backends sqlite

Each writer is a process with its own pyiceberg RestCatalog (pyiceberg's own retries off, so every 409
reaches the writer, which refreshes and appends again, and is counted). Afterwards the table must hold
exactly W x N snapshots in its main history, every acknowledged one, and exactly the rows written.
Prints commits/s, retries and latency per backend; writes benchmarks/results/contention.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.catalog import prepare_database  # noqa: E402
from icemesh.reliability.workload import contention_exact, run_contention  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "contention.json")


def run_backend(backend: str, writers: int, commits: int, workers: int, backoff_ms: float,
                snapshot_loading: str = "all") -> dict:
    from icemesh.server.process import CatalogProcess

    tmp = tempfile.mkdtemp(prefix="icemesh-contention-")
    db_url, cleanup = prepare_database(backend, tmp)
    server = CatalogProcess(db=db_url, warehouse=os.path.join(tmp, "warehouse"), cwd=tmp,
                            extra_args=["--workers", str(workers)], log_path=os.path.join(tmp, "server.log"))
    try:
        server.start()
        started = time.monotonic()

        def progress(landed: int, expected: int) -> None:
            print(f"[{backend}] {time.monotonic() - started:5.0f} s: {landed:,}/{expected:,} commits landed",
                  file=sys.stderr, flush=True)

        result = run_contention(server.uri, server.client().token(), writers, commits, processes=True, backoff_ms=backoff_ms,
                                snapshot_loading=snapshot_loading, progress=progress)
        result.update(backend=backend, server_workers=workers, client_backoff_ms=backoff_ms,
                      snapshot_loading=snapshot_loading, exact=contention_exact(result))
        return result
    except Exception:
        print(server.log(), file=sys.stderr)
        raise
    finally:
        server.stop()
        cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--writers", type=int, default=16)
    ap.add_argument("--commits", type=int, default=100, help="appends per writer")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--workers", type=int, default=1, help="icemesh serve --workers")
    ap.add_argument("--backoff-ms", type=float, default=25.0, help="writers sleep up to this x 2^attempt before a retry")
    ap.add_argument("--snapshot-loading", choices=("all", "refs"), default="refs",
                    help="what writers' refreshes load: refs (branch heads only, ?snapshots=refs) or all (the whole "
                         "history, which grows by one snapshot per commit: slower the longer the run)")
    ap.add_argument("--out", default=RESULTS)
    args = ap.parse_args(argv)

    results = []
    for backend in args.backends.split(","):
        print(f"[{backend}] {args.writers} writers x {args.commits} appends on one table ...", flush=True)
        started = time.monotonic()
        r = run_backend(backend, args.writers, args.commits, args.workers, args.backoff_ms, args.snapshot_loading)
        print(f"[{backend}] {'EXACT' if r['exact'] else 'WRONG'}: {r['snapshots']} snapshots for {r['expected_commits']} "
              f"commits ({r['acknowledged']} acknowledged, {r['acknowledged_missing']} missing), {r['rows']} rows; "
              f"{r['commits_per_s']} commits/s, {r['retries']} retries (409), errors {len(r['errors'])}, "
              f"latency p50 {r['commit_latency_ms']['p50']} ms p99 {r['commit_latency_ms']['p99']} ms "
              f"({time.monotonic() - started:.0f} s)", flush=True)
        for error in r["errors"][:5]:
            print("   ", error)
        results.append(r)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"benchmark": "contention", "timestamp_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "machine_cores": os.cpu_count(), "results": results}, f, indent=2)
    print(f"results: {os.path.relpath(args.out)}")
    return 0 if all(r["exact"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
