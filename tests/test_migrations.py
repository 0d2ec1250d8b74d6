"""Schema migrations on both backends: a catalog left at an older schema version upgrades at start, once, and
still answers."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import inspect, select, text

from icemesh.backends.sql import open_sql
from icemesh.backends.sql.database import Database
from icemesh.backends.sql.schema import CURRENT, schema_version_t
from icemesh.governance.resources import NamespaceRef, TableRef
from icemesh.server.process import CatalogProcess
from tests.conftest import _postgres_database
from tests.test_product_index import SCHEMA, product_props

M = "/management/v1"


@pytest.fixture(params=["sqlite", "postgres"])
def scratch_url(request, tmp_path):
    """A database of this test's own (the migration rewrites its schema)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/catalog.db"
        return
    name = f"icemesh_test_migration_{uuid.uuid4().hex[:8]}"
    _postgres_database(name, create=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        _postgres_database(name, create=False)


def _state(url: str) -> tuple[int, set[str]]:
    db = Database(url)
    try:
        with db.connect() as conn:
            version = conn.execute(select(schema_version_t.c.version)).scalar_one()
        return version, {i["name"] for i in inspect(db.engine).get_indexes("icemesh_tables")}
    finally:
        db.close()


def test_a_version_5_catalog_gains_the_access_index_and_still_answers(scratch_url, tmp_path):
    warehouse = str(tmp_path / "warehouse")
    with CatalogProcess(db=scratch_url, warehouse=warehouse, cwd=str(tmp_path)) as server:
        cat = server.client().rest_catalog()
        cat.create_namespace("m")
        cat.create_table("m.open", SCHEMA, properties=product_props("m", "open"))
        cat.create_table("m.hidden", SCHEMA, properties={**product_props("m", "hidden"), "icemesh.dbt.access": "protected"})
        secret = server.admin_secret
    assert _state(scratch_url) == (CURRENT, {"ix_icemesh_tables_updated", "ix_icemesh_tables_access"})
    db = Database(scratch_url)
    with db.write() as conn, conn.begin():  # as icemesh left it before migration 6
        conn.execute(text("DROP INDEX ix_icemesh_tables_access"))
        conn.execute(text("UPDATE icemesh_schema_version SET version = 5"))
    db.close()
    assert _state(scratch_url) == (5, {"ix_icemesh_tables_updated"})

    with CatalogProcess(db=scratch_url, warehouse=warehouse, cwd=str(tmp_path), admin_secret=secret) as server:
        answer = server.client().request("GET", f"{M}/products", params={"page-size": 10})
        assert "m.open" in [p["name"] for p in answer["products"]]
    assert _state(scratch_url) == (6, {"ix_icemesh_tables_updated", "ix_icemesh_tables_access"})
    backend = open_sql(scratch_url)  # migrated already: opening again changes nothing
    try:
        assert backend.pointers.restricted("default") == [TableRef(NamespaceRef(("m",)), "hidden")]
    finally:
        backend.close()
    assert _state(scratch_url)[0] == 6
