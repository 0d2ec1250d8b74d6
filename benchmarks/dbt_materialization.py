"""Benchmark (issue 4): a 5-million-row model as materialized='iceberg' against dbt-duckdb's native 'table'.

One dbt project with two models over the same SQL: `native_orders` (materialized='table', a table in the
project's DuckDB file) and `mesh_orders` (materialized='iceberg', a product in the catalog). Each run
builds both; dbt's own per-model execution time (run_results.json) is compared. The first run creates
the product, later runs replace its rows (one commit that drops the old files). Floor: iceberg at most
1.5x the native table. Writes benchmarks/results/dbt_materialization.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from icemesh.server.process import CatalogProcess  # noqa: E402

FLOOR = 1.5
MODEL_SQL = """select range as order_id,
       (range % 100000)::integer as customer_id,
       (range % 9973)::decimal(12, 2) as amount,
       timestamptz '2026-01-01 00:00:00+00' + to_seconds(range % 31536000) as ordered_at,
       'sku-' || (range % 5000) as sku
from range(ROWS)
"""


def write_project(path: str, rows: int) -> None:
    os.makedirs(os.path.join(path, "models"))
    with open(os.path.join(path, "dbt_project.yml"), "w") as f:
        f.write("name: bench\nversion: '1.0.0'\nconfig-version: 2\nprofile: bench\nmodel-paths: [models]\n")
    with open(os.path.join(path, "profiles.yml"), "w") as f:
        f.write("bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: target/bench.duckdb\n"
                "      threads: 1\n")
    sql = MODEL_SQL.replace("ROWS", str(rows))
    with open(os.path.join(path, "models", "native_orders.sql"), "w") as f:
        f.write("{{ config(materialized='table') }}\n" + sql)
    with open(os.path.join(path, "models", "mesh_orders.sql"), "w") as f:
        f.write("{{ config(materialized='iceberg') }}\n" + sql)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=3, help="runs after the first (replacing the product)")
    args = parser.parse_args()

    bin_dir = os.path.dirname(sys.executable)
    with tempfile.TemporaryDirectory() as home, CatalogProcess(db=f"sqlite:///{home}/catalog.db",
                                                              warehouse=f"{home}/warehouse", cwd=home) as server:
        project = os.path.join(home, "bench")
        write_project(project, args.rows)
        env = {**os.environ, "DBT_PROFILES_DIR": project, "ICEMESH_CATALOG_URI": server.uri,
               "ICEMESH_CLIENT_ID": "admin", "ICEMESH_CLIENT_SECRET": server.admin_secret,
               "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        subprocess.run([os.path.join(bin_dir, "icemesh"), "dbt", "init", project], env=env, check=True,
                       capture_output=True)
        subprocess.run([os.path.join(bin_dir, "dbt"), "deps"], cwd=project, env=env, check=True, capture_output=True)
        timings: dict[str, list[float]] = {"native_orders": [], "mesh_orders": []}
        for run in range(args.runs + 1):
            label = "create" if run == 0 else f"replace {run}"
            print(f"==> dbt run ({label}) of {args.rows:,} rows, both models", flush=True)
            done = subprocess.run([os.path.join(bin_dir, "dbt"), "run"], cwd=project, env=env,
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(done.stdout[-3000:])
            with open(os.path.join(project, "target", "run_results.json")) as f:
                results = json.load(f)["results"]
            for result in results:
                name = result["unique_id"].split(".")[-1]
                timings[name].append(result["execution_time"])
                print(f"    {name:14s} {result['execution_time']:6.2f} s", flush=True)
        table = server.client().rest_catalog().load_table("bench.mesh_orders")
        files = table.inspect.files().to_pylist()

    create_ratio = timings["mesh_orders"][0] / timings["native_orders"][0]
    replace_ratio = statistics.median(timings["mesh_orders"][1:]) / statistics.median(timings["native_orders"][1:])
    summary = {
        "rows": args.rows, "runs": args.runs + 1, "timings_s": timings,
        "create_ratio": round(create_ratio, 3), "replace_ratio_median": round(replace_ratio, 3),
        "live_files_after_replaces": len(files), "floor": FLOOR,
        "meets_floor": create_ratio <= FLOOR and replace_ratio <= FLOOR,
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "dbt_materialization.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"iceberg / native table: create {create_ratio:.2f}x, replace (median) {replace_ratio:.2f}x "
          f"(floor {FLOOR}x: {'met' if summary['meets_floor'] else 'MISSED'}); {len(files)} live data file(s)")


if __name__ == "__main__":
    main()
