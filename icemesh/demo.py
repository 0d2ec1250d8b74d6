"""`make demo`: a governed mesh on the embedded default, end to end.

Starts `icemesh serve` (SQLite catalog, local warehouse under .icemesh/demo), applies
catalog/policies.yml, lets one domain publish a product from DuckDB, lets another read it in place
from pyiceberg and DuckDB under its grants (a confidential column hidden), shows what a denied
read says, and prints a summary. Re-runnable: each run starts from an empty demo directory.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

DEMO_DIR = os.path.join(".icemesh", "demo")
POLICY_FILE = os.path.join("catalog", "policies.yml")


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def main() -> int:
    import pyarrow as pa

    from icemesh.server.process import CatalogProcess

    started = time.monotonic()
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    os.makedirs(DEMO_DIR)
    warehouse = os.path.abspath(os.path.join(DEMO_DIR, "warehouse"))
    step("starting the catalog: icemesh serve (SQLite catalog, local warehouse)")
    with CatalogProcess(db=f"sqlite:///{os.path.abspath(DEMO_DIR)}/catalog.db", warehouse=warehouse,
                        cwd=DEMO_DIR, log_path=os.path.join(DEMO_DIR, "serve.log")) as server:
        print(f"    catalog at {server.uri}, warehouse {warehouse}")
        admin = server.client()

        step(f"governance as code: icemesh policy apply {POLICY_FILE}")
        with open(POLICY_FILE, encoding="utf-8") as f:
            applied = admin.request("POST", "/management/v1/policy", json={"document": f.read()})
        secrets = {p["name"]: p["client_secret"] for p in applied["created_principals"]}
        print(f"    {len(applied['changes'])} changes: principals {', '.join(sorted(secrets))}; namespaces owned by their domains")

        step("svc_supply_chain publishes supply_chain.shipments from DuckDB (CTAS, UPDATE, DELETE)")
        supply = server.client("svc_supply_chain", secrets["svc_supply_chain"])
        duck = supply.duckdb()
        duck.execute(
            """CREATE TABLE mesh.supply_chain.shipments AS
               SELECT range AS shipment_id,
                      ['Basel', 'Lyon', 'Pune', 'Durham'][1 + range % 4] AS site,
                      (range * 37) % 500 + 10 AS doses,
                      round(((range * 13) % 1000) / 100.0, 2)::DECIMAL(8, 2) AS unit_cost,
                      TIMESTAMPTZ '2026-01-01 00:00:00+00' + INTERVAL (range) MINUTE AS shipped_at
               FROM range(20000)"""
        )
        duck.execute("UPDATE mesh.supply_chain.shipments SET doses = doses + 1 WHERE site = 'Pune'")
        duck.execute("DELETE FROM mesh.supply_chain.shipments WHERE shipment_id % 1000 = 0")
        rows = duck.execute("SELECT count(*) FROM mesh.supply_chain.shipments").fetchone()[0]
        print(f"    rows: {rows}")
        admin.request("POST", "/management/v1/tag-assignments", json={
            "key": "sensitivity", "value": "confidential", "table": "supply_chain.shipments", "column": "unit_cost"})
        print("    tagged column unit_cost sensitivity=confidential")

        step("svc_product_360 reads the product in place with pyiceberg (its grant: domain=supply_chain,manufacturing AND sensitivity=public,internal)")
        p360 = server.client("svc_product_360", secrets["svc_product_360"], column_limits=True)
        table = p360.rest_catalog("p360").load_table("supply_chain.shipments")
        arrow = table.scan().to_arrow()
        print(f"    columns it receives: {', '.join(arrow.column_names)}   (unit_cost is hidden)")
        by_site = arrow.group_by("site").aggregate([("doses", "sum")]).sort_by("site")
        for site, doses in zip(by_site.column("site").to_pylist(), by_site.column("doses_sum").to_pylist()):
            print(f"    {site:<8} {doses:>9,} doses")

        step("what a refusal says")
        plain = server.client("svc_product_360", secrets["svc_product_360"]).rest_catalog("plain")
        for who, attempt in [
            ("svc_product_360, a plain client that does not apply column limits",
             lambda: plain.load_table("supply_chain.shipments")),
            ("svc_marketing, no grant", lambda: server.client("svc_marketing", secrets["svc_marketing"])
             .rest_catalog("mkt").load_table("supply_chain.shipments")),
            ("svc_product_360 appending to another domain's product",
             lambda: table.append(pa.Table.from_pylist([], schema=arrow.schema))),
        ]:
            try:
                attempt()
                print(f"    {who}: unexpectedly allowed")
                return 1
            except Exception as exc:  # noqa: BLE001 - we print the catalog's own message
                print(f"    {who}:\n      {str(exc).splitlines()[0][:220]}")

        step("the producer appends with pyiceberg; svc_manufacturing sees it at once from DuckDB")
        producer_table = supply.rest_catalog("supply").load_table("supply_chain.shipments")
        late = producer_table.scan(limit=1).to_arrow()
        producer_table.append(late)
        manufacturing = server.client("svc_manufacturing", secrets["svc_manufacturing"], column_limits=True).duckdb()
        count, doses = manufacturing.execute("SELECT count(*), sum(doses) FROM mesh.supply_chain.shipments").fetchone()
        columns = [r[0] for r in manufacturing.execute("DESCRIBE mesh.supply_chain.shipments").fetchall()]
        print(f"    rows: {count}, doses: {doses:,}, columns: {', '.join(columns)}")
        if count != rows + 1 or "unit_cost" in columns:
            print(f"error: svc_manufacturing saw {count} rows and columns {columns}", file=sys.stderr)
            return 1

        denials = admin.request("GET", "/management/v1/audit", params={"denied": "true", "limit": 100})
        table = admin.rest_catalog("admin").load_table("supply_chain.shipments")
        files = [os.path.join(b, f) for b, _d, fs in os.walk(warehouse) for f in fs]
        step("summary")
        print(f"    products: 1, domains: 3, principals: {len(secrets) + 1}, snapshots: {len(table.metadata.snapshots)}, "
              f"engines: DuckDB + pyiceberg")
        print(f"    warehouse files: {len(files)} ({sum(os.path.getsize(f) for f in files):,} bytes), "
              f"bytes copied between domains: 0, denials audited: {len(denials)}")
        print(f"    done in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # one line, as every command
        print(f"error: demo failed: {exc}", file=sys.stderr)
        sys.exit(1)
