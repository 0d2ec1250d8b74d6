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
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "fuzz.json")
TARGET = {"prefix": "default", "namespace": "fuzz", "table": "t"}


def seed_target(server) -> None:
    """The namespace and table the targeted pass addresses."""
    from benchmarks.workload import append_batch, append_schema

    catalog = server.client().rest_catalog()
    catalog.create_namespace(TARGET["namespace"])
    catalog.create_table(f"{TARGET['namespace']}.{TARGET['table']}", schema=append_schema()).append(append_batch(0, 0))


def run_schemathesis(uri: str, token: str, max_examples: int, workdir: str, parameters: dict[str, str] | None = None,
                     seed: int | None = None) -> dict[str, Any]:
    """One `st run` over the whole API; returns the cases generated, passed and the failures it printed."""
    config = os.path.join(workdir, "schemathesis.toml")
    with open(config, "w") as f:
        f.write('[warnings]\nenabled = false\n')
        if parameters:
            f.write("[parameters]\n" + "".join(f'{k} = "{v}"\n' for k, v in parameters.items()))
    st = os.path.join(os.path.dirname(sys.executable), "st")
    args = [st, "--config-file", config, "run", f"{uri}/openapi.json", "-H", f"Authorization: Bearer {token}",
            "--checks", CHECKS, "--max-examples", str(max_examples), "--workers", "1", "--continue-on-failure",
            "--phases", "coverage,fuzzing,stateful"]
    if seed is not None:
        args += ["--seed", str(seed)]
    started = time.monotonic()
    done = subprocess.run(args, cwd=workdir, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    output = done.stdout + done.stderr
    counts = re.search(r"(\d+) generated, (\d+) passed", output)
    failed = re.search(r"(\d+) failed", output.split("SUMMARY")[-1])
    return {"exit_code": done.returncode, "generated": int(counts.group(1)) if counts else 0,
            "passed": int(counts.group(2)) if counts else 0, "failed": int(failed.group(1)) if failed else 0,
            "seconds": round(time.monotonic() - started, 1),
            "failures": output.split("FAILURES")[1].split("SUMMARY")[0][:6000] if "FAILURES" in output else "",
            "output_tail": output[-1500:]}


def run_fuzz(server, max_examples: int, workdir: str, seed: int | None = None) -> dict[str, Any]:
    seed_target(server)
    token = server.client().token()
    free = run_schemathesis(server.uri, token, max_examples, workdir, seed=seed)
    targeted = run_schemathesis(server.uri, token, max_examples, workdir, TARGET, seed=seed)
    return {"free": free, "targeted": targeted, "cases": free["generated"] + targeted["generated"],
            "ok": free["exit_code"] == 0 and targeted["exit_code"] == 0}


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
