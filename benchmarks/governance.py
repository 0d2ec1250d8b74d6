"""Benchmark (issue 3): loadTable under governance at scale.

10,000 tables in 100 namespaces, 200 principals in 10 roles, 1,000 grants (tag expressions, tables,
columns, namespaces) and namespace/column tags, all applied with one policy file. loadTable at
concurrency 16 as a governed principal (tag grant; a quarter of its tables have a hidden confidential
column, so its client applies column limits) against the same run as `admin`, whose requests skip
evaluation (ADMIN decides at once): the nearest to "authorization off" a secure-by-default server has.
Floor: the governed run within 15% of the admin run. Writes benchmarks/results/governance.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import catalog as bench  # noqa: E402  (the catalog benchmark's load generator)

from icemesh.server.process import CatalogProcess  # noqa: E402

SCHEMA = {"type": "struct", "schema-id": 0, "fields": [
    {"id": i + 1, "name": f"c{i}", "type": "long" if i < 4 else "string", "required": False} for i in range(8)]}
FLOOR_RATIO = 0.85


def _create_tables(args) -> int:
    import httpx

    uri, token, prefix, specs = args
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        for ns, name in specs:
            r = client.post(f"{uri}/v1/{prefix}/namespaces/{ns}/tables", json={"name": name, "schema": SCHEMA})
            if r.status_code != 200:
                raise RuntimeError(f"create {ns}.{name}: {r.status_code} {r.text[:200]}")
    return len(specs)


def policy_document(n_ns: int, per_ns: int, seed: int = 11) -> str:
    rng = random.Random(seed)
    domains = [f"d{i}" for i in range(10)]
    lines = ["tags:", f"  domain: [{', '.join(domains)}]", "  sensitivity: [public, internal, confidential]",
             f"roles: [{', '.join(f'role_{i}' for i in range(10))}]", "principals:"]
    lines += [f"  svc_{i:03d}: {{roles: [role_{i % 10}]}}" for i in range(200)]
    lines.append("assignments:")
    for i in range(n_ns):
        lines.append(f"  - {{namespace: ns{i:03d}, tags: {{domain: d{i % 10}, sensitivity: internal}}}}")
        for j in range(0, per_ns, 4):
            lines.append(f"  - {{table: ns{i:03d}.t{j:03d}, column: c7, tags: {{sensitivity: confidential}}}}")
    lines.append("grants:")
    # The measured principal: SELECT on half the domains' public/internal data.
    lines.append("  - {to: svc_000, permissions: [SELECT, DESCRIBE], tags: {domain: [d0, d1, d2, d3, d4], "
                 "sensitivity: [public, internal]}}")
    for g in range(999):
        who = f"to: svc_{rng.randrange(1, 200):03d}" if g % 3 else f"role: role_{rng.randrange(10)}"
        kind = g % 4
        if kind == 0:
            doms = ", ".join(sorted(rng.sample(domains, 2)))
            lines.append(f"  - {{{who}, permissions: [SELECT, DESCRIBE], tags: {{domain: [{doms}], sensitivity: [public]}}}}")
        elif kind == 1:
            lines.append(f"  - {{{who}, permissions: [SELECT], table: ns{rng.randrange(n_ns):03d}.t{rng.randrange(per_ns):03d}}}")
        elif kind == 2:
            lines.append(f"  - {{{who}, permissions: [SELECT], table: ns{rng.randrange(n_ns):03d}.t{rng.randrange(per_ns):03d}, "
                         "columns: [c0, c1]}")
        else:
            lines.append(f"  - {{{who}, permissions: [DESCRIBE], namespace: ns{rng.randrange(n_ns):03d}}}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 tables and short runs")
    parser.add_argument("--duration", type=float, default=None)
    args = parser.parse_args(argv)
    n_ns, per_ns = (10, 100) if args.quick else (100, 100)
    duration = args.duration or (4.0 if args.quick else 10.0)
    tmp = tempfile.mkdtemp(prefix="icemesh-gov-bench-")
    started = time.monotonic()
    with CatalogProcess(db=f"sqlite:///{tmp}/catalog.db", warehouse=f"{tmp}/warehouse", cwd=tmp) as server:
        admin = server.client()
        token, prefix = admin.token(), admin.prefix()
        bench.say(f"==> creating {n_ns} namespaces and {n_ns * per_ns:,} tables")
        for i in range(n_ns):
            admin.request("POST", f"/v1/{prefix}/namespaces", json={"namespace": [f"ns{i:03d}"]})
        specs = [(f"ns{i:03d}", f"t{j:03d}") for i in range(n_ns) for j in range(per_ns)]
        chunks = [(server.uri, token, prefix, specs[k:k + 250]) for k in range(0, len(specs), 250)]
        t0, done = time.monotonic(), 0
        with mp.get_context("spawn").Pool(4) as pool:
            for n in pool.imap_unordered(_create_tables, chunks):
                done += n
                if done % 1000 == 0 or done == len(specs):
                    bench.say(f"      {done:>6,}/{len(specs):,} tables  ({time.monotonic() - t0:5.1f} s)")
        bench.say("==> applying the policy: 200 principals, 10 roles, 1,000 grants, namespace and column tags")
        t0 = time.monotonic()
        applied = admin.request("POST", "/management/v1/policy", json={"document": policy_document(n_ns, per_ns)},
                                timeout=600)
        policy_s = time.monotonic() - t0
        secrets = {p["name"]: p["client_secret"] for p in applied["created_principals"]}
        bench.say(f"      {len(applied['changes']):,} changes in {policy_s:.1f} s")

        governed = server.client("svc_000", secrets["svc_000"], column_limits=True)
        visible = [(ns, t) for ns, t in specs if int(ns[2:]) % 10 < 5]
        paths = [bench.table_path(prefix, ns, t) for ns, t in visible]
        for label, who in [("warm-up", governed), ("warm-up", admin)]:
            bench.run_load(server.uri, paths[:2000], 4, 2, 0.5, 1.0, server.proc.pid, token=who.token())
        results = {}
        rounds = 2
        for r in range(rounds):
            for label, who in [("admin", admin), ("svc_000", governed)]:
                bench.say(f"==> loadTable c=16 as {label} ({len(paths):,} tables, {duration:.0f} s, round {r + 1}/{rounds})")
                res = bench.run_load(server.uri, paths, 16, 4, 1.0, duration, server.proc.pid, token=who.token())
                if res["errors"]:
                    raise RuntimeError(f"{res['errors']} errors as {label}: {res.get('error_samples')}")
                best = results.get(label)
                if best is None or res["throughput_rps"] > best["throughput_rps"]:
                    results[label] = res
        ratio = results["svc_000"]["throughput_rps"] / results["admin"]["throughput_rps"]
    verdict = "PASS" if ratio >= FLOOR_RATIO else "FAIL"
    print(f"\n{'run':<36} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'server':>7} {'other':>6}")
    for label, title in [("admin", "admin (ADMIN: no evaluation)"), ("svc_000", "svc_000 (tag grant, column limits)")]:
        r = results[label]
        print(f"{title:<36} {r['throughput_rps']:>8.1f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} "
              f"{r['server_cores']:>7.2f} {r['other_load_cores']:>6.2f}")
    print(f"governed / admin throughput: {ratio:.3f}  (floor >= {FLOOR_RATIO}): {verdict}")
    print(f"setup: {len(specs):,} tables, policy applied in {policy_s:.1f} s; total {time.monotonic() - started:.0f} s")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "governance.json"), "w") as f:
        json.dump({"tables": len(specs), "principals": 201, "grants": 1001, "policy_apply_s": round(policy_s, 2),
                   "load_table": results, "ratio": round(ratio, 3), "floor": FLOOR_RATIO, "verdict": verdict}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
