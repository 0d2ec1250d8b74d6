"""Benchmark (issue 23, item 3): what icemesh adds to `dbt parse` and `dbt build` of a small project.

Two copies of one dbt-duckdb project with K models of R rows each, made in a temp dir: `plain` (dbt-duckdb's
`table` models, no icemesh in the profile) and `mesh` (`icemesh dbt init`, the same models as
`materialized='iceberg'` products in a real `icemesh serve` on SQLite started here). Each command runs on both,
alternating, several times, as a user runs it (a fresh `dbt` process; parse with `--no-partial-parse`); a first
build of each is not timed (it creates the products; later builds replace them, as a daily run does).
Reports the medians' difference: added seconds to `dbt parse` (floor 0.3 s) and added seconds per published
model to `dbt build` (floor 0.15 s). Writes benchmarks/results/dbt_overhead.json.

    .venv/bin/python benchmarks/dbt_overhead.py [--models 5] [--rows 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from icemesh.server.process import CatalogProcess  # noqa: E402

PARSE_FLOOR_S = 0.3
BUILD_FLOOR_S = 0.15  # per published model
MODEL_SQL = """select range as order_id,
       (range % 100)::integer as customer_id,
       (range % 9973)::decimal(12, 2) as amount,
       'sku-' || (range % 50) as sku
from range({rows})
"""


def write_project(path: str, name: str, materialized: str, models: int, rows: int) -> None:
    os.makedirs(os.path.join(path, "models"))
    with open(os.path.join(path, "dbt_project.yml"), "w") as f:
        f.write(f"name: {name}\nversion: '1.0.0'\nconfig-version: 2\nprofile: {name}\nmodel-paths: [models]\n")
    with open(os.path.join(path, "profiles.yml"), "w") as f:
        f.write(f"{name}:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: target/{name}.duckdb\n"
                "      threads: 1\n")
    for i in range(models):
        with open(os.path.join(path, "models", f"orders_{i}.sql"), "w") as f:
            f.write(f"{{{{ config(materialized='{materialized}') }}}}\n" + MODEL_SQL.format(rows=rows))
    with open(os.path.join(path, "models", "schema.yml"), "w") as f:
        f.write("models:\n" + "".join(f"  - name: orders_{i}\n    access: public\n" for i in range(models)))


def timed(command: list[str], cwd: str, env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the dbt process: user + system, its threads included). The CPU figure is the
    one to read on a busy machine: other work stretches the wall time of both projects unevenly."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed in {cwd}:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def model_seconds(project: str) -> float:
    """What dbt itself timed for the models of the last command (run_results.json): the per-model part of a build,
    without the invocation's fixed costs (imports, extensions, the catalog login)."""
    with open(os.path.join(project, "target", "run_results.json")) as f:
        results = json.load(f)["results"]
    return sum(r["execution_time"] for r in results if r["unique_id"].startswith("model."))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each command on each project")
    args = parser.parse_args()

    bin_dir = os.path.dirname(sys.executable)
    dbt = os.path.join(bin_dir, "dbt")
    with tempfile.TemporaryDirectory() as home, CatalogProcess(db=f"sqlite:///{home}/catalog.db",
                                                              warehouse=f"{home}/warehouse", cwd=home) as server:
        plain, mesh = os.path.join(home, "plain"), os.path.join(home, "bench")
        write_project(plain, "plain", "table", args.models, args.rows)
        write_project(mesh, "bench", "iceberg", args.models, args.rows)
        base_env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_USE_COLORS": "false"}
        envs = {plain: {**base_env, "DBT_PROFILES_DIR": plain},
                mesh: {**base_env, "DBT_PROFILES_DIR": mesh, "ICEMESH_CATALOG_URI": server.uri,
                       "ICEMESH_CLIENT_ID": "admin", "ICEMESH_CLIENT_SECRET": server.admin_secret}}
        subprocess.run([os.path.join(bin_dir, "icemesh"), "dbt", "init", mesh], env=envs[mesh], check=True,
                       capture_output=True)
        subprocess.run([dbt, "deps"], cwd=mesh, env=envs[mesh], check=True, capture_output=True)
        print(f"==> first build of each ({args.models} models x {args.rows:,} rows; not timed)", flush=True)
        for project in (plain, mesh):
            timed([dbt, "build"], project, envs[project])
        commands = {"parse": [dbt, "parse", "--no-partial-parse"], "build": [dbt, "build"]}
        wall: dict[str, dict[str, list[float]]] = {c: {"plain": [], "mesh": []} for c in commands}
        cpu: dict[str, dict[str, list[float]]] = {c: {"plain": [], "mesh": []} for c in commands}
        per_model: dict[str, list[float]] = {"plain": [], "mesh": []}  # dbt's own model timings, builds only
        for run in range(args.runs):
            for command, argv in commands.items():
                order = [("plain", plain), ("mesh", mesh)] if run % 2 == 0 else [("mesh", mesh), ("plain", plain)]
                for label, project in order:
                    seconds, cpu_seconds = timed(argv, project, envs[project])
                    wall[command][label].append(round(seconds, 3))
                    if command == "build":
                        per_model[label].append(model_seconds(project) / args.models)
                    cpu[command][label].append(round(cpu_seconds, 3))
            print(f"    run {run + 1}: " + ", ".join(
                f"{c} plain {wall[c]['plain'][-1]:.2f} s / mesh {wall[c]['mesh'][-1]:.2f} s" for c in commands)
                + f" (load {os.getloadavg()[0]:.1f})", flush=True)
        products = [t for t in server.client().rest_catalog().list_tables("bench")]

    def added(timings: dict) -> dict[str, float]:
        median = {c: {k: statistics.median(v) for k, v in t.items()} for c, t in timings.items()}
        return {"parse": median["parse"]["mesh"] - median["parse"]["plain"],
                "build_per_model": (median["build"]["mesh"] - median["build"]["plain"]) / args.models,
                "medians": {c: {k: round(v, 3) for k, v in m.items()} for c, m in median.items()}}

    by_wall, by_cpu = added(wall), added(cpu)
    parse_added, build_added = by_wall["parse"], by_wall["build_per_model"]
    # Split the build's added seconds: what each model's own run adds (dbt's timing of the model), and the rest,
    # paid once per invocation whatever the project's size.
    marginal = statistics.median(per_model["mesh"]) - statistics.median(per_model["plain"])
    fixed = build_added * args.models - marginal * args.models
    summary = {
        "models": args.models, "rows": args.rows, "runs": args.runs, "wall_s": wall, "cpu_s": cpu,
        "median_wall_s": by_wall["medians"], "median_cpu_s": by_cpu["medians"],
        "parse_added_s": round(parse_added, 3), "build_added_per_model_s": round(build_added, 3),
        "parse_added_cpu_s": round(by_cpu["parse"], 3), "build_added_per_model_cpu_s": round(by_cpu["build_per_model"], 3),
        "build_added_per_model_own_s": round(marginal, 3), "build_added_once_s": round(fixed, 3),
        "model_seconds_per_model": {k: [round(v, 4) for v in vals] for k, vals in per_model.items()},
        "products_published": len(products),
        "floors_s": {"parse_added": PARSE_FLOOR_S, "build_added_per_model": BUILD_FLOOR_S},
        "meets_floor": {"parse": parse_added <= PARSE_FLOOR_S, "build": build_added <= BUILD_FLOOR_S},
        "load_average": os.getloadavg(),
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "dbt_overhead.json"), "w") as f:
        json.dump(summary, f, indent=2)
    median = by_wall["medians"]
    print(f"dbt parse: plain {median['parse']['plain']:.2f} s, icemesh {median['parse']['mesh']:.2f} s: "
          f"+{parse_added:.2f} s (CPU +{by_cpu['parse']:.2f} s) "
          f"(floor {PARSE_FLOOR_S} s: {'met' if summary['meets_floor']['parse'] else 'MISSED'})")
    print(f"dbt build: plain {median['build']['plain']:.2f} s, icemesh {median['build']['mesh']:.2f} s: "
          f"+{build_added:.3f} s per published model (CPU +{by_cpu['build_per_model']:.3f} s), {len(products)} products "
          f"(floor {BUILD_FLOOR_S} s: {'met' if summary['meets_floor']['build'] else 'MISSED'}); "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"  of which each model's own run (dbt's timing of the model): +{marginal:.3f} s per model; once per "
          f"invocation (imports, DuckDB extensions, the catalog login): +{fixed:.2f} s")

if __name__ == "__main__":
    main()
