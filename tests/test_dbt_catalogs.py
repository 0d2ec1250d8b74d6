"""dbt's catalogs.yml style: `materialized='table'` / `'incremental'` with `catalog_name: mesh` publishes the same
product as `materialized='iceberg'` (one server; the `sales` project twice, as its own principal: once as it is,
once set up with `icemesh dbt init --style catalogs` and its products' configs rewritten to that style)."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import start_catalog
from tests.dbt_helpers import dbt_project, icemesh_dbt_init, rows

M = "/management/v1"
CATALOG_STYLE = {
    # model: (from, to) in the model file's config line
    "orders.sql": ("materialized='iceberg',", "materialized='table', catalog_name='mesh',"),
    "customer_orders.sql": ("materialized='iceberg', incremental_strategy='delete+insert',",
                            "materialized='incremental', catalog_name='mesh', incremental_strategy='delete+insert',"),
    "order_events.sql": ("materialized='iceberg', incremental_strategy='append'",
                         "materialized='incremental', catalog_name='mesh'"),  # dbt-duckdb's default: append, no key
}


def _server(tmp_path_factory, name: str):
    server = start_catalog(tmp_path_factory, None, name)
    admin = server.client()
    admin.request("POST", f"{M}/tags", json={"key": "domain", "values": ["sales"]})
    admin.request("POST", f"{M}/tags", json={"key": "sensitivity", "values": ["public", "internal", "confidential"]})
    server.secret = admin.request("POST", f"{M}/principals", json={"name": "svc_sales"})["client_secret"]
    admin.request("POST", f"{M}/grants", json={"permissions": "CREATE_TABLE", "principal": "svc_sales", "catalog": True})
    return server


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    """Two catalogs, so the two copies of the project publish the same namespace: a project's products live in one."""
    first, second = _server(tmp_path_factory, "dbt-iceberg-style"), _server(tmp_path_factory, "dbt-catalogs-style")
    home = tmp_path_factory.mktemp("catalogs")
    iceberg = dbt_project("sales", home / "iceberg", first, "svc_sales", first.secret)
    iceberg("run")
    styled = dbt_project("sales", home / "catalogs", second, "svc_sales", second.secret)
    init = icemesh_dbt_init(styled.path, styled.env, "--style", "catalogs")
    assert init.returncode == 0, init.stderr
    for name, (before, after) in CATALOG_STYLE.items():
        path = styled.path / "models" / name
        text = path.read_text()
        assert before in text, text
        path.write_text(text.replace(before, after))
    styled.init_report = json.loads(init.stdout)
    styled.first_run = styled("run")
    yield first, second, styled
    first.stop()
    second.stop()


def _product(table) -> dict:
    """What a product is, beyond the run that made it: schema, spec, properties, rows."""
    properties = {k: v for k, v in table.properties.items() if k not in ("icemesh.dbt.invocation_id",)}
    return {"schema": str(table.schema()), "spec": str(table.spec()), "properties": properties,
            "rows": rows(table)}


def test_a_catalog_name_model_publishes_the_same_product_as_materialized_iceberg(mesh):
    first, server, styled = mesh
    assert "catalogs.yml" in " ".join(styled.init_report["changes"])
    catalog, reference = server.client().rest_catalog(), first.client().rest_catalog()
    for table in ("orders", "customer_orders", "order_events", "order_status"):
        assert _product(catalog.load_table(f"sales.{table}")) == _product(reference.load_table(f"sales.{table}")), table
    orders = catalog.load_table("sales.orders")
    assert orders.properties["icemesh.dbt.model"] == "orders"
    assert [str(f.transform) for f in orders.spec().fields] == ["month", "bucket[4]"]  # partition_by, kept
    shown = server.client().request("GET", f"{M}/effective-tags", params={"resource": "sales.orders"})
    assert {k: v["value"] for k, v in shown["tags"].items()} == {"domain": "sales", "sensitivity": "internal"}
    assert shown["columns"]["customer_email"]["sensitivity"]["value"] == "confidential"
    # A model without catalog_name is dbt-duckdb's own table, in the project's DuckDB file (not in the catalog).
    assert not catalog.table_exists("sales.stg_orders")
    assert "stg_orders" in styled.first_run.stdout


def test_incremental_catalog_models_write_incrementally(mesh):
    _first, server, styled = mesh
    catalog = server.client().rest_catalog()
    before = len(catalog.load_table("sales.order_events").metadata.snapshots)
    styled("run", "--vars", "{orders: 8}", "--select", "stg_orders", "order_events", "customer_orders")
    events = catalog.load_table("sales.order_events")
    assert [r[0] for r in rows(events, "order_id")] == list(range(8))  # appended 5..7, kept 0..4
    assert len(events.metadata.snapshots) == before + 1
    assert events.current_snapshot().summary.operation.value == "append"


def test_a_catalogs_yml_entry_pointing_elsewhere_publishes_nothing(mesh):
    _first, server, styled = mesh
    path = styled.path / "catalogs.yml"
    kept = path.read_text()
    try:
        path.write_text(re.sub(r'uri: .*', 'uri: "http://127.0.0.1:9"', kept))
        catalog = server.client().rest_catalog()
        snapshot = catalog.load_table("sales.orders").current_snapshot().snapshot_id
        done = styled("run", "--select", "orders", check=False)
        assert done.returncode != 0
        assert "catalogs.yml entry 'mesh' points at http://127.0.0.1:9, but this target's icemesh catalog is" in done.stdout
        assert catalog.load_table("sales.orders").current_snapshot().snapshot_id == snapshot
    finally:
        path.write_text(kept)


def test_init_style_catalogs_is_idempotent(mesh):
    _first, _server, styled = mesh
    again = icemesh_dbt_init(styled.path, styled.env, "--style", "catalogs")
    assert again.returncode == 0 and json.loads(again.stdout)["changed"] is False


def test_a_catalog_name_model_without_icemeshs_materializations_is_refused_not_written_by_duckdb(mesh):
    """A project whose macros/icemesh.sql predates catalogs.yml: dbt-duckdb's own `table` would write the model into
    the attached catalog with DuckDB's Iceberg writer, past the product's commit, properties and tags."""
    _first, server, styled = mesh
    shim = styled.path / "macros" / "icemesh.sql"
    kept = shim.read_text()
    try:
        shim.write_text("\n".join(line for line in kept.splitlines() if "materialization" not in line) + "\n")
        catalog = server.client().rest_catalog()
        snapshot = catalog.load_table("sales.orders").current_snapshot().snapshot_id
        done = styled("run", "--select", "orders", check=False)
        assert done.returncode != 0
        assert "would be written into the mesh catalog by DuckDB, not published: run `icemesh dbt init`" in done.stdout
        assert catalog.load_table("sales.orders").current_snapshot().snapshot_id == snapshot
        again = icemesh_dbt_init(styled.path, styled.env)  # brings the shim up to date
        assert again.returncode == 0 and "macros/icemesh.sql: updated" in " ".join(json.loads(again.stdout)["changes"])
        assert shim.read_text() == kept
    finally:
        shim.write_text(kept)


def test_duckdb_views_stay_dbts_own_and_a_catalog_view_is_refused_with_what_to_do(mesh):
    """The project's `view` materialization is icemesh's shim too: a plain view is dbt-duckdb's, in the project's file;
    an Iceberg view product needs Spark (DuckDB cannot create views in a REST catalog)."""
    _first, server, styled = mesh
    models = styled.path / "models"
    plain, product = models / "plain_view.sql", models / "mesh_view.sql"
    try:
        plain.write_text("{{ config(materialized='view') }}\nselect order_id from {{ ref('stg_orders') }}")
        styled("run", "--select", "plain_view")
        product.write_text("{{ config(materialized='view', catalog_name='mesh') }}\nselect 1 as one")
        done = styled("run", "--select", "mesh_view", check=False)
        assert done.returncode != 0
        assert "DuckDB cannot create views in an Iceberg REST catalog: publish it as a table" in done.stdout
        assert not server.client().rest_catalog().view_exists("sales.mesh_view")
    finally:
        plain.unlink(missing_ok=True)
        product.unlink(missing_ok=True)
