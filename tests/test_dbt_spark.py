"""dbt-spark with icemesh: Spark publishes and reads products in the same catalog, under the same governance.

Three domains, each a dbt project with its own principal: `sales` (dbt-duckdb, tests/dbt_projects/sales),
`fulfilment` (dbt-spark in session mode) which republishes the sales orders and publishes shipments, and
`billing` (dbt-duckdb) which reads the shipments Spark wrote. Checked from outside with pyiceberg, DuckDB,
Spark and the management API, as a consumer would see them.
"""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from tests.conftest import spark_catalog, start_catalog, warehouse_files
from tests.dbt_helpers import commits, dbt_project, icemesh_dbt_init, rows

pytestmark = pytest.mark.spark
M = "/management/v1"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_catalog(tmp_path_factory, None, "dbt-spark")
    admin = server.client()
    admin.request("POST", f"{M}/tags", json={"key": "domain", "values": ["sales", "fulfilment", "finance"]})
    admin.request("POST", f"{M}/tags", json={"key": "sensitivity", "values": ["public", "internal", "confidential"]})
    server.secrets = {}
    for name in ("svc_sales", "svc_fulfilment", "svc_billing"):
        created = admin.request("POST", f"{M}/principals", json={"name": name, "roles": []})
        server.secrets[name] = created["client_secret"]
        admin.request("POST", f"{M}/grants", json={"permissions": "CREATE_TABLE", "principal": name, "catalog": True})
    # Fulfilment reads what sales tags as its domain; billing reads what fulfilment tags as its domain.
    admin.request("POST", f"{M}/grants", json={"permissions": "DESCRIBE,SELECT", "principal": "svc_fulfilment",
                                               "tags": ["domain=sales"]})
    admin.request("POST", f"{M}/grants", json={"permissions": "DESCRIBE,SELECT", "principal": "svc_billing",
                                               "tags": ["domain=fulfilment"]})
    # ...and may see (not read) the sales products, so its docs show where fulfilment's came from.
    admin.request("POST", f"{M}/grants", json={"permissions": "DESCRIBE", "principal": "svc_billing",
                                               "tags": ["domain=sales"]})
    yield server
    server.stop()


def project(server, tmp_path_factory, name: str, principal: str):
    return dbt_project(name, tmp_path_factory.mktemp(f"dbt-{name}"), server, principal, server.secrets[principal])


@pytest.fixture(scope="module")
def sales(server, tmp_path_factory):
    sales = project(server, tmp_path_factory, "sales", "svc_sales")
    sales("run", "--select", "+orders", "order_status")
    return sales


@pytest.fixture(scope="module")
def fulfilment(server, tmp_path_factory, sales):
    """fulfilment's first run also builds `filtered_probe`, which refs sales.order_status through a grant that
    shows it orders 1-3 with amounts set to 0 (revoked after the run: the other tests see it invisible)."""
    fulfilment = project(server, tmp_path_factory, "fulfilment", "svc_fulfilment")
    admin = server.client()
    grant = admin.request("POST", f"{M}/grants", json={
        "permissions": "SELECT,DESCRIBE", "principal": "svc_fulfilment", "table": "sales.order_status",
        "rows": "order_id <= 3", "masks": ["amount=default"]})
    try:
        fulfilment("run", "--vars", "{filtered_probe: true}")
    finally:
        admin.request("POST", f"{M}/grants/revoke", json={"permissions": "SELECT,DESCRIBE", "id": grant["id"]})
    return fulfilment


@pytest.fixture(scope="module")
def billing(server, tmp_path_factory, fulfilment):
    billing = project(server, tmp_path_factory, "billing", "svc_billing")
    billing("run")
    return billing


@pytest.fixture
def catalog(server):
    return server.client().rest_catalog()




def utc(values):
    """Rows with timestamps as naive UTC (DuckDB returns them zoned, Spark in the session's zone, UTC here)."""
    return sorted(tuple(v.astimezone(dt.timezone.utc).replace(tzinfo=None) if isinstance(v, dt.datetime) and v.tzinfo
                        else v for v in row) for row in values)


def test_init_gives_spark_targets_the_runtime_and_the_catalog(fulfilment):
    changes = json.loads(fulfilment.init.stdout)["changes"]
    assert any("target dev gets the Iceberg runtime and the mesh catalog" in c for c in changes)
    profile = (fulfilment.path / "profiles.yml").read_text()
    assert "iceberg-spark-runtime-3.5_2.12" in profile and "spark.sql.catalog.mesh.type: rest" in profile
    assert "env_var('ICEMESH_CLIENT_SECRET')" in profile  # credentials stay in the environment
    assert fulfilment.env["ICEMESH_CLIENT_SECRET"] not in profile
    assert "spark.sql.session.timeZone: UTC" in profile  # the project's own settings are kept
    again = icemesh_dbt_init(fulfilment.path, fulfilment.env)
    assert again.returncode == 0 and json.loads(again.stdout)["changed"] is False
    assert (fulfilment.path / "profiles.yml").read_text() == profile
    # The driver starts fast: C1 only, and the class archive `make install` built (a stale one is replaced,
    # the project's own JVM options are kept).
    from icemesh.runtimes import spark_classes

    assert spark_classes.archive_path() and os.path.exists(spark_classes.archive_path())
    assert f"spark.driver.extraJavaOptions: {spark_classes.java_options()}" in profile
    assert "-XX:SharedArchiveFile=" in spark_classes.java_options()
    stale = profile.replace(f"spark.driver.extraJavaOptions: {spark_classes.java_options()}",
                            "spark.driver.extraJavaOptions: -Xss4m -XX:SharedArchiveFile=/old/spark-classes-0.jsa")
    (fulfilment.path / "profiles.yml").write_text(stale)
    assert icemesh_dbt_init(fulfilment.path, fulfilment.env).returncode == 0
    assert f"spark.driver.extraJavaOptions: -Xss4m {spark_classes.java_options()}" in \
        (fulfilment.path / "profiles.yml").read_text()
    (fulfilment.path / "profiles.yml").write_text(profile)


def test_spark_product_is_shaped_like_the_duckdb_one(fulfilment, catalog, server):
    duck_made, spark_made = catalog.load_table("sales.orders"), catalog.load_table("fulfilment.orders")
    shape = lambda t: [(f.name, str(f.field_type), f.required, f.doc) for f in t.schema().fields]  # noqa: E731
    assert shape(spark_made) == shape(duck_made)
    assert shape(spark_made)[0] == ("order_id", "int", True, "The order's id.")
    spec = lambda t: [(f.name, str(f.transform)) for f in t.spec().fields]  # noqa: E731
    assert spec(spark_made) == spec(duck_made) == [("ordered_at_month", "month"), ("customer_id_bucket", "bucket[4]")]
    # Same keys; the Spark product also names what it read: the DuckDB product, resolved by ref('sales', 'orders').
    assert set(spark_made.properties) == set(duck_made.properties) | {"icemesh.dbt.upstream"}
    assert json.loads(spark_made.properties["icemesh.dbt.upstream"]) == ["sales.orders"]
    props = spark_made.properties
    assert props["icemesh.dbt.project"] == "fulfilment" and props["icemesh.dbt.unique_id"] == "model.fulfilment.orders"
    assert props["comment"] == duck_made.properties["comment"] and props["icemesh.dbt.access"] == "public"
    assert json.loads(props["icemesh.dbt.owner"])["email"] == "fulfilment-ops@example.com"
    contract = json.loads(props["icemesh.dbt.contract"])
    assert contract["enforced"] and {"name": "order_id", "data_type": "int", "not_null": True} in contract["columns"]
    summary = spark_made.current_snapshot().summary
    assert summary["icemesh.dbt.unique_id"] == "model.fulfilment.orders"
    assert summary.operation == duck_made.current_snapshot().summary.operation
    admin = server.client()
    tags = {name: admin.request("GET", f"{M}/effective-tags", params={"resource": name})
            for name in ("sales.orders", "fulfilment.orders")}
    assert {k: v["value"] for k, v in tags["fulfilment.orders"]["tags"].items()} == {
        "domain": "fulfilment", "sensitivity": "internal"}
    assert tags["fulfilment.orders"]["columns"]["customer_email"]["sensitivity"]["value"] == "confidential"
    assert set(tags["fulfilment.orders"]["columns"]) == set(tags["sales.orders"]["columns"])
    assert rows(spark_made) == rows(duck_made)  # the same rows, read through the catalog


def test_spark_reads_the_duckdb_product_and_duckdb_the_spark_product_equally(fulfilment, server, spark):
    name = spark_catalog(spark, server, f"mesh_{server.port}")
    duck = server.client().duckdb()
    query = "select order_id, customer_id, amount, ordered_at, customer_email from {}.{}.orders"
    spark_reads = {ns: utc(spark.sql(query.format(name, ns)).collect()) for ns in ("sales", "fulfilment")}
    duck_reads = {ns: utc(duck.execute(query.format("mesh", ns)).fetchall()) for ns in ("sales", "fulfilment")}
    assert spark_reads["sales"] == duck_reads["fulfilment"] == duck_reads["sales"] == spark_reads["fulfilment"]
    assert len(spark_reads["sales"]) == 5


def test_dbt_duckdb_project_consumes_the_spark_product(billing, catalog):
    shipped = [(order_id, "shipped", "EUR") for order_id, status in rows(catalog.load_table("fulfilment.shipments"))
               if status == "shipped"]
    assert shipped and rows(catalog.load_table("billing.invoices")) == shipped
    assert catalog.load_table("billing.invoices").properties["icemesh.dbt.project"] == "billing"


def test_spark_consumer_nodes_carry_declared_types_and_lineage_runs_two_hops(fulfilment, billing):
    """The Spark consumer's injected sales.orders has the types sales' contract declared (not Iceberg's names);
    a DuckDB consumer of the product Spark built from it sees the chain, two hops, in `dbt ls --select +model`."""
    nodes = json.loads((fulfilment.path / "target" / "manifest.json").read_text())["nodes"]
    orders = nodes["model.sales.orders"]
    assert {n: c["data_type"] for n, c in orders["columns"].items()} == {
        "order_id": "integer", "customer_id": "integer", "amount": "decimal(12, 2)", "ordered_at": "timestamptz",
        "customer_email": "varchar"}
    assert [c["type"] for c in orders["columns"]["order_id"]["constraints"]] == ["not_null"]
    probe = billing.path / "models" / "probe_chain.sql"
    try:
        probe.write_text("select * from {{ ref('fulfilment', 'orders') }}")
        listed = billing("ls", "--select", "+probe_chain", "--resource-type", "model", "--output", "json",
                         "--output-keys", "unique_id")
        ids = {json.loads(line)["unique_id"] for line in listed.stdout.splitlines() if line.startswith("{")}
        assert ids == {"model.billing.probe_chain", "model.fulfilment.orders", "model.sales.orders"}, listed.stdout
    finally:
        probe.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def refused(fulfilment, server):
    """One dbt-spark run of two models the catalog refuses: `trespass` overwrites the sales domain's product,
    `peek` reads a sales product svc_fulfilment has no grant on. What the catalog held before is kept."""
    admin = server.client()
    refused = type("Refused", (), {})()
    refused.orders = admin.rest_catalog().load_table("sales.order_status")
    refused.files = warehouse_files(os.path.join(server.cwd, "warehouse"))
    refused.tags = admin.request("GET", f"{M}/effective-tags", params={"resource": "sales.order_status"})
    refused.run = fulfilment("run", "--select", "trespass", "peek", "--vars", "{trespass: true, peek: true}",
                             check=False)
    return refused


def reason(run, product: str) -> str:
    """The one line dbt printed for the product's failure."""
    return next(line.strip() for line in run.stdout.splitlines() if f"icemesh could not publish {product}:" in line)


def test_denied_spark_write_changes_nothing(refused, catalog, server):
    assert refused.run.returncode != 0
    line = reason(refused.run, "sales.order_status")
    assert line.startswith("icemesh could not publish sales.order_status: ")
    # svc_fulfilment may not even see sales.order_status: to it, this run would create a product in another
    # domain's namespace, which needs a grant it does not have.
    assert "svc_fulfilment lacks CREATE_TABLE on namespace sales" in line
    assert catalog.load_table("sales.order_status").metadata_location == refused.orders.metadata_location
    assert server.client().request("GET", f"{M}/effective-tags", params={"resource": "sales.order_status"}) == refused.tags
    assert warehouse_files(os.path.join(server.cwd, "warehouse")) == refused.files  # not a file written


def test_denied_spark_read_fails_with_the_catalogs_message(refused, catalog):
    line = reason(refused.run, "fulfilment.peek")
    assert line.startswith("icemesh could not publish fulfilment.peek: ")
    # Invisible to it: the catalog answers as for a table that does not exist, and Spark says so its own way.
    assert "`mesh`.`sales`.`order_status` cannot be found" in line
    assert ("fulfilment", "peek") not in catalog.list_tables("fulfilment")


def test_spark_session_write_the_principal_may_not_do_fails_with_the_catalogs_message(fulfilment, server, catalog,
                                                                                     spark):
    from icemesh.runtimes.spark import error_message

    name = spark_catalog(spark, server, f"billing_{server.port}", "svc_billing", server.secrets["svc_billing"])
    before = catalog.load_table("fulfilment.shipments")
    assert len(spark.sql(f"select * from {name}.fulfilment.shipments").collect()) == len(rows(before))  # may read
    with pytest.raises(Exception) as denied:
        spark.sql(f"insert into {name}.fulfilment.shipments values (99, 'lost')")
    assert error_message(denied.value).startswith(
        "ForbiddenException: Forbidden: svc_billing lacks INSERT on table fulfilment.shipments; an admin can allow it "
        "with: icemesh grant INSERT --to svc_billing --table fulfilment.shipments")
    assert catalog.load_table("fulfilment.shipments").metadata_location == before.metadata_location


def test_incremental_strategies_on_spark(fulfilment, catalog):
    before = {n: catalog.load_table(f"fulfilment.{n}") for n in ("shipments", "shipment_log", "customer_shipments")}
    fulfilment("run", "--select", "shipments", "shipment_log", "customer_shipments",
               "--vars", "{orders: 7, first: 2, shipped: 5, with_carrier: true}")
    after = {n: catalog.load_table(f"fulfilment.{n}") for n in before}
    assert all(commits(after[n]) == commits(before[n]) + 1 for n in before)  # one commit per run and product

    assert [r[0] for r in rows(after["shipment_log"], "order_id")] == [0, 1, 2, 3, 4, 5, 6]  # 5 and 6 appended
    assert after["shipment_log"].current_snapshot().summary.operation.value == "append"
    # merge: orders 2..6 came again (2..4 now shipped, 5..6 new) with a new column; 0..1 untouched, carrier null
    assert rows(after["shipments"]) == [(0, "shipped", None), (1, "shipped", None), (2, "shipped", "dhl"),
                                        (3, "shipped", "dhl"), (4, "shipped", "dhl"), (5, "packed", "dhl"),
                                        (6, "packed", "dhl")]
    # delete+insert: every customer had an order >= 2, so each row was replaced by a count over orders 2..6
    assert rows(after["customer_shipments"]) == [(0, 2), (1, 1), (2, 2)]
    assert [str(f.transform) for f in after["customer_shipments"].spec().fields] == ["identity"]


def test_a_catalog_name_table_model_on_spark_is_published_as_a_product(fulfilment, catalog):
    """catalogs.yml style on dbt-spark: `materialized='table', catalog_name='mesh'` goes through icemesh's writer."""
    table = catalog.load_table("fulfilment.shipment_counts")
    assert table.properties["icemesh.dbt.model"] == "shipment_counts"
    assert table.properties["icemesh.dbt.unique_id"] == "model.fulfilment.shipment_counts"
    assert json.loads(table.properties["icemesh.tags"]) == [{"column": "", "key": "domain", "value": "fulfilment"}]
    assert rows(table) == [("packed", 2), ("shipped", 3)]


def test_a_view_model_with_catalog_name_is_an_iceberg_view_product(fulfilment, billing, catalog, server):
    """Zero-copy: `materialized='view', catalog_name='mesh'` on Spark is an Iceberg view in the catalog, described as
    a product (its icemesh.dbt.* properties), listed by the registry, read by Spark; a DuckDB consumer is told why
    it cannot read it."""
    view = catalog.load_view("fulfilment.shipped_view")
    assert view.metadata.properties["icemesh.dbt.model"] == "shipped_view"
    assert json.loads(view.metadata.properties["icemesh.dbt.upstream"]) == ["fulfilment.shipments"]
    assert view.metadata.properties["comment"].startswith("Shipped orders")
    version = next(v for v in view.metadata.versions if v.version_id == view.metadata.current_version_id)
    assert [getattr(r, "root", r).dialect for r in version.representations] == ["spark"]
    shown = fulfilment("show", "--inline", "select count(*) as n from {{ ref('shipped_view') }}", "--output", "json")
    shipped = [r for r in rows(catalog.load_table("fulfilment.shipments")) if r[1] == "shipped"]
    assert f'"n": {len(shipped)}' in shown.stdout
    admin = server.client()
    admin.request("POST", f"{M}/tag-assignments", json={"key": "domain", "value": "fulfilment",
                                                        "table": "fulfilment.shipped_view"})
    billing_client = server.client("svc_billing", server.secrets["svc_billing"])
    listed = {p["name"]: p for p in billing_client.request("GET", f"{M}/products")}
    assert listed["fulfilment.shipped_view"]["kind"] == "view" and listed["fulfilment.shipped_view"]["select"]["allowed"]
    assert [c["name"] for c in listed["fulfilment.shipped_view"]["columns"]] == ["order_id", "status"]
    probe = billing.path / "models" / "probe_view.sql"
    try:
        probe.write_text("select * from {{ ref('fulfilment', 'shipped_view') }}")
        refused = billing("ls", check=False)
        assert refused.returncode != 0
        assert "it is an Iceberg view product, which DuckDB cannot read from the catalog" in refused.stdout
    finally:
        probe.unlink(missing_ok=True)


def test_init_follows_a_reinstalled_runtime_and_names_targets_it_cannot_set_up(tmp_path):
    import shutil

    from icemesh.dbt.project_setup import set_up
    from icemesh.runtimes.spark import session_jars
    from tests.dbt_helpers import PROJECTS

    path = tmp_path / "fulfilment"
    shutil.copytree(f"{PROJECTS}/fulfilment", path)
    profiles = path / "profiles.yml"
    old_jar = "/old/venv/jars/iceberg-spark-runtime-3.5_2.12-1.9.0.jar"
    profiles.write_text(profiles.read_text().replace(
        "      server_side_parameters:\n", f"      server_side_parameters:\n        spark.jars: {old_jar},/opt/jars/x.jar\n")
        + "    thrift:\n      type: spark\n      method: thrift\n      host: spark.example.com\n      schema: fulfilment\n")
    report = set_up(str(path))
    text = profiles.read_text()
    assert f"spark.jars: /opt/jars/x.jar,{','.join(session_jars())}\n" in text  # the old runtime replaced, others kept
    assert ("target thrift uses method thrift: materialized='iceberg' on Spark needs `method: session`"
            in " ".join(report.notes))
    assert set_up(str(path)).changes == [] and profiles.read_text() == text


def test_a_filtered_grant_reaches_a_spark_ref_as_a_view_that_applies_it(fulfilment, catalog):
    """The ref read a global temporary view applying the grant's filter and mask: the published product holds
    only orders 1-3, their amounts 0 (see the fulfilment fixture)."""
    every = rows(catalog.load_table("sales.order_status"), "order_id")
    expected = [(order_id, 0) for (order_id,) in every if order_id <= 3]
    assert expected and len(expected) < len(every)
    published = catalog.load_table("fulfilment.filtered_probe")
    assert [(r[0], int(r[1])) for r in rows(published, "order_id", "amount")] == expected
    compiled = (fulfilment.path / "target" / "compiled" / "fulfilment" / "models" / "filtered_probe.sql").read_text()
    assert "`global_temp`." in compiled and "order_status" in compiled


def test_pinned_spark_run_repeats_the_upstream_snapshot(fulfilment, sales, catalog):
    """A Spark consumer pins sales.orders; after the producer changes it, the pinned re-run reads the rows as
    they were (Iceberg's Spark catalog reads `<table>.snapshot_id_<id>`). Last in this module: it leaves
    sales.orders changed (each dbt-spark run starts a JVM, so the products are not rebuilt afterwards)."""
    from pyiceberg.expressions import EqualTo

    fulfilment("run", "--select", "orders", "--vars", "{icemesh_pin: snapshot}")
    pinned = catalog.load_table("sales.orders").current_snapshot().snapshot_id
    pins = json.loads((fulfilment.path / "target" / "icemesh_pins.json").read_text())["snapshots"]
    assert pins == {"sales.orders": pinned}
    assert json.loads(catalog.load_table("fulfilment.orders").properties["icemesh.dbt.upstream_snapshots"]) == pins
    nodes = json.loads((fulfilment.path / "target" / "manifest.json").read_text())["nodes"]
    assert nodes["model.sales.orders"]["relation_name"] == f"`mesh`.`sales`.`orders`.`snapshot_id_{pinned}`"
    before = rows(catalog.load_table("fulfilment.orders"), "order_id")
    assert len(before) == 5
    catalog.load_table("sales.orders").delete(EqualTo("order_id", before[0][0]))  # the producer changes
    assert len(catalog.load_table("sales.orders").scan().to_arrow()) == 4
    written = catalog.load_table("fulfilment.orders").current_snapshot().snapshot_id
    fulfilment("run", "--select", "orders", "--vars", "{icemesh_pin: target/icemesh_pins.json}")
    republished = catalog.load_table("fulfilment.orders")
    assert republished.current_snapshot().snapshot_id != written  # the run wrote the product again...
    assert rows(republished, "order_id") == before  # ...from sales.orders as pinned, the deleted order included
