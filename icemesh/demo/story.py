"""The demo, in the order a newcomer should see it: catalog, governance, three domains building, one product
read by several engines, governance refusing, the registry and lineage, and a summary with measured figures.

Every run starts from a fresh demo directory (the catalog, warehouse and project copies under
.icemesh/demo), so a second `make demo` tells the same story; the state stays afterwards for exploring.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import asdict, dataclass, field

from icemesh.demo import automation, copies, data
from icemesh.demo.console import DemoError, elapsed, icemesh, icemesh_json, say, step, step_seconds
from icemesh.demo.engines import available_engines, query_everywhere
from icemesh.demo.projects import ORDER, DbtProject
from icemesh.demo.spark_jvm import SparkJvm

MARKER = ".icemesh-demo"  # only a directory carrying it is ever deleted


@dataclass
class Summary:
    products: list[str] = field(default_factory=list)
    engines: list[str] = field(default_factory=list)
    snapshots: int = 0
    bytes_copied_between_domains: int = 0
    warehouse_bytes: int = 0
    denials_audited: int = 0
    rebuilt_by_dagster: dict = field(default_factory=dict)
    seconds: float = 0.0
    step_seconds: list = field(default_factory=list)  # [title, seconds] per step, as printed
    spark_jvms: int = 0  # JVMs the demo started for its Spark work (builds, rebuild, query)


def _reset(workdir: str) -> None:
    if os.path.isdir(workdir) and os.listdir(workdir) and not os.path.exists(os.path.join(workdir, MARKER)):
        raise DemoError(f"{workdir} exists and is not a demo directory: pass another --workdir")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    open(os.path.join(workdir, MARKER), "w").close()


def run(workdir: str, projects_dir: str, policy_file: str, scale: float, with_spark: bool) -> Summary:
    from icemesh.client import DEFAULT_URI
    from icemesh.server.process import CatalogProcess

    summary = Summary()
    workdir = os.path.abspath(workdir)
    step(f"a fresh demo directory: {os.path.relpath(workdir)} (catalog, warehouse, copies of the dbt projects)")
    _reset(workdir)
    projects_copy = os.path.join(workdir, "projects")
    for name in ORDER:
        shutil.copytree(os.path.join(projects_dir, name), os.path.join(projects_copy, name),
                        ignore=shutil.ignore_patterns("target", "dbt_packages", "logs", "seeds", "package-lock.yml"))
    rows = data.generate(projects_copy, scale)
    say(f"raw data (--scale {scale:g}, deterministic): " + ", ".join(f"{n.split('/')[1]} {r:,}" for n, r in rows.items()))

    warehouse = os.path.join(workdir, "warehouse")
    admin_secret = secrets.token_urlsafe(24)
    with open(os.open(os.path.join(workdir, "admin-secret"), os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(admin_secret)
    step("the catalog: icemesh serve (embedded SQLite, local warehouse)")
    jvm = SparkJvm(os.path.join(workdir, "spark-warehouse"), os.path.join(workdir, "spark.log"))
    with jvm, CatalogProcess(db=f"sqlite:///{workdir}/catalog.db", warehouse=warehouse, cwd=workdir,
                             log_path=os.path.join(workdir, "serve.log"), admin_secret=admin_secret) as server:
        say(f"{server.uri}   db {os.path.relpath(workdir)}/catalog.db   warehouse {os.path.relpath(warehouse)}")
        admin = {"ICEMESH_CATALOG_URI": server.uri, "ICEMESH_CLIENT_ID": "admin", "ICEMESH_CLIENT_SECRET": admin_secret}

        step(f"governance as code: tags, principals, namespaces and grants from {policy_file}")
        applied = icemesh_json(["policy", "apply", policy_file], admin)
        credentials = {p["name"]: p["client_secret"] for p in applied["created_principals"]}
        say(f"{len(applied['changes'])} changes; principals: {', '.join(sorted(credentials))} (secrets shown once, kept in memory)",
            indent=6)
        for line in [c["line"] for c in applied["changes"] if "grant" in c["line"]]:
            say(line, indent=6)

        automation.prewarm()
        jvm.start()  # beside supply_chain's DuckDB build: manufacturing's Spark build is next
        for name in ORDER:
            project = DbtProject(os.path.join(projects_copy, name), f"svc_{name}", credentials[f"svc_{name}"], server.uri,
                                 jvm=jvm)
            step(f"{name} builds on {project.engine} as {project.principal}")
            project.init()
            before = copies.fingerprint(warehouse)
            project.build()
            after = copies.fingerprint(warehouse)
            summary.bytes_copied_between_domains += copies.copied_bytes(before, after, own_namespace=name)
            say(f"wrote {sum(copies.written(before, after).values()):,} bytes, all under {name}/ in the warehouse", indent=6)

        step("the mesh runs itself: supply_chain publishes again, and the domains that read it rebuild through Dagster")
        upstream = DbtProject(os.path.join(projects_copy, ORDER[0]), f"svc_{ORDER[0]}", credentials[f"svc_{ORDER[0]}"],
                              server.uri)

        def republish() -> None:
            say(f"$ dbt run   ({ORDER[0]}, outside Dagster, as another team would)", indent=6)
            upstream._dbt(["run"], quiet=True)

        summary.rebuilt_by_dagster = automation.rebuild_downstream(projects_copy, ORDER[1:], credentials, server.uri,
                                                                   republish, jvm=jvm)

        import icemesh as mesh_api

        engines = available_engines(with_spark)
        step(f"svc_marketing reads product_360.unified_product in place from {len(engines)} engines")
        marketing = mesh_api.connect(server.uri, client_id="svc_marketing", client_secret=credentials["svc_marketing"])
        before = copies.fingerprint(warehouse)
        try:
            runs = query_everywhere(marketing, engines, "svc_marketing", jvm)
        finally:
            marketing.close()
        summary.engines = [r.engine for r in runs]

        step("governance at work: a denied read and a hidden column")
        _expect_refusal(marketing, "svc_marketing", "select * from manufacturing.batches")
        p360 = mesh_api.connect(server.uri, client_id="svc_product_360", client_secret=credentials["svc_product_360"])
        try:
            _expect_refusal(p360, "svc_product_360", "select batch_id, supplier_cost from manufacturing.batches")
            visible = p360.sql("select * from manufacturing.batches limit 1").column_names
        finally:
            p360.close()
        if "supplier_cost" in visible:
            raise DemoError("svc_product_360 received the confidential column supplier_cost")
        say(f"svc_product_360 / select * from manufacturing.batches -> columns: {', '.join(visible)}")
        summary.bytes_copied_between_domains += copies.copied_bytes(before, copies.fingerprint(warehouse), None)

        step("the registry, as svc_product_360 sees it, and lineage across projects")
        p360_env = {**admin, "ICEMESH_CLIENT_ID": "svc_product_360", "ICEMESH_CLIENT_SECRET": credentials["svc_product_360"]}
        icemesh(["products", "show", "manufacturing.batches"], p360_env)
        icemesh(["lineage"], admin)

        products = icemesh_json(["products", "list"], admin, show=False)
        denials = icemesh_json(["audit", "--denied"], admin, show=False)
        summary.products = sorted(p["name"] for p in products)
        summary.snapshots = sum(p["snapshots"] for p in products)
        summary.denials_audited = len(denials)
        summary.warehouse_bytes = sum(size for size, _digest in copies.fingerprint(warehouse).values())

    summary.spark_jvms = jvm.starts
    summary.seconds = round(elapsed(), 1)
    summary.step_seconds = [[title, seconds] for title, seconds in step_seconds()]
    step("summary")
    say(f"products:    {len(summary.products)}  ({', '.join(summary.products)})")
    say(f"domains:     {len(ORDER)} dbt projects, each its own principal; builds on "
        f"{', '.join(sorted({DbtProject(os.path.join(projects_copy, n), '', '', '').engine for n in ORDER}))}")
    say(f"engines:     {len(summary.engines)} read the same product with equal results ({', '.join(summary.engines)})")
    say(f"snapshots:   {summary.snapshots}")
    say(f"bytes copied between domains: {summary.bytes_copied_between_domains}  (warehouse hashed around every "
        f"cross-domain build and read; warehouse {summary.warehouse_bytes:,} bytes)")
    say(f"denials audited: {summary.denials_audited}")
    say("time per step: " + ", ".join(f"[{i}] {seconds:.0f}s" for i, (_t, seconds) in enumerate(summary.step_seconds, 1)))
    say(f"done in {summary.seconds:.0f}s. Explore: ICEMESH_ADMIN_SECRET=$(cat {os.path.relpath(workdir)}/admin-secret) "
        f"icemesh serve --db sqlite:///{os.path.relpath(workdir)}/catalog.db --warehouse {os.path.relpath(warehouse)}")
    say(f"portal:      run that command, then open {DEFAULT_URI}/ and log in as client id admin with the secret "
        f"in {os.path.relpath(workdir)}/admin-secret (the demo's own server has stopped)")
    with open(os.path.join(workdir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(asdict(summary), f, indent=2)
    return summary


def _expect_refusal(mesh, who: str, sql: str) -> None:
    try:
        mesh.sql(sql, engine="duckdb")
    except Exception as exc:  # noqa: BLE001 - the message is what the demo shows
        say(f"{who} / {sql}\n  -> refused: {str(exc).strip().splitlines()[0][:300]}")
        return
    raise DemoError(f"{who} was allowed to run {sql!r}")
