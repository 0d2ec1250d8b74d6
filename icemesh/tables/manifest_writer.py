"""Iceberg v2 manifests and manifest lists for new data files of an unpartitioned table, written without pyiceberg.

The shapes follow the Iceberg spec's Avro schemas (field ids 0-4 and 100-140 for manifest entries, 500-519 for
manifest list entries); readers find fields by those ids. Entries are ADDED with the snapshot's id and inherit
their sequence numbers from the manifest list, as every writer's new manifests do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from icemesh.tables import avro_writer

ADDED = 1


@dataclass
class NewDataFile:
    path: str
    size: int
    records: int
    column_sizes: dict[int, int] = field(default_factory=dict)
    value_counts: dict[int, int] = field(default_factory=dict)
    null_counts: dict[int, int] = field(default_factory=dict)
    lower_bounds: dict[int, bytes] = field(default_factory=dict)
    upper_bounds: dict[int, bytes] = field(default_factory=dict)


def _map(field_id: int, key_id: int, value_type: str) -> dict:
    return {"name": None, "type": ["null", {
        "type": "array", "logicalType": "map",
        "items": {"type": "record", "name": f"k{key_id}_v{key_id + 1}", "fields": [
            {"name": "key", "type": "int", "field-id": key_id},
            {"name": "value", "type": value_type, "field-id": key_id + 1}]}}],
        "default": None, "field-id": field_id}


def _named(name: str, spec: dict) -> dict:
    return {**spec, "name": name}


_DATA_FILE = {"type": "record", "name": "r2", "fields": [
    {"name": "content", "type": "int", "field-id": 134},
    {"name": "file_path", "type": "string", "field-id": 100},
    {"name": "file_format", "type": "string", "field-id": 101},
    {"name": "partition", "type": {"type": "record", "name": "r102", "fields": []}, "field-id": 102},
    {"name": "record_count", "type": "long", "field-id": 103},
    {"name": "file_size_in_bytes", "type": "long", "field-id": 104},
    _named("column_sizes", _map(108, 117, "long")),
    _named("value_counts", _map(109, 119, "long")),
    _named("null_value_counts", _map(110, 121, "long")),
    _named("nan_value_counts", _map(137, 138, "long")),
    _named("lower_bounds", _map(125, 126, "bytes")),
    _named("upper_bounds", _map(128, 129, "bytes")),
    {"name": "key_metadata", "type": ["null", "bytes"], "default": None, "field-id": 131},
    {"name": "split_offsets", "type": ["null", {"type": "array", "items": "long", "element-id": 133}],
     "default": None, "field-id": 132},
    {"name": "equality_ids", "type": ["null", {"type": "array", "items": "int", "element-id": 136}],
     "default": None, "field-id": 135},
    {"name": "sort_order_id", "type": ["null", "int"], "default": None, "field-id": 140},
]}

MANIFEST_ENTRY = {"type": "record", "name": "manifest_entry", "fields": [
    {"name": "status", "type": "int", "field-id": 0},
    {"name": "snapshot_id", "type": ["null", "long"], "default": None, "field-id": 1},
    {"name": "sequence_number", "type": ["null", "long"], "default": None, "field-id": 3},
    {"name": "file_sequence_number", "type": ["null", "long"], "default": None, "field-id": 4},
    {"name": "data_file", "type": _DATA_FILE, "field-id": 2},
]}

MANIFEST_FILE = {"type": "record", "name": "manifest_file", "fields": [
    {"name": "manifest_path", "type": "string", "field-id": 500},
    {"name": "manifest_length", "type": "long", "field-id": 501},
    {"name": "partition_spec_id", "type": "int", "field-id": 502},
    {"name": "content", "type": "int", "field-id": 517},
    {"name": "sequence_number", "type": "long", "field-id": 515},
    {"name": "min_sequence_number", "type": "long", "field-id": 516},
    {"name": "added_snapshot_id", "type": "long", "field-id": 503},
    {"name": "added_files_count", "type": "int", "field-id": 504},
    {"name": "existing_files_count", "type": "int", "field-id": 505},
    {"name": "deleted_files_count", "type": "int", "field-id": 506},
    {"name": "added_rows_count", "type": "long", "field-id": 512},
    {"name": "existing_rows_count", "type": "long", "field-id": 513},
    {"name": "deleted_rows_count", "type": "long", "field-id": 514},
    {"name": "partitions", "type": ["null", {"type": "array", "element-id": 508, "items": {
        "type": "record", "name": "r508", "fields": [
            {"name": "contains_null", "type": "boolean", "field-id": 509},
            {"name": "contains_nan", "type": ["null", "boolean"], "default": None, "field-id": 518},
            {"name": "lower_bound", "type": ["null", "bytes"], "default": None, "field-id": 510},
            {"name": "upper_bound", "type": ["null", "bytes"], "default": None, "field-id": 511}]}}],
     "default": None, "field-id": 507},
    {"name": "key_metadata", "type": ["null", "bytes"], "default": None, "field-id": 519},
]}


def _pairs(values: dict) -> list[dict] | None:
    return [{"key": k, "value": v} for k, v in sorted(values.items())] if values else None


def data_manifest(files: list[NewDataFile], snapshot_id: int, table_schema: dict, spec_id: int) -> bytes:
    """A manifest of `files`, all ADDED by `snapshot_id`, for an unpartitioned spec."""
    records = [{
        "status": ADDED, "snapshot_id": snapshot_id, "sequence_number": None, "file_sequence_number": None,
        "data_file": {
            "content": 0, "file_path": f.path, "file_format": "PARQUET", "partition": {}, "record_count": f.records,
            "file_size_in_bytes": f.size, "column_sizes": _pairs(f.column_sizes),
            "value_counts": _pairs(f.value_counts),
            "null_value_counts": _pairs(f.null_counts), "nan_value_counts": None,
            "lower_bounds": _pairs(f.lower_bounds), "upper_bounds": _pairs(f.upper_bounds)},
    } for f in files]
    return avro_writer.container(MANIFEST_ENTRY, records, {
        "schema": json.dumps(table_schema, separators=(",", ":")), "schema-id": str(table_schema.get("schema-id", 0)),
        "partition-spec": "[]", "partition-spec-id": str(spec_id), "format-version": "2", "content": "data"})


def manifest_list(manifests: list[dict], snapshot_id: int, parent_id: int | None, sequence_number: int) -> bytes:
    """A v2 manifest list; each manifest is a dict of MANIFEST_FILE's field names."""
    metadata = {"snapshot-id": str(snapshot_id), "parent-snapshot-id": str(parent_id) if parent_id is not None
                else "null", "sequence-number": str(sequence_number), "format-version": "2"}
    return avro_writer.container(MANIFEST_FILE, manifests, metadata)
