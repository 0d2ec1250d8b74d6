"""Benchmark (issue 24): the mesh at scale. A catalog of D domains x (N / D) tables (a tenth of them products
with upstream links), 1,000 principals and 10,000 grants on tag expressions, generated in bulk through the
SQL backend's tables (the API would take hours at 100,000 tables), then measured through the real HTTP API
of `icemesh serve`, for `admin` and for a domain principal: products first page, a search, one product's
lineage to depth 3, `access check`, server start to first answer, loadTable p50/p99; then `icemesh policy apply`
of the whole generated policy (unchanged: nothing to apply), and `dbt parse` of a consumer with 20 cross-project
refs, against this catalog and against one of the 10 products it refs (interleaved; wall and CPU time).

    .venv/bin/python benchmarks/scale.py --tables 1000 [--db sqlite|postgres] [--domains 100]
    .venv/bin/python benchmarks/scale.py --tables 10000 --db postgres
    .venv/bin/python benchmarks/scale.py --tables 100000 --reuse /tmp/scale-100k   # generate once, measure often
    .venv/bin/python benchmarks/scale.py --tables 100000 --reuse /tmp/scale-100k-pg \
        --db postgresql://postgres@127.0.0.1:5432/icemesh_scale_100k   # the same, into a PostgreSQL database it creates

With --reuse the catalog (and a PostgreSQL database) is kept: DIR/state.json names its database, and later runs
with --reuse DIR measure it again (--db may be left out, or must name that database).

Writes benchmarks/results/scale-<db>-<tables>.json and prints the figures with the issue's floors.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import httpx  # noqa: E402
import yaml  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from benchmarks.catalog import prepare_database  # noqa: E402
from icemesh.backends.sql import open_database  # noqa: E402
from icemesh.backends.sql.products import SqlProductIndex  # noqa: E402
from icemesh.backends.sql.schema import (  # noqa: E402
    bump_policy_version, grants_t, namespaces_t, principals_t, tables_t, tag_assignments_t, tag_keys_t, warehouses_t)
from icemesh.names import Namespace, TableIdent  # noqa: E402
from icemesh.security import secrets  # noqa: E402
from icemesh.server.process import CatalogProcess  # noqa: E402
from icemesh.tables import metadata as md  # noqa: E402
from icemesh.tables import product_summary  # noqa: E402

FLOORS_MS = {"products_first_page": 50, "search": 50, "lineage_depth3": 50, "access_check": 20}
SCHEMA = {"type": "struct", "schema-id": 0, "fields": [
    {"id": 1, "name": "id", "type": "long", "required": True, "doc": "the key"},
    {"id": 2, "name": "amount", "type": "long", "required": False, "doc": "in cents"},
    {"id": 3, "name": "region", "type": "string", "required": False},
    {"id": 4, "name": "customer_email", "type": "string", "required": False, "doc": "contact"}]}
TIERS = ["gold", "silver", "bronze"]
LAYERS = 4  # the mesh's lineage depth (see generate)
SECRET = "scale-benchmark-secret-not-for-use"


def domain(i: int) -> str:
    return f"d{i:03d}"


def generate(url: str, tables: int, domains: int, principals: int, grants: int, policy_path: str | None = None,
             seed: int = 7) -> dict:
    """Bulk rows, as the SQL backend stores them: namespaces, tables (with metadata files), the product index,
    tags, principals and grants; and the same governance as a policy file at `policy_path` (so applying it
    changes nothing). Returns what the measurements need to name."""
    rnd = random.Random(seed)
    db = open_database(url)
    index = SqlProductIndex(db)
    with db.connect() as conn:
        wh, root = conn.execute(select(warehouses_t.c.name, warehouses_t.c.root)).first()
    template = json.loads(md.serialize(md.build_new_table(SCHEMA, None, None, f"{root}/x/y", {})))
    per_domain = tables // domains
    products_per_domain = max(1, per_domain // 10)
    all_products = [f"{domain(d)}.p{j:04d}" for d in range(domains) for j in range(products_per_domain)]
    # Lineage as a mesh has it, a DAG of LAYERS: a product of a layer-k domain (k = d % LAYERS) reads products
    # of layer k-1 domains, and layer 0 reads sources only. (Links drawn from the whole mesh made cycles and an
    # upstream closure of most of it: a measure of that graph, not of the catalog's size.)
    layer_products = [[f"{domain(d)}.p{j:04d}" for d in range(domains) if d % LAYERS == k for j in range(products_per_domain)]
                      for k in range(LAYERS)]
    now = time.time() - 3600  # a catalog that was built an hour ago (its pointers are not "just moved")
    secret_hash = secrets.hash_secret(SECRET)  # one scrypt: every generated principal shares the secret
    with db.write() as conn, conn.begin():
        conn.execute(insert(tag_keys_t), [{"key": "domain", "allowed_values": json.dumps([domain(d) for d in range(domains)])},
                                          {"key": "tier", "allowed_values": json.dumps(TIERS)}])
        conn.execute(insert(namespaces_t), [{"warehouse": wh, "name": domain(d), "parent": "", "properties": "{}",
                                             "created_at": now, "owner": f"svc_{domain(d)}"} for d in range(domains)])
        conn.execute(insert(tag_assignments_t), [
            {"warehouse": "", "namespace": domain(d), "table_name": "", "column_name": "", "field_id": None,
             "key": "domain", "value": domain(d), "assigned_by": None, "declared": False} for d in range(domains)])
        names = [f"svc_{domain(d)}" for d in range(domains)] + [f"u{i:04d}" for i in range(principals - domains)]
        conn.execute(insert(principals_t), [{"name": n, "secret_hash": secret_hash, "roles": "[]", "created_at": now,
                                             "created_by": "admin"} for n in names])
        rows, seen = [], set()
        while len(rows) < grants:  # distinct grants, so the policy file lists exactly what the catalog holds
            g = len(rows)
            grantee = names[g % len(names)]
            doms = sorted({domain(rnd.randrange(domains)) for _ in range(rnd.randint(1, 3))})
            expression = {"domain": doms} if g % 2 else {"domain": doms, "tier": sorted(rnd.sample(TIERS, 2))}
            if (grantee, json.dumps(expression)) in seen:
                continue
            seen.add((grantee, json.dumps(expression)))
            rows.append({"grantee_kind": "principal", "grantee": grantee, "permissions": json.dumps(["DESCRIBE", "SELECT"]),
                         "target_kind": "tags", "namespace": None, "table_name": None, "columns": None,
                         "expression": json.dumps(expression), "data_filter": None, "created_at": now,
                         "created_by": "admin"})
        conn.execute(insert(grants_t), rows)
        bump_policy_version(conn)
    document = {"tags": {"domain": [domain(d) for d in range(domains)], "tier": TIERS},
                "principals": {n: {} for n in names},
                "namespaces": {domain(d): {"owner": f"svc_{domain(d)}"} for d in range(domains)},
                "assignments": [{"namespace": domain(d), "tags": {"domain": domain(d)}} for d in range(domains)],
                "grants": [{"to": r["grantee"], "permissions": ["DESCRIBE", "SELECT"],
                            "tags": json.loads(r["expression"])} for r in rows]}
    written = 0
    for d in range(domains):
        ns = domain(d)
        pointer_rows, tag_rows = [], []
        with db.write() as conn, conn.begin():
            for j in range(per_domain):
                product = j < products_per_domain
                name = f"p{j:04d}" if product else f"t{j:05d}"
                location = f"{root}/{ns}/{name}-{uuid.uuid4().hex}"
                doc = dict(template, location=location, **{"table-uuid": str(uuid.uuid4())})
                props = {}
                if product:
                    below = layer_products[d % LAYERS - 1] if d % LAYERS else []
                    ups = sorted({rnd.choice(below) for _ in range(rnd.randint(1, 3))}) if below else []
                    props = {"comment": f"{name} of domain {ns}: orders and revenue", "icemesh.dbt.project": ns,
                             "icemesh.dbt.model": name, "icemesh.dbt.access": "public",
                             "icemesh.dbt.owner": json.dumps({"email": f"{ns}@example.com"}),
                             "icemesh.dbt.upstream": json.dumps(ups), "icemesh.dbt.tags": json.dumps([f"t{j % 7}"])}
                    tag_rows.append({"warehouse": "", "namespace": ns, "table_name": name, "column_name": "",
                                     "field_id": None, "key": "tier", "value": TIERS[j % 3], "assigned_by": None,
                                     "declared": False})
                doc["properties"] = props
                metadata_location = f"{location}/metadata/00000-{uuid.uuid4()}.metadata.json"
                path = metadata_location.removeprefix("file://")
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    json.dump(doc, f)
                pointer_rows.append({"warehouse": wh, "namespace": ns, "name": name, "metadata_location": metadata_location,
                                     "previous_metadata_location": None, "location": location, "created_at": now,
                                     "updated_at": now, "owner": f"svc_{ns}", "access": "public" if product else None})
                pointer_rows[-1]["_summary"] = product_summary.from_document(doc)
            conn.execute(insert(tables_t), [{k: v for k, v in r.items() if k != "_summary"} for r in pointer_rows])
            if tag_rows:
                conn.execute(insert(tag_assignments_t), tag_rows)
                document["assignments"] += [{"table": f"{r['namespace']}.{r['table_name']}", "tags": {r["key"]: r["value"]}}
                                            for r in tag_rows]
            index.insert_many(conn, wh, [(TableIdent(Namespace((r["namespace"],)), r["name"]), "table",
                                          r["metadata_location"], r["_summary"], None) for r in pointer_rows])
            bump_policy_version(conn)
        written += len(pointer_rows)
    if db.is_postgres:  # what autovacuum does after a bulk load: the planner's statistics, and the visibility
        # map that lets an index-only scan skip the table's rows
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    db.close()
    if policy_path:
        write_policy(document, policy_path)
    return {"warehouse": wh, "domains": domains, "tables": written, "products": len(all_products),
            "principals": principals, "grants": grants, "sample_product": all_products[len(all_products) // 2],
            "own_tables": [f"{domain(1 if domains > 1 else 0)}.t{j:05d}" for j in range(products_per_domain, per_domain)][:200]
            or [f"{domain(1 if domains > 1 else 0)}.p{j:04d}" for j in range(products_per_domain)],
            "sample_tables": [f"{domain(rnd.randrange(domains))}.t{rnd.randrange(products_per_domain, per_domain):05d}"
                              for _ in range(200)] if per_domain > products_per_domain else all_products[:200]}


def write_policy(document: dict, yaml_path: str) -> None:
    """The generated governance as a policy file twice: YAML, as a person writes it, and JSON (YAML's subset),
    as a machine exports it."""
    with open(yaml_path, "w", encoding="utf-8") as f:
        yaml.safe_dump(document, f, sort_keys=False, default_flow_style=None, width=200)
    with open(yaml_path.removesuffix(".yml") + ".json", "w", encoding="utf-8") as f:
        json.dump(document, f, indent=1)


def timed(client: httpx.Client, path: str, params: dict | None, repeat: int, ok=(200,)) -> dict:
    times = []
    first = None
    for i in range(repeat + 1):
        start = time.perf_counter()
        r = client.get(path, params=params)
        ms = (time.perf_counter() - start) * 1000
        assert r.status_code in ok, (path, params, r.status_code, r.text[:300])
        if i == 0:
            first = ms
        else:
            times.append(ms)
    times.sort()
    return {"first_ms": round(first, 1), "median_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1), "answer": r.json()}


def measure(server: CatalogProcess, who: str, secret: str, facts: dict, repeat: int) -> dict:
    token = server.client(who, secret).token()
    client = httpx.Client(base_url=server.uri, timeout=300, headers={"Authorization": f"Bearer {token}"})
    prefix = server.client().prefix()
    out = {}
    page = timed(client, "/management/v1/products", {"page-size": 50}, repeat)
    out["products_first_page"] = {**{k: v for k, v in page.items() if k != "answer"},
                                  "shown": len(page["answer"]["products"])}
    search = timed(client, "/management/v1/products", {"page-size": 50, "q": "p0000 of domain"}, repeat)
    out["search"] = {**{k: v for k, v in search.items() if k != "answer"}, "shown": len(search["answer"]["products"])}
    visible = [p["name"] for p in page["answer"]["products"]]
    product = facts["sample_product"] if who == "admin" or not visible else visible[len(visible) // 2]
    lineage = timed(client, "/management/v1/lineage", {"product": product, "depth": 3}, repeat)
    out["lineage_depth3"] = {**{k: v for k, v in lineage.items() if k != "answer"}, "product": product,
                             "edges": len(lineage["answer"])}
    target = facts["sample_tables"][0]
    # A table of another domain: ALLOW or DENY for admin, for the domain principal maybe "no such table" (404)
    check = timed(client, "/management/v1/access", {"principal": who, "resource": target, "action": "SELECT"}, repeat,
                  ok=(200, 404))
    out["access_check"] = {**{k: v for k, v in check.items() if k != "answer"}, "resource": target}
    loads = []
    sample = facts["sample_tables"] if who == "admin" else facts["own_tables"]  # tables it may load
    for name in (sample * (200 // len(sample) + 1))[:200]:
        ns, table = name.split(".")
        start = time.perf_counter()
        r = client.get(f"/v1/{prefix}/namespaces/{ns}/tables/{table}")
        loads.append((time.perf_counter() - start) * 1000)
        assert r.status_code == 200, r.text[:200]
    loads.sort()
    out["load_table"] = {"n": len(loads), "p50_ms": round(statistics.median(loads), 1),
                         "p99_ms": round(loads[max(0, int(len(loads) * 0.99) - 1)], 1)}
    client.close()
    return out


DBT_PROJECTS = 10  # the consumer's 20 refs name p0000 of d000..d009 (two refs each): there at every size


def write_consumer(path: str) -> None:
    """A consumer dbt project of 20 models, each with one cross-project ref into a generated product."""
    os.makedirs(os.path.join(path, "models"), exist_ok=True)
    with open(os.path.join(path, "dbt_project.yml"), "w") as f:
        f.write("name: consumer\nversion: '1.0.0'\nconfig-version: 2\nprofile: consumer\nmodel-paths: [models]\n")
    with open(os.path.join(path, "profiles.yml"), "w") as f:
        f.write("consumer:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: target/c.duckdb\n")
    with open(os.path.join(path, "dependencies.yml"), "w") as f:
        f.write("projects:\n" + "".join(f"  - name: {domain(d)}\n" for d in range(DBT_PROJECTS)))
    for i in range(20):
        with open(os.path.join(path, "models", f"m{i:02d}.sql"), "w") as f:
            f.write(f"select count(*) as n from {{{{ ref('{domain(i % DBT_PROJECTS)}', 'p0000') }}}}\n")


def _cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) a process has used so far (Linux; None elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def time_parses(servers: dict[str, CatalogProcess], consumer: str, runs: int) -> dict[str, dict]:
    """`dbt parse --no-partial-parse` of the consumer as admin against each server in turn, `runs` rounds: the
    catalogs interleaved, so a change of load on a shared machine weighs on each alike. Per catalog: wall time,
    the dbt process's CPU time and the server's CPU time during the parse (what the load does not inflate as
    much), and the nodes it injected (the refs and their upstream chain)."""
    dbt = os.path.join(os.path.dirname(sys.executable), "dbt")
    refs = {f"model.{domain(d)}.p0000" for d in range(DBT_PROJECTS)}
    out = {name: {"runs_s": [], "cpu_s": [], "server_cpu_s": []} for name in servers}
    for _ in range(runs):
        for name, server in servers.items():
            env = {**os.environ, "DBT_PROFILES_DIR": consumer, "ICEMESH_CATALOG_URI": server.uri,
                   "ICEMESH_CLIENT_ID": "admin", "ICEMESH_CLIENT_SECRET": server.admin_secret,
                   "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
            children, served = os.times(), _cpu_s(server.proc.pid)
            started = time.perf_counter()
            done = subprocess.run([dbt, "parse", "--no-partial-parse"], cwd=consumer, env=env, capture_output=True,
                                  text=True)
            out[name]["runs_s"].append(round(time.perf_counter() - started, 2))
            after = os.times()
            out[name]["cpu_s"].append(round(after.children_user - children.children_user
                                            + after.children_system - children.children_system, 2))
            now = _cpu_s(server.proc.pid)
            out[name]["server_cpu_s"].append(None if served is None or now is None else round(now - served, 2))
            if done.returncode != 0:
                raise SystemExit(f"dbt parse failed:\n{done.stdout[-3000:]}")
            manifest = json.load(open(os.path.join(consumer, "target", "manifest.json")))
            assert refs <= set(manifest["nodes"]), f"not every ref resolved: {sorted(refs - set(manifest['nodes']))}"
            out[name]["products_injected"] = sum(1 for uid in manifest["nodes"]
                                                 if not uid.startswith("model.consumer."))
    for figures in out.values():
        figures["median_s"] = statistics.median(figures["runs_s"])
        figures["cpu_median_s"] = statistics.median(figures["cpu_s"])
        served = [c for c in figures["server_cpu_s"] if c is not None]
        figures["server_cpu_median_s"] = statistics.median(served) if served else None
    return out


@contextlib.contextmanager
def small_catalog(tmp: str):
    """A catalog holding only the 10 products the consumer refs (and 90 other tables), served."""
    home = os.path.join(tmp, "small")
    os.makedirs(home)
    url = f"sqlite:///{home}/catalog.db"
    settings = dict(db=url, warehouse=f"{home}/warehouse", cwd=home)
    with CatalogProcess(**settings):
        pass  # the schema, the warehouse and admin
    facts = generate(url, 100, DBT_PROJECTS, 20, 20)
    assert facts["products"] == DBT_PROJECTS
    with CatalogProcess(**settings) as server:
        yield server


def time_policy_apply(server: CatalogProcess, path: str, runs: int) -> list[float]:
    """`icemesh policy apply FILE` of the whole generated policy, which the catalog already matches."""
    env = {**os.environ, "ICEMESH_CATALOG_URI": server.uri, "ICEMESH_CLIENT_ID": "admin",
           "ICEMESH_CLIENT_SECRET": server.admin_secret}
    icemesh = os.path.join(os.path.dirname(sys.executable), "icemesh")
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([icemesh, "policy", "apply", path], env=env, capture_output=True, text=True)
        timings.append(round(time.perf_counter() - started, 2))
        if done.returncode != 0 or "no changes" not in done.stdout:
            raise SystemExit(f"policy apply did not find the catalog unchanged:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return timings


def prepare(args, state_dir: str, domains: int) -> tuple[dict, dict, object]:
    """Generate the catalog into `state_dir`, or with --reuse find the one generated there before."""
    state_path = os.path.join(state_dir, "state.json")
    if os.path.exists(state_path):
        with open(state_path, encoding="utf-8") as f:
            state = json.load(f)
        asked = {"tables": args.tables, "domains": domains, "principals": args.principals, "grants": args.grants}
        if state["asked"] != asked:
            raise SystemExit(f"--reuse {state_dir}: it holds {state['asked']}, not {asked}")
        kinds = {"sqlite": "sqlite", "postgres": "postgresql", "postgresql": "postgresql"}
        if args.db not in (None, state["url"]) and not state["url"].startswith(kinds.get(args.db, "\0")):
            raise SystemExit(f"--reuse {state_dir}: its catalog is in {state['url']}, not {args.db}")
        return state, {"reused": True, "generate_s": state["generate_s"]}, lambda: None
    url, cleanup = prepare_database(args.db or "sqlite", state_dir)
    state = {"url": url, "admin_secret": secrets.new_secret(), "warehouse": f"{state_dir}/warehouse",
             "asked": {"tables": args.tables, "domains": domains, "principals": args.principals, "grants": args.grants}}
    results = {"reused": False}
    started = time.perf_counter()
    with CatalogProcess(**settings_of(state, state_dir)) as empty:  # the schema, the warehouse and admin
        empty.client().request("GET", "/management/v1/products", params={"page-size": 50})
        results["empty_start_to_first_answer_s"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    state["facts"] = generate(state["url"], args.tables, domains, args.principals, args.grants,
                              policy_path=os.path.join(state_dir, "policy.yml"))
    state["generate_s"] = results["generate_s"] = round(time.perf_counter() - started, 1)
    with open(state_path, "w", encoding="utf-8") as f:
        json.dump(state, f)
    return state, results, cleanup


def settings_of(state: dict, state_dir: str) -> dict:
    return dict(db=state["url"], warehouse=state["warehouse"], cwd=state_dir, admin_secret=state["admin_secret"])


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=1000, help="tables in all (the issue: 100,000)")
    parser.add_argument("--domains", type=int, default=100)
    parser.add_argument("--principals", type=int, default=1000)
    parser.add_argument("--grants", type=int, default=10000)
    parser.add_argument("--db", help="sqlite (the default), postgres (a new database of a random name), or a "
                                      "postgresql:// URL of a database to create")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3, help="dbt parses and policy applies of each kind")
    parser.add_argument("--keep", action="store_true", help="keep the generated catalog (its URL is printed)")
    parser.add_argument("--reuse", metavar="DIR", help="generate into DIR once, and measure the catalog found there "
                                                       "on later runs (kept; --db is then the one it was made with)")
    parser.add_argument("--generate-only", action="store_true", help="with --reuse: generate into DIR and stop")
    args = parser.parse_args()
    if args.generate_only and not args.reuse:
        parser.error("--generate-only needs --reuse DIR (where the catalog is kept)")
    domains = min(args.domains, max(1, args.tables // 10))
    if args.reuse:
        os.makedirs(args.reuse, exist_ok=True)
    state_dir = os.path.abspath(args.reuse) if args.reuse else tempfile.mkdtemp(prefix="icemesh-scale-")
    state, results, cleanup = prepare(args, state_dir, domains)
    if args.generate_only:
        print(f"generated in {state['generate_s']} s: {state['url']} (warehouse {state['warehouse']})")
        return results
    tmp = tempfile.mkdtemp(prefix="icemesh-scale-run-")
    kind = "postgres" if state["url"].startswith("postgresql") else "sqlite"
    facts = state["facts"]
    results = {"db": kind, "tables": args.tables, **results, "load_avg_start": os.getloadavg()[0],
               **{k: v for k, v in facts.items() if k not in ("sample_tables", "own_tables")}}
    try:
        started = time.perf_counter()
        server = CatalogProcess(**settings_of(state, state_dir)).start()
        try:
            results["start_to_ready_s"] = round(time.perf_counter() - started, 2)
            client = server.client()
            client.token()
            asked = time.perf_counter()
            first = client.request("GET", "/management/v1/products", params={"page-size": 50})
            results["first_answer_ms"] = round((time.perf_counter() - asked) * 1000, 1)
            results["start_to_first_answer_s"] = round(time.perf_counter() - started, 2)
            assert first["products"], "no products listed"
            results["admin"] = measure(server, "admin", state["admin_secret"], facts, args.repeat)
            results["domain_principal"] = measure(server, "svc_d001" if domains > 1 else "svc_d000", SECRET, facts,
                                                  args.repeat)
            if not os.path.exists(os.path.join(state_dir, "policy.json")):  # a catalog generated before JSON was
                with open(os.path.join(state_dir, "policy.yml"), encoding="utf-8") as f:
                    write_policy(yaml.load(f, Loader=yaml.CSafeLoader), os.path.join(state_dir, "policy.yml"))
            for form in ("json", "yml"):
                policy = time_policy_apply(server, os.path.join(state_dir, f"policy.{form}"), args.runs)
                results[f"policy_apply_unchanged_{form}_s"] = {"runs": policy, "median": statistics.median(policy)}
            if domains >= DBT_PROJECTS:
                consumer = os.path.join(tmp, "consumer")
                write_consumer(consumer)
                with small_catalog(tmp) as small:
                    parses = time_parses({"this_catalog": server, "catalog_of_10_products": small}, consumer,
                                         args.runs)
                big, small = parses["this_catalog"], parses["catalog_of_10_products"]
                results["dbt_parse_20_refs_s"] = {
                    **parses, "extra_median": round(big["median_s"] - small["median_s"], 2),
                    "extra_cpu_median": round(big["cpu_median_s"] - small["cpu_median_s"], 2),
                    "extra_server_cpu_median": None if big["server_cpu_median_s"] is None else
                    round(big["server_cpu_median_s"] - small["server_cpu_median_s"], 2)}
        finally:
            server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if args.keep or args.reuse:
            print(f"kept: {state['url']} (warehouse {state['warehouse']})", flush=True)
        else:
            cleanup()
            shutil.rmtree(state_dir, ignore_errors=True)
    results["load_avg_end"] = os.getloadavg()[0]
    verdicts = {}
    for who in ("admin", "domain_principal"):
        for key, floor in FLOORS_MS.items():
            verdicts[f"{who}.{key}"] = "ok" if results[who][key]["median_ms"] <= floor else f"over {floor} ms"
    verdicts["start_to_first_answer"] = "ok" if results["start_to_first_answer_s"] <= 5 else "over 5 s"
    for form in ("json", "yml"):
        verdicts[f"policy_apply_unchanged_{form}"] = "ok" if results[f"policy_apply_unchanged_{form}_s"]["median"] <= 10 \
            else "over 10 s"
    if "dbt_parse_20_refs_s" in results:
        verdicts["dbt_parse_20_refs"] = "ok" if results["dbt_parse_20_refs_s"]["extra_median"] <= 0.3 else "over 0.3 s"
    results["verdicts"] = verdicts
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", f"scale-{kind}-{args.tables}.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
