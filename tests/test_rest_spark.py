"""Spark against a real icemesh server over HTTP: it shares tables with DuckDB and pyiceberg, in both directions.

One SparkSession serves the whole module (starting one costs seconds); each backend's server is registered in it
as its own catalog, which also proves that one session can talk to several servers.
"""

from __future__ import annotations

import datetime as dt
import os

import pyarrow as pa
import pytest

from icemesh.runtimes import spark as spark_engine
from tests.conftest import spark_catalog

pytestmark = pytest.mark.spark


@pytest.fixture
def cat(spark, catalog_server) -> str:
    """The Spark catalog name bound to this backend's server."""
    return spark_catalog(spark, catalog_server, f"mesh_{catalog_server.backend}_{catalog_server.port}")


def test_missing_runtime_jar_names_the_package(monkeypatch):
    monkeypatch.setattr(spark_engine, "RUNTIME_PACKAGE", "no_such_package_for_icemesh")
    with pytest.raises(RuntimeError, match="snowpark-connect-deps-iceberg"):
        spark_engine.iceberg_runtime_jar()


def test_catalog_conf_declares_a_rest_catalog():
    conf = spark_engine.catalog_conf("lake", "http://127.0.0.1:8181", token="t0k", warehouse="default")
    assert conf["spark.sql.catalog.lake"] == "org.apache.iceberg.spark.SparkCatalog"
    assert conf["spark.sql.catalog.lake.type"] == "rest"
    assert conf["spark.sql.catalog.lake.uri"] == "http://127.0.0.1:8181"
    assert conf["spark.sql.catalog.lake.token"] == "t0k"
    assert conf["spark.sql.catalog.lake.warehouse"] == "default"
    assert "spark.sql.catalog.lake.credential" not in conf
    with pytest.raises(ValueError):
        spark_engine.catalog_conf("lake; DROP", "http://127.0.0.1:8181")
    assert spark_engine.iceberg_runtime_jar().endswith(".jar")


def test_s3_settings_use_iceberg_javas_names():
    conf = spark_engine.catalog_conf("lake", "http://127.0.0.1:8181", s3={
        "s3.endpoint": "http://127.0.0.1:9000", "s3.region": "eu-west-1", "s3.access-key-id": "k"})
    assert conf["spark.sql.catalog.lake.s3.endpoint"] == "http://127.0.0.1:9000"
    assert conf["spark.sql.catalog.lake.client.region"] == "eu-west-1"
    assert conf["spark.sql.catalog.lake.s3.path-style-access"] == "true"  # custom endpoints (MinIO, moto)
    assert conf["spark.sql.catalog.lake.s3.access-key-id"] == "k"
    with pytest.raises(ValueError, match="Unknown S3 setting"):
        spark_engine.catalog_conf("lake", "http://127.0.0.1:8181", s3={"s3.endpoint-url": "http://x"})
    # The AWS SDK for S3 warehouses is installed by `make install` and joins the runtime on spark.jars.
    assert {os.path.basename(j).rsplit("-", 1)[0] for j in spark_engine.s3_jars()} == set(spark_engine.S3_JARS)
    missing = RuntimeError('UnsupportedFileSystemException: No FileSystem for scheme "s3"\n\tat org.apache...')
    assert "pip install --no-deps bodo-iceberg-connector" in spark_engine.error_message(missing)


def spark_rows(df) -> list[tuple]:
    return sorted(tuple(row) for row in df.collect())


def test_spark_reads_duckdb_table_with_deletes(spark, cat, duck, rest, ns):
    table = f'mesh."{ns}".orders'
    duck.execute(f'CREATE SCHEMA mesh."{ns}"')
    duck.execute(f"CREATE TABLE {table} AS SELECT i AS id, 'item-' || i AS name, (i * 1.5)::DOUBLE AS amount "
                 "FROM range(1, 21) r(i)")
    duck.execute(f"DELETE FROM {table} WHERE id % 3 = 0")
    duck.execute(f"UPDATE {table} SET amount = amount * 10 WHERE id <= 4")
    assert rest.load_table((ns, "orders")).inspect.delete_files().num_rows > 0  # Spark must apply delete files

    expected = sorted((i, f"item-{i}", i * 1.5 * (10 if i <= 4 else 1)) for i in range(1, 21) if i % 3)
    assert sorted(duck.execute(f"SELECT id, name, amount FROM {table}").fetchall()) == expected
    assert spark_rows(spark.table(f"{cat}.{ns}.orders").select("id", "name", "amount")) == expected


@pytest.mark.parametrize("creator", ["pyiceberg", "duckdb"])
def test_spark_insert_into_existing_table(spark, cat, duck, rest, ns, creator):
    if creator == "pyiceberg":
        rest.create_namespace(ns)
        schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
        created = rest.create_table((ns, "items"), schema=schema)
        created.append(pa.table({"id": [1, 2], "name": ["one", "two"]}, schema=schema))
    else:
        duck.execute(f'CREATE SCHEMA mesh."{ns}"')
        duck.execute(f'CREATE TABLE mesh."{ns}".items (id BIGINT, name VARCHAR)')
        duck.execute(f'INSERT INTO mesh."{ns}".items VALUES (1, \'one\'), (2, \'two\')')

    spark.sql(f"INSERT INTO {cat}.{ns}.items VALUES (:id3, :name3), (:id4, :name4)",
              args={"id3": 3, "name3": "three", "id4": 4, "name4": "four"})

    expected = [(1, "one"), (2, "two"), (3, "three"), (4, "four")]
    assert duck.execute(f'SELECT id, name FROM mesh."{ns}".items ORDER BY id').fetchall() == expected
    seen = rest.load_table((ns, "items")).scan().to_arrow().sort_by("id")
    assert list(zip(seen["id"].to_pylist(), seen["name"].to_pylist())) == expected


def test_spark_partitioned_ctas(spark, cat, duck, rest, ns):
    spark.sql(f"CREATE NAMESPACE {cat}.{ns}")
    spark.sql(f"""
        CREATE TABLE {cat}.{ns}.events USING iceberg PARTITIONED BY (days(ts)) AS
        SELECT CAST(id AS BIGINT) AS id, kind, ts FROM VALUES
            (1, 'click', TIMESTAMP'2024-03-01 08:00:00'),
            (2, 'view',  TIMESTAMP'2024-03-01 12:30:00'),
            (3, 'click', TIMESTAMP'2024-03-01 23:59:59'),
            (4, 'view',  TIMESTAMP'2024-03-02 00:00:00'),
            (5, 'click', TIMESTAMP'2024-03-02 17:45:00'),
            (6, 'buy',   TIMESTAMP'2024-03-03 09:15:00')
        AS v(id, kind, ts)
    """)

    table = rest.load_table((ns, "events"))
    [field] = table.spec().fields
    assert str(field.transform) == "day"
    assert field.source_id == table.schema().find_field("ts").field_id
    assert table.inspect.partitions().num_rows == 3

    duck.execute("SET TimeZone = 'UTC'")
    per_day = duck.execute(f'SELECT CAST(ts AS DATE) AS day, count(*) FROM mesh."{ns}".events '
                           "GROUP BY day ORDER BY day")
    assert per_day.fetchall() == [(dt.date(2024, 3, 1), 3), (dt.date(2024, 3, 2), 2), (dt.date(2024, 3, 3), 1)]


def test_spark_merge_into(spark, cat, duck, ns):
    table = f'mesh."{ns}".accounts'
    duck.execute(f'CREATE SCHEMA mesh."{ns}"')
    duck.execute(f"CREATE TABLE {table} (id BIGINT, owner VARCHAR, balance DOUBLE)")
    duck.execute(f"INSERT INTO {table} VALUES (1, 'ann', 100.0), (2, 'bob', 200.0), (3, 'cy', 300.0)")

    spark.sql(f"""
        MERGE INTO {cat}.{ns}.accounts t
        USING (SELECT CAST(id AS BIGINT) AS id, owner, CAST(balance AS DOUBLE) AS balance
               FROM VALUES (2, 'bob', 250.0), (3, 'cy', 0.0), (4, 'dan', 40.0) AS s(id, owner, balance)) s
        ON t.id = s.id
        WHEN MATCHED THEN UPDATE SET t.balance = s.balance
        WHEN NOT MATCHED THEN INSERT *
    """)

    expected = [(1, "ann", 100.0), (2, "bob", 250.0), (3, "cy", 0.0), (4, "dan", 40.0)]
    assert duck.execute(f"SELECT id, owner, balance FROM {table} ORDER BY id").fetchall() == expected


def test_spark_namespace_and_table_round_trip(spark, cat, rest, ns):
    spark.sql(f"CREATE NAMESPACE {cat}.{ns}")
    assert (ns,) in rest.list_namespaces()

    spark.sql(f"CREATE TABLE {cat}.{ns}.notes (id BIGINT, body STRING) USING iceberg")
    assert rest.list_tables(ns) == [(ns, "notes")]
    assert [f.name for f in rest.load_table((ns, "notes")).schema().fields] == ["id", "body"]
    assert [row.tableName for row in spark.sql(f"SHOW TABLES IN {cat}.{ns}").collect()] == ["notes"]

    spark.sql(f"DROP TABLE {cat}.{ns}.notes")
    assert rest.list_tables(ns) == []
    spark.sql(f"DROP NAMESPACE {cat}.{ns}")
    assert (ns,) not in rest.list_namespaces()


def test_nested_namespaces_are_addressed_alike_by_spark_and_pyiceberg(spark, cat, rest, ns, http):
    """The server says how nested levels are joined in a URL (namespace-separator); both clients follow it."""
    assert http.get(f"{http.server.uri}/v1/config").json()["overrides"]["namespace-separator"] == "%1F"
    spark.sql(f"CREATE NAMESPACE {cat}.{ns}")
    spark.sql(f"CREATE NAMESPACE {cat}.{ns}.child")
    spark.sql(f"CREATE TABLE {cat}.{ns}.child.notes (id BIGINT) USING iceberg")
    assert rest.list_namespaces(ns) == [(ns, "child")]
    assert rest.list_tables((ns, "child")) == [(ns, "child", "notes")]
    rest.load_table((ns, "child", "notes")).append(pa.table({"id": [7]}, schema=pa.schema([("id", pa.int64())])))
    assert spark_rows(spark.table(f"{cat}.{ns}.child.notes")) == [(7,)]
    assert [r.tableName for r in spark.sql(f"SHOW TABLES IN {cat}.{ns}.child").collect()] == ["notes"]


def test_spark_writes_format_v3_tables_with_row_lineage(spark, cat, rest, ns):
    """Spark (Iceberg 1.10) creates and writes v3 tables through the catalog: each snapshot's `first-row-id` and
    the table's `next-row-id` advance by the rows added; pyiceberg reads the same rows."""
    spark.sql(f"CREATE NAMESPACE {cat}.{ns}")
    spark.sql(f"CREATE TABLE {cat}.{ns}.events (id BIGINT, kind STRING) USING iceberg "
              "TBLPROPERTIES ('format-version' = '3')")
    spark.sql(f"INSERT INTO {cat}.{ns}.events VALUES (1, 'a'), (2, 'b')")
    spark.sql(f"INSERT INTO {cat}.{ns}.events VALUES (3, 'c')")
    table = rest.load_table((ns, "events"))
    assert table.format_version == 3
    assert [s.first_row_id for s in table.metadata.snapshots] == [0, 2] and table.metadata.next_row_id == 3
    assert sorted(tuple(r.values()) for r in table.scan().to_arrow().to_pylist()) == [(1, "a"), (2, "b"), (3, "c")]
    assert spark_rows(spark.table(f"{cat}.{ns}.events")) == [(1, "a"), (2, "b"), (3, "c")]



def test_spark_creates_replaces_renames_and_drops_views_through_the_catalog(spark, cat, rest, ns):
    """Iceberg views made by Spark live in the catalog: pyiceberg sees them, Spark reads through them."""
    spark.sql(f"CREATE NAMESPACE {cat}.{ns}")
    spark.sql(f"CREATE TABLE {cat}.{ns}.orders (id BIGINT, amount DOUBLE) USING iceberg")
    spark.sql(f"INSERT INTO {cat}.{ns}.orders VALUES (1, 5.0), (2, 50.0), (3, 500.0)")
    spark.sql(f"CREATE VIEW {cat}.{ns}.big AS SELECT id FROM {cat}.{ns}.orders WHERE amount > 10")
    assert rest.list_views(ns) == [(ns, "big")]
    assert spark_rows(spark.sql(f"SELECT * FROM {cat}.{ns}.big")) == [(2,), (3,)]
    first = rest.load_view((ns, "big")).metadata
    assert first.versions[0].representations[0].root.dialect == "spark"

    spark.sql(f"CREATE OR REPLACE VIEW {cat}.{ns}.big AS SELECT id, amount FROM {cat}.{ns}.orders WHERE amount > 100")
    assert spark_rows(spark.sql(f"SELECT * FROM {cat}.{ns}.big")) == [(3, 500.0)]
    replaced = rest.load_view((ns, "big")).metadata
    assert replaced.view_uuid == first.view_uuid and replaced.current_version_id != first.current_version_id

    spark.sql(f"ALTER VIEW {cat}.{ns}.big RENAME TO {cat}.{ns}.huge")
    assert [r.viewName for r in spark.sql(f"SHOW VIEWS IN {cat}.{ns}").collect()] == ["huge"]
    spark.sql(f"DROP VIEW {cat}.{ns}.huge")
    assert rest.list_views(ns) == [] and [t for t in rest.list_tables(ns)] == [(ns, "orders")]
