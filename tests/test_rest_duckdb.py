"""DuckDB 1.5.5 (`ATTACH ... (TYPE iceberg)`) reading and writing through the catalog, on both backends."""

from __future__ import annotations

import duckdb
import pytest



def test_schema_ctas_insert_update_delete(duck, rest, ns):
    duck.execute(f"CREATE SCHEMA mesh.{ns}")
    duck.execute(f"CREATE TABLE mesh.{ns}.items AS SELECT range AS id, 'item ' || range AS name FROM range(5)")
    duck.execute(f"INSERT INTO mesh.{ns}.items VALUES (10, 'ten')")
    duck.execute(f"UPDATE mesh.{ns}.items SET name = 'one' WHERE id = 1")
    duck.execute(f"DELETE FROM mesh.{ns}.items WHERE id = 2")
    expected = [(0, "item 0"), (1, "one"), (3, "item 3"), (4, "item 4"), (10, "ten")]
    assert duck.execute(f"SELECT * FROM mesh.{ns}.items ORDER BY id").fetchall() == expected
    # Another client sees exactly what DuckDB wrote, deletes applied.
    got = rest.load_table(f"{ns}.items").scan().to_arrow().sort_by("id").to_pylist()
    assert [(r["id"], r["name"]) for r in got] == expected


def test_merge_into(duck, ns):
    duck.execute(f"CREATE SCHEMA mesh.{ns}")
    duck.execute(f"CREATE TABLE mesh.{ns}.stock AS SELECT * FROM (VALUES (1, 10), (2, 20)) t(sku, qty)")
    duck.execute(
        f"MERGE INTO mesh.{ns}.stock t USING (SELECT * FROM (VALUES (2, 25), (3, 30)) s(sku, qty)) s ON t.sku = s.sku "
        "WHEN MATCHED THEN UPDATE SET qty = s.qty WHEN NOT MATCHED THEN INSERT VALUES (s.sku, s.qty)"
    )
    assert duck.execute(f"SELECT * FROM mesh.{ns}.stock ORDER BY sku").fetchall() == [(1, 10), (2, 25), (3, 30)]


def test_multi_table_transaction_and_drop(duck, rest, ns):
    duck.execute(f"CREATE SCHEMA mesh.{ns}")
    duck.execute(f"CREATE TABLE mesh.{ns}.orders (id INTEGER, amount DOUBLE)")
    duck.execute(f"CREATE TABLE mesh.{ns}.ledger (order_id INTEGER)")
    duck.execute("BEGIN")
    duck.execute(f"INSERT INTO mesh.{ns}.orders VALUES (1, 9.5)")
    duck.execute(f"INSERT INTO mesh.{ns}.ledger VALUES (1)")
    duck.execute("COMMIT")
    assert rest.load_table(f"{ns}.orders").scan().to_arrow().num_rows == 1
    assert rest.load_table(f"{ns}.ledger").scan().to_arrow().num_rows == 1
    duck.execute(f"DROP TABLE mesh.{ns}.ledger")
    assert [t[1] for t in rest.list_tables(ns)] == ["orders"]


def test_failed_multi_table_commit_changes_no_table(catalog_server, duck, rest, ns):
    duck.execute(f"CREATE SCHEMA mesh.{ns}")
    duck.execute(f"CREATE TABLE mesh.{ns}.a AS SELECT 1 AS id")
    duck.execute(f"CREATE TABLE mesh.{ns}.b AS SELECT 1 AS id")
    before = {t: rest.load_table(f"{ns}.{t}").metadata_location for t in ("a", "b")}

    duck.execute("BEGIN")
    duck.execute(f"INSERT INTO mesh.{ns}.a VALUES (2)")
    duck.execute(f"INSERT INTO mesh.{ns}.b VALUES (2)")
    # Meanwhile another writer commits to b, so the transaction's requirement on b no longer holds.
    other = catalog_server.client().duckdb()
    other.execute(f"INSERT INTO mesh.{ns}.b VALUES (99)")
    b_after_other = rest.load_table(f"{ns}.b").metadata_location
    assert b_after_other != before["b"]
    with pytest.raises(duckdb.Error, match="(?i)requirement failed|CommitFailed|409"):
        duck.execute("COMMIT")

    assert rest.load_table(f"{ns}.a").metadata_location == before["a"]  # a untouched: all or nothing
    assert rest.load_table(f"{ns}.b").metadata_location == b_after_other
    fresh = catalog_server.client().duckdb()
    assert fresh.execute(f"SELECT id FROM mesh.{ns}.a ORDER BY id").fetchall() == [(1,)]
    assert fresh.execute(f"SELECT id FROM mesh.{ns}.b ORDER BY id").fetchall() == [(1,), (99,)]
