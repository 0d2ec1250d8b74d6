"""dbt-duckdb with icemesh: `materialized='iceberg'` publishes a product into the catalog, atomically."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from icemesh.dbt import PACKAGE_DIR

PROJECT = os.path.join(os.path.dirname(__file__), "dbt_projects", "sales")


@pytest.fixture
def project(tmp_path, sqlite_server):
    path = tmp_path / "sales"
    shutil.copytree(PROJECT, path)
    (path / "packages.yml").write_text(f"packages:\n  - local: {PACKAGE_DIR}\n")
    env = {**os.environ, "DBT_PROFILES_DIR": str(path), "ICEMESH_CATALOG_URI": sqlite_server.uri,
           "ICEMESH_CLIENT_ID": "admin", "ICEMESH_CLIENT_SECRET": sqlite_server.admin_secret,
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}

    def dbt(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([os.path.join(os.path.dirname(sys.executable), "dbt"), *args], cwd=path, env=env,
                              capture_output=True, text=True, timeout=300)

    deps = dbt("deps")
    assert deps.returncode == 0, deps.stdout + deps.stderr
    catalog = sqlite_server.client().rest_catalog()
    if ("sales",) in catalog.list_namespaces():  # the fixture server is shared: start from no product
        for ident in catalog.list_tables("sales"):
            catalog.purge_table(ident)
    return dbt, catalog


def rows(table):
    return sorted(tuple(r.values()) for r in table.scan().to_arrow().to_pylist())


def test_iceberg_materialization_publishes_and_replaces_atomically(project):
    dbt, catalog = project
    first = dbt("run")
    assert first.returncode == 0, first.stdout[-3000:]
    table = catalog.load_table("sales.orders")  # the project's name is the namespace: no main_ prefix
    assert rows(table) == [(i, i % 3, float(i * 10)) for i in range(5)]
    props = table.properties
    assert props["icemesh.dbt.project"] == "sales" and props["icemesh.dbt.model"] == "orders"
    assert props["icemesh.dbt.access"] == "public" and props["icemesh.dbt.unique_id"] == "model.sales.orders"
    assert [t[1] for t in catalog.list_tables("sales")] == ["orders"]  # stg_orders is not published

    second = dbt("run", "--vars", "{orders: 7, price: 100}")
    assert second.returncode == 0, second.stdout[-3000:]
    table = catalog.load_table("sales.orders")
    assert rows(table) == [(i, i % 3, float(i * 100)) for i in range(7)]
    # No committed version of the table was ever empty: every metadata file's current snapshot has rows.
    io = table.io
    from pyiceberg.serializers import FromInputFile

    versions = [entry.metadata_file for entry in table.metadata.metadata_log] + [table.metadata_location]
    for location in versions:
        metadata = FromInputFile.table_metadata(io.new_input(location))
        snapshot = metadata.current_snapshot()
        if snapshot is not None:
            assert int(snapshot.summary["total-records"]) > 0, location


def test_failing_model_leaves_the_product_as_it_was(project):
    dbt, catalog = project
    assert dbt("run").returncode == 0
    before = catalog.load_table("sales.orders")
    broken = dbt("run", "--vars", "{break: true, orders: 9}")
    # The failure comes at run time, after the model's DELETE ran inside its transaction: all of it rolls back.
    assert broken.returncode != 0 and "Conversion Error" in broken.stdout
    after = catalog.load_table("sales.orders")
    assert after.metadata_location == before.metadata_location
    assert rows(after) == rows(before)
