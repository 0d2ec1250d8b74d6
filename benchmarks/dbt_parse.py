"""Benchmark (issue 5): what resolving cross-project refs from the catalog adds to a consumer's `dbt parse`.

The catalog holds N public products of project `big` (created directly over REST with the `icemesh.dbt.*`
properties the materialization writes). The consumer declares `projects: [big]` in dependencies.yml and
refs one product; the baseline is the same consumer without the declaration and the ref. Both are parsed
from scratch (`--no-partial-parse`) several times; the medians are compared. Floor: at most 2 s more with
1,000 products. Writes benchmarks/results/dbt_parse.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from icemesh.server.process import CatalogProcess  # noqa: E402

FLOOR_S = 2.0
SCHEMA = {"type": "struct", "schema-id": 0, "fields": [
    {"id": 1, "name": "id", "type": "long", "required": True, "doc": "The id."},
    {"id": 2, "name": "name", "type": "string", "required": False, "doc": "A name."},
    {"id": 3, "name": "amount", "type": "decimal(12, 2)", "required": False},
    {"id": 4, "name": "updated_at", "type": "timestamptz", "required": False}]}


def create_products(server, count: int) -> None:
    client = server.client()
    prefix = client.prefix()
    client.request("POST", f"/v1/{prefix}/namespaces", json={"namespace": ["big"]})

    def create(i: int) -> None:
        properties = {"icemesh.dbt.project": "big", "icemesh.dbt.model": f"product_{i}",
                      "icemesh.dbt.unique_id": f"model.big.product_{i}", "icemesh.dbt.access": "public",
                      "comment": f"Product number {i}."}
        client.request("POST", f"/v1/{prefix}/namespaces/big/tables",
                       json={"name": f"product_{i}", "schema": SCHEMA, "properties": properties})

    with ThreadPoolExecutor(8) as pool:
        for done, _ in enumerate(pool.map(create, range(count)), 1):
            if done % 250 == 0:
                print(f"    {done:,} products created", flush=True)


def write_consumer(path: str, with_refs: bool) -> None:
    os.makedirs(os.path.join(path, "models"), exist_ok=True)
    with open(os.path.join(path, "dbt_project.yml"), "w") as f:
        f.write("name: consumer\nversion: '1.0.0'\nconfig-version: 2\nprofile: consumer\nmodel-paths: [models]\n")
    with open(os.path.join(path, "profiles.yml"), "w") as f:
        f.write("consumer:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: target/c.duckdb\n")
    source = "{{ ref('big', 'product_7') }}" if with_refs else "(select 1 as id)"
    with open(os.path.join(path, "models", "report.sql"), "w") as f:
        f.write(f"select count(*) as n from {source}\n")
    dependencies = os.path.join(path, "dependencies.yml")
    if with_refs:
        with open(dependencies, "w") as f:
            f.write("projects:\n  - name: big\n")
    elif os.path.exists(dependencies):
        os.remove(dependencies)


def time_parse(path: str, env: dict, runs: int) -> list[float]:
    dbt = os.path.join(os.path.dirname(sys.executable), "dbt")
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([dbt, "parse", "--no-partial-parse"], cwd=path, env=env, capture_output=True, text=True)
        timings.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(done.stdout[-3000:])
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home, CatalogProcess(db=f"sqlite:///{home}/catalog.db",
                                                              warehouse=f"{home}/warehouse", cwd=home) as server:
        print(f"==> creating {args.products:,} products", flush=True)
        create_products(server, args.products)
        consumer = os.path.join(home, "consumer")
        env = {**os.environ, "DBT_PROFILES_DIR": consumer, "ICEMESH_CATALOG_URI": server.uri,
               "ICEMESH_CLIENT_ID": "admin", "ICEMESH_CLIENT_SECRET": server.admin_secret,
               "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        write_consumer(consumer, with_refs=False)
        print(f"==> dbt parse without catalog refs, {args.runs} runs", flush=True)
        baseline = time_parse(consumer, env, args.runs)
        write_consumer(consumer, with_refs=True)
        print(f"==> dbt parse resolving refs against {args.products:,} products, {args.runs} runs", flush=True)
        resolved = time_parse(consumer, env, args.runs)
        manifest = json.load(open(os.path.join(consumer, "target", "manifest.json")))
        injected = sum(1 for uid in manifest["nodes"] if uid.startswith("model.big."))
    extra = statistics.median(resolved) - statistics.median(baseline)
    summary = {"products": args.products, "runs": args.runs, "baseline_s": baseline, "resolved_s": resolved,
               "injected_nodes": injected, "extra_median_s": round(extra, 3), "floor_s": FLOOR_S,
               "meets_floor": extra <= FLOOR_S}
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "dbt_parse.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"dbt parse: {statistics.median(baseline):.2f} s without, {statistics.median(resolved):.2f} s with "
          f"{args.products:,} products ({injected:,} nodes injected): +{extra:.2f} s "
          f"(floor {FLOOR_S} s: {'met' if extra <= FLOOR_S else 'MISSED'})")


if __name__ == "__main__":
    main()
