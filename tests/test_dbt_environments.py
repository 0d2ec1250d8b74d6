"""Environments: a consumer's dev target publishes into its own warehouse and reads production products (the
default), or another warehouse's, by configuration (the dbt-duckdb plugin's `warehouse` / `upstream_warehouse`).

One catalog with two warehouses, `main` (the default: production) and `sandbox`. inventory publishes 4 items
to main and, from its sandbox target, 2 items to sandbox; orders refs inventory.items from its sandbox target.
On dbt-spark (ICEMESH_CATALOG_WAREHOUSE), fulfilment republishes sales.orders from production into sandbox.
"""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml
from pyiceberg.exceptions import NoSuchTableError

from tests.conftest import start_catalog
from tests.dbt_helpers import BIN, dbt_project, rows

M = "/management/v1"


def add_target(dbt, name: str, **plugin_config: str) -> None:
    """A second output in the project's profile: the same DuckDB project with other plugin settings."""
    path = dbt.path / "profiles.yml"
    profile = yaml.safe_load(path.read_text())
    (project,) = profile
    outputs = profile[project]["outputs"]
    output = json.loads(json.dumps(outputs["dev"]))
    output["path"] = f"target/{name}.duckdb"
    for plugin in output["plugins"]:
        if plugin["module"] == "icemesh.dbt.duckdb":
            plugin["config"] = dict(plugin_config)
    outputs[name] = output
    path.write_text(yaml.safe_dump(profile))


def two_warehouses(tmp_path_factory, label: str, producer: str, consumer: str, *read_tags: str):
    """A catalog with warehouses `main` (the default: production) and `sandbox`; one principal per project, each
    allowed to create its namespace; the consumer may read what matches `read_tags`. Returns (server, home, secrets)."""
    home = tmp_path_factory.mktemp(label)
    server = start_catalog(tmp_path_factory, None, label,
                           warehouse=[f"main={home / 'main'}", f"sandbox={home / 'sandbox'}"])
    admin = server.client()
    admin.request("POST", f"{M}/tags", json={"key": "domain", "values": [producer, consumer]})
    admin.request("POST", f"{M}/tags", json={"key": "sensitivity", "values": ["public", "internal", "confidential"]})
    secrets = {}
    for name in (producer, consumer):
        secrets[name] = admin.request("POST", f"{M}/principals", json={"name": f"svc_{name}"})["client_secret"]
        admin.request("POST", f"{M}/grants", json={"permissions": "CREATE_TABLE", "principal": f"svc_{name}", "catalog": True})
    admin.request("POST", f"{M}/grants", json={"permissions": "DESCRIBE,SELECT", "principal": f"svc_{consumer}",
                                               "tags": list(read_tags)})
    return server, home, secrets


@pytest.fixture(scope="module")
def envs(tmp_path_factory):
    server, home, secrets = two_warehouses(tmp_path_factory, "dbt-envs", "inventory", "orders",
                                           "domain=inventory", "sensitivity=public,internal")
    projects = {name: dbt_project(f"mesh/{name}", home, server, f"svc_{name}", secrets[name])
                for name in ("inventory", "orders")}
    for dbt in projects.values():
        add_target(dbt, "sandbox", warehouse="sandbox")  # publish to sandbox, read production
        add_target(dbt, "sandbox_only", warehouse="sandbox", upstream_warehouse="sandbox")
    projects["inventory"]("run")
    projects["inventory"]("run", "--target", "sandbox", "--vars", "{items: 2}")
    yield server, projects
    server.stop()


def catalog(server, warehouse: str):
    return server.client(warehouse=warehouse).rest_catalog()


def test_a_dev_target_publishes_to_its_own_warehouse(envs):
    server, _projects = envs
    assert [r[0] for r in rows(catalog(server, "main").load_table("inventory.items_v2"), "item_id")] == [0, 1, 2, 3]
    assert [r[0] for r in rows(catalog(server, "sandbox").load_table("inventory.items_v2"), "item_id")] == [0, 1]


def test_a_dev_target_reads_production_products_by_default(envs):
    server, projects = envs
    projects["orders"]("run", "--target", "sandbox")
    lines = catalog(server, "sandbox").load_table("orders.order_lines")
    # range(6) joined to production's 4 items: every line finds its item.
    assert [r[0] for r in rows(lines, "line_id")] == [0, 1, 2, 3, 4, 5]
    with pytest.raises(NoSuchTableError):  # production was not touched by a dev run
        catalog(server, "main").load_table("orders.order_lines")
    manifest = json.loads((projects["orders"].path / "target" / "manifest.json").read_text())
    items = manifest["nodes"]["model.inventory.items.v2"]
    assert items["relation_name"] == '"mesh_upstream"."inventory"."items_v2"'  # production, attached beside `mesh`


def test_a_dev_target_can_read_another_warehouse(envs):
    server, projects = envs
    projects["orders"]("run", "--target", "sandbox_only")
    lines = catalog(server, "sandbox").load_table("orders.order_lines")
    # The sandbox's 2 items (ids 0 and 1): only lines whose item is among them.
    assert [r[0] for r in rows(lines, "line_id")] == [0, 1, 4, 5]
    manifest = json.loads((projects["orders"].path / "target" / "manifest.json").read_text())
    assert manifest["nodes"]["model.inventory.items.v2"]["relation_name"] == '"mesh"."inventory"."items_v2"'


def test_products_are_listed_per_warehouse(envs):
    server, projects = envs
    projects["orders"]("run", "--target", "sandbox")
    env = projects["orders"].env

    def listed(*args: str) -> set[str]:
        done = subprocess.run([f"{BIN}/icemesh", "products", "list", *args, "--output", "json"], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return {p["name"] for p in json.loads(done.stdout)}

    assert "orders.order_lines" in listed("--warehouse", "sandbox")
    assert "orders.order_lines" not in listed()  # the default warehouse: production
    done = subprocess.run([f"{BIN}/icemesh", "products", "list", "--warehouse", "nowhere"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "Unknown warehouse 'nowhere'" in done.stderr


@pytest.fixture(scope="module")
def spark_envs(tmp_path_factory):
    """sales (dbt-duckdb) publishes to production; fulfilment (dbt-spark) runs as a dev target into sandbox."""
    server, home, secrets = two_warehouses(tmp_path_factory, "dbt-spark-envs", "sales", "fulfilment", "domain=sales")
    sales = dbt_project("sales", home, server, "svc_sales", secrets["sales"])
    sales("run", "--select", "+orders")
    fulfilment = dbt_project("fulfilment", home, server, "svc_fulfilment", secrets["fulfilment"])
    yield server, fulfilment
    server.stop()


@pytest.mark.spark
def test_a_spark_dev_target_publishes_to_its_warehouse_and_reads_production(spark_envs):
    """The same settings on dbt-spark, through the environment: `icemesh dbt init` declared `mesh` (the target's
    warehouse) and `mesh_upstream` (where refs read) in the profile."""
    server, fulfilment = spark_envs
    fulfilment.env["ICEMESH_CATALOG_WAREHOUSE"] = "sandbox"
    fulfilment("run", "--select", "orders")
    published = rows(catalog(server, "sandbox").load_table("fulfilment.orders"), "order_id")
    assert published == rows(catalog(server, "main").load_table("sales.orders"), "order_id") and len(published) == 5
    with pytest.raises(NoSuchTableError):  # production was not touched by a dev run
        catalog(server, "main").load_table("fulfilment.orders")
    manifest = json.loads((fulfilment.path / "target" / "manifest.json").read_text())
    assert manifest["nodes"]["model.sales.orders"]["relation_name"] == "`mesh_upstream`.`sales`.`orders`"
