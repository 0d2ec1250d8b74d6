"""The lean writer (icemesh/dbt/lean_writer.py): a table model replacing an unpartitioned product of the same
columns, published without pyiceberg. It must give what the full writer gives (rows, types, file statistics,
properties), leave nothing behind when it fails, and hand every other case to the full writer."""

from __future__ import annotations

import datetime
import decimal
import os
import uuid

import duckdb
import pytest

from icemesh.client import ClientError
from icemesh.compat import pyiceberg_core as fast
from icemesh.dbt import lean_writer
from icemesh.dbt.lean_writer import LeanWriter
from icemesh.dbt.product import ProductSpec
from icemesh.dbt.writer import ProductWriter
from icemesh.tables import avro_manifests, manifest_writer

M = "/management/v1"
TYPED_SQL = """select range::bigint as id, (range % 7)::integer as small, (range * 1.25)::decimal(12, 2) as amount,
       case when range % 5 = 0 then null else 'name-' || (range % 13) end as name, range / 3.0 as ratio,
       (range / 2.0)::float as half, range % 2 = 0 as even, date '2024-01-01' + (range % 40)::integer as day,
       timestamp '2024-01-01 00:00:00' + to_seconds(range) as at,
       timestamptz '2024-01-01 00:00:00+00' + to_seconds(range) as at_utc
from range({rows})"""


def spec(ns: str, table: str, sql: str, **config) -> ProductSpec:
    project = f"lean_{ns}"  # a dbt project's products live in one namespace
    return ProductSpec.from_config({"namespace": ns, "table": table, "project": project, "model": table,
                                    "unique_id": f"model.{project}.{table}", "sql": sql, "access": "public",
                                    "invocation_id": str(uuid.uuid4()), **config})


@pytest.fixture
def world(sqlite_server, ns):
    client = sqlite_server.client()
    catalog = client.rest_catalog()
    catalog.create_namespace(ns)
    con = duckdb.connect()
    full = ProductWriter(client, catalog, con, memo={})
    lean = LeanWriter(client, con, memo={})
    yield client, catalog, full, lean
    con.close()


def folder_files(table) -> set[str]:
    root = table.metadata.location.removeprefix("file://")
    return {os.path.join(d, f) for d, _, names in os.walk(root) for f in names}


def test_a_replace_is_one_snapshot_with_the_rows_types_and_statistics_the_full_writer_gives(world, ns):
    client, catalog, full, lean = world
    for name in ("by_full", "by_lean"):
        full.publish(spec(ns, name, TYPED_SQL.format(rows=10)))  # created by the full writer
    full.publish(spec(ns, "by_full", TYPED_SQL.format(rows=500)))
    before = len(catalog.load_table(f"{ns}.by_lean").snapshots())
    result = lean.publish(spec(ns, "by_lean", TYPED_SQL.format(rows=500)))
    assert result is not None and result.rows == 500 and result.mode == "replace"

    a, b = catalog.load_table(f"{ns}.by_full"), catalog.load_table(f"{ns}.by_lean")
    assert len(b.snapshots()) == before + 1  # one publish, one snapshot
    assert b.current_snapshot().snapshot_id == result.snapshot_id
    assert b.current_snapshot().summary.operation.value == "overwrite"
    assert b.schema() == a.schema()
    assert b.scan().to_arrow().sort_by("id").to_pylist() == a.scan().to_arrow().sort_by("id").to_pylist()
    summary = b.current_snapshot().summary.additional_properties
    assert summary["total-records"] == "500" and summary["deleted-records"] == "10"
    assert summary["icemesh.dbt.unique_id"] == f"model.lean_{ns}.by_lean"

    full_file, = a.inspect.files().to_pylist()
    lean_file, = b.inspect.files().to_pylist()
    ids = {f.name: f.field_id for f in b.schema().fields}
    assert lean_file["record_count"] == 500
    assert dict(lean_file["null_value_counts"]) == dict(full_file["null_value_counts"])
    assert dict(lean_file["value_counts"]) == dict(full_file["value_counts"])
    lean_low, full_low = dict(lean_file["lower_bounds"]), dict(full_file["lower_bounds"])
    lean_high, full_high = dict(lean_file["upper_bounds"]), dict(full_file["upper_bounds"])
    kept = {ids[n] for n in ("id", "small", "name", "even", "day")}
    assert set(lean_low) == set(lean_high) == kept  # no bound rather than a doubtful one for the others
    for field_id in kept:
        assert (lean_low[field_id], lean_high[field_id]) == (full_low[field_id], full_high[field_id])

    # Pruning on the bounds keeps the right rows, and DuckDB reads the product through the catalog.
    assert b.scan(row_filter="id >= 490").to_arrow().num_rows == 10
    assert not list(b.scan(row_filter="id > 10000").plan_files())  # the file's bounds prune it
    mesh = client.duckdb()
    got = mesh.execute(f"select count(*), sum(amount), count(name), min(day), max(at_utc) "
                       f"from mesh.{ns}.by_lean").fetchone()
    assert got[0] == 500 and got[1] == decimal.Decimal("155937.50") and got[2] == 400
    assert got[3] == datetime.date(2024, 1, 1)


def test_what_the_lean_writer_does_not_cover_goes_to_the_full_writer_and_writes_nothing(world, ns):
    client, catalog, full, lean = world
    assert lean.publish(spec(f"{ns}_absent", "fresh", "select 1 as a")) is None  # the namespace is the full writer's
    assert lean.publish(spec(ns, "fresh", "select [1] as a")) is None
    assert not catalog.table_exists(f"{ns}.fresh")  # declining a create leaves no table behind
    full.publish(spec(ns, "p", "select 1::bigint as a, 'x' as b"))
    table = catalog.load_table(f"{ns}.p")
    files = folder_files(table)
    declined = [
        spec(ns, "p", "select 1::bigint as a, 'x' as b, 2 as c"),           # a new column
        spec(ns, "p", "select 'x' as b, 1::bigint as a"),                   # another order
        spec(ns, "p", "select 1::integer as a, 'x' as b"),                  # another type
        spec(ns, "p", "select 1::bigint as a, ['x'] as b"),                 # a nested type
        spec(ns, "p", "select 1::bigint as a, 'x' as b", mode="append"),    # incremental
        spec(ns, "p", "select 1::bigint as a, 'x' as b", partition_by=["a"]),
        spec(ns, "p", "select 1::bigint as a, 'x' as b", contract_enforced=True,
             columns=[{"name": "a", "not_null": True}]),                   # a contract newly requiring a column
        spec(ns, "p", "select 1::bigint as a, 'x' as b where false"),       # no rows
    ]
    for each in declined:
        assert lean.publish(each) is None, each
    with table.transaction() as t:
        t.set_properties({"write.parquet.row-group-limit": "1000"})
    assert lean.publish(spec(ns, "p", "select 1::bigint as a, 'x' as b")) is None  # a write setting it does not know
    after = catalog.load_table(f"{ns}.p")
    assert after.current_snapshot().snapshot_id == table.current_snapshot().snapshot_id
    new = folder_files(after) - files
    assert len(new) == 1 and new.pop().endswith(".metadata.json")  # the properties commit's; no data, no manifests


def test_a_model_that_fails_half_way_leaves_the_product_and_its_folder_as_they_were(world, ns):
    client, catalog, full, lean = world
    full.publish(spec(ns, "p", "select range::bigint as a, 'v' || range as b from range(10)"))
    table = catalog.load_table(f"{ns}.p")
    files = folder_files(table)
    broken = "select range::bigint as a, case when range = 99999 then 'x'::integer::varchar else 'v' end as b " \
             "from range(200000)"
    with pytest.raises(duckdb.Error, match="Conversion Error"):
        lean.publish(spec(ns, "p", broken))
    after = catalog.load_table(f"{ns}.p")
    assert after.metadata_location == table.metadata_location
    assert folder_files(after) == files


def test_a_refused_commit_removes_the_files_it_wrote(world, ns, sqlite_server):
    client, catalog, full, lean = world
    full.publish(spec(ns, "p", "select range::bigint as a from range(10)"))
    table = catalog.load_table(f"{ns}.p")
    files = folder_files(table)
    admin = sqlite_server.client()
    name = f"reader_{uuid.uuid4().hex[:8]}"
    secret = admin.request("POST", f"{M}/principals", json={"name": name})["client_secret"]
    admin.request("POST", f"{M}/grants", json={"permissions": "DESCRIBE,SELECT", "principal": name, "namespace": ns})
    reader = sqlite_server.client(name, secret)
    with pytest.raises(ClientError) as refused:
        LeanWriter(reader, duckdb.connect(), memo={}).publish(spec(ns, "p", "select range::bigint as a from range(20)"))
    assert refused.value.code == 403
    after = catalog.load_table(f"{ns}.p")
    assert after.metadata_location == table.metadata_location and folder_files(after) == files
    with pytest.raises(ClientError) as refused:  # nor may it create a product in a namespace it only reads
        LeanWriter(reader, duckdb.connect(), memo={}).publish(spec(ns, "mine", "select 1 as a"))
    assert refused.value.code == 403 and not catalog.table_exists(f"{ns}.mine")


def test_a_commit_that_loses_a_race_replaces_what_won(world, ns, monkeypatch):
    client, catalog, full, lean = world
    full.publish(spec(ns, "p", "select range::bigint as a from range(10)"))
    request = client.request
    raced = []

    def racing(method, path, **kwargs):
        if method == "POST" and not raced:  # another writer commits between our load and our commit
            raced.append(True)
            other = catalog.load_table(f"{ns}.p")
            other.append(other.scan().to_arrow().slice(0, 1))
        return request(method, path, **kwargs)

    monkeypatch.setattr(client, "request", racing)
    result = lean.publish(spec(ns, "p", "select range::bigint as a from range(30)"))
    table = catalog.load_table(f"{ns}.p")
    assert raced and result.snapshot_id == table.current_snapshot().snapshot_id
    assert sorted(r["a"] for r in table.scan().to_arrow().to_pylist()) == list(range(30))
    lists = [f for f in folder_files(table) if os.path.basename(f).startswith(f"snap-{result.snapshot_id}-")]
    assert len(lists) == 1  # the losing attempt's manifest list is gone


def test_a_table_folder_that_cannot_be_a_sql_literal_goes_to_the_full_writer():
    metadata = {"format-version": 2, "location": "file:///w/it's/t", "default-spec-id": 0,
                "partition-specs": [{"spec-id": 0, "fields": []}], "properties": {}, "current-schema-id": 0,
                "schemas": [{"schema-id": 0, "type": "struct", "fields": [
                    {"id": 1, "name": "a", "required": False, "type": "long"}]}]}
    with pytest.raises(lean_writer.NotLean):
        lean_writer._Table(metadata, spec("n", "t", "select 1"), ["a"], ["long"])
    metadata["location"] = "s3://bucket/w/t"  # object storage: the full writer's FileIO
    with pytest.raises(lean_writer.NotLean):
        lean_writer._Table(metadata, spec("n", "t", "select 1"), ["a"], ["long"])
    metadata["location"] = "file:///w/t"
    assert lean_writer._Table(metadata, spec("n", "t", "select 1"), ["a"], ["long"]).location == "file:///w/t"


def test_the_manifests_read_back_with_every_reader(tmp_path):
    schema = {"type": "struct", "schema-id": 3, "fields": [{"id": 1, "name": "a", "required": False, "type": "long"}]}
    data = manifest_writer.NewDataFile(f"file://{tmp_path}/d.parquet", 100, 7, {1: 40}, {1: 7}, {1: 1},
                                       {1: (-5).to_bytes(8, "little", signed=True)}, {1: (9).to_bytes(8, "little")})
    body = manifest_writer.data_manifest([data], 42, schema, 0)
    (tmp_path / "m.avro").write_bytes(body)
    listed = manifest_writer.manifest_list([{
        "manifest_path": f"file://{tmp_path}/m.avro", "manifest_length": len(body), "partition_spec_id": 0,
        "content": 0, "sequence_number": 6, "min_sequence_number": 6, "added_snapshot_id": 42, "added_files_count": 1,
        "existing_files_count": 0, "deleted_files_count": 0, "added_rows_count": 7, "existing_rows_count": 0,
        "deleted_rows_count": 0, "partitions": []}], 42, 41, 6)
    (tmp_path / "l.avro").write_bytes(listed)

    from pyiceberg.io.pyarrow import PyArrowFileIO
    from pyiceberg.manifest import read_manifest_list

    io = PyArrowFileIO()
    manifest, = read_manifest_list(io.new_input(str(tmp_path / "l.avro")))
    assert (manifest.sequence_number, manifest.added_snapshot_id, manifest.added_rows_count) == (6, 42, 7)
    entry, = manifest.fetch_manifest_entry(io)
    assert entry.snapshot_id == 42 and entry.sequence_number == 6  # inherited from the list
    assert entry.data_file.file_path.endswith("d.parquet") and entry.data_file.record_count == 7
    assert entry.data_file.lower_bounds[1] == (-5).to_bytes(8, "little", signed=True)
    assert [(m.path, m.content) for m in fast.read_manifest_list(listed)] == [(f"file://{tmp_path}/m.avro", 0)]
    assert [(e.path, e.status, e.content) for e in fast.read_manifest_entries(body)] == [(data.path, 1, 0)]
    assert avro_manifests.only_added_and_inheriting(body)


def test_long_strings_get_truncated_bounds_that_still_hold_and_odd_values_get_none(world, ns):
    client, catalog, full, lean = world
    sql = ("select 'z' || repeat('y', 40) || range as s, date '1970-01-01' + range::integer as d, "
           "(range * 1.5)::decimal(30, 2) as wide from range(3)")
    full.publish(spec(ns, "p", "select 'a' as s, date '1970-01-01' as d"))
    assert lean.publish(spec(ns, "p", sql)) is None  # decimal(30, 2): DuckDB's 16-byte fixed is not for Iceberg
    full.publish(spec(ns, "q", "select 'a' as s"))
    lean.publish(spec(ns, "q", "select 'z' || repeat('y', 40) || range as s from range(3)"))
    table = catalog.load_table(f"{ns}.q")
    entry, = table.inspect.files().to_pylist()
    low, high = dict(entry["lower_bounds"])[1], dict(entry["upper_bounds"])[1]
    assert low == ("z" + "y" * 15).encode() and high == ("z" + "y" * 14 + "z").encode()
    values = [r["s"].encode() for r in table.scan().to_arrow().to_pylist()]
    assert all(low <= v <= high for v in values)
    assert table.scan(row_filter="s = 'zyyy'").to_arrow().num_rows == 0
    assert table.scan(row_filter=f"s = '{'z' + 'y' * 40 + '1'}'").to_arrow().num_rows == 1
    assert lean_writer._bound("date", "-0001-01-01", upper=False) is None  # a value Python cannot read: no bound
    assert lean_writer._bound("string", "\U0010ffff" * 17, upper=True) is None


def test_a_new_product_is_created_in_one_commit_as_the_full_writer_creates_it(world, ns):
    client, catalog, full, lean = world
    columns = [{"name": "id", "description": "the order"}, {"name": "name", "description": "who"}]
    tags = {"icemesh_tags": {}, "description": "orders, made lean"}
    by_full = full.publish(spec(ns, "by_full", TYPED_SQL.format(rows=50), columns=columns, **tags))
    by_lean = lean.publish(spec(ns, "by_lean", TYPED_SQL.format(rows=50), columns=columns, **tags))
    assert by_lean is not None and by_lean.rows == by_full.rows == 50
    assert by_lean.mode == by_full.mode == "create"
    a, b = catalog.load_table(f"{ns}.by_full"), catalog.load_table(f"{ns}.by_lean")
    assert b.schema() == a.schema() and b.schema().find_field("id").doc == "the order"
    assert b.spec() == a.spec() and b.sort_order() == a.sort_order() and b.format_version == a.format_version
    assert set(b.properties) == set(a.properties)
    same = {k: v for k, v in a.properties.items() if not k.endswith(("unique_id", "model", "invocation_id"))}
    assert {k: b.properties[k] for k in same} == same and b.properties["comment"] == "orders, made lean"
    assert len(b.snapshots()) == 1 and len(b.metadata.metadata_log) == 0  # created complete, in one commit
    assert b.current_snapshot().summary.operation.value == "append"
    assert b.scan().to_arrow().sort_by("id").to_pylist() == a.scan().to_arrow().sort_by("id").to_pylist()
    # A second run replaces it the lean way too, and a run that finds it created meanwhile gives way.
    assert lean.publish(spec(ns, "by_lean", TYPED_SQL.format(rows=60), columns=columns, **tags)).rows == 60
    assert catalog.load_table(f"{ns}.by_lean").scan().to_arrow().num_rows == 60


def test_a_contracts_not_null_is_kept_from_the_files_own_null_counts(world, ns):
    client, catalog, full, lean = world
    contract = {"contract_enforced": True, "columns": [{"name": "id", "not_null": True}, {"name": "note"}]}
    by_full = full.publish(spec(ns, "by_full", "select range::bigint as id, 'n' as note from range(5)", **contract))
    by_lean = lean.publish(spec(ns, "by_lean", "select range::bigint as id, 'n' as note from range(5)", **contract))
    assert by_lean is not None and by_lean.mode == by_full.mode == "create"
    a, b = catalog.load_table(f"{ns}.by_full"), catalog.load_table(f"{ns}.by_lean")
    assert b.schema() == a.schema() and b.schema().find_field("id").required
    assert lean.publish(spec(ns, "by_lean", "select range::bigint as id, null::varchar as note from range(7)", **contract))
    before = catalog.load_table(f"{ns}.by_lean")
    files = folder_files(before)
    broken = "select case when range = 3 then null else range end::bigint as id, 'n' as note from range(7)"
    with pytest.raises(ValueError, match="column id has 1 null values, but the contract makes it not_null"):
        lean.publish(spec(ns, "by_lean", broken, **contract))
    after = catalog.load_table(f"{ns}.by_lean")
    assert after.metadata_location == before.metadata_location and folder_files(after) == files
    assert after.scan().to_arrow().num_rows == 7
