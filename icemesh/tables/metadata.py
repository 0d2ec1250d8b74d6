"""Table metadata: building it for new tables and applying a commit's requirements and updates.

The Iceberg semantics of each update and requirement come from pyiceberg's models; this module adds
the catalog's own rules (fresh metadata-file names, locations confined to the warehouse).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import orjson

from pydantic import TypeAdapter, ValidationError
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.exceptions import ValidationError as IcebergValidationError
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionSpec
from pyiceberg.schema import Schema, index_by_id
from pyiceberg.table.metadata import TableMetadata, TableMetadataUtil, new_table_metadata
from pyiceberg.table.snapshots import MetadataLogEntry
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER, SortOrder
from pyiceberg.table.update import (
    AddPartitionSpecUpdate,
    AddSchemaUpdate,
    AddSnapshotUpdate,
    AddSortOrderUpdate,
    AssertCreate,
    AssignUUIDUpdate,
    RemoveSnapshotsUpdate,
    SetCurrentSchemaUpdate,
    SetDefaultSortOrderUpdate,
    SetDefaultSpecUpdate,
    SetLocationUpdate,
    SetPartitionStatisticsUpdate,
    SetPropertiesUpdate,
    SetStatisticsUpdate,
    TableRequirement,
    TableUpdate,
    UpgradeFormatVersionUpdate,
    update_table_metadata,
)

from icemesh.compat import pyiceberg as pyiceberg_compat
from icemesh.names import MAX_NAME_LENGTH, SAFE_NAME_RULE, is_safe_name
from icemesh.errors import BadRequest, CommitFailed

_UPDATES = TypeAdapter(list[TableUpdate])
_REQUIREMENTS = TypeAdapter(list[TableRequirement])
_VERSION = re.compile(r"/(\d+)-[^/]*\.metadata\.json$")

# Properties that steer where engines write files: they must stay inside the warehouse too.
PATH_PROPERTIES = ("write.data.path", "write.metadata.path", "write.object-storage.path", "write.folder-storage.path")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg')}" if where else str(err.get("msg"))


def parse_updates(raw: list[Any]) -> list[TableUpdate]:
    try:
        return _UPDATES.validate_python(raw)
    except ValidationError as exc:
        actions = {u.get("action") for u in raw if isinstance(u, dict)}
        raise BadRequest(f"Invalid table update ({_first_error(exc)}); actions sent: {sorted(map(str, actions))}") from None


def parse_requirements(raw: list[Any]) -> list[TableRequirement]:
    try:
        return _REQUIREMENTS.validate_python(raw)
    except ValidationError as exc:
        raise BadRequest(f"Invalid table requirement ({_first_error(exc)})") from None


def parse_model(model: type, raw: Any, what: str):
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise BadRequest(f"Invalid {what} ({_first_error(exc)})") from None


def check_column_names(schema: Schema) -> None:
    """Column names (nested ones too) follow the catalog's identifier rule: consumers splice them into SQL."""
    for field in index_by_id(schema).values():
        if not is_safe_name(field.name):
            raise BadRequest(f"Invalid column name {field.name!r}: use only {SAFE_NAME_RULE} "
                             f"(1-{MAX_NAME_LENGTH} characters)")


def check_new_schemas(updates: list[TableUpdate]) -> None:
    for update in updates:
        if isinstance(update, AddSchemaUpdate):
            check_column_names(update.schema_)


SUPPORTED_FORMAT_VERSIONS = (1, 2, 3)


def build_new_table(
    schema: dict, partition_spec: dict | None, write_order: dict | None, location: str, properties: dict[str, str]
) -> TableMetadata:
    """Fresh metadata for a create-table request; field ids are reassigned as the spec requires."""
    iceberg_schema = parse_model(Schema, schema, "schema")
    spec = parse_model(PartitionSpec, partition_spec, "partition-spec") if partition_spec else UNPARTITIONED_PARTITION_SPEC
    order = parse_model(SortOrder, write_order, "write-order") if write_order else UNSORTED_SORT_ORDER
    check_column_names(iceberg_schema)
    version = properties.get("format-version")
    if version is not None and version not in {str(v) for v in SUPPORTED_FORMAT_VERSIONS}:
        raise BadRequest(f"Format version {version} is not supported: this catalog writes format versions "
                         f"{', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))}")
    try:
        return _with_row_lineage(new_table_metadata(iceberg_schema, spec, order, location, dict(properties)))
    except (ValueError, IcebergValidationError, ValidationError) as exc:
        raise BadRequest(f"Cannot create table: {exc}") from None


def _with_row_lineage(metadata: TableMetadata) -> TableMetadata:
    """A new v3 table's `next-row-id` is 0 (required in v3; pyiceberg 0.12 leaves it unset)."""
    if metadata.format_version >= 3 and getattr(metadata, "next_row_id", None) is None:
        return metadata.model_copy(update={"next_row_id": 0})
    return metadata


_STRUCTURAL = (AssignUUIDUpdate, UpgradeFormatVersionUpdate, AddSchemaUpdate, AddPartitionSpecUpdate,
               AddSortOrderUpdate, SetLocationUpdate, SetPropertiesUpdate)


def initial_metadata(updates: list[TableUpdate]) -> tuple[TableMetadata, list[TableUpdate]]:
    """Build a new table from a create-commit's first schema, spec, order, location and properties.

    The client already assigned field ids (from the staged create) and its snapshots refer to them,
    so they are kept as sent. Returns the new metadata and the updates still to apply (snapshots...).
    """
    first: dict[type, Any] = {}
    again: set[type] = set()  # kinds added a second time: from then on, "-1" means the latest, applied in order
    rest: list[TableUpdate] = []
    for update in updates:
        kind = type(update)
        if kind in _STRUCTURAL and kind not in first:
            first[kind] = update
        elif kind is SetCurrentSchemaUpdate and AddSchemaUpdate in first and AddSchemaUpdate not in again and \
                update.schema_id in (-1, first[AddSchemaUpdate].schema_.schema_id):
            continue
        elif kind is SetDefaultSpecUpdate and AddPartitionSpecUpdate not in again and (
                AddPartitionSpecUpdate not in first or
                update.spec_id in (-1, first[AddPartitionSpecUpdate].spec.spec_id)):
            continue
        elif kind is SetDefaultSortOrderUpdate and AddSortOrderUpdate not in again and (
                AddSortOrderUpdate not in first or
                update.sort_order_id in (-1, first[AddSortOrderUpdate].sort_order.order_id)):
            continue
        else:
            if kind in _STRUCTURAL:
                again.add(kind)
            rest.append(update)
    if AddSchemaUpdate not in first:
        raise BadRequest("A create commit (assert-create) must include an add-schema update")
    schema: Schema = first[AddSchemaUpdate].schema_
    spec: PartitionSpec = first[AddPartitionSpecUpdate].spec if AddPartitionSpecUpdate in first else UNPARTITIONED_PARTITION_SPEC
    order: SortOrder = first[AddSortOrderUpdate].sort_order if AddSortOrderUpdate in first else UNSORTED_SORT_ORDER
    version = first[UpgradeFormatVersionUpdate].format_version if UpgradeFormatVersionUpdate in first else 2
    last_column_id = max(schema.highest_field_id, getattr(first[AddSchemaUpdate], "last_column_id", None) or 0)
    doc: dict[str, Any] = {
        "format-version": version,
        "table-uuid": str(first[AssignUUIDUpdate].uuid) if AssignUUIDUpdate in first else str(uuid.uuid4()),
        "location": first[SetLocationUpdate].location if SetLocationUpdate in first else "",
        "last-sequence-number": 0,
        "last-updated-ms": int(time.time() * 1000),
        "last-column-id": last_column_id,
        "schemas": [schema.model_dump(by_alias=True)],
        "current-schema-id": schema.schema_id,
        "partition-specs": [spec.model_dump(by_alias=True)],
        "default-spec-id": spec.spec_id,
        "last-partition-id": spec.last_assigned_field_id,
        "sort-orders": [order.model_dump(by_alias=True)],
        "default-sort-order-id": order.order_id,
        "properties": dict(first[SetPropertiesUpdate].updates) if SetPropertiesUpdate in first else {},
    }
    if version >= 3:
        doc["next-row-id"] = 0
    if version == 1:
        doc["schema"] = doc["schemas"][0]
        doc["partition-spec"] = [f.model_dump(by_alias=True) for f in spec.fields]
    try:
        return TableMetadataUtil.parse_obj(doc), rest
    except (ValueError, ValidationError) as exc:
        raise BadRequest(f"Cannot create table from commit: {exc}") from None


def is_create(requirements: list[TableRequirement]) -> bool:
    return any(isinstance(r, AssertCreate) for r in requirements)


def check_requirements(requirements: list[TableRequirement], base: TableMetadata | None) -> None:
    for requirement in requirements:
        try:
            requirement.validate(base)
        except CommitFailedException as exc:
            raise CommitFailed(str(exc)) from None


def _check_format_versions(updates: list[TableUpdate]) -> None:
    for update in updates:
        if isinstance(update, UpgradeFormatVersionUpdate) and update.format_version not in SUPPORTED_FORMAT_VERSIONS:
            raise BadRequest(f"Format version {update.format_version} is not supported: this catalog writes format "
                             f"versions {', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))}")


def upgrade_to_v3(base: TableMetadata) -> TableMetadata:
    """A v1/v2 table as v3 (pyiceberg 0.12 applies upgrades up to v2 only): the same table, and row lineage
    starting at 0 (the spec: existing rows have no row ids; the next snapshot's `first-row-id` is 0)."""
    if base.format_version == 1:
        base = update_table_metadata(base, (UpgradeFormatVersionUpdate(format_version=2),))
    doc = orjson.loads(serialize(base))
    doc.update({"format-version": 3, "next-row-id": 0, "last-updated-ms": int(time.time() * 1000)})
    return TableMetadataUtil.parse_obj(doc)


def apply_updates(base: TableMetadata | None, updates: list[TableUpdate], base_location: str | None) -> TableMetadata:
    _check_format_versions(updates)
    try:
        if base is None:
            base, updates = initial_metadata(updates)
            return update_table_metadata(base, tuple(updates), enforce_validation=True)
        if base.format_version < 3 and any(isinstance(u, UpgradeFormatVersionUpdate) and u.format_version == 3
                                           for u in updates):
            # The upgrade is applied first: later updates in the commit (a v3 snapshot) need the v3 table.
            upgraded = upgrade_to_v3(base)
            updates = [u for u in updates if not isinstance(u, UpgradeFormatVersionUpdate)]
            if not updates:
                return upgraded.model_copy(update={"metadata_log": upgraded.metadata_log + [
                    MetadataLogEntry(metadata_file=base_location, timestamp_ms=base.last_updated_ms)]}
                    if base_location else {})
            return pyiceberg_compat.apply_table_updates(upgraded, tuple(updates), base_location)
        return pyiceberg_compat.apply_table_updates(base, tuple(updates), base_location)
    except (ValueError, KeyError, IcebergValidationError, ValidationError, NotImplementedError) as exc:
        message = exc.errors()[0].get("msg") if isinstance(exc, ValidationError) else str(exc)
        raise BadRequest(f"Cannot apply table updates: {message}") from None


def adds_snapshot(updates: list[TableUpdate]) -> bool:
    return any(isinstance(u, AddSnapshotUpdate) for u in updates)


def sets_properties(updates: list[TableUpdate]) -> bool:
    return any(isinstance(u, SetPropertiesUpdate) for u in updates)


def remove_snapshots(metadata: TableMetadata, snapshot_ids: list[int]) -> TableMetadata:
    """The same metadata version without those snapshots (and their log entries and statistics)."""
    return pyiceberg_compat.apply_table_updates(metadata, (RemoveSnapshotsUpdate(snapshot_ids=snapshot_ids),))


def changed_fields(base: TableMetadata, new: TableMetadata) -> set[str]:
    """Model fields whose values differ (compared as models: no serialization on the commit path)."""
    names = set(type(base).model_fields) | set(type(new).model_fields)
    return {name for name in names if getattr(base, name, None) != getattr(new, name, None)}


def changes_nothing(base: TableMetadata, new: TableMetadata) -> bool:
    """True when applying a commit only touched the timestamps a new metadata version would carry."""
    return not (changed_fields(base, new) - {"last_updated_ms", "metadata_log"})


def check_consistent(metadata: TableMetadata, updates: list[TableUpdate]) -> None:
    """Refuse what pyiceberg applies without checking: a schema, spec or sort order added under an id the
    table already uses (readers could not tell them apart), or a spec or sort order on a column that does
    not exist. Only ids of the kinds this commit adds are checked, so older metadata never blocks a commit."""
    kinds = {type(u) for u in updates}
    columns = {fid for schema in metadata.schemas for fid in index_by_id(schema)}
    checks = [(AddSchemaUpdate, "schema-id", [s.schema_id for s in metadata.schemas], []),
              (AddPartitionSpecUpdate, "spec-id", [s.spec_id for s in metadata.partition_specs],
               [f.source_id for u in updates if isinstance(u, AddPartitionSpecUpdate) for f in u.spec.fields]),
              (AddSortOrderUpdate, "sort order-id", [o.order_id for o in metadata.sort_orders],
               [f.source_id for u in updates if isinstance(u, AddSortOrderUpdate) for f in u.sort_order.fields])]
    for kind, what, ids, sources in checks:
        if kind not in kinds:
            continue
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise BadRequest(f"Cannot apply table updates: {what} {duplicates[0]} is already used by the table; "
                             "add it under a new id")
        unknown = sorted(set(sources) - columns)
        if unknown:
            raise BadRequest(f"Cannot apply table updates: {kind.__name__.removesuffix('Update')} refers to field id "
                             f"{unknown[0]}, which is not a column of the table")


def file_locations(updates: list[TableUpdate]) -> list[tuple[str, str]]:
    """(what, location) of every file a commit makes part of the table: all must lie in the warehouse."""
    found = []
    for update in updates:
        if isinstance(update, AddSnapshotUpdate) and update.snapshot.manifest_list:
            found.append(("manifest-list", update.snapshot.manifest_list))
        elif isinstance(update, SetStatisticsUpdate):
            found.append(("statistics-path", update.statistics.statistics_path))
        elif isinstance(update, SetPartitionStatisticsUpdate):
            found.append(("statistics-path", update.partition_statistics.statistics_path))
    return found


def next_version(previous_location: str | None, metadata: TableMetadata) -> int:
    if previous_location:
        match = _VERSION.search(previous_location)
        if match:
            return int(match.group(1)) + 1
        return len(metadata.metadata_log) + 1
    return 0


def serialize(metadata: TableMetadata) -> bytes:
    return pyiceberg_compat.metadata_json(metadata)
