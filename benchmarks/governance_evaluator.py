"""Benchmark: one principal's effective permissions over 10,000 tables (pure evaluator, no I/O).

A synthetic mesh: 100 namespaces x 100 tables (8 columns each), 3 tag keys assigned at namespace,
table and column level, 200 principals in 10 roles, 1,000 grants of every kind. Floor (issue 3):
under 100 ms. Prints a line per principal kind and writes benchmarks/results/governance_evaluator.json.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from icemesh.governance.evaluator import Evaluator  # noqa: E402
from icemesh.governance.permissions import Permission  # noqa: E402
from icemesh.governance.policy import PRINCIPAL, ROLE, Grant, Grantee, Policy  # noqa: E402
from icemesh.governance.resources import NamespaceRef, TableRef  # noqa: E402
from icemesh.governance.tags import TagExpression, TagKey  # noqa: E402

FLOOR_MS = 100.0


def build(seed: int = 7) -> tuple[Policy, dict[TableRef, list[str]]]:
    rng = random.Random(seed)
    domains = [f"d{i}" for i in range(10)]
    keys = {"domain": TagKey("domain", tuple(domains)),
            "sensitivity": TagKey("sensitivity", ("public", "internal", "confidential")),
            "pii": TagKey("pii", ("yes", "no"))}
    namespaces = [NamespaceRef((f"ns{i:03d}",)) for i in range(100)]
    tables: dict[TableRef, list[str]] = {}
    ns_tags, table_tags, column_tags = {}, {}, {}
    for i, ns in enumerate(namespaces):
        ns_tags[ns] = {"domain": domains[i % 10], "sensitivity": "internal", "pii": "no"}
        for j in range(100):
            table = TableRef(ns, f"t{j:03d}")
            tables[table] = [f"c{k}" for k in range(8)]
            if j % 10 == 0:
                table_tags[table] = {"sensitivity": "public"}
            if j % 4 == 0:
                column_tags[table] = {"c7": {"sensitivity": "confidential", "pii": "yes"}}
    principals = [f"svc_{i:03d}" for i in range(200)]
    roles = {p: frozenset({f"role_{i % 10}"}) for i, p in enumerate(principals)}
    grants = []
    for gid in range(1, 1001):
        grantee = Grantee(PRINCIPAL, rng.choice(principals)) if gid % 3 else Grantee(ROLE, f"role_{gid % 10}")
        kind = gid % 4
        perms = frozenset({Permission.SELECT, Permission.DESCRIBE})
        if kind == 0:
            doms = rng.sample(domains, 2)
            grants.append(Grant(gid, grantee, perms, expression=TagExpression.from_dict(
                {"domain": doms, "sensitivity": ["public", "internal"]})))
        elif kind == 1:
            grants.append(Grant(gid, grantee, perms, table=rng.choice(list(tables))))
        elif kind == 2:
            table = rng.choice(list(tables))
            grants.append(Grant(gid, grantee, perms, table=table, columns=frozenset({"c0", "c1"})))
        else:
            grants.append(Grant(gid, grantee, frozenset({Permission.DESCRIBE}), namespace=rng.choice(namespaces)))
    policy = Policy(tag_keys=keys, namespace_tags=ns_tags, table_tags=table_tags, column_tags=column_tags,
                    grants=tuple(grants), roles=roles, owners={})
    return policy, tables


def measure(evaluator: Evaluator, principal: str, tables, repeats: int = 7) -> tuple[float, int]:
    times, visible = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        visible = len(evaluator.effective_permissions(principal, tables))
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), visible


def main() -> int:
    policy, tables = build()
    evaluator = Evaluator(policy)
    counts: dict[str, int] = {}
    for grant in policy.grants:
        counts[grant.grantee.name] = counts.get(grant.grantee.name, 0) + 1
    busiest = max((p for p in policy.roles), key=lambda p: counts.get(p, 0) + counts.get(next(iter(policy.roles[p])), 0))
    results = {}
    print(f"{'principal':<28} {'tables':>7} {'grants':>7} {'visible':>8} {'median ms':>10}")
    for label, principal in [("typical (svc_000)", "svc_000"), (f"most grants ({busiest})", busiest), ("no grants", "nobody")]:
        n_grants = len(evaluator.grants_for(principal))
        ms, visible = measure(evaluator, principal, tables)
        results[label] = {"principal": principal, "grants": n_grants, "visible_tables": visible, "median_ms": round(ms, 2)}
        print(f"{label:<28} {len(tables):>7} {n_grants:>7} {visible:>8} {ms:>10.1f}")
    worst = max(r["median_ms"] for r in results.values())
    verdict = "PASS" if worst < FLOOR_MS else "FAIL"
    print(f"floor: effective permissions over 10,000 tables < {FLOOR_MS:.0f} ms -> worst {worst:.1f} ms: {verdict}")
    os.makedirs(os.path.join(os.path.dirname(__file__), "results"), exist_ok=True)
    with open(os.path.join(os.path.dirname(__file__), "results", "governance_evaluator.json"), "w") as f:
        json.dump({"tables": len(tables), "principals": len(policy.roles), "grants": len(policy.grants),
                   "results": results, "floor_ms": FLOOR_MS, "worst_ms": worst, "verdict": verdict}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
