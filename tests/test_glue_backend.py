"""`icemesh serve --backend glue`: Glue holds the tables the way pyiceberg's GlueCatalog writes them.

moto runs as a real server (Glue, S3, Lake Formation); pyiceberg, DuckDB and Spark go through icemesh's REST
front door with the warehouse in moto's S3, and pyiceberg's own GlueCatalog reads and writes the same tables
directly against moto.
"""

from __future__ import annotations

import uuid

import httpx
import pyarrow as pa
import pytest
from pyiceberg.catalog.glue import GlueCatalog

from tests.aws import KEY_ID, REGION, SECRET, boto_client
from tests.conftest import GLUE_BUCKET, GLUE_WAREHOUSE, spark_catalog, start_glue_catalog

ROWS = [{"id": 1, "name": "alpha"}, {"id": 2, "name": "beta"}]
SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string())])


@pytest.fixture
def glue_ns(glue_server) -> str:
    name = f"glue_{uuid.uuid4().hex[:10]}"
    glue_server.client().rest_catalog().create_namespace(name)
    return name


@pytest.fixture(scope="module")
def rest(glue_server):
    return glue_server.client().rest_catalog("icemesh_glue")


@pytest.fixture(scope="module")
def glue_direct(moto):
    """pyiceberg's own GlueCatalog, straight at moto: what AWS engines see."""
    return GlueCatalog("aws", **{"glue.endpoint": moto, "glue.region": REGION, "s3.endpoint": moto, "s3.region": REGION,
                                 "s3.access-key-id": KEY_ID, "s3.secret-access-key": SECRET,
                                 "glue.access-key-id": KEY_ID, "glue.secret-access-key": SECRET})


@pytest.fixture(scope="module")
def glue(moto):
    return boto_client("glue", moto)


@pytest.fixture(scope="module")
def http(glue_server):
    admin = glue_server.client()
    with httpx.Client(base_url=f"{glue_server.uri}/v1/{admin.prefix()}", headers=admin.headers(), timeout=30) as client:
        yield client


def rows(table) -> list[dict]:
    return sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["id"])


def test_tables_are_written_as_pyiceberg_writes_them(rest, glue, glue_ns):
    table = rest.create_table((glue_ns, "orders"), schema=SCHEMA)
    first = table.metadata_location
    table.append(pa.Table.from_pylist(ROWS, schema=SCHEMA))
    table = rest.load_table((glue_ns, "orders"))

    entry = glue.get_table(DatabaseName=glue_ns, Name="orders")["Table"]
    params = entry["Parameters"]
    assert params["table_type"] == "ICEBERG"
    assert params["metadata_location"] == table.metadata_location
    assert params["previous_metadata_location"] == first
    assert params["icemesh.owner"] == "admin"
    assert entry["TableType"] == "EXTERNAL_TABLE"
    assert entry["StorageDescriptor"]["Location"] == table.location()
    assert table.location().startswith(f"{GLUE_WAREHOUSE}/{glue_ns}/orders")
    assert [(c["Name"], c["Type"]) for c in entry["StorageDescriptor"]["Columns"]] == [("id", "bigint"), ("name", "string")]
    # The namespace is a Glue database, owned by its creator.
    database = glue.get_database(Name=glue_ns)["Database"]
    assert database["Parameters"]["icemesh.owner"] == "admin"


def test_pyiceberg_glue_catalog_reads_and_writes_the_same_tables(rest, glue_direct, glue_ns):
    rest.create_table((glue_ns, "shared"), schema=SCHEMA).append(pa.Table.from_pylist(ROWS, schema=SCHEMA))

    direct = glue_direct.load_table((glue_ns, "shared"))
    assert rows(direct) == ROWS
    assert (glue_ns, "shared") in glue_direct.list_tables(glue_ns)

    # A commit made by pyiceberg's GlueCatalog (VersionId-checked UpdateTable) is what icemesh serves next.
    direct.append(pa.Table.from_pylist([{"id": 3, "name": "gamma"}], schema=SCHEMA))
    assert rows(rest.load_table((glue_ns, "shared"))) == ROWS + [{"id": 3, "name": "gamma"}]

    # And a table created by the GlueCatalog alone is served by icemesh.
    glue_direct.create_table((glue_ns, "made_in_aws"), schema=SCHEMA,
                             location=f"{GLUE_WAREHOUSE}/{glue_ns}/made_in_aws").append(pa.Table.from_pylist(ROWS, schema=SCHEMA))
    assert rows(rest.load_table((glue_ns, "made_in_aws"))) == ROWS
    assert {t[-1] for t in rest.list_tables(glue_ns)} == {"shared", "made_in_aws"}


def test_a_commit_based_on_a_stale_pointer_is_refused(rest, http, glue_direct, glue_ns):
    rest.create_table((glue_ns, "contended"), schema=SCHEMA).append(pa.Table.from_pylist(ROWS[:1], schema=SCHEMA))
    stale = rest.load_table((glue_ns, "contended"))
    glue_direct.load_table((glue_ns, "contended")).append(pa.Table.from_pylist(ROWS[1:], schema=SCHEMA))

    # A commit that assumes the snapshot before the GlueCatalog's write is refused with 409 (retry)...
    response = http.post(f"/namespaces/{glue_ns}/tables/contended", json={
        "requirements": [{"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": stale.current_snapshot().snapshot_id}],
        "updates": [{"action": "set-properties", "updates": {"k": "v"}}]})
    assert response.status_code == 409, response.text
    assert response.json()["error"]["type"] == "CommitFailedException"
    # ...and pyiceberg's retry on the fresh pointer keeps both writers' rows.
    stale.append(pa.Table.from_pylist([{"id": 9, "name": "late"}], schema=SCHEMA))
    assert rows(rest.load_table((glue_ns, "contended"))) == ROWS + [{"id": 9, "name": "late"}]
    assert rows(glue_direct.load_table((glue_ns, "contended"))) == ROWS + [{"id": 9, "name": "late"}]


def test_duckdb_writes_through_the_front_door(glue_server, rest, glue_direct, glue_ns, moto):
    import duckdb

    from icemesh.runtimes import duckdb as duck_engine
    from tests.test_s3_warehouse import duckdb_s3_secret

    con = duckdb.connect()
    try:
        duck_engine.load_extensions(con)
        duckdb_s3_secret(con, moto)
        duck_engine.attach_catalog(con, glue_server.uri, token=glue_server.client().token())
        con.execute(f"CREATE TABLE mesh.{glue_ns}.d AS SELECT * FROM (VALUES (1, 'alpha'), (2, 'beta')) v(id, name)")
        con.execute(f"INSERT INTO mesh.{glue_ns}.d VALUES (3, 'gamma')")
        assert con.execute(f"SELECT id, name FROM mesh.{glue_ns}.d ORDER BY id").fetchall() == [
            (1, "alpha"), (2, "beta"), (3, "gamma")]
    finally:
        con.close()
    expected = [{"id": 1, "name": "alpha"}, {"id": 2, "name": "beta"}, {"id": 3, "name": "gamma"}]
    assert rows(rest.load_table((glue_ns, "d"))) == expected
    assert rows(glue_direct.load_table((glue_ns, "d"))) == expected  # AWS engines see DuckDB's writes


def test_rename_and_drop(rest, glue, glue_ns):
    rest.create_table((glue_ns, "before"), schema=SCHEMA).append(pa.Table.from_pylist(ROWS, schema=SCHEMA))
    rest.rename_table((glue_ns, "before"), (glue_ns, "after"))
    assert rows(rest.load_table((glue_ns, "after"))) == ROWS
    assert not rest.table_exists((glue_ns, "before"))
    assert glue.get_table(DatabaseName=glue_ns, Name="after")["Table"]["Parameters"]["icemesh.owner"] == "admin"

    rest.drop_table((glue_ns, "after"))
    assert [t["Name"] for t in glue.get_tables(DatabaseName=glue_ns)["TableList"]] == []
    rest.drop_namespace(glue_ns)
    assert glue_ns not in [d["Name"] for d in glue.get_databases()["DatabaseList"]]


def test_glue_limits_are_clear_errors(http, glue_ns, glue):
    nested = http.post("/namespaces", json={"namespace": [glue_ns, "inner"]})
    assert nested.status_code == 400 and "Glue databases have one level" in nested.json()["error"]["message"]
    upper = http.post("/namespaces", json={"namespace": ["Sales"]})
    assert upper.status_code == 400 and "lower case" in upper.json()["error"]["message"]
    # The owner parameter is icemesh's: clients can neither set nor remove it.
    for body in ({"updates": {"icemesh.owner": "me"}}, {"removals": ["icemesh.owner"]}):
        refused = http.post(f"/namespaces/{glue_ns}/properties", json=body)
        assert refused.status_code == 400, refused.text
    assert glue.get_database(Name=glue_ns)["Database"]["Parameters"]["icemesh.owner"] == "admin"
    # Ordinary properties round-trip through Glue, without the owner showing.
    assert http.post(f"/namespaces/{glue_ns}/properties", json={"updates": {"team": "sales"}}).status_code == 200
    assert http.get(f"/namespaces/{glue_ns}").json()["properties"] == {"team": "sales"}


def test_serve_refuses_two_warehouses_on_glue(tmp_path_factory, moto, glue_bucket):
    with pytest.raises(RuntimeError, match="--backend glue serves one warehouse"):
        start_glue_catalog(tmp_path_factory, moto, "two-warehouses", warehouse=[GLUE_WAREHOUSE, "other=s3://x/y"])


@pytest.mark.spark
def test_spark_reads_and_writes_through_the_front_door(glue_server, rest, glue, glue_direct, moto, spark):
    """Spark with nothing but the catalog URI and credentials: the S3 endpoint, region and keys for the moto
    warehouse come from the server's loadTable config."""
    from tests.test_s3_warehouse import objects

    cat = spark_catalog(spark, glue_server, f"glue_{glue_server.port}")
    ns = f"spark_{uuid.uuid4().hex[:8]}"
    spark.sql(f"CREATE NAMESPACE {cat}.{ns}")
    assert glue.get_database(Name=ns)["Database"]["Parameters"]["icemesh.owner"] == "admin"
    spark.sql(f"CREATE TABLE {cat}.{ns}.t (id BIGINT, name STRING) USING iceberg")
    spark.sql(f"INSERT INTO {cat}.{ns}.t VALUES (1, 'alpha'), (2, 'beta')")
    assert sorted(tuple(r) for r in spark.sql(f"SELECT id, name FROM {cat}.{ns}.t").collect()) == [
        (1, "alpha"), (2, "beta")]

    # Spark's files are in the moto bucket, and pyiceberg reads them through icemesh and straight from Glue.
    table = rest.load_table((ns, "t"))
    assert table.location().startswith(f"{GLUE_WAREHOUSE}/{ns}/t")
    stored = objects(boto_client("s3", moto), GLUE_BUCKET, prefix=f"wh/{ns}/")
    data_files = [task.file.file_path for task in table.scan().plan_files()]
    assert data_files and all(path.removeprefix(f"s3://{GLUE_BUCKET}/") in stored for path in data_files)
    assert table.metadata_location.removeprefix(f"s3://{GLUE_BUCKET}/") in stored
    assert rows(table) == ROWS
    assert rows(glue_direct.load_table((ns, "t"))) == ROWS

    # Spark reads what pyiceberg appended, and AWS engines see the same pointer.
    table.append(pa.Table.from_pylist([{"id": 3, "name": "gamma"}],
                                      schema=pa.schema([("id", pa.int64()), ("name", pa.string())])))
    assert sorted(tuple(r) for r in spark.sql(f"SELECT id, name FROM {cat}.{ns}.t").collect()) == [
        (1, "alpha"), (2, "beta"), (3, "gamma")]
    assert glue_direct.load_table((ns, "t")).metadata_location == rest.load_table((ns, "t")).metadata_location


def test_an_owner_parameter_changed_outside_icemesh_gives_no_rights(glue_server, rest, glue, glue_ns):
    """Glue parameters are writable by any Glue writer (pyiceberg's GlueCatalog writes properties as parameters):
    owners are icemesh's own record, a tampered `icemesh.owner` is ignored and reported in the server's log."""
    admin = glue_server.client()
    secret = admin.request("POST", "/management/v1/principals", json={"name": "pc_tamper"})["client_secret"]
    rest.create_table((glue_ns, "payroll"), schema=SCHEMA).append(pa.Table.from_pylist(ROWS, schema=SCHEMA))
    table = glue.get_table(DatabaseName=glue_ns, Name="payroll")["Table"]
    tampered = {k: table[k] for k in ("Name", "StorageDescriptor", "TableType", "Parameters") if k in table}
    tampered["Parameters"] = {**table["Parameters"], "icemesh.owner": "pc_tamper"}
    glue.update_table(DatabaseName=glue_ns, TableInput=tampered)
    database = glue.get_database(Name=glue_ns)["Database"]
    glue.update_database(Name=glue_ns, DatabaseInput={"Name": glue_ns, "Parameters": {
        **database.get("Parameters", {}), "icemesh.owner": "pc_tamper"}})

    pc = glue_server.client("pc_tamper", secret)
    who = pc.request("GET", "/management/v1/whoami")
    assert glue_ns not in str(who.get("owns", who))
    with pytest.raises(Exception) as refused:
        pc.rest_catalog("icemesh_glue").load_table((glue_ns, "payroll"))
    assert "payroll" in str(refused.value) or "NoSuchTable" in type(refused.value).__name__
    with httpx.Client(base_url=f"{glue_server.uri}/v1/{admin.prefix()}", headers=pc.headers(), timeout=30) as http:
        drop = http.delete(f"/namespaces/{glue_ns}/tables/payroll")
        assert drop.status_code in (403, 404), drop.text
        grant = http.post(f"{glue_server.uri}/management/v1/grants", json={
            "permissions": "SELECT", "principal": "pc_tamper", "table": f"{glue_ns}.payroll"})
        assert grant.status_code in (403, 404), grant.text
    assert rows(rest.load_table((glue_ns, "payroll"))) == ROWS
    log = open(glue_server.log_path, encoding="utf-8", errors="replace").read()
    assert f"table {glue_ns}.payroll has the Glue parameter icemesh.owner=pc_tamper, set outside icemesh; ignored" in log
    # The next commit through icemesh puts the true owner back on the label.
    rest.load_table((glue_ns, "payroll")).append(pa.Table.from_pylist(ROWS, schema=SCHEMA))
    assert glue.get_table(DatabaseName=glue_ns, Name="payroll")["Table"]["Parameters"]["icemesh.owner"] == "admin"


def test_views_are_not_offered_on_glue(glue_server, http, glue_ns):
    """The Glue backend keeps no views: /v1/config does not list them, and their routes say so in one line."""
    config = httpx.get(f"{glue_server.uri}/v1/config", headers=http.headers).json()
    assert not [e for e in config["endpoints"] if "/views" in e]
    body = {"name": "v", "schema": {"type": "struct", "schema-id": 0, "fields": [
        {"id": 1, "name": "id", "type": "long", "required": False}]}, "view-version": {
        "version-id": 1, "schema-id": 0, "timestamp-ms": 1, "summary": {}, "default-namespace": [glue_ns],
        "representations": [{"type": "sql", "sql": "select 1", "dialect": "spark"}]}}
    for response in (http.post(f"/namespaces/{glue_ns}/views", json=body), http.get(f"/namespaces/{glue_ns}/views")):
        assert response.status_code == 406, response.text
        assert "keeps no views" in response.json()["error"]["message"]
