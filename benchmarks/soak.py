"""Soak benchmark: minutes of mixed loads and commits from several processes against one server.

    .venv/bin/python benchmarks/soak.py                      # 10 minutes, SQLite
    .venv/bin/python benchmarks/soak.py --minutes 2 --db postgres
    .venv/bin/python benchmarks/soak.py --retention-s 0       # no snapshot retention: metadata grows

Readers (processes) load random tables over HTTP (pyiceberg) and now and then scan one; writers
(processes) republish random tables (overwrite, as dbt replaces a product; `--writes append` makes the
tables grow instead, and scans slow down with the data), retrying 409s. Every minute: loads and commits per second and
errors; every 5 s: the server's resident memory. Throughput should stay steady, memory flat, errors 0.
The tables are maintained as in production: the catalog expires snapshots older than --retention-s at
commit (keeping 10) and writers merge manifests; without that every commit grows the metadata each load
parses, and loads slow down over the run as with any Iceberg catalog.
Writes benchmarks/results/soak.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from icemesh.reliability.workload import append_batch, append_schema, rest_catalog, rss_mb  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "soak.json")
NS = "soak"


def worker(kind: str, idx: int, uri: str, token: str, tables: int, start_at: float, end_at: float, out,
           mode: str = "overwrite") -> None:
    """Count operations per minute (since start_at) until end_at; put {minute: [ops, errors]}."""
    import logging

    from pyiceberg.exceptions import CommitFailedException, ValidationException

    logging.getLogger("pyiceberg").setLevel(logging.ERROR)
    catalog = rest_catalog(uri, token, f"{kind}{idx}")
    rng = random.Random(idx)
    per_minute: dict[int, list[int]] = {}
    samples: list[str] = []
    while time.time() < start_at:
        time.sleep(0.01)
    seq = 0
    while (now := time.time()) < end_at:
        bucket = per_minute.setdefault(int((now - start_at) // 60), [0, 0, 0])
        ident = f"{NS}.t{rng.randrange(tables)}"
        try:
            table = catalog.load_table(ident)
            if kind == "reader":
                if rng.random() < 0.05:
                    table.scan().to_arrow()
            else:
                seq += 1
                while True:
                    try:
                        write = table.overwrite if mode == "overwrite" else table.append
                        write(append_batch(idx, seq))
                        break
                    except (CommitFailedException, ValidationException):
                        # 409; or, for an overwrite, pyiceberg's own retry found the other writer's rows
                        # (serializable isolation): both are conflicts to retry on the refreshed table.
                        bucket[2] += 1
                        table.refresh()
            bucket[0] += 1
        except Exception as exc:
            bucket[1] += 1
            if len(samples) < 5:
                samples.append(f"{type(exc).__name__}: {exc}"[:300])
            time.sleep(0.1)
    out.put({"kind": kind, "per_minute": per_minute, "samples": samples})


def main(argv=None) -> int:
    from benchmarks.catalog import prepare_database
    from icemesh.server.process import CatalogProcess

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--readers", type=int, default=3)
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--tables", type=int, default=20)
    ap.add_argument("--db", default="sqlite", help="sqlite or postgres")
    ap.add_argument("--writes", choices=("overwrite", "append"), default="overwrite",
                    help="overwrite: each commit republishes a table (as dbt replaces a product); append: tables grow, "
                         "so scans slow down with the data")
    ap.add_argument("--retention-s", type=float, default=60,
                    help="tables keep snapshots this long (history.expire.max-snapshot-age-ms, applied by the catalog at "
                         "commit) and merge manifests, as maintained production tables do; 0: neither (metadata grows)")
    ap.add_argument("--out", default=RESULTS)
    args = ap.parse_args(argv)

    home = tempfile.mkdtemp(prefix="icemesh-soak-")
    db_url, cleanup = prepare_database(args.db, home)
    server = CatalogProcess(db=db_url, warehouse=os.path.join(home, "warehouse"), cwd=home,
                            log_path=os.path.join(home, "server.log"))
    try:
        server.start()
        token = server.client().token()
        catalog = rest_catalog(server.uri, token)
        catalog.create_namespace(NS)
        properties = {"history.expire.max-snapshot-age-ms": str(int(args.retention_s * 1000)),
                      "history.expire.min-snapshots-to-keep": "10",
                      "commit.manifest-merge.enabled": "true"} if args.retention_s > 0 else {}
        for i in range(args.tables):
            catalog.create_table(f"{NS}.t{i}", schema=append_schema(), properties=properties).append(append_batch(0, 0))
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        start_at = time.time() + 8
        end_at = start_at + args.minutes * 60
        procs = [ctx.Process(target=worker, args=(kind, i, server.uri, token, args.tables, start_at, end_at, out, args.writes))
                 for kind, n in (("reader", args.readers), ("writer", args.writers)) for i in range(n)]
        for p in procs:
            p.start()
        print(f"soak: {args.readers} reader and {args.writers} writer processes, {args.tables} tables, "
              f"{args.minutes:g} min on {args.db}, {args.writes} commits, snapshot retention "
              f"{f'{args.retention_s:g} s' if args.retention_s > 0 else 'off'}", flush=True)
        rss = []
        while time.time() < end_at:
            time.sleep(5)
            if time.time() >= start_at:
                rss.append((round(time.time() - start_at), rss_mb(server.proc.pid)))
                if len(rss) % 12 == 0:
                    print(f"  {rss[-1][0]:>4} s: server RSS {rss[-1][1]} MB", flush=True)
        outs = [out.get(timeout=300) for _ in procs]
        for p in procs:
            p.join(30)
        server_errors = server.log().count("Traceback")
    finally:
        server.stop()
        cleanup()
        shutil.rmtree(home, ignore_errors=True)

    minutes = int(args.minutes + 0.999)
    rows = []
    for m in range(minutes):
        row = {"minute": m + 1}
        for kind in ("reader", "writer"):
            ops = sum(o["per_minute"].get(m, [0, 0, 0])[0] for o in outs if o["kind"] == kind)
            row[{"reader": "loads_per_s", "writer": "commits_per_s"}[kind]] = round(ops / 60, 1)
        row["errors"] = sum(o["per_minute"].get(m, [0, 0, 0])[1] for o in outs)
        row["retries"] = sum(o["per_minute"].get(m, [0, 0, 0])[2] for o in outs)
        rows.append(row)
        print(f"  minute {m + 1}: {row['loads_per_s']} loads/s, {row['commits_per_s']} commits/s, "
              f"{row['retries']} retries, {row['errors']} errors")
    full = rows[: int(args.minutes)] or rows
    rss_values = [v for _t, v in rss]
    first = rss_values[len(rss_values) // 10: len(rss_values) // 10 + 6] or rss_values[:1]
    result = {
        "benchmark": "soak", "timestamp_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "backend": args.db, "minutes": args.minutes, "retention_s": args.retention_s, "writes": args.writes,
        "readers": args.readers, "writers": args.writers,
        "tables": args.tables, "per_minute": rows, "server_rss_mb": rss,
        "errors": sum(r["errors"] for r in rows) + server_errors, "error_samples": [s for o in outs for s in o["samples"]][:5],
        "loads_per_s_min_over_max": round(min(r["loads_per_s"] for r in full) / max(max(r["loads_per_s"] for r in full), 0.1), 2),
        "commits_per_s_min_over_max": round(min(r["commits_per_s"] for r in full) / max(max(r["commits_per_s"] for r in full), 0.1), 2),
        "rss_mb_start": round(sum(first) / len(first), 1) if first else None,
        "rss_mb_end": rss_values[-1] if rss_values else None,
        "rss_mb_max": max(rss_values) if rss_values else None,
    }
    print(f"errors {result['errors']}; loads/s min/max {result['loads_per_s_min_over_max']}, commits/s min/max "
          f"{result['commits_per_s_min_over_max']}; server RSS {result['rss_mb_start']} MB -> {result['rss_mb_end']} MB "
          f"(max {result['rss_mb_max']})")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"results: {os.path.relpath(args.out)}")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
