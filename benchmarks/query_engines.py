"""Benchmark (issue 7): scan-and-aggregate of a 10-million-row product through icemesh, per engine, against the same
engine reading the same Parquet files directly.

A real `icemesh serve` (SQLite, local warehouse); pyiceberg writes the product `bench.events` (id, key, amount, ts);
for each engine: `SELECT key, count(*), sum(amount), max(ts) FROM bench.events GROUP BY key` through
`icemesh.connect().sql(..., engine=E)` (catalog round trips, policy check, engine set-up included), and the same
aggregate with the engine's own Parquet reader over the table's data files. The median of --runs after one warm-up,
the two sides alternating run by run.
Floor: icemesh / direct <= 1.2 for every engine. Also reported: icemesh's fixed cost per query (catalog round trip,
engine set-up), the same comparison on a 1,000-row product, which a busy machine disturbs far less than the ratio. Writes benchmarks/results/query_engines.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from icemesh.server.process import CatalogProcess  # noqa: E402

FLOOR_RATIO = 1.2
RESULTS_PATH = os.path.join(REPO, "benchmarks", "results", "query_engines.json")
MESH_SQL = "SELECT key, count(*) AS n, sum(amount) AS total, max(ts) AS latest FROM bench.events GROUP BY key"
TINY_ROWS, TINY_RUNS = 1_000, 21  # a product whose scan costs next to nothing: what is left is icemesh's fixed cost
ALL_ENGINES = ["duckdb", "polars", "datafusion", "daft", "chdb", "spark"]


def say(message: str) -> None:
    print(message, flush=True)


def write_product(client, rows: int, name: str = "events") -> list[str]:
    import numpy as np
    import pyarrow as pa

    catalog = client.rest_catalog()
    if ("bench",) not in catalog.list_namespaces():
        catalog.create_namespace("bench")
    schema = pa.schema([("id", pa.int64()), ("key", pa.int32()), ("amount", pa.float64()),
                        ("ts", pa.timestamp("us", tz="UTC"))])
    table = catalog.create_table(f"bench.{name}", schema)
    rng = np.random.default_rng(7)
    batch = 2_000_000
    for start in range(0, rows, batch):
        n = min(batch, rows - start)
        table.append(pa.table({
            "id": pa.array(np.arange(start, start + n, dtype=np.int64)),
            "key": pa.array(rng.integers(0, 100, n, dtype=np.int32)),
            "amount": pa.array(rng.random(n) * 100),
            "ts": pa.array(1_700_000_000_000_000 + rng.integers(0, 10**12, n), pa.timestamp("us", tz="UTC")),
        }, schema=schema))
        say(f"  wrote {start + n:,} / {rows:,} rows")
    table = catalog.load_table(f"bench.{name}")
    return [task.file.file_path.removeprefix("file://") for task in table.scan().plan_files()]


def direct(engine: str, files: list[str]):
    """The same aggregate with the engine's own Parquet reader: a function running it once."""
    sql = "SELECT key, count(*) AS n, sum(amount) AS total, max(ts) AS latest FROM events GROUP BY key"
    if engine == "duckdb":
        import duckdb

        con = duckdb.connect()
        listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        return lambda: con.execute(sql.replace("FROM events", f"FROM read_parquet([{listing}])")).to_arrow_table()
    if engine == "polars":
        import polars as pl

        return lambda: pl.SQLContext(events=pl.scan_parquet(files)).execute(sql).collect().to_arrow()
    if engine == "datafusion":
        from datafusion import SessionContext

        def run():
            ctx = SessionContext()
            ctx.register_parquet("events", os.path.dirname(files[0]))
            return ctx.sql(sql).to_arrow_table()
        return run
    if engine == "daft":
        import daft

        return lambda: daft.sql(sql, events=daft.read_parquet(files)).to_arrow()
    if engine == "chdb":
        import chdb

        con = chdb.connect(":memory:")
        directory = os.path.dirname(files[0])

        def run():
            previous = os.getcwd()
            os.chdir(directory)
            try:
                return con.query(sql.replace("FROM events", "FROM file('*.parquet', Parquet)"), "ArrowTable")
            finally:
                os.chdir(previous)
        return run
    if engine == "spark":
        from icemesh.runtimes import spark as spark_engine
        from icemesh.query.spark import to_arrow

        spark = spark_engine.session(None, app_name="icemesh-bench", extra_conf={"spark.sql.session.timeZone": "UTC"})

        def run():
            spark.read.parquet(*files).createOrReplaceTempView("events")
            return to_arrow(spark.sql(sql))
        return run
    raise ValueError(engine)


def timed(through_icemesh, direct_read, runs: int) -> tuple[float, float, object, object]:
    """Medians of `runs` timings of each, after one warm-up each (imports, JIT, session start, OS cache). The two
    alternate run by run, so a load that comes and goes on a shared machine weighs on both sides alike."""
    mesh_result, direct_result = through_icemesh(), direct_read()
    mesh_times, direct_times = [], []
    for _ in range(runs):
        mesh_result, seconds = _clock(through_icemesh)
        mesh_times.append(seconds)
        direct_result, seconds = _clock(direct_read)
        direct_times.append(seconds)
    return statistics.median(mesh_times), statistics.median(direct_times), mesh_result, direct_result


def _clock(func) -> tuple[object, float]:
    start = time.perf_counter()
    result = func()
    return result, time.perf_counter() - start


def summary(table) -> list[tuple]:
    rows = table.to_pylist()
    return sorted((int(r["key"]), int(r["n"]), round(float(r["total"]), 3)) for r in rows)


def engine_arguments(argv, doc: str, runs: int, out: str, engines: list[str], flags: dict[str, str] | None = None):
    """(args, engines) of an engine benchmark's command line: --rows, --runs, --engines, --out, and the
    benchmark's own on/off `flags` (name -> help)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=runs)
    ap.add_argument("--engines", default=",".join(engines), help="comma-separated subset")
    ap.add_argument("--out", default=out)
    for flag, text in (flags or {}).items():
        ap.add_argument(flag, action="store_true", help=text)
    args = ap.parse_args(argv)
    return args, [e.strip() for e in args.engines.split(",") if e.strip()]


def main(argv=None) -> int:
    args, engines = engine_arguments(argv, __doc__, 7, RESULTS_PATH, ALL_ENGINES)

    import icemesh

    home = tempfile.mkdtemp(prefix="icemesh-bench-query-")
    results = {"rows": args.rows, "runs": args.runs, "floor_ratio": FLOOR_RATIO, "engines": {}}
    failed = False
    with CatalogProcess(db=f"sqlite:///{home}/catalog.db", warehouse=f"{home}/warehouse", cwd=home) as server:
        say(f"writing bench.events ({args.rows:,} rows) through {server.uri}")
        files = write_product(server.client(), args.rows)
        say(f"  {len(files)} data files")
        tiny_files = write_product(server.client(), TINY_ROWS, "tiny")
        mesh = icemesh.connect(server.uri, client_id="admin", client_secret=server.admin_secret)
        for engine in engines:
            say(f"{engine}: through icemesh vs direct Parquet ({args.runs} alternating runs each after a warm-up)")
            mesh_s, direct_s, mesh_result, direct_result = timed(lambda: mesh.sql(MESH_SQL, engine=engine),
                                                                 direct(engine, files), args.runs)
            same = summary(mesh_result) == summary(direct_result)
            ratio = mesh_s / direct_s
            ok = same and ratio <= FLOOR_RATIO
            failed |= not ok
            results["engines"][engine] = {"icemesh_s": round(mesh_s, 4), "direct_s": round(direct_s, 4),
                                          "ratio": round(ratio, 3), "same_result": same, "ok": ok}
            tiny_mesh_s, tiny_direct_s, _, _ = timed(lambda: mesh.sql(MESH_SQL.replace("bench.events", "bench.tiny"),
                                                                      engine=engine), direct(engine, tiny_files), TINY_RUNS)
            fixed_ms = (tiny_mesh_s - tiny_direct_s) * 1000
            results["engines"][engine]["fixed_cost_ms"] = round(fixed_ms, 2)
            say(f"  icemesh {mesh_s:.3f} s  direct {direct_s:.3f} s  ratio {ratio:.2f}  "
                f"{'same result' if same else 'DIFFERENT RESULT'}  {'ok' if ok else 'FAIL'}  "
                f"(fixed cost per query, on {TINY_ROWS:,} rows: {fixed_ms:.1f} ms)")
        mesh.close()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    say(f"results written to {os.path.relpath(args.out, os.getcwd())}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
