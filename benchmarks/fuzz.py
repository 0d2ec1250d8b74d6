"""Fuzz benchmark: schemathesis against the served OpenAPI (Iceberg REST + management API), as admin.

    .venv/bin/python benchmarks/fuzz.py                          # >= 5,000 cases
    .venv/bin/python benchmarks/fuzz.py --max-examples 5         # a few hundred

Two passes over every operation, each through schemathesis' coverage, fuzzing and stateful phases:
"free" (every path parameter generated, so most requests address things that do not exist) and
"targeted" (prefix, namespace and table name an existing table, so generated bodies reach commits,
property updates and the management operations on real objects). Checks: no 5xx
(not_a_server_error), and every status code, content type and body as the OpenAPI document says.
Writes benchmarks/results/fuzz.json.
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

from icemesh.reliability.fuzz import run_fuzz  # noqa: E402

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "fuzz.json")
TARGET = {"prefix": "default", "namespace": "fuzz", "table": "t"}








def main(argv=None) -> int:
    from icemesh.server.process import CatalogProcess

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-examples", type=int, default=40, help="per operation and phase (40: about 5,000+ cases)")
    ap.add_argument("--db", default="sqlite", help="sqlite or postgres")
    ap.add_argument("--out", default=RESULTS)
    args = ap.parse_args(argv)
    from benchmarks.catalog import prepare_database

    home = tempfile.mkdtemp(prefix="icemesh-fuzz-")
    db_url, cleanup = prepare_database(args.db, home)
    server = CatalogProcess(db=db_url, warehouse=os.path.join(home, "warehouse"), cwd=home,
                            log_path=os.path.join(home, "server.log"))
    try:
        server.start()
        result = run_fuzz(server, args.max_examples, home)
        result["server_log_errors"] = server.log().count("Traceback")
    finally:
        server.stop()
        cleanup()
        shutil.rmtree(home, ignore_errors=True)
    for name in ("free", "targeted"):
        r = result[name]
        print(f"[{name}] {r['generated']} cases, {r['passed']} passed, {r['failed']} failed ({r['seconds']} s)")
        if r["failures"]:
            print(r["failures"])
    print(f"total: {result['cases']} cases, {'no failures' if result['ok'] else 'FAILURES'}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"benchmark": "fuzz", "timestamp_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "backend": args.db, "max_examples": args.max_examples, **result}, f, indent=2)
    print(f"results: {os.path.relpath(args.out)}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
