"""Crash benchmark: kill -9 the catalog server during a commit storm, restart it, verify; repeat.

    .venv/bin/python benchmarks/crash.py                       # 20 cycles on SQLite, then 20 on PostgreSQL
    .venv/bin/python benchmarks/crash.py --cycles 3 --backends sqlite

The storm: appenders (pyiceberg, several tables), a multi-table transaction writer (adds a column to
tables a and b in one `transactions/commit`, each with an Idempotency-Key) and a table creator. After a
random 0.3-1.5 s the server gets SIGKILL. After each restart:
- every pointer in the database names an existing metadata file, and every table loads and scans;
- tables a and b have the same columns (no part of a transaction without the rest);
- every acknowledged append, transaction and create is there (acknowledged means durable);
- the transaction that was in flight when the server died, retried with its Idempotency-Key, gets a
  definite answer (not "still running"), and its column is in both tables or in neither.
Writes benchmarks/results/crash.json.
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

from icemesh.reliability.crash import run_crash_cycles  # noqa: E402


NS = "storm"
PAIR = ["a", "b"]
LEASE_S = 2  # idempotency claims of a dead server are taken over after this (ICEMESH_IDEMPOTENCY_LEASE_SECONDS)
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "crash.json")










def main(argv=None) -> int:
    from benchmarks.catalog import prepare_database

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--appenders", type=int, default=4)
    ap.add_argument("--out", default=RESULTS)
    args = ap.parse_args(argv)
    results = []
    for backend in args.backends.split(","):
        home = tempfile.mkdtemp(prefix="icemesh-crash-")
        db_url, cleanup = prepare_database(backend, home)
        print(f"[{backend}] {args.cycles} kill -9 cycles", flush=True)
        try:
            r = run_crash_cycles(db_url, home, args.cycles, appenders=args.appenders,
                                 say=lambda m, b=backend: print(f"[{b}] {m}", flush=True))
        finally:
            cleanup()
            shutil.rmtree(home, ignore_errors=True)
        r["backend"] = backend
        print(f"[{backend}] {r['problems']} problems over {r['cycles']} crashes; acknowledged before the kills: "
              f"{r['appends']} appends, {r['transactions']} transactions, {r['creates']} creates; "
              f"{r['in_flight_retried']} in-flight transactions retried after restart", flush=True)
        results.append(r)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"benchmark": "crash", "timestamp_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "results": results}, f, indent=2)
    print(f"results: {os.path.relpath(args.out)}")
    return 0 if all(r["problems"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
