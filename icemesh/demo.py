"""`make demo`: the catalog on the embedded default, written by one engine and read in place by another.

Starts `icemesh serve` (SQLite catalog, local warehouse under .icemesh/demo), publishes a table from
DuckDB, reads and extends it from pyiceberg, reads it back from DuckDB, and prints a summary.
Re-runnable: each run starts from an empty demo directory.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

DEMO_DIR = os.path.join(".icemesh", "demo")


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def main() -> int:
    import pyarrow as pa
    import pyarrow.compute as pc

    from icemesh.server.process import CatalogProcess

    started = time.monotonic()
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    os.makedirs(DEMO_DIR)
    warehouse = os.path.abspath(os.path.join(DEMO_DIR, "warehouse"))
    step("starting the catalog: icemesh serve (SQLite catalog, local warehouse)")
    with CatalogProcess(db=f"sqlite:///{os.path.abspath(DEMO_DIR)}/catalog.db", warehouse=warehouse,
                        cwd=DEMO_DIR, log_path=os.path.join(DEMO_DIR, "serve.log")) as server:
        print(f"    catalog at {server.uri}, warehouse {warehouse}")

        step("DuckDB publishes supply_chain.shipments (CTAS, then an UPDATE and a DELETE)")
        duck = server.client().duckdb()
        duck.execute("CREATE SCHEMA mesh.supply_chain")
        duck.execute(
            """CREATE TABLE mesh.supply_chain.shipments AS
               SELECT range AS shipment_id,
                      ['Basel', 'Lyon', 'Pune', 'Durham'][1 + range % 4] AS site,
                      (range * 37) % 500 + 10 AS doses,
                      TIMESTAMPTZ '2026-01-01 00:00:00+00' + INTERVAL (range) MINUTE AS shipped_at
               FROM range(20000)"""
        )
        duck.execute("UPDATE mesh.supply_chain.shipments SET doses = doses + 1 WHERE site = 'Pune'")
        duck.execute("DELETE FROM mesh.supply_chain.shipments WHERE shipment_id % 1000 = 0")
        print(f"    rows: {duck.execute('SELECT count(*) FROM mesh.supply_chain.shipments').fetchone()[0]}")

        step("pyiceberg (another team) reads the same files in place and appends a late shipment")
        catalog = server.client().rest_catalog("demo")
        table = catalog.load_table("supply_chain.shipments")
        arrow = table.scan().to_arrow()
        by_site = arrow.group_by("site").aggregate([("doses", "sum")]).sort_by("site")
        for site, doses in zip(by_site.column("site").to_pylist(), by_site.column("doses_sum").to_pylist()):
            print(f"    {site:<8} {doses:>9,} doses")
        late = pa.table({"shipment_id": pa.array([99999], pa.int64()), "site": ["Basel"],
                         "doses": pa.array([42], arrow.schema.field("doses").type),
                         "shipped_at": pc.cast(pa.array([arrow.column("shipped_at")[0].as_py()]), arrow.schema.field("shipped_at").type)},
                        schema=arrow.schema)
        table.append(late)

        step("DuckDB sees pyiceberg's append at once: one table, two engines, no copies")
        duck2 = server.client().duckdb()
        count, doses = duck2.execute("SELECT count(*), sum(doses) FROM mesh.supply_chain.shipments").fetchone()
        print(f"    rows: {count}, doses: {doses:,}")
        expected = arrow.num_rows + 1
        if count != expected:
            print(f"error: DuckDB saw {count} rows, expected {expected}", file=sys.stderr)
            return 1

        table = catalog.load_table("supply_chain.shipments")
        files = [os.path.join(b, f) for b, _d, fs in os.walk(warehouse) for f in fs]
        step("summary")
        print(f"    tables: {len(catalog.list_tables('supply_chain'))}, snapshots: {len(table.metadata.snapshots)}, "
              f"engines: DuckDB + pyiceberg, warehouse files: {len(files)} "
              f"({sum(os.path.getsize(f) for f in files):,} bytes), bytes copied between engines: 0")
        print(f"    done in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
