"""What the commit checks cost: append latency through pyiceberg with the catalog inspecting every commit.

    .venv/bin/python benchmarks/commit_checks.py                      # this checkout, 200 appends
    .venv/bin/python benchmarks/commit_checks.py --baseline DIR       # and an older checkout, runs alternating

Each run starts a real `icemesh serve` (SQLite, local warehouse) from the given source tree (PYTHONPATH), creates
one table and appends one small batch at a time; every commit is inspected (its manifest list and new manifest
read, files checked under the table's location, effects authorized). Reported: p50/p99 of the append (client
wall time, which includes pyiceberg writing the data file and manifests) and of a plain load. With
--baseline, runs of the two trees alternate (3 each by default) so the machine's load weighs on both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_RUN = r'''
import json, sys, time, tempfile, os
import pyarrow as pa
from icemesh.server.process import CatalogProcess
appends = int(sys.argv[1])
home = tempfile.mkdtemp(prefix="commit-bench-")
with CatalogProcess(db=f"sqlite:///{home}/c.db", warehouse=f"{home}/wh", cwd=home) as server:
    rest = server.client().rest_catalog()
    rest.create_namespace("bench")
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])
    table = rest.create_table("bench.t", schema=schema)
    batch = pa.Table.from_pylist([{"id": i, "v": "x" * 20} for i in range(100)], schema=schema)
    for _ in range(10):
        table.append(batch)
    commit, load = [], []
    for _ in range(appends):
        t0 = time.perf_counter(); table.append(batch); commit.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); rest.load_table("bench.t"); load.append(time.perf_counter() - t0)
print(json.dumps({"commit": commit, "load": load}))
'''


def run(tree: str, appends: int) -> dict:
    env = {**os.environ, "PYTHONPATH": tree}
    done = subprocess.run([sys.executable, "-c", _RUN, str(appends)], env=env, capture_output=True, text=True,
                          cwd=tempfile.gettempdir(), timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"run in {tree} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", help="an older checkout to compare with")
    args = parser.parse_args()
    trees = {"current": REPO, **({"baseline": os.path.abspath(args.baseline)} if args.baseline else {})}
    samples: dict[str, dict[str, list[float]]] = {name: {"commit": [], "load": []} for name in trees}
    for i in range(args.runs):
        for name, tree in trees.items():
            result = run(tree, args.appends)
            for key in ("commit", "load"):
                samples[name][key] += result[key]
            print(f"run {i + 1}/{args.runs} {name}: append p50 {pct(result['commit'], 50):.1f} ms", flush=True)
    report = {name: {key: {"p50_ms": round(pct(v, 50), 2), "p99_ms": round(pct(v, 99), 2),
                           "mean_ms": round(statistics.mean(v) * 1000, 2)} for key, v in s.items()}
              for name, s in samples.items()}
    print(json.dumps(report, indent=2))
    os.makedirs(os.path.join(REPO, "benchmarks", "results"), exist_ok=True)
    with open(os.path.join(REPO, "benchmarks", "results", "commit_checks.json"), "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
