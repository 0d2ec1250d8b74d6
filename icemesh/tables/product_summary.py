"""What a table's (or view's) metadata says about it as a data product: its dbt properties, description,
columns with docs and types, snapshot and freshness. Pure: computed from the metadata a commit already holds
(a pyiceberg TableMetadata) or from a metadata file's JSON when an older catalog's index is filled.
"""

from __future__ import annotations

import json
import re
from typing import Any

_WORD = re.compile(r"\w+")

DBT_PREFIX = "icemesh.dbt."
_JSON_FIELDS = {"owner", "contract", "upstream", "freshness", "tags"}


def dbt_properties(properties: dict[str, str]) -> dict[str, Any]:
    dbt: dict[str, Any] = {}
    for key, value in properties.items():
        if key.startswith(DBT_PREFIX):
            name = key[len(DBT_PREFIX):]
            if name in _JSON_FIELDS:
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            dbt[name] = value
    return dbt


def from_document(doc: dict[str, Any]) -> dict[str, Any]:
    """A table metadata file's JSON."""
    properties = doc.get("properties") or {}
    current = doc.get("current-schema-id", 0)
    schemas = doc.get("schemas") or ([doc["schema"]] if "schema" in doc else [])
    schema = next((s for s in schemas if s.get("schema-id", 0) == current), schemas[0] if schemas else {})
    snapshots = doc.get("snapshots") or []
    current_id = doc.get("current-snapshot-id")
    current_snapshot = next((s for s in snapshots if s.get("snapshot-id") == current_id), None)
    return {
        "dbt": dbt_properties(properties),
        "description": properties.get("comment", ""),
        "columns": [{"name": f["name"], "type": f["type"] if isinstance(f["type"], str) else f["type"].get("type"),
                     "required": bool(f.get("required")), "doc": f.get("doc") or ""} for f in schema.get("fields", [])],
        "snapshots": len(snapshots),
        "current_snapshot_id": current_id if current_id not in (None, -1) else None,
        "last_updated_ms": (current_snapshot or {}).get("timestamp-ms") or doc.get("last-updated-ms"),
        "kind": "table",
    }


def from_view_document(doc: dict[str, Any]) -> dict[str, Any]:
    """A view product (dbt's `view` with catalog_name, on Spark): its properties as a table's, the current
    version's schema as its columns, no snapshots (it holds no data)."""
    properties = doc.get("properties") or {}
    versions = doc.get("versions") or []
    version = next((v for v in versions if v.get("version-id") == doc.get("current-version-id")), {})
    schema = next((s for s in doc.get("schemas") or [] if s.get("schema-id") == version.get("schema-id")), {})
    summary = from_document({"properties": properties, "schemas": [schema], "current-schema-id": schema.get("schema-id")})
    summary.update(kind="view", snapshots=0, current_snapshot_id=None, last_updated_ms=version.get("timestamp-ms"))
    return summary


def _type_name(field_type: Any) -> str:
    return str(field_type) if field_type.is_primitive else str(getattr(field_type, "type", field_type))


def from_metadata(metadata: Any) -> dict[str, Any]:
    """A pyiceberg TableMetadata, as `from_document` reads its file (no serialization, no file read)."""
    properties = dict(metadata.properties or {})
    schema = metadata.schema()
    current_id = metadata.current_snapshot_id
    current = next((s for s in metadata.snapshots if s.snapshot_id == current_id), None)
    return {
        "dbt": dbt_properties(properties),
        "description": properties.get("comment", ""),
        "columns": [{"name": f.name, "type": _type_name(f.field_type), "required": bool(f.required), "doc": f.doc or ""}
                    for f in schema.fields],
        "snapshots": len(metadata.snapshots),
        "current_snapshot_id": current_id if current_id not in (None, -1) else None,
        "last_updated_ms": current.timestamp_ms if current is not None else metadata.last_updated_ms,
        "kind": "table",
    }


def owner_text(dbt: dict[str, Any]) -> tuple[str, str]:
    """(email, name) of a product's dbt owner, lower case ('' when absent)."""
    owner = dbt.get("owner")
    if isinstance(owner, dict):
        return str(owner.get("email") or "").lower(), str(owner.get("name") or "").lower()
    return str(owner or "").lower(), ""


def search_text(name: str, summary: dict[str, Any]) -> str:
    """Every word a search may match, lower case (a superset: the service re-checks against what the caller
    may see, so a hidden column's name never decides a match)."""
    dbt = summary["dbt"]
    tags = dbt.get("tags") if isinstance(dbt.get("tags"), list) else []
    parts = [name, summary["description"], str(dbt.get("project", "")), str(dbt.get("model", "")),
             *owner_text(dbt), *map(str, tags)]
    for c in summary["columns"]:
        parts += [c["name"], c["doc"]]
    return "\n".join(p for p in parts if p).lower()


def words(text: str) -> list[str]:
    """The distinct words of a text, lower case, as the search index keeps them (at most 64 characters each)."""
    return sorted({w[:64] for w in _WORD.findall(text.lower())})
