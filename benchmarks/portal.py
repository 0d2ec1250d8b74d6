"""Benchmark (issue 22): the portal's home and product pages with 1,000 products in 10 domains, as `admin` and
as a governed principal (DESCRIBE/SELECT on half the domains through a tag grant), over HTTP with a session
cookie. Reports median and p95 milliseconds; writes benchmarks/results/portal.json."""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import httpx  # noqa: E402

from icemesh.server.process import CatalogProcess  # noqa: E402

DOMAINS, PER_DOMAIN, REPEAT, COLD_REPEAT = 10, 100, 20, 5
SCHEMA = {"type": "struct", "schema-id": 0, "fields": [
    {"id": i + 1, "name": f"c{i}", "type": "long" if i < 4 else "string", "required": False} for i in range(8)]}


def _props(ns: str, model: str, j: int) -> dict[str, str]:
    upstream = [f"{ns}.m{j - 1:03d}"] if j else ([f"d{int(ns[1:]) - 1}.m099"] if ns != "d0" else [])
    return {"comment": f"model {model} of {ns}", "icemesh.dbt.project": ns, "icemesh.dbt.model": model,
            "icemesh.dbt.access": "public", "icemesh.dbt.owner": json.dumps({"email": f"{ns}@example.com"}),
            "icemesh.dbt.upstream": json.dumps(upstream), "icemesh.dbt.tags": json.dumps([f"t{j % 5}"])}


def _timed(client: httpx.Client, path: str) -> dict[str, float]:
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        r = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert r.status_code == 200, (path, r.status_code)
    times.sort()
    return {"median_ms": round(statistics.median(times), 1), "p95_ms": round(times[int(len(times) * 0.95) - 1], 1)}


def _cold(client: httpx.Client, path: str, change) -> dict[str, float]:
    """The first request after a catalog change (the portal's kept view of this principal is stale): what a
    request costs when it lists the products again."""
    times = []
    for i in range(COLD_REPEAT):
        change(i)
        start = time.perf_counter()
        r = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert r.status_code == 200, (path, r.status_code)
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


def _session(uri: str, client_id: str, secret: str) -> httpx.Client:
    client = httpx.Client(base_url=uri, timeout=120)
    client.get("/login")  # its CSRF cookie, echoed in the form
    r = client.post("/login", data={"client_id": client_id, "client_secret": secret,
                                    "csrf": client.cookies["icemesh_portal_csrf"]})
    assert r.status_code == 303 and "icemesh_portal" in client.cookies, r.text[:200]
    return client


def main() -> dict:
    tmp = tempfile.mkdtemp(prefix="icemesh-portal-bench-")
    with CatalogProcess(db=f"sqlite:///{tmp}/catalog.db", warehouse=f"{tmp}/warehouse", cwd=tmp) as server:
        admin = server.client()
        prefix = admin.prefix()
        started = time.perf_counter()
        admin.request("POST", "/management/v1/tags", json={"key": "domain", "values": [f"d{i}" for i in range(DOMAINS)]})
        for i in range(DOMAINS):
            ns = f"d{i}"
            admin.request("POST", f"/v1/{prefix}/namespaces", json={"namespace": [ns]})
            admin.request("POST", "/management/v1/tag-assignments", json={"key": "domain", "value": ns, "namespace": ns})
            for j in range(PER_DOMAIN):
                admin.request("POST", f"/v1/{prefix}/namespaces/{ns}/tables",
                              json={"name": f"m{j:03d}", "schema": SCHEMA, "properties": _props(ns, f"m{j:03d}", j)})
        secret = admin.request("POST", "/management/v1/principals", json={"name": "svc_reader"})["client_secret"]
        admin.request("POST", "/management/v1/grants", json={"permissions": "DESCRIBE,SELECT", "principal": "svc_reader",
                                                             "tags": ["domain=" + ",".join(f"d{i}" for i in range(5))]})
        setup_s = time.perf_counter() - started
        admin.request("POST", "/management/v1/tags", json={"key": "bench", "values": [str(i) for i in range(100)]})
        counter = iter(range(10**6))

        def change(_i: int) -> None:  # a governance change: a new policy version
            admin.request("POST", "/management/v1/tag-assignments",
                          json={"key": "bench", "value": str(next(counter) % 100), "table": "d9.m099"})
        results = {"products": DOMAINS * PER_DOMAIN, "repeat": REPEAT, "setup_s": round(setup_s, 1)}
        for who, sec in (("admin", server.admin_secret), ("svc_reader", secret)):
            client = _session(server.uri, who, sec)
            _timed(client, "/")  # warm the metadata cache
            results[who] = {"home": _timed(client, "/"), "search": _timed(client, "/?q=c5"),
                            "product": _timed(client, "/products/d1.m050"), "lineage": _timed(client, "/lineage"),
                            "home_after_change": _cold(client, "/", change),
                            "product_after_change": _cold(client, "/products/d1.m050", change)}
            client.close()
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "portal.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
