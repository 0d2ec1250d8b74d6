"""An S3 warehouse end to end: moto runs as a real S3 server, `icemesh serve` keeps its tables there,
and pyiceberg, DuckDB and Spark read and write the same files over real HTTP."""

from __future__ import annotations

import json
import sqlite3
import uuid

import httpx
import pyarrow as pa
import pytest

from icemesh.server.process import CatalogProcess
from tests.aws import FAKE_AWS_ENV, KEY_ID, REGION, SECRET, boto_client
from tests.conftest import spark_catalog

BUCKET = "icemesh-warehouse"
OTHER_BUCKET = "icemesh-elsewhere"
WAREHOUSE = f"s3://{BUCKET}/wh"

ROWS = [
    {"id": 1, "name": "alpha", "amount": 10.5},
    {"id": 2, "name": "beta", "amount": 20.0},
    {"id": 3, "name": "gamma", "amount": None},
]
ARROW_SCHEMA = pa.schema([
    pa.field("id", pa.int64(), nullable=False),
    pa.field("name", pa.string()),
    pa.field("amount", pa.float64()),
])


# -- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3(moto):
    client = boto_client("s3", moto)
    for bucket in (BUCKET, OTHER_BUCKET):
        client.create_bucket(Bucket=bucket)
    return client


def start_s3_catalog(tmp_path_factory, moto: str, label: str, share_keys: bool = True) -> CatalogProcess:
    home = tmp_path_factory.mktemp(f"catalog-s3-{label}")
    extra = ["--s3-endpoint", moto, "--s3-region", REGION] + (["--share-storage-keys"] if share_keys else [])
    return CatalogProcess(db=f"sqlite:///{home}/catalog.db", warehouse=WAREHOUSE, extra_args=extra,
                          env=FAKE_AWS_ENV, cwd=str(home)).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory, moto, s3):
    """`icemesh serve` with its default warehouse in the moto bucket, sharing the (fake) keys with clients."""
    proc = start_s3_catalog(tmp_path_factory, moto, "shared-keys")
    yield proc
    proc.stop()


@pytest.fixture
def server_log(server):
    """On failure, the server's log is what explains a 500: print it so pytest shows it."""
    yield server
    print(f"--- icemesh serve log ({server.log_path}) ---\n{server.log()}")


@pytest.fixture
def rest(server):
    """pyiceberg with nothing but the catalog URI and credentials: every S3 setting must come from the server."""
    return server.client().rest_catalog("icemesh_s3")


@pytest.fixture(scope="module")
def http(server):
    admin = server.client()
    with httpx.Client(base_url=f"{server.uri}/v1/{admin.prefix()}", headers=admin.headers(), timeout=30) as client:
        yield client


@pytest.fixture
def ns(rest) -> str:
    name = f"s3_{uuid.uuid4().hex[:10]}"
    rest.create_namespace(name)
    return name


@pytest.fixture
def duck(server, moto):
    """DuckDB with an S3 secret for moto, then the catalog attached as `mesh`."""
    import duckdb

    from icemesh.runtimes import duckdb as duck_engine

    con = duckdb.connect()
    duck_engine.load_extensions(con)
    duckdb_s3_secret(con, moto)
    duck_engine.attach_catalog(con, server.uri, token=server.client().token())
    yield con
    con.close()


# -- helpers -------------------------------------------------------------------------------------------


def objects(s3, bucket: str = BUCKET, prefix: str = "") -> dict[str, int]:
    """Every object key under a prefix with its size."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", ()):
            found[obj["Key"]] = obj["Size"]
    return found


def key_of(location: str, bucket: str = BUCKET) -> str:
    assert location.startswith(f"s3://{bucket}/"), location
    return location[len(f"s3://{bucket}/"):]


def sorted_rows(arrow_table: pa.Table) -> list[dict]:
    return sorted(arrow_table.to_pylist(), key=lambda r: r["id"])


def make_table(rest, ns: str, name: str = "orders"):
    table = rest.create_table((ns, name), schema=ARROW_SCHEMA)
    table.append(pa.Table.from_pylist(ROWS, schema=ARROW_SCHEMA))
    return rest.load_table((ns, name))


SCHEMA_JSON = {
    "type": "struct",
    "schema-id": 0,
    "fields": [{"id": 1, "name": "id", "type": "long", "required": True}],
}


# -- pyiceberg -----------------------------------------------------------------------------------------


def test_load_table_hands_out_s3_settings(rest, http, ns, moto):
    rest.create_table((ns, "cfg"), schema=ARROW_SCHEMA)
    response = http.get(f"/namespaces/{ns}/tables/cfg")
    assert response.status_code == 200
    config = response.json()["config"]
    assert config["s3.endpoint"] == moto
    assert config["s3.region"] == REGION
    assert config["s3.path-style-access"] == "true"
    assert config["s3.access-key-id"] == KEY_ID
    assert config["s3.secret-access-key"] == SECRET
    assert config["client.region"] == REGION  # what Iceberg Java (Spark) reads


def test_pyiceberg_round_trip_lands_in_the_bucket(server_log, rest, ns, s3):
    table = make_table(rest, ns)

    # A fresh client with only the URI and credentials reads back exactly what was written.
    reader = server_log.client().rest_catalog("reader").load_table((ns, "orders"))
    assert sorted_rows(reader.scan().to_arrow()) == ROWS

    # ... and the files are really in moto, under the warehouse prefix.
    location = table.location()
    assert location.startswith(f"{WAREHOUSE}/{ns}/orders-"), location
    stored = objects(s3, prefix=key_of(location) + "/")
    assert key_of(table.metadata_location) in stored
    data_files = [task.file.file_path for task in reader.scan().plan_files()]
    assert data_files and all(key_of(path) in stored for path in data_files)
    assert any(k.endswith(".parquet") for k in stored)
    assert any(k.endswith(".avro") for k in stored)  # manifest list and manifests
    assert all(stored[key_of(path)] > 0 for path in data_files)
    # Nothing landed outside the warehouse prefix.
    assert all(k.startswith("wh/") for k in objects(s3))


# -- DuckDB --------------------------------------------------------------------------------------------


def test_duckdb_reads_pyiceberg_table(server_log, rest, ns, duck):
    make_table(rest, ns)
    got = duck.execute(f"SELECT id, name, amount FROM mesh.{ns}.orders ORDER BY id").fetchall()
    assert got == [(r["id"], r["name"], r["amount"]) for r in ROWS]


def test_duckdb_ctas_and_insert_read_by_pyiceberg(server_log, rest, ns, duck, s3):
    duck.execute(f"CREATE TABLE mesh.{ns}.made_by_duck AS "
                 "SELECT * FROM (VALUES (1, 'alpha', 10.5), (2, 'beta', 20.0)) v(id, name, amount)")
    duck.execute(f"INSERT INTO mesh.{ns}.made_by_duck VALUES (3, 'gamma', NULL)")
    assert duck.execute(f"SELECT count(*) FROM mesh.{ns}.made_by_duck").fetchone() == (3,)

    table = rest.load_table((ns, "made_by_duck"))
    got = table.scan().to_arrow()
    assert [(r["id"], r["name"], r["amount"]) for r in sorted_rows(got)] == [
        (r["id"], r["name"], r["amount"]) for r in ROWS]
    # DuckDB wrote its data and metadata into the bucket under the catalog-assigned location.
    assert table.location().startswith(f"{WAREHOUSE}/{ns}/made_by_duck-")
    stored = objects(s3, prefix=key_of(table.location()) + "/")
    assert key_of(table.metadata_location) in stored
    data_files = [task.file.file_path for task in table.scan().plan_files()]
    assert len(data_files) >= 2 and all(key_of(path) in stored for path in data_files)


# -- confinement ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("location", [
    f"s3://{OTHER_BUCKET}/stolen",
    f"{WAREHOUSE}/../escape/stolen",
    f"{WAREHOUSE}/ns/../../escape/stolen",
    f"s3://{BUCKET}/elsewhere/stolen",
    f"s3://{BUCKET}/wh-sibling/stolen",  # shares the root's string prefix but is not under it
    f"s3://{BUCKET}/wh",  # the root itself
    "file:///tmp/icemesh-stolen",
], ids=["other-bucket", "dotdot", "nested-dotdot", "same-bucket-outside", "prefix-sibling", "root-itself", "local-file"])
def test_create_outside_warehouse_is_refused(http, ns, s3, location):
    before = {b: objects(s3, b) for b in (BUCKET, OTHER_BUCKET)}
    response = http.post(f"/namespaces/{ns}/tables", json={"name": "stolen", "schema": SCHEMA_JSON, "location": location})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code"}
    assert error["code"] == 400 and error["type"] == "BadRequestException"
    assert "outside the warehouse" in error["message"]
    assert http.get(f"/namespaces/{ns}/tables").json()["identifiers"] == []
    assert http.get(f"/namespaces/{ns}/tables/stolen").status_code == 404
    assert {b: objects(s3, b) for b in (BUCKET, OTHER_BUCKET)} == before


def test_explicit_location_inside_the_warehouse_is_used(rest, ns, s3):
    location = f"{WAREHOUSE}/{ns}/chosen/place"
    table = rest.create_table((ns, "placed"), schema=ARROW_SCHEMA, location=location + "/")
    table.append(pa.Table.from_pylist(ROWS, schema=ARROW_SCHEMA))
    assert table.location() == location
    stored = objects(s3, prefix=key_of(location) + "/")
    assert any(k.endswith(".parquet") for k in stored) and key_of(table.metadata_location) in stored
    assert sorted_rows(rest.load_table((ns, "placed")).scan().to_arrow()) == ROWS


def test_stage_create_outside_warehouse_is_refused(http, ns, s3):
    """DuckDB's path (stage-create) is checked the same way."""
    before = objects(s3, OTHER_BUCKET)
    response = http.post(f"/namespaces/{ns}/tables", json={
        "name": "staged", "schema": SCHEMA_JSON, "location": f"s3://{OTHER_BUCKET}/staged", "stage-create": True})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "BadRequestException"
    assert objects(s3, OTHER_BUCKET) == before


# -- drop ----------------------------------------------------------------------------------------------


def test_purge_removes_the_tables_objects(server_log, rest, ns, s3):
    keep = make_table(rest, ns, "neighbour")
    table = make_table(rest, ns, "doomed")
    prefix = key_of(table.location()) + "/"
    assert objects(s3, prefix=prefix)
    neighbour_before = objects(s3, prefix=key_of(keep.location()) + "/")

    rest.purge_table((ns, "doomed"))

    assert objects(s3, prefix=prefix) == {}
    assert not rest.table_exists((ns, "doomed"))
    # A table whose name shares the prefix is untouched (`doomed-<uuid>` vs `neighbour-<uuid>` here,
    # and the purge is scoped to `<location>/`).
    assert objects(s3, prefix=key_of(keep.location()) + "/") == neighbour_before
    assert sorted_rows(rest.load_table((ns, "neighbour")).scan().to_arrow()) == ROWS


def test_purge_over_http(server_log, rest, http, ns, s3):
    table = make_table(rest, ns, "purged_raw")
    prefix = key_of(table.location()) + "/"
    assert objects(s3, prefix=prefix)
    response = http.delete(f"/namespaces/{ns}/tables/purged_raw", params={"purgeRequested": "true"})
    assert response.status_code == 204, response.text
    assert objects(s3, prefix=prefix) == {}


def test_drop_without_purge_keeps_the_objects(server_log, rest, ns, s3):
    table = make_table(rest, ns, "kept")
    prefix = key_of(table.location()) + "/"
    before = objects(s3, prefix=prefix)
    assert before

    rest.drop_table((ns, "kept"))

    assert not rest.table_exists((ns, "kept"))
    assert objects(s3, prefix=prefix) == before
    # The files are still a readable table: registering the last metadata file brings it back.
    again = rest.register_table((ns, "kept"), table.metadata_location)
    assert sorted_rows(again.scan().to_arrow()) == ROWS


# -- keys ----------------------------------------------------------------------------------------------


def duckdb_s3_secret(con, moto: str) -> None:
    endpoint = moto.split("://", 1)[1]
    con.execute(f"CREATE SECRET moto_s3 (TYPE s3, KEY_ID '{KEY_ID}', SECRET '{SECRET}', REGION '{REGION}', "
                f"ENDPOINT '{endpoint}', URL_STYLE 'path', USE_SSL false)")


def test_duckdb_needs_no_secret_when_keys_are_shared(server_log, rest, ns):
    """With --share-storage-keys DuckDB builds its S3 secret from the loadTable config alone."""
    make_table(rest, ns)
    con = server_log.client().duckdb()
    try:
        assert con.execute(f"SELECT id, name FROM mesh.{ns}.orders ORDER BY id").fetchall() == [
            (r["id"], r["name"]) for r in ROWS]
    finally:
        con.close()


@pytest.fixture(scope="module")
def private_server(tmp_path_factory, moto, s3):
    """The same kind of server without --share-storage-keys: it reaches S3 with its own (environment) keys."""
    proc = start_s3_catalog(tmp_path_factory, moto, "private-keys", share_keys=False)
    yield proc
    proc.stop()


def test_without_the_flag_clients_get_no_s3_settings_and_bring_their_own(private_server, moto, s3):
    import duckdb

    from icemesh.runtimes import duckdb as duck_engine

    ns = f"priv_{uuid.uuid4().hex[:8]}"
    admin = private_server.client()
    with httpx.Client(base_url=f"{private_server.uri}/v1/{admin.prefix()}", headers=admin.headers(), timeout=30) as client:
        assert client.post("/namespaces", json={"namespace": [ns]}).status_code == 200
        created = client.post(f"/namespaces/{ns}/tables", json={"name": "t", "schema": SCHEMA_JSON})
        assert created.status_code == 200, private_server.log()
        loaded = client.get(f"/namespaces/{ns}/tables/t")
    # Neither keys nor half a set of settings: nothing that could shadow the client's own S3 configuration.
    assert created.json()["config"] == {} and loaded.json()["config"] == {}
    # The server itself wrote the metadata with the keys from its environment.
    assert key_of(created.json()["metadata-location"]) in objects(s3)

    # DuckDB with its own S3 secret creates, fills and reads a table.
    con = duckdb.connect()
    try:
        duck_engine.load_extensions(con)
        duckdb_s3_secret(con, moto)
        duck_engine.attach_catalog(con, private_server.uri, token=admin.token())
        con.execute(f"CREATE TABLE mesh.{ns}.d AS SELECT * FROM (VALUES (1, 'alpha'), (2, 'beta')) v(id, name)")
        con.execute(f"INSERT INTO mesh.{ns}.d VALUES (3, 'gamma')")
        assert con.execute(f"SELECT id, name FROM mesh.{ns}.d ORDER BY id").fetchall() == [
            (1, "alpha"), (2, "beta"), (3, "gamma")]
    finally:
        con.close()

    # pyiceberg with explicit s3.* properties reads what DuckDB wrote.
    rest = admin.rest_catalog("private", **{
        "s3.endpoint": moto, "s3.region": REGION, "s3.access-key-id": KEY_ID, "s3.secret-access-key": SECRET})
    table = rest.load_table((ns, "d"))
    assert table.location().startswith(f"{WAREHOUSE}/{ns}/d-")
    assert [(r["id"], r["name"]) for r in sorted_rows(table.scan().to_arrow())] == [
        (1, "alpha"), (2, "beta"), (3, "gamma")]


def test_shared_keys_never_reach_the_catalog_database(server, rest, ns):
    make_table(rest, ns)
    db_path = server.args[server.args.index("--db") + 1].removeprefix("sqlite:///")
    with sqlite3.connect(db_path) as db:
        stored = [json.loads(props) for (props,) in db.execute("SELECT properties FROM icemesh_warehouses")]
    assert stored and all("s3.secret-access-key" not in p and "s3.access-key-id" not in p for p in stored)
    assert stored[0]["s3.endpoint"]  # non-secret settings are kept


# -- Spark ---------------------------------------------------------------------------------------------


def spark_sorted(spark, sql: str) -> list[tuple]:
    return sorted(tuple(row) for row in spark.sql(sql).collect())


@pytest.mark.spark
def test_spark_needs_nothing_but_the_catalog_when_keys_are_shared(server_log, spark, rest, duck, ns, s3):
    """Spark gets the S3 endpoint, region and keys from loadTable, like pyiceberg and DuckDB; its files are
    in the bucket and the other engines read them, and it reads theirs."""
    cat = spark_catalog(spark, server_log, f"s3_shared_{server_log.port}")
    spark.sql(f"CREATE TABLE {cat}.{ns}.sparked (id BIGINT, name STRING, amount DOUBLE) USING iceberg")
    spark.sql(f"INSERT INTO {cat}.{ns}.sparked VALUES (1, 'alpha', 10.5), (2, 'beta', 20.0), (3, 'gamma', NULL)")

    table = rest.load_table((ns, "sparked"))
    assert table.location().startswith(f"{WAREHOUSE}/{ns}/sparked")
    stored = objects(s3, prefix=key_of(table.location()) + "/")
    data_files = [task.file.file_path for task in table.scan().plan_files()]
    assert data_files and all(key_of(path) in stored for path in data_files)
    assert key_of(table.metadata_location) in stored
    assert sorted_rows(table.scan().to_arrow()) == ROWS

    duck.execute(f"INSERT INTO mesh.{ns}.sparked VALUES (4, 'delta', 1.5)")
    expected = [(r["id"], r["name"], r["amount"]) for r in ROWS] + [(4, "delta", 1.5)]
    assert spark_sorted(spark, f"SELECT id, name, amount FROM {cat}.{ns}.sparked") == expected
    assert sorted(duck.execute(f"SELECT id, name, amount FROM mesh.{ns}.sparked").fetchall()) == expected


@pytest.mark.spark
def test_spark_brings_its_own_s3_settings(private_server, spark, moto, s3):
    """Without --share-storage-keys the client's S3 settings (pyiceberg's names) are what Spark uses."""
    ns = f"priv_{uuid.uuid4().hex[:8]}"
    own = {"s3.endpoint": moto, "s3.region": REGION, "s3.access-key-id": KEY_ID, "s3.secret-access-key": SECRET}
    cat = spark_catalog(spark, private_server, f"s3_private_{private_server.port}", s3=own)
    spark.sql(f"CREATE NAMESPACE {cat}.{ns}")
    spark.sql(f"CREATE TABLE {cat}.{ns}.t (id BIGINT, name STRING) USING iceberg")
    spark.sql(f"INSERT INTO {cat}.{ns}.t VALUES (1, 'alpha'), (2, 'beta')")
    assert spark_sorted(spark, f"SELECT id, name FROM {cat}.{ns}.t") == [(1, "alpha"), (2, "beta")]

    table = private_server.client().rest_catalog("private-spark", **own).load_table((ns, "t"))
    assert [(r["id"], r["name"]) for r in sorted_rows(table.scan().to_arrow())] == [(1, "alpha"), (2, "beta")]
    stored = objects(s3, prefix=key_of(table.location()) + "/")
    assert all(key_of(task.file.file_path) in stored for task in table.scan().plan_files())
