"""dbt-duckdb with icemesh: `materialized='iceberg'` publishes governed products into the catalog.

One catalog server per module; the `sales` project (tests/dbt_projects/sales) runs as its own principal
`svc_sales`, which may create namespaces and nothing else: it owns what it publishes. Everything is checked
from outside with pyiceberg, DuckDB and the management API, as a consumer would see it.
"""

from __future__ import annotations

import json
import threading

import pytest

from icemesh.dbt import PACKAGE_DIR
from tests.conftest import spark_catalog, start_catalog
from tests.dbt_helpers import commits, dbt_project, icemesh_dbt_init, rows

M = "/management/v1"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_catalog(tmp_path_factory, None, "dbt")
    admin = server.client()
    admin.request("POST", f"{M}/tags", json={"key": "domain", "values": ["sales", "finance"]})
    admin.request("POST", f"{M}/tags", json={"key": "sensitivity", "values": ["public", "internal", "confidential"]})
    server.producer = admin.request("POST", f"{M}/principals", json={"name": "svc_sales", "roles": []})
    server.reader = admin.request("POST", f"{M}/principals", json={"name": "svc_finance", "roles": []})
    admin.request("POST", f"{M}/grants", json={"permissions": "CREATE_TABLE", "principal": "svc_sales", "catalog": True})
    admin.request("POST", f"{M}/grants", json={"permissions": "DESCRIBE,SELECT", "principal": "svc_finance",
                                               "tags": ["domain=sales", "sensitivity=public,internal"]})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def project(server, tmp_path_factory):
    dbt = dbt_project("sales", tmp_path_factory.mktemp("dbt"), server, "svc_sales", server.producer["client_secret"])
    dbt.first_run = dbt("run")  # first run: every product is created
    return dbt


@pytest.fixture
def catalog(server):
    return server.client().rest_catalog()




def test_not_null_on_an_iceberg_model_draws_no_unsupported_constraint_warning(project):
    """icemesh enforces not_null (a required Iceberg field): dbt's "Constraint types are not supported for iceberg
    materializations" would say otherwise."""
    assert "not_null" in (project.path / "models" / "schema.yml").read_text()
    assert "Constraint types are not supported" not in project.first_run.stdout, project.first_run.stdout[-2000:]


def test_init_sets_up_the_project_and_is_safe_to_run_twice(project):
    first = json.loads(project.init.stdout)
    assert first["changed"] and len(first["changes"]) == 5
    files = ["packages.yml", "dbt_project.yml", "profiles.yml", "macros/icemesh.sql", "icemesh_package/dbt_project.yml"]
    before = {f: (project.path / f).read_text() for f in files}
    assert "local: icemesh_package" in before["packages.yml"] and PACKAGE_DIR not in before["packages.yml"]
    assert "icemesh.dbt.duckdb" in before["profiles.yml"]
    assert "# A plain dbt-duckdb project" in before["dbt_project.yml"]  # comments survive the edit
    again = icemesh_dbt_init(project.path, project.env)
    assert again.returncode == 0 and json.loads(again.stdout)["changed"] is False
    assert {f: (project.path / f).read_text() for f in files} == before


def test_product_carries_contract_docs_partitioning_and_dbt_metadata(project, catalog):
    table = catalog.load_table("sales.orders")  # the project's name is the namespace: no main_ prefix
    schema = table.schema()
    assert schema.find_field("order_id").required  # contract not_null -> required
    assert not schema.find_field("customer_id").required
    assert str(schema.find_field("amount").field_type) == "decimal(12, 2)"
    assert str(schema.find_field("ordered_at").field_type) == "timestamptz"
    assert schema.find_field("amount").doc == "What the order cost, in EUR."
    assert [(f.name, str(f.transform)) for f in table.spec().fields] == [
        ("ordered_at_month", "month"), ("customer_id_bucket", "bucket[4]")]
    props = table.properties
    assert props["comment"] == "Orders, one row per order."
    assert props["icemesh.dbt.project"] == "sales" and props["icemesh.dbt.model"] == "orders"
    assert props["icemesh.dbt.unique_id"] == "model.sales.orders" and props["icemesh.dbt.access"] == "public"
    assert props["icemesh.dbt.group"] == "sales_ops"
    assert json.loads(props["icemesh.dbt.owner"])["email"] == "sales-ops@example.com"
    contract = json.loads(props["icemesh.dbt.contract"])
    assert contract["enforced"] and {"name": "order_id", "data_type": "integer", "not_null": True} in contract["columns"]
    assert len(props["icemesh.dbt.invocation_id"]) == 36
    assert table.current_snapshot().summary["icemesh.dbt.unique_id"] == "model.sales.orders"
    # Only products are published: the staging model stays in the project's own DuckDB file.
    assert sorted(t[1] for t in catalog.list_tables("sales")) == ["customer_orders", "order_events", "order_status", "orders"]


def test_tags_are_applied_through_the_catalog_and_hide_the_confidential_column(project, server):
    admin = server.client()
    shown = admin.request("GET", f"{M}/effective-tags", params={"resource": "sales.orders"})
    assert {k: v["value"] for k, v in shown["tags"].items()} == {"domain": "sales", "sensitivity": "internal"}
    assert shown["columns"]["customer_email"]["sensitivity"]["value"] == "confidential"
    reader = server.client("svc_finance", server.reader["client_secret"], column_limits=True).rest_catalog()
    visible = [f.name for f in reader.load_table("sales.orders").schema().fields]
    assert visible == ["order_id", "customer_id", "amount", "ordered_at"]  # the tagged column never leaves the server
    assert reader.load_table("sales.orders").scan().to_arrow().num_rows == 5


def test_second_run_replaces_rows_in_one_commit_and_drops_the_old_files(project, catalog):
    before = catalog.load_table("sales.orders")
    project("run", "--select", "+orders", "--vars", "{orders: 8, price: 100}")
    table = catalog.load_table("sales.orders")
    assert rows(table, "order_id", "amount") == [(i, i * 100) for i in range(8)]
    assert commits(table) == commits(before) + 1
    files = table.inspect.files().to_pylist()
    assert all(f["content"] == 0 for f in files)  # no delete files: the old data files left the snapshot
    assert sum(f["record_count"] for f in files) == 8


def test_failing_model_leaves_the_product_as_it_was(project, catalog):
    before = catalog.load_table("sales.orders")
    broken = project("run", "--select", "orders", "--vars", "{break: true, orders: 9}", check=False)
    assert broken.returncode != 0 and "Conversion Error" in broken.stdout
    after = catalog.load_table("sales.orders")
    assert after.metadata_location == before.metadata_location


def test_contract_mismatch_fails_before_anything_is_written(project, catalog):
    before = catalog.load_table("sales.orders")
    model = project.path / "models" / "orders.sql"
    original = model.read_text()
    model.write_text(original.replace("ordered_at, customer_email", "ordered_at::varchar as ordered_at, customer_email"))
    try:
        broken = project("run", "--select", "orders", check=False)
    finally:
        model.write_text(original)
    assert broken.returncode != 0 and "contract" in broken.stdout.lower() and "ordered_at" in broken.stdout
    assert catalog.load_table("sales.orders").metadata_location == before.metadata_location


def test_unknown_tag_is_refused_before_any_write(project, catalog):
    before = catalog.load_table("sales.orders")
    broken = project("run", "--select", "orders", "--vars", "{orders_sensitivity: secret}", check=False)
    assert broken.returncode != 0
    assert "'secret' is not an allowed value of tag sensitivity (allowed: public, internal, confidential)" in broken.stdout
    assert catalog.load_table("sales.orders").metadata_location == before.metadata_location


def test_incremental_append_merge_and_delete_insert(project, catalog):
    project("run", "--vars", "{orders: 5}")
    events, status, customers = (catalog.load_table(f"sales.{n}") for n in ("order_events", "order_status", "customer_orders"))
    project("run", "--exclude", "orders", "--vars", "{orders: 7, price: 20, first: 2}")

    appended = catalog.load_table("sales.order_events")
    assert [r[0] for r in rows(appended, "order_id")] == [0, 1, 2, 3, 4, 5, 6]  # only 5 and 6 were added
    assert commits(appended) == commits(events) + 1
    assert appended.current_snapshot().summary.operation.value == "append"

    merged = catalog.load_table("sales.order_status")
    # Orders 2..6 came in at the new price: 2..4 updated in place, 5..6 inserted, 0..1 untouched.
    assert rows(merged) == [(0, 0), (1, 10), (2, 40), (3, 60), (4, 80), (5, 100), (6, 120)]
    assert commits(merged) == commits(status) + 1

    replaced = catalog.load_table("sales.customer_orders")
    # Every customer has an order >= 2, so each customer's row was replaced by one counted over orders 2..6.
    assert rows(replaced, "customer_id", "orders") == [(0, 2), (1, 1), (2, 2)]
    assert commits(replaced) == commits(customers) + 1


def test_on_schema_change(project, catalog):
    status_before = catalog.load_table("sales.order_status")
    customers_before = catalog.load_table("sales.customer_orders")
    result = project("run", "--select", "order_status", "customer_orders", "--vars", "{with_channel: true}", check=False)
    assert result.returncode != 0
    # append_new_columns: the column is added in place (same table, new schema), old rows get nulls.
    status = catalog.load_table("sales.order_status")
    assert status.metadata.table_uuid == status_before.metadata.table_uuid
    assert [f.name for f in status.schema().fields] == ["order_id", "amount", "channel"]
    # Rows this run merged carry the new column; rows it did not touch (if any) read it as null.
    channels = {r["channel"] for r in status.scan().to_arrow().to_pylist()}
    assert "web" in channels and channels <= {"web", None}
    # fail: the run stops with the reason and the product is untouched.
    assert "columns no longer match the product (new: channel)" in result.stdout
    assert catalog.load_table("sales.customer_orders").metadata_location == customers_before.metadata_location


def test_full_refresh_syncs_the_schema_and_readers_never_see_an_empty_table(project, catalog, server):
    seen: list[int] = []
    failures: list[str] = []
    stop = threading.Event()
    reader = server.client().rest_catalog()

    def poll():
        while not stop.is_set():
            try:
                seen.append(reader.load_table("sales.customer_orders").scan().to_arrow().num_rows)
            except Exception as exc:  # a missing table would land here
                failures.append(repr(exc))

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        project("run", "--select", "+customer_orders", "--full-refresh", "--vars", "{with_channel: true, orders: 9}")
        project("run", "--select", "+customer_orders", "--full-refresh", "--vars", "{orders: 6}")
    finally:
        stop.set()
        thread.join()
    assert not failures and seen and min(seen) > 0
    table = catalog.load_table("sales.customer_orders")
    assert [f.name for f in table.schema().fields] == ["customer_id", "orders", "total"]  # channel synced away
    assert rows(table, "customer_id", "orders") == [(0, 2), (1, 2), (2, 2)]


def test_duckdb_reads_the_same_rows_in_place(project, server, catalog):
    con = server.client().duckdb()
    via_duckdb = sorted(con.execute("select order_id, amount from mesh.sales.orders").fetchall())
    assert via_duckdb == rows(catalog.load_table("sales.orders"), "order_id", "amount")


@pytest.mark.spark
def test_spark_reads_the_same_rows_in_place(project, server, catalog, spark):
    name = spark_catalog(spark, server, f"dbt_{server.port}")
    via_spark = sorted((r[0], r[1]) for r in spark.sql(f"select order_id, amount from {name}.sales.orders").collect())
    assert via_spark == rows(catalog.load_table("sales.orders"), "order_id", "amount")


def test_dbt_build_runs_the_tests_and_docs_describe_the_products(project):
    build = project("build", "--select", "orders")
    assert "PASS=3" in build.stdout  # the model and its two data tests
    project("docs", "generate")
    catalog = json.loads((project.path / "target" / "catalog.json").read_text())
    orders = catalog["nodes"]["model.sales.orders"]
    assert set(orders["columns"]) >= {"order_id", "amount", "customer_email"}
