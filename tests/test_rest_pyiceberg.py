"""pyiceberg's RestCatalog against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pyiceberg.exceptions import (
    BadRequestError,
    NamespaceAlreadyExistsError,
    NamespaceNotEmptyError,
    NoSuchNamespaceError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import DayTransform
from pyiceberg.types import DoubleType, LongType, NestedField, StringType, TimestamptzType

ORDERS = pa.schema([("id", pa.int64()), ("amount", pa.float64())])


def orders(*rows):
    return pa.table({"id": [r[0] for r in rows], "amount": [r[1] for r in rows]}, schema=ORDERS)


def rows(table):
    return sorted(tuple(r.values()) for r in table.scan().to_arrow().to_pylist())


def test_namespace_lifecycle(rest, ns):
    rest.create_namespace(ns, {"owner": "sales"})
    with pytest.raises(NamespaceAlreadyExistsError):
        rest.create_namespace(ns)
    assert (ns,) in rest.list_namespaces()
    assert rest.load_namespace_properties(ns) == {"owner": "sales"}
    summary = rest.update_namespace_properties(ns, removals={"owner", "absent"}, updates={"tier": "gold"})
    assert summary.removed == ["owner"] and summary.missing == ["absent"] and summary.updated == ["tier"]
    assert rest.load_namespace_properties(ns) == {"tier": "gold"}
    rest.create_namespace((ns, "child"))
    assert rest.list_namespaces(ns) == [(ns, "child")]
    with pytest.raises(NamespaceNotEmptyError):
        rest.drop_namespace(ns)
    rest.drop_namespace((ns, "child"))
    rest.drop_namespace(ns)
    with pytest.raises(NoSuchNamespaceError):
        rest.load_namespace_properties(ns)


def test_create_append_overwrite_and_read(rest, ns):
    rest.create_namespace(ns)
    table = rest.create_table(f"{ns}.orders", schema=ORDERS)
    table.append(orders((1, 10.0), (2, 20.0)))
    table.append(orders((3, 30.0)))
    fresh = rest.load_table(f"{ns}.orders")
    assert rows(fresh) == [(1, 10.0), (2, 20.0), (3, 30.0)]
    assert len(fresh.metadata.snapshots) == 2
    fresh.overwrite(orders((9, 90.0)))
    assert rows(rest.load_table(f"{ns}.orders")) == [(9, 90.0)]
    with pytest.raises(TableAlreadyExistsError):
        rest.create_table(f"{ns}.orders", schema=ORDERS)
    assert rest.table_exists(f"{ns}.orders") and not rest.table_exists(f"{ns}.nope")


def test_schema_evolution_keeps_old_rows(rest, ns):
    rest.create_namespace(ns)
    table = rest.create_table(f"{ns}.orders", schema=ORDERS)
    table.append(orders((1, 1.0)))
    with table.update_schema() as update:
        update.add_column("note", StringType(), doc="free text")
        update.rename_column("amount", "total")
    table = rest.load_table(f"{ns}.orders")
    assert [f.name for f in table.schema().fields] == ["id", "total", "note"]
    assert table.schema().find_field("note").doc == "free text"
    table.append(pa.table({"id": [2], "total": [2.0], "note": ["x"]}))
    got = sorted(rest.load_table(f"{ns}.orders").scan().to_arrow().to_pylist(), key=lambda r: r["id"])
    assert got == [{"id": 1, "total": 1.0, "note": None}, {"id": 2, "total": 2.0, "note": "x"}]


def test_partitioned_table_and_time_travel(rest, ns):
    rest.create_namespace(ns)
    schema = Schema(NestedField(1, "id", LongType()), NestedField(2, "ts", TimestamptzType()), NestedField(3, "v", DoubleType()))
    spec = PartitionSpec(PartitionField(source_id=2, field_id=1000, transform=DayTransform(), name="ts_day"))
    table = rest.create_table(f"{ns}.events", schema=schema, partition_spec=spec)
    import datetime as dt

    ts = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    arrow_schema = pa.schema([("id", pa.int64()), ("ts", pa.timestamp("us", tz="UTC")), ("v", pa.float64())])
    table.append(pa.table({"id": [1], "ts": [ts], "v": [1.0]}, schema=arrow_schema))
    first = table.current_snapshot().snapshot_id
    table.append(pa.table({"id": [2], "ts": [ts + dt.timedelta(days=1)], "v": [2.0]}, schema=arrow_schema))
    table = rest.load_table(f"{ns}.events")
    assert table.spec().fields[0].name == "ts_day"
    assert table.scan().to_arrow().num_rows == 2
    assert table.scan(snapshot_id=first).to_arrow().column("id").to_pylist() == [1]


def test_stale_writer_gets_409_then_retry_succeeds(rest, http, ns):
    rest.create_namespace(ns)
    rest.create_table(f"{ns}.orders", schema=ORDERS)
    writer_a = rest.load_table(f"{ns}.orders")
    writer_b = rest.load_table(f"{ns}.orders")
    writer_a.append(orders((1, 1.0)))
    # B's view is stale: the server answers 409 and pyiceberg refreshes and retries by itself.
    writer_b.append(orders((2, 2.0)))
    table = rest.load_table(f"{ns}.orders")
    assert rows(table) == [(1, 1.0), (2, 2.0)]
    assert len(table.metadata.snapshots) == 2

    # The same conflict over raw HTTP: a requirement on an old snapshot is a 409 and changes nothing.
    stale = {"requirements": [{"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": writer_a.metadata.current_snapshot_id}],
             "updates": [{"action": "set-properties", "updates": {"k": "v"}}]}
    response = http.post(f"/namespaces/{ns}/tables/orders", json=stale)
    assert response.status_code == 409
    assert response.json()["error"]["type"] == "CommitFailedException"
    assert "k" not in rest.load_table(f"{ns}.orders").properties


def test_rename_register_and_drop(rest, ns):
    rest.create_namespace(ns)
    rest.create_namespace(f"{ns}_archive")
    table = rest.create_table(f"{ns}.orders", schema=ORDERS)
    table.append(orders((1, 1.0)))
    rest.rename_table(f"{ns}.orders", f"{ns}_archive.orders_2026")
    assert rest.list_tables(ns) == []
    moved = rest.load_table(f"{ns}_archive.orders_2026")
    assert rows(moved) == [(1, 1.0)]
    with pytest.raises(NoSuchTableError):
        rest.load_table(f"{ns}.orders")

    # Every file belongs to one table: a live table's metadata cannot be registered a second time...
    with pytest.raises(BadRequestError, match="overlaps another table's location"):
        rest.register_table(f"{ns}.orders_copy", moved.metadata_location)
    # ...but the files of a table dropped without purge can be adopted (by an admin, as here).
    location = moved.metadata_location
    rest.drop_table(f"{ns}_archive.orders_2026")
    registered = rest.register_table(f"{ns}.orders_copy", location)
    assert rows(registered) == [(1, 1.0)]
    with pytest.raises(TableAlreadyExistsError):
        rest.register_table(f"{ns}.orders_copy", location)
    rest.drop_table(f"{ns}.orders_copy")
    assert rest.list_tables(ns) == []


def test_create_table_transaction(rest, ns):
    rest.create_namespace(ns)
    txn = rest.create_table_transaction(f"{ns}.staged", schema=ORDERS)
    assert not rest.table_exists(f"{ns}.staged")  # staged: invisible until committed
    txn.table_metadata  # noqa: B018 - the staged metadata is available to the writer
    with txn.update_snapshot().fast_append() as snapshot:
        for data_file in _data_files(txn, orders((5, 5.0))):
            snapshot.append_data_file(data_file)
    txn.commit_transaction()
    assert rows(rest.load_table(f"{ns}.staged")) == [(5, 5.0)]


def test_create_table_transaction_ends_on_the_last_schema_and_spec_it_added(rest, ns):
    """pyiceberg sends `set-current-schema -1` after each schema it adds: the table is created with the last."""
    from pyiceberg.transforms import IdentityTransform

    rest.create_namespace(ns)
    txn = rest.create_table_transaction(f"{ns}.evolving", schema=ORDERS)
    with txn.update_schema() as update:
        update.add_column("country", StringType())
    with txn.update_spec() as spec:
        spec.add_identity("country")
    with txn.update_sort_order() as order:
        order.asc("country", IdentityTransform())
    txn.commit_transaction()
    table = rest.load_table(f"{ns}.evolving")
    assert [f.name for f in table.schema().fields] == ["id", "amount", "country"]
    assert [f.name for f in table.spec().fields] == ["country"]
    assert [f.source_id for f in table.sort_order().fields] == [3]
    table.append(pa.table({"id": [1], "amount": [1.0], "country": ["NL"]}))
    assert rows(table) == [(1, 1.0, "NL")]


def _data_files(txn, df):
    from pyiceberg.io.pyarrow import _dataframe_to_data_files

    return _dataframe_to_data_files(table_metadata=txn.table_metadata, df=df, io=txn._table.io)


def test_format_v3_tables_are_created_and_upgraded_to(rest, http, ns):
    """Format v3 over REST: pyiceberg creates and loads v3 tables (0.12 writes no v3 manifests, so Spark writes
    them: test_rest_spark), the catalog upgrades v1/v2 tables and keeps row lineage from `next-row-id` 0."""
    rest.create_namespace(ns)
    table = rest.create_table(f"{ns}.v3", schema=ORDERS, properties={"format-version": "3"})
    assert rest.load_table(f"{ns}.v3").format_version == 3 and table.metadata.next_row_id == 0

    old = rest.create_table(f"{ns}.upgraded", schema=ORDERS)
    old.append(orders((1, 1.0)))
    upgraded = http.post(f"/namespaces/{ns}/tables/upgraded",
                         json={"updates": [{"action": "upgrade-format-version", "format-version": 3}]})
    assert upgraded.status_code == 200, upgraded.text
    assert upgraded.json()["metadata"]["format-version"] == 3 and upgraded.json()["metadata"]["next-row-id"] == 0
    table = rest.load_table(f"{ns}.upgraded")
    assert table.format_version == 3 and rows(table) == [(1, 1.0)]  # the v2 rows, read as they were
    assert [e.metadata_file for e in table.metadata.metadata_log][-1] == old.metadata_location

    # A version this catalog cannot write is a 400 that says which it can, and changes nothing.
    before = table.metadata_location
    refused = http.post(f"/namespaces/{ns}/tables/upgraded",
                        json={"updates": [{"action": "upgrade-format-version", "format-version": 4}]})
    assert refused.status_code == 400 and "Format version 4 is not supported" in refused.json()["error"]["message"]
    assert rest.load_table(f"{ns}.upgraded").metadata_location == before
    create4 = http.post(f"/namespaces/{ns}/tables", json={"name": "v4", "schema": {
        "type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]},
        "properties": {"format-version": "4"}})
    assert create4.status_code == 400 and "not supported" in create4.text, create4.text


def test_views_through_pyiceberg(rest, ns):
    """pyiceberg creates, lists, loads, finds and drops views (the server lists the view endpoints in /v1/config)."""
    from pyiceberg.exceptions import NoSuchViewError, ViewAlreadyExistsError
    from pyiceberg.view.metadata import SQLViewRepresentation, ViewVersion

    rest.create_namespace(ns)
    rest.create_table(f"{ns}.orders", schema=ORDERS)
    schema = Schema(NestedField(1, "id", LongType()), NestedField(2, "amount", DoubleType()))
    version = ViewVersion(version_id=1, schema_id=0, summary={"engine-name": "pyiceberg"}, default_namespace=(ns,),
                          representations=[SQLViewRepresentation(type="sql", sql=f"SELECT id, amount FROM {ns}.orders",
                                                                 dialect="spark")])
    view = rest.create_view(f"{ns}.big_orders", schema=schema, view_version=version, properties={"owner": "sales"})
    assert view.metadata.current_version_id == 1
    assert rest.list_views(ns) == [(ns, "big_orders")]
    assert rest.view_exists(f"{ns}.big_orders") and not rest.view_exists(f"{ns}.nothing")
    loaded = rest.load_view(f"{ns}.big_orders")
    assert loaded.metadata.view_uuid == view.metadata.view_uuid and loaded.metadata.properties == {"owner": "sales"}
    assert loaded.metadata.versions[0].representations[0].root.sql == f"SELECT id, amount FROM {ns}.orders"
    with pytest.raises(ViewAlreadyExistsError):
        rest.create_view(f"{ns}.big_orders", schema=schema, view_version=version)
    assert rest.list_tables(ns) == [(ns, "orders")]  # views are not tables
    rest.drop_view(f"{ns}.big_orders")
    assert rest.list_views(ns) == []
    with pytest.raises(NoSuchViewError):
        rest.load_view(f"{ns}.big_orders")


def test_view_version_schema_id_follows_the_new_views_schema(rest, ns):
    """pyiceberg's create_view sends the schema with fresh ids (0) and the ViewVersion as the caller built it (here
    schema_id=1, as pyiceberg's own test_load_view does): a new view has one schema, so the version is on it."""
    from pyiceberg.view.metadata import SQLViewRepresentation, ViewVersion

    rest.create_namespace(ns)
    schema = Schema(NestedField(1, "id", LongType()), schema_id=1)
    version = ViewVersion(version_id=1, schema_id=1, timestamp_ms=1_700_000_000_000, summary={},
                          default_namespace=[ns],
                          representations=[SQLViewRepresentation(type="sql", sql="SELECT 1 AS id", dialect="spark")])
    view = rest.create_view(f"{ns}.one", schema, view_version=version)
    loaded = rest.load_view(f"{ns}.one")
    assert view == loaded
    assert [s.schema_id for s in loaded.metadata.schemas] == [loaded.metadata.versions[0].schema_id]


def test_exists_checks_answer_no_for_names_the_catalog_refuses(rest, ns):
    """A name with a space or a dot cannot exist here, so HEAD says 404 and pyiceberg's *_exists say False (a 400
    has no body on HEAD: pyiceberg raised a bare "Bad Request"); creating one is still refused, with the rule."""
    rest.create_namespace(ns)
    assert rest.namespace_exists("TEST NS") is False
    assert rest.table_exists(f"{ns}.a b") is False and rest.view_exists(f"{ns}.a b") is False
    with pytest.raises(BadRequestError, match="Invalid namespace name 'TEST NS'"):
        rest.create_namespace_if_not_exists("TEST NS")
    with pytest.raises(BadRequestError, match="Invalid table name"):
        rest.create_table(f"{ns}.a b", schema=ORDERS)
