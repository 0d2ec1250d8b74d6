"""Benchmark (issue 21): a filtered and masked read of a 10-million-row product, per engine, against the same
read by a principal the catalog does not restrict.

A real `icemesh serve` (SQLite, local warehouse); pyiceberg writes `bench.people` (id, region, email, amount,
day). Principals: `open_reader` holds SELECT on it; `eu_reader` holds SELECT with the row filter
`region <> 'APAC'` (two thirds of the rows) and masks email=sha256, day=month; `eu_light` the same filter with
email=last4, day=month (what the mechanism costs without SHA-256's own work). All run the same query through
`icemesh.connect().sql(..., engine=E)`, which reads every column:
    SELECT region, count(*), count(DISTINCT email), sum(amount), min(day) FROM bench.people GROUP BY region
Medians of --runs after one warm-up, the two principals alternating run by run. Reported: restricted/open per
engine (floor: <= 1.3), and whether the restricted answer equals the one computed from the open rows in Python.
DuckDB and Spark keep a small product's restricted rows once per version (icemesh.query.restricted
.KEEP_MAX_FILE_BYTES): `first` is the restricted reader's first query of the snapshot (the engine already
started by an open read), which pays for keeping them; `--no-keep` measures every query through the view.
Writes benchmarks/results/data_filters.json.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

sys.path.insert(0, HERE)

from icemesh.server.process import CatalogProcess  # noqa: E402
from query_engines import engine_arguments, timed  # noqa: E402  (medians of alternating runs, after a warm-up each)

FLOOR_RATIO = 1.3
RESULTS_PATH = os.path.join(REPO, "benchmarks", "results", "data_filters.json")
SQL = ("SELECT region, count(*) AS n, count(DISTINCT email) AS emails, sum(amount) AS total, min(day) AS first_day "
       "FROM bench.people GROUP BY region")
ALL_ENGINES = ["duckdb", "spark", "polars", "datafusion", "daft", "chdb"]
REGIONS = ["EU", "US", "APAC"]
M = "/management/v1"


def say(message: str) -> None:
    print(message, flush=True)


def write_product(client, rows: int) -> None:
    import numpy as np
    import pyarrow as pa

    catalog = client.rest_catalog()
    catalog.create_namespace("bench")
    schema = pa.schema([("id", pa.int64()), ("region", pa.string()), ("email", pa.string()),
                        ("amount", pa.int64()), ("day", pa.date32())])
    table = catalog.create_table("bench.people", schema)
    rng = np.random.default_rng(21)
    batch = 2_000_000
    for start in range(0, rows, batch):
        n = min(batch, rows - start)
        ids = np.arange(start, start + n, dtype=np.int64)
        table.append(pa.table({
            "id": pa.array(ids),
            "region": pa.array(np.array(REGIONS)[rng.integers(0, 3, n)]),
            "email": pa.compute.binary_join_element_wise(
                "user", pa.array(rng.integers(0, n // 4 + 1, n)).cast(pa.string()), "@example.org", ""),
            "amount": pa.array(rng.integers(-50, 1000, n)),
            "day": pa.array(rng.integers(19_000, 20_000, n).astype("int32")).cast(pa.date32()),
        }, schema=schema))
        say(f"  wrote {start + n:,} / {rows:,} rows")


def reference(open_rows) -> list[tuple]:
    """The restricted answer computed from the open rows in Python (only for small --rows)."""
    groups: dict = {}
    for r in open_rows:
        if r["region"] == "APAC":
            continue
        g = groups.setdefault(r["region"], [0, set(), 0, None])
        g[0] += 1
        g[1].add(hashlib.sha256(r["email"].encode()).hexdigest())
        g[2] += r["amount"]
        month = r["day"].replace(day=1)
        g[3] = month if g[3] is None or month < g[3] else g[3]
    return sorted((k, n, len(e), t, d) for k, (n, e, t, d) in groups.items())


def summary(table) -> list[tuple]:
    out = []
    for r in table.to_pylist():
        day = r["first_day"]
        if isinstance(day, dt.datetime):
            day = day.date()
        out.append((r["region"], int(r["n"]), int(r["emails"]), int(r["total"]), day))
    return sorted(out)


def main(argv=None) -> int:
    args, engines = engine_arguments(argv, __doc__, 5, RESULTS_PATH, ALL_ENGINES, flags={
        "--no-keep": "read every restricted query through the compiled view (keep no restricted rows)"})

    import icemesh
    from icemesh.query import restricted

    if args.no_keep:
        restricted.KEEP_MAX_FILE_BYTES = -1

    home = tempfile.mkdtemp(prefix="icemesh-bench-filters-")
    results = {"rows": args.rows, "runs": args.runs, "floor_ratio": FLOOR_RATIO, "query": SQL, "engines": {},
               "keep_max_file_bytes": restricted.KEEP_MAX_FILE_BYTES}
    failed = False
    with CatalogProcess(db=f"sqlite:///{home}/catalog.db", warehouse=f"{home}/warehouse", cwd=home) as server:
        admin = server.client()
        say(f"writing bench.people ({args.rows:,} rows) through {server.uri}")
        write_product(admin, args.rows)
        secrets = {}
        for name in ("open_reader", "eu_reader", "eu_light"):
            secrets[name] = admin.request("POST", M + "/principals", json={"name": name})["client_secret"]
        admin.request("POST", M + "/grants", json={"permissions": "SELECT,DESCRIBE", "principal": "open_reader",
                                                   "table": "bench.people"})
        admin.request("POST", M + "/grants", json={"permissions": "SELECT,DESCRIBE", "principal": "eu_reader",
                                                   "table": "bench.people", "rows": "region <> 'APAC'",
                                                   "masks": ["email=sha256", "day=month"]})
        admin.request("POST", M + "/grants", json={"permissions": "SELECT,DESCRIBE", "principal": "eu_light",
                                                   "table": "bench.people", "rows": "region <> 'APAC'",
                                                   "masks": ["email=last4", "day=month"]})
        sessions = {name: icemesh.connect(server.uri, client_id=name, client_secret=secret)
                    for name, secret in secrets.items()}
        expected = None
        if args.rows <= 200_000:
            expected = reference(admin.rest_catalog().load_table("bench.people").scan().to_arrow().to_pylist())
        for engine in engines:
            say(f"{engine}: restricted vs open reader ({args.runs} alternating runs each after a warm-up)")
            try:
                sessions["open_reader"].sql(SQL, engine=engine)  # the engine started, the open scan planned
                start = time.perf_counter()
                sessions["eu_reader"].sql(SQL, engine=engine)
                first_s = time.perf_counter() - start
                r_s, o_s, r_result, _o = timed(lambda: sessions["eu_reader"].sql(SQL, engine=engine),
                                               lambda: sessions["open_reader"].sql(SQL, engine=engine), args.runs)
            except Exception as exc:  # noqa: BLE001 - an engine that is not installed: reported, the rest go on
                say(f"  skipped: {exc}")
                results["engines"][engine] = {"error": str(exc)}
                continue
            ratio = r_s / o_s
            got = summary(r_result)
            same = None if expected is None else got == expected
            consistent = results.setdefault("restricted_answer", got) == got  # every engine answers the same
            try:
                light_s, _o2, _light, _ = timed(lambda: sessions["eu_light"].sql(SQL, engine=engine),
                                                lambda: sessions["open_reader"].sql(SQL, engine=engine), args.runs)
            except Exception as exc:  # noqa: BLE001
                light_s = float("nan")
                say(f"  eu_light failed: {exc}")
            ok = ratio <= FLOOR_RATIO and consistent and same is not False
            failed |= not ok
            results["engines"][engine] = {"restricted_s": round(r_s, 4), "open_s": round(o_s, 4),
                                          "first_restricted_s": round(first_s, 4),
                                          "ratio": round(ratio, 3), "light_s": round(light_s, 4),
                                          "light_ratio": round(light_s / o_s, 3),
                                          "same_as_other_engines": consistent,
                                          "same_as_python_reference": same, "ok": ok}
            say(f"  restricted {r_s:.3f} s  open {o_s:.3f} s  ratio {ratio:.2f}  first {first_s:.3f} s  "
                f"(no hash: {light_s:.3f} s, "
                f"{light_s / o_s:.2f})  {'same answer as the other engines' if consistent else 'DIFFERENT ANSWER'}  "
                f"{'ok' if ok else 'FAIL'}")
        for session in sessions.values():
            session.close()
    results.pop("restricted_answer", None)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2, default=str)
    say(f"results written to {os.path.relpath(args.out, os.getcwd())}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
