"""Cross-engine queries against a real `icemesh serve`: every engine returns the same rows, under the caller's policies,
reading the warehouse's files in place.

The world (built once):
- as admin, pyiceberg creates <ns>.orders (decimal, timestamptz, nulls; partitioned by region) and appends a first batch;
  DuckDB, through the attached catalog, inserts more rows, deletes two (positional delete files), adds a column `note`
  and inserts rows that fill it. <ns>.regions joins it; <ns>.secret is another product;
- tags: the namespace domain=<d>, sensitivity=internal; orders.email and the table secret sensitivity=confidential;
- the consumer may SELECT,DESCRIBE `domain=<d> AND sensitivity=public,internal`: it reads orders without email,
  regions fully, and never sees secret; the outsider has no grant at all.
Expected rows are computed here from what was written, not read back from any engine.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass

import pyarrow as pa
import pytest
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import DecimalType, LongType, NestedField, StringType, TimestamptzType

import icemesh
from icemesh.query import QueryError
from icemesh.query.references import Reference, pin_snapshots, product_references

M = "/management/v1"
ENGINES = ["duckdb", "polars", "datafusion", "daft", "chdb"]  # spark: its own (slow) test below
# Daft 0.7.26 cannot read a Parquet file holding a column that the Iceberg schema it is given lacks, unless that column
# comes last in the file (tests/repro/daft_dropped_column.py). The consumer's schema lacks the hidden `email`, which
# precedes `note` in the files DuckDB wrote after ADD COLUMN: the consumer cases below prove the Daft adapter's way round.
UTC = dt.timezone.utc

ORDERS = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "amount", DecimalType(12, 2), required=False),
    NestedField(3, "ts", TimestamptzType(), required=False),
    NestedField(4, "region", StringType(), required=False),
    NestedField(5, "email", StringType(), required=False),
)
ORDERS_ARROW = pa.schema([("id", pa.int64()), ("amount", pa.decimal128(12, 2)), ("ts", pa.timestamp("us", tz="UTC")),
                          ("region", pa.string()), ("email", pa.string())])
D = decimal.Decimal


def _ts(day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2024, 1, day, hour, tzinfo=UTC)


FIRST = [  # appended by pyiceberg
    {"id": 1, "amount": D("10.50"), "ts": _ts(1, 9), "region": "eu", "email": "a@x.org"},
    {"id": 2, "amount": None, "ts": _ts(1, 23), "region": "us", "email": "b@x.org"},
    {"id": 3, "amount": D("3.25"), "ts": None, "region": None, "email": None},
    {"id": 4, "amount": D("-7.00"), "ts": _ts(2, 1), "region": "eu", "email": "d@x.org"},
]
SECOND = [  # inserted by DuckDB
    {"id": 5, "amount": D("99.99"), "ts": _ts(3, 12), "region": "apac", "email": "e@x.org"},
    {"id": 6, "amount": D("0.01"), "ts": _ts(4, 0), "region": "us", "email": None},
]
DELETED = {2, 5}  # deleted by DuckDB
THIRD = [  # inserted by DuckDB after ADD COLUMN note
    {"id": 7, "amount": D("1.10"), "ts": _ts(5, 6), "region": "eu", "email": "g@x.org", "note": "late"},
    {"id": 8, "amount": None, "ts": None, "region": "us", "email": None, "note": None},
]
REGIONS = [{"region": "eu", "label": "Europe"}, {"region": "us", "label": "Americas"}, {"region": "apac", "label": "Asia"}]


@dataclass
class World:
    server: object
    ns: str
    warehouse: str
    names: dict[str, str]  # role in the story -> principal name
    secrets: dict[str, str]
    snapshots: dict[str, int]  # after_first, after_second, after_delete, current
    timestamps: dict[str, int]
    sensitivity: str  # the tag key whose value `confidential` hides a column from the consumer

    @property
    def current_rows(self) -> list[dict]:
        rows = [{**r, "note": None} for r in FIRST + SECOND if r["id"] not in DELETED] + THIRD
        return sorted(rows, key=lambda r: r["id"])


def _sql(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, dt.datetime):
        return f"TIMESTAMPTZ '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def _insert(con, table: str, rows: list[dict]) -> None:
    columns = list(rows[0])
    values = ", ".join("(" + ", ".join(_sql(r[c]) for c in columns) + ")" for r in rows)
    con.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}")


@pytest.fixture(scope="module")
def world(sqlite_server) -> World:
    sfx = uuid.uuid4().hex[:8]
    ns, domain, sensitivity = f"q_{sfx}", f"qdomain_{sfx}", f"qsens_{sfx}"
    admin = sqlite_server.client()
    catalog = admin.rest_catalog()
    catalog.create_namespace(ns)
    spec = PartitionSpec(PartitionField(source_id=4, field_id=1000, transform=IdentityTransform(), name="region"))
    orders = catalog.create_table(f"{ns}.orders", ORDERS, partition_spec=spec)
    orders.append(pa.Table.from_pylist(FIRST, schema=ORDERS_ARROW))
    regions = catalog.create_table(f"{ns}.regions", pa.schema([("region", pa.string()), ("label", pa.string())]))
    regions.append(pa.Table.from_pylist(REGIONS, schema=regions.schema().as_arrow()))
    secret = catalog.create_table(f"{ns}.secret", pa.schema([("id", pa.int64())]))
    secret.append(pa.table({"id": pa.array([1], pa.int64())}))

    snapshots, timestamps = {}, {}

    def mark(label: str) -> None:
        snapshot = catalog.load_table(f"{ns}.orders").current_snapshot()
        snapshots[label], timestamps[label] = snapshot.snapshot_id, snapshot.timestamp_ms

    mark("after_first")
    con = admin.duckdb()
    table = f'mesh."{ns}".orders'
    try:
        _insert(con, table, SECOND)
        mark("after_second")
        con.execute(f"DELETE FROM {table} WHERE id IN ({', '.join(map(str, sorted(DELETED)))})")
        mark("after_delete")
        con.execute(f"ALTER TABLE {table} ADD COLUMN note VARCHAR")
        _insert(con, table, THIRD)
        mark("current")
    finally:
        con.close()
    warehouse = os.path.join(sqlite_server.cwd, "warehouse")  # see conftest.start_catalog
    data_files = [f for _base, _dirs, fs in os.walk(os.path.join(warehouse, ns)) for f in fs]
    assert any(f.endswith("-deletes.parquet") for f in data_files), "DuckDB should have written positional deletes"

    def manage(method, path, **kwargs):
        return admin.request(method, M + path, **kwargs)

    manage("POST", "/tags", json={"key": domain, "values": ["shop", "other"]})
    manage("POST", "/tags", json={"key": sensitivity, "values": ["public", "internal", "confidential"]})
    manage("POST", "/tag-assignments", json={"key": domain, "value": "shop", "namespace": ns})
    manage("POST", "/tag-assignments", json={"key": sensitivity, "value": "internal", "namespace": ns})
    manage("POST", "/tag-assignments", json={"key": sensitivity, "value": "confidential", "table": f"{ns}.secret"})
    manage("POST", "/tag-assignments", json={"key": sensitivity, "value": "confidential", "table": f"{ns}.orders",
                                             "column": "email"})
    names = {"admin": "admin", "consumer": f"consumer_{sfx}", "outsider": f"outsider_{sfx}"}
    secrets = {"admin": sqlite_server.admin_secret}
    for role in ("consumer", "outsider"):
        secrets[role] = manage("POST", "/principals", json={"name": names[role]})["client_secret"]
    manage("POST", "/grants", json={"permissions": "SELECT,DESCRIBE", "principal": names["consumer"],
                                    "tags": [f"{domain}=shop", f"{sensitivity}=public,internal"]})
    return World(sqlite_server, ns, warehouse, names, secrets, snapshots, timestamps, sensitivity)


def _connect(world: World, who: str):
    return icemesh.connect(world.server.uri, client_id=world.names[who], client_secret=world.secrets[who])


# -- normalising what engines return --------------------------------------------------------------------------

def normalize(value):
    """One representation per value across engines: decimals to 2 places, instants in UTC, integers as int."""
    if isinstance(value, float):
        return D(repr(value)).quantize(D("0.01"))
    if isinstance(value, D):
        return value.quantize(D("0.01"))
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value


def rows_of(table: pa.Table) -> list[tuple]:
    return sorted((tuple(normalize(v) for v in row.values()) for row in table.to_pylist()),
                  key=lambda r: tuple((v is None, str(v)) for v in r))


def expected(rows: list[dict], columns: list[str]) -> list[tuple]:
    return rows_of(pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows]))


def query_set(ns: str) -> dict[str, str]:
    """Portable SQL every engine runs: scans, a filter on a decimal, NULL handling, an aggregate and a join."""
    return {
        "scan": f"SELECT id, amount, ts, region, note FROM {ns}.orders",
        "filter": f"SELECT id, amount FROM {ns}.orders WHERE amount > 1",
        "nulls": f"SELECT id FROM {ns}.orders WHERE ts IS NULL OR region IS NULL",
        "aggregate": f"SELECT region, COUNT(*) AS n, SUM(amount) AS total FROM {ns}.orders GROUP BY region",
        "join": f"SELECT o.id, r.label FROM {ns}.orders o JOIN {ns}.regions r ON o.region = r.region",
    }


def expected_results(rows: list[dict]) -> dict[str, list[tuple]]:
    by_region: dict = {}
    for r in rows:
        n, total = by_region.get(r["region"], (0, None))
        by_region[r["region"]] = (n + 1, total if r["amount"] is None else (total or 0) + r["amount"])
    labels = {r["region"]: r["label"] for r in REGIONS}
    return {
        "scan": expected(rows, ["id", "amount", "ts", "region", "note"]),
        "filter": expected([r for r in rows if r["amount"] is not None and r["amount"] > 1], ["id", "amount"]),
        "nulls": expected([r for r in rows if r["ts"] is None or r["region"] is None], ["id"]),
        "aggregate": expected([{"region": k, "n": n, "total": t} for k, (n, t) in by_region.items()],
                              ["region", "n", "total"]),
        "join": expected([{"id": r["id"], "label": labels[r["region"]]} for r in rows if r["region"] in labels],
                         ["id", "label"]),
    }


def warehouse_digest(root: str) -> dict[str, str]:
    digest = {}
    for base, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as f:
                digest[path] = hashlib.sha256(f.read()).hexdigest()
    return digest


# -- the tests ---------------------------------------------------------------------------------------------------

def test_references_come_from_the_parser_not_the_text():
    sql = ("WITH recent AS (SELECT * FROM sales.orders WHERE note = 'from x.y') "
           "SELECT * FROM recent JOIN ops.stock s ON true WHERE id IN (SELECT id FROM a.b.c)")
    assert set(product_references(sql, "duckdb")) == {Reference(("sales",), "orders"), Reference(("ops",), "stock"),
                                                      Reference(("a", "b"), "c")}
    pinned = pin_snapshots("SELECT * FROM sales.orders o JOIN recent ON true", "spark",
                           {Reference(("sales",), "orders"): 42}, "version_as_of")
    assert "sales.orders VERSION AS OF 42" in pinned
    with pytest.raises(QueryError, match="Cannot parse"):
        product_references("SELEC * FROM", "duckdb")


@pytest.mark.parametrize("engine,who", [(e, who) for e in ENGINES for who in ("admin", "consumer")])
def test_every_engine_returns_the_same_rows_in_place(world, engine, who):
    """The query set on each engine, as the admin and as the limited consumer, now and as of earlier snapshots;
    the warehouse's files are byte-for-byte the same afterwards and none were added."""
    before = warehouse_digest(world.warehouse)
    now = expected_results(world.current_rows)
    at_second = [{**r, "note": None} for r in FIRST + SECOND]
    then = expected_results(at_second)
    queries = query_set(world.ns)
    with _connect(world, who) as mesh:
        for name, sql in queries.items():
            assert rows_of(mesh.sql(sql, engine=engine)) == now[name], name
        # as of the snapshot before the delete and the added column: deleted rows are back, no `note`
        for as_of in (world.snapshots["after_second"], dt.datetime.fromtimestamp(
                world.timestamps["after_second"] / 1000, UTC).isoformat()):
            for name, sql in queries.items():
                sql = sql.replace(", note", "")
                result = mesh.sql(sql, engine=engine, as_of=as_of)
                want = then[name] if name != "scan" else expected(at_second, ["id", "amount", "ts", "region"])
                assert rows_of(result) == want, (name, as_of)
    after = warehouse_digest(world.warehouse)
    assert after == before


@pytest.mark.parametrize("engine", ENGINES)
def test_hidden_columns_are_absent_on_every_engine(world, engine):
    with _connect(world, "consumer") as mesh, _connect(world, "admin") as admin:
        assert "email" in admin.sql(f"SELECT * FROM {world.ns}.orders", engine=engine).column_names
        seen = mesh.sql(f"SELECT * FROM {world.ns}.orders", engine=engine)
        assert seen.column_names == ["id", "amount", "ts", "region", "note"]
        assert seen.num_rows == len(world.current_rows)
        with pytest.raises(QueryError) as refused:
            mesh.sql(f"SELECT email FROM {world.ns}.orders", engine=engine)
        assert "email" in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_session_reads_what_was_committed_since_its_last_query(world, engine):
    """A session keeps loaded tables and engine set-up between queries; a commit by someone else, a delete and a
    newly hidden column are all seen by the very next query on the same connection."""
    admin = world.server.client().rest_catalog()
    name = f"{world.ns}.fresh_{engine}"
    schema = pa.schema([("id", pa.int64()), ("email", pa.string())])
    table = admin.create_table(name, schema)
    table.append(pa.table({"id": [1], "email": ["a@x.org"]}, schema=schema))
    ids = f"SELECT id FROM {name}"
    with _connect(world, "consumer") as mesh:
        assert sorted(mesh.sql(ids, engine=engine).column("id").to_pylist()) == [1]
        assert mesh.sql(f"SELECT * FROM {name}", engine=engine).column_names == ["id", "email"]
        table.append(pa.table({"id": [2, 3], "email": ["b@x.org", None]}, schema=schema))
        assert sorted(mesh.sql(ids, engine=engine).column("id").to_pylist()) == [1, 2, 3]
        table.delete("id = 1")
        assert sorted(mesh.sql(ids, engine=engine).column("id").to_pylist()) == [2, 3]
        world.server.client().request("POST", M + "/tag-assignments", json={
            "key": world.sensitivity, "value": "confidential", "table": name, "column": "email"})
        assert mesh.sql(f"SELECT * FROM {name}", engine=engine).column_names == ["id"]
        with pytest.raises(QueryError, match="email"):
            mesh.sql(f"SELECT email FROM {name}", engine=engine)


def test_a_revoked_grant_fails_the_next_query_on_every_engine(world):
    """Loaded tables are kept per session, but the catalog is asked before every query: a revoke is final."""
    admin = world.server.client()
    reader = f"reader_{uuid.uuid4().hex[:8]}"
    secret = admin.request("POST", M + "/principals", json={"name": reader})["client_secret"]
    granted = admin.request("POST", M + "/grants", json={"permissions": "SELECT,DESCRIBE", "principal": reader,
                                                         "table": f"{world.ns}.regions"})
    sql = f"SELECT count(*) AS n FROM {world.ns}.regions"
    with icemesh.connect(world.server.uri, client_id=reader, client_secret=secret) as mesh:
        for engine in ENGINES:
            assert mesh.sql(sql, engine=engine).column("n").to_pylist() == [len(REGIONS)], engine
        admin.request("POST", M + "/grants/revoke", json={"permissions": "SELECT,DESCRIBE", "id": granted["id"]})
        for engine in ENGINES:  # no grant left: the table is invisible, as if it did not exist
            with pytest.raises(QueryError, match=f"no table {world.ns}.regions you may see"):
                mesh.sql(sql, engine=engine)


def test_unreadable_products_are_absent_and_fail_with_the_catalogs_reason(world):
    with _connect(world, "consumer") as consumer, _connect(world, "outsider") as outsider:
        assert set(consumer.products()) >= {f"{world.ns}.orders", f"{world.ns}.regions"}
        assert f"{world.ns}.secret" not in consumer.products()
        assert not [p for p in outsider.products() if p.startswith(world.ns + ".")]
        for mesh, who, table in [(consumer, "consumer", "secret"), (outsider, "outsider", "orders")]:
            for engine in ENGINES:
                with pytest.raises(QueryError) as refused:
                    mesh.sql(f"SELECT count(*) AS n FROM {world.ns}.{table}", engine=engine)
                message = str(refused.value)  # invisible to them: the same answer as a table that does not exist
                assert f"no table {world.ns}.{table} you may see" in message, (engine, message)
                assert "\n" not in message


def test_as_of_errors_say_what_to_give(world):
    with _connect(world, "admin") as mesh:
        with pytest.raises(QueryError, match="No product the query reads has snapshot 12345"):
            mesh.sql(f"SELECT id FROM {world.ns}.orders", as_of=12345)
        with pytest.raises(QueryError, match="has no snapshot at or before 2000-01-01"):
            mesh.sql(f"SELECT id FROM {world.ns}.orders", as_of="2000-01-01T00:00:00Z")
        with pytest.raises(QueryError, match="ISO-8601"):
            mesh.sql(f"SELECT id FROM {world.ns}.orders", as_of="last tuesday")
        with pytest.raises(QueryError, match="Unknown engine 'oracle'"):
            mesh.sql("SELECT 1", engine="oracle")


def test_native_handles_are_the_engines_own(world):
    import chdb.state.sqlitelike
    import datafusion
    import duckdb
    import polars

    with _connect(world, "consumer") as mesh:
        assert isinstance(mesh.native("duckdb"), duckdb.DuckDBPyConnection)
        assert isinstance(mesh.native("polars"), polars.SQLContext)
        assert isinstance(mesh.native("datafusion"), datafusion.SessionContext)
        assert isinstance(mesh.native("chdb"), chdb.state.sqlitelike.Connection)
        # products named by earlier queries stay registered in the native handle
        mesh.sql(f"SELECT 1 AS one FROM {world.ns}.regions LIMIT 1", engine="datafusion")
        frame = mesh.native("datafusion").sql(f"SELECT label FROM {world.ns}.regions ORDER BY label")
        assert frame.to_arrow_table().column("label").to_pylist() == ["Americas", "Asia", "Europe"]


def _cli(world: World, who: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ICEMESH_CATALOG_URI": world.server.uri, "ICEMESH_CLIENT_ID": world.names[who],
           "ICEMESH_CLIENT_SECRET": world.secrets[who]}
    env.pop("ICEMESH_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "icemesh.cli.main", "query", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_cli_json_table_as_of_and_errors(world):
    sql = f"SELECT id, amount, ts, note FROM {world.ns}.orders WHERE id IN (1, 7) ORDER BY id"
    proc = _cli(world, "consumer", "--engine", "polars", "--output", "json", sql)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [(r["id"], r["amount"], r["note"]) for r in rows] == [(1, "10.50", None), (7, "1.10", "late")]
    assert dt.datetime.fromisoformat(rows[0]["ts"]) == _ts(1, 9)

    proc = _cli(world, "consumer", "--engine", "chdb", "--as-of", str(world.snapshots["after_second"]),
                f"SELECT id FROM {world.ns}.orders WHERE id IN (2, 5, 7) ORDER BY id")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ID", "2", "5"]

    proc = _cli(world, "consumer", "--output", "json", f"SELECT * FROM {world.ns}.secret")
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert "you may see" in proc.stderr


@pytest.mark.spark
def test_spark_returns_the_same_rows_in_place(world, spark):
    """The adapter reuses the process's SparkSession (the suite's shared one) and leaves it running."""
    before = warehouse_digest(world.warehouse)
    now = expected_results(world.current_rows)
    with _connect(world, "consumer") as mesh:
        for name, sql in query_set(world.ns).items():
            assert rows_of(mesh.sql(sql, engine="spark")) == now[name], name
        assert mesh.sql(f"SELECT * FROM {world.ns}.orders", engine="spark").column_names == \
            ["id", "amount", "ts", "region", "note"]
        old = mesh.sql(f"SELECT id FROM {world.ns}.orders", engine="spark", as_of=world.snapshots["after_second"])
        assert sorted(old.column("id").to_pylist()) == [r["id"] for r in FIRST + SECOND]
        with pytest.raises(QueryError, match=f"no table {world.ns}.secret you may see"):
            mesh.sql(f"SELECT * FROM {world.ns}.secret", engine="spark")
    assert warehouse_digest(world.warehouse) == before
