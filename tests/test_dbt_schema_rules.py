"""The rules behind `materialized='iceberg'` that need no server: how a product's schema follows its model
(on_schema_change, full replaces), how rows are shaped to it, and how `partition_by` is read."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pyiceberg.schema import Schema
from pyiceberg.types import DecimalType, DoubleType, FloatType, IntegerType, LongType, NestedField, StringType

from icemesh.dbt import partitioning, schema_sync
from icemesh.dbt.product import ProductSpec


def schema(*fields: tuple[str, object, bool]) -> Schema:
    return Schema(*(NestedField(i + 1, name, kind, required=required) for i, (name, kind, required) in enumerate(fields)))


EXISTING = schema(("id", IntegerType(), True), ("amount", FloatType(), False), ("note", StringType(), False))


def test_model_schema_takes_required_and_docs_from_the_contract():
    spec = ProductSpec.from_config({
        "namespace": "s", "table": "t", "project": "s", "model": "t", "unique_id": "model.s.t", "sql": "select 1",
        "contract_enforced": True,
        "columns": [{"name": "ID", "description": "The id.", "not_null": True}, {"name": "label", "description": ""}]})
    built = schema_sync.model_schema(pa.schema([("id", pa.int32()), ("label", pa.string())]), spec)
    assert built.find_field("id").required and built.find_field("id").doc == "The id."  # YAML case ignored
    assert not built.find_field("label").required and built.find_field("label").doc is None


def test_ignore_writes_the_products_columns():
    wanted = schema(("id", IntegerType(), False), ("amount", FloatType(), False), ("extra", StringType(), False))
    changes = schema_sync.plan(EXISTING, wanted, "append", "ignore")
    assert not changes.add and not changes.drop and not changes.promote


def test_fail_names_every_difference_and_the_ways_out():
    wanted = schema(("id", LongType(), False), ("amount", FloatType(), False), ("extra", StringType(), False))
    with pytest.raises(ValueError, match=r"new: extra; gone: note; retyped: id int -> long\): set on_schema_change"):
        schema_sync.plan(EXISTING, wanted, "merge", "fail")


def test_append_new_columns_adds_optional_columns_only():
    wanted = schema(("id", IntegerType(), True), ("extra", StringType(), True))
    changes = schema_sync.plan(EXISTING, wanted, "append", "append_new_columns")
    assert [(f.name, f.required) for f in changes.add] == [("extra", False)] and not changes.drop


def test_sync_all_columns_promotes_types_and_drops_gone_columns():
    wanted = schema(("id", LongType(), True), ("amount", DoubleType(), False))
    changes = schema_sync.plan(EXISTING, wanted, "delete+insert", "sync_all_columns")
    assert changes.promote == {"id": LongType(), "amount": DoubleType()} and changes.drop == ["note"]


def test_sync_all_columns_refuses_a_type_iceberg_cannot_promote():
    wanted = schema(("id", StringType(), True), ("amount", FloatType(), False), ("note", StringType(), False))
    with pytest.raises(ValueError, match="column id changes type from int to string.*--full-refresh"):
        schema_sync.plan(EXISTING, wanted, "append", "sync_all_columns")


def test_a_replace_rewrites_what_cannot_evolve_and_tightens_required():
    wanted = schema(("id", StringType(), True), ("amount", FloatType(), True), ("note", StringType(), False))
    changes = schema_sync.plan(EXISTING, wanted, "replace", "ignore")
    assert changes.drop == ["id"] and [f.name for f in changes.add] == ["id"]  # every row is rewritten anyway
    assert changes.require == ["amount"] and changes.incompatible


def test_conform_orders_casts_fills_and_refuses_nulls_in_required_columns():
    target = schema(("id", LongType(), True), ("amount", DecimalType(10, 2), False), ("note", StringType(), False))
    data = pa.table({"amount": pa.array([1.5, None]), "ID": pa.array([1, 2], pa.int32())})
    rows = schema_sync.conform(data, target)
    assert rows.column_names == ["id", "amount", "note"] and rows.schema.field("id").type == pa.int64()
    assert rows.column("note").null_count == 2 and not rows.schema.field("id").nullable
    with pytest.raises(ValueError, match="column id has 1 null values, but the contract makes it not_null"):
        schema_sync.conform(pa.table({"id": pa.array([1, None])}), target)


@pytest.mark.parametrize("entry, column, transform", [
    ("customer_id", "customer_id", "identity"), ("identity(customer_id)", "customer_id", "identity"),
    ("year(ts)", "ts", "year"), ("month(ts)", "ts", "month"), ("DAY( ts )", "ts", "day"), ("hour(ts)", "ts", "hour"),
    ("bucket(16, customer_id)", "customer_id", "bucket[16]"), ("truncate(4, sku)", "sku", "truncate[4]"),
])
def test_partition_transforms(entry, column, transform):
    term = partitioning.parse(entry)
    assert (term.column, str(term.transform)) == (column, transform)


@pytest.mark.parametrize("entry", ["bucket(customer_id)", "day(1, ts)", "months(ts)", "x; drop table y", "truncate(0, sku)"])
def test_partition_entries_that_are_not_transforms_are_refused(entry):
    with pytest.raises(ValueError, match="is not a transform: use col, identity"):
        partitioning.parse(entry)


def test_partition_columns_must_exist_and_suit_the_transform():
    model = schema(("id", IntegerType(), False), ("sku", StringType(), False))
    with pytest.raises(ValueError, match="names column 'ts', which the model does not produce"):
        partitioning.parse_all(("day(ts)",), model)
    with pytest.raises(ValueError, match="cannot apply to sku"):
        partitioning.parse_all(("day(sku)",), model)
