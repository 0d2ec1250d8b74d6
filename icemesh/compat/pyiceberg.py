"""pyiceberg 0.12's private APIs icemesh uses, in one place: the Glue table shapes its GlueCatalog writes (so Glue
tables icemesh writes are exactly what pyiceberg's own GlueCatalog reads), its Arrow-to-Iceberg schema conversion,
and the REST catalog's conditional load (If-None-Match, which 0.12 does not expose).
"""

from __future__ import annotations

from typing import Any

PINNED = "0.12"


def glue_database_input(name: str, properties: dict[str, str]) -> dict:
    from pyiceberg.catalog.glue import _construct_database_input

    return _construct_database_input(name, properties)


def glue_table_input(name: str, metadata_location: str, properties: dict[str, str], metadata: Any,
                     glue_table: dict | None, previous_metadata_location: str | None) -> dict:
    from pyiceberg.catalog.glue import _construct_table_input

    return _construct_table_input(name, metadata_location, properties, metadata, glue_table, previous_metadata_location)


def glue_rename_input(name: str, glue_table: dict) -> dict:
    from pyiceberg.catalog.glue import _construct_rename_table_input

    return _construct_rename_table_input(name, glue_table)


def iceberg_schema_of(arrow_schema):
    """An Arrow schema as an Iceberg schema (field ids still to assign), as pyiceberg's create_table converts it."""
    from pyiceberg.catalog import Catalog

    return Catalog._convert_schema_if_needed(arrow_schema)


def conditional_load(catalog, identifier: tuple[str, ...], etag: str | None):
    """GET the table with If-None-Match through the catalog's own session (its auth, retries, headers)."""
    from pyiceberg.catalog.rest import Endpoints

    url = catalog.url(Endpoints.load_table, prefixed=True, **catalog._split_identifier_for_path(identifier))
    mode = catalog.properties.get("snapshot-loading-mode")
    return catalog._session.get(url, params={"snapshots": mode} if mode else None,
                                headers={"If-None-Match": etag} if etag else None)


def table_from_response(catalog, identifier: tuple[str, ...], body: str):
    from pyiceberg.catalog.rest import TableResponse

    return catalog._response_to_table(identifier, TableResponse.model_validate_json(body))


def metadata_json(metadata: Any) -> bytes:
    """A metadata file's JSON, format v3 included: 0.12's TableMetadataV3.model_dump_json refuses to write
    (pyiceberg's writers do not support v3 yet), though the model and its pydantic serializer are complete."""
    from pydantic import BaseModel

    return BaseModel.model_dump_json(metadata, exclude_none=True, by_alias=True).encode("utf-8")


def expression_to_json(expression) -> Any:
    """A pyiceberg expression as the REST spec's Expression JSON: 0.12 serializes expressions only inside its scan
    planning request model."""
    import json

    from pyiceberg.catalog.rest.scan_planning import PlanTableScanRequest

    return json.loads(PlanTableScanRequest(filter=expression).model_dump_json(by_alias=True))["filter"]


def expression_from_json(data: Any):
    """The REST spec's Expression JSON as a pyiceberg expression (ValueError when it is not one)."""
    from pydantic import ValidationError
    from pyiceberg.catalog.rest.scan_planning import PlanTableScanRequest

    try:
        return PlanTableScanRequest.model_validate({"filter": data}).filter
    except ValidationError as exc:
        raise ValueError(f"not an Iceberg expression: {exc.errors()[0].get('msg')}") from None


def apply_table_updates(base, updates: tuple, metadata_location: str | None = None):
    """`update_table_metadata` without its closing deep copy of the whole metadata, a third of a commit's server
    time on a table with history (profiled: benchmarks/commit_path.py). pyiceberg's models are frozen and each
    update builds new containers (`model_copy(update=...)`), so the result may share what it did not change with
    `base`; icemesh never mutates metadata in place. The rest is the same steps: each update in order, the
    metadata log and the last-updated time when something changed, the spec and sort order checked."""
    from datetime import datetime

    from pyiceberg.table.update import _apply_table_update, _TableMetadataUpdateContext, _update_table_metadata_log
    from pyiceberg.utils.datetime import datetime_to_millis

    context = _TableMetadataUpdateContext()
    metadata = base
    for update in updates:
        metadata = _apply_table_update(update, metadata, context)
    if context.has_changes():
        if metadata_location:
            metadata = _update_table_metadata_log(metadata, metadata_location, base.last_updated_ms)
        if base.last_updated_ms == metadata.last_updated_ms:
            metadata = metadata.model_copy(update={"last_updated_ms": datetime_to_millis(datetime.now().astimezone())})
    metadata.spec().check_compatible(metadata.schema())
    metadata.sort_order().check_compatible(metadata.schema())
    return metadata
