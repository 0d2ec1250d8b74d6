"""Iceberg view metadata (the view spec, format version 1): built from a create request, changed by a replace's
updates, written as JSON. pyiceberg 0.12 models view metadata but applies no view updates, so they are here.

Kept as the spec's JSON (a dict), validated through pyiceberg's ViewMetadata model before it is written.
"""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

import orjson
from pydantic import ValidationError
from pyiceberg.schema import Schema
from pyiceberg.view.metadata import ViewMetadata

from icemesh.errors import BadRequest, CommitFailed
from icemesh.tables.metadata import check_column_names, parse_model

LAST_ADDED = -1


def _schema(raw: Any) -> dict[str, Any]:
    schema = parse_model(Schema, raw, "view schema")
    check_column_names(schema)
    return orjson.loads(schema.model_dump_json())


def _now() -> int:
    return int(time.time() * 1000)


def new_view(request: dict[str, Any], location: str) -> dict[str, Any]:
    """A view's first metadata from a CreateViewRequest (its schema, its first version, its properties)."""
    version = request.get("view-version")
    if not isinstance(version, dict) or not version.get("representations"):
        raise BadRequest("A view needs a view-version with at least one representation (its SQL and dialect)")
    schema = _schema(request.get("schema"))
    schema.setdefault("schema-id", 0)
    # A new view has exactly one schema, the request's, so its first version can only mean that one, whatever id
    # the version names: pyiceberg sends the schema with fresh ids (0) and the caller's version as given (often
    # `schema-id` 1), and the reference catalog builds the version on the request's schema too.
    version = {**version, "version-id": version.get("version-id") or 1, "schema-id": schema["schema-id"]}
    version.setdefault("timestamp-ms", _now())
    doc = {
        "view-uuid": str(uuid.uuid4()), "format-version": 1, "location": location,
        "schemas": [schema], "current-version-id": version["version-id"], "versions": [version],
        "version-log": [{"timestamp-ms": version["timestamp-ms"], "version-id": version["version-id"]}],
        "properties": {str(k): str(v) for k, v in (request.get("properties") or {}).items()},
    }
    return validated(doc)


def check_requirements(doc: dict[str, Any], requirements: list[Any]) -> None:
    for requirement in requirements or []:
        kind = requirement.get("type") if isinstance(requirement, dict) else None
        if kind == "assert-view-uuid":
            if requirement.get("uuid") != doc["view-uuid"]:
                raise CommitFailed(f"View UUID is {doc['view-uuid']}, not {requirement.get('uuid')}: the view was "
                                   "replaced by another one; load it again")
        else:
            raise BadRequest(f"Unknown view requirement {kind!r}: views take assert-view-uuid")


def apply_updates(base: dict[str, Any], updates: list[Any]) -> dict[str, Any]:
    """The metadata after a replace's updates; `-1` means the schema or version this commit added last."""
    doc = copy.deepcopy(base)
    last_schema: int | None = None
    last_version: int | None = None
    for update in updates or []:
        action = update.get("action") if isinstance(update, dict) else None
        if action == "assign-uuid":
            if update.get("uuid") != doc["view-uuid"]:
                raise BadRequest("A view's UUID cannot change")
        elif action == "upgrade-format-version":
            if update.get("format-version") != 1:
                raise BadRequest(f"View format version {update.get('format-version')} is not supported: views are "
                                 "format version 1")
        elif action == "add-schema":
            schema = _schema(update.get("schema"))
            same = next((s for s in doc["schemas"] if _fields(s) == _fields(schema)), None)
            if same is not None:
                last_schema = same["schema-id"]
                continue
            schema["schema-id"] = max(s["schema-id"] for s in doc["schemas"]) + 1
            doc["schemas"].append(schema)
            last_schema = schema["schema-id"]
        elif action == "set-location":
            raise BadRequest("A view's location is chosen by the catalog and cannot change")
        elif action == "set-properties":
            doc["properties"].update({str(k): str(v) for k, v in (update.get("updates") or {}).items()})
        elif action == "remove-properties":
            for key in update.get("removals") or []:
                doc["properties"].pop(key, None)
        elif action == "add-view-version":
            version = dict(update.get("view-version") or {})
            if not version.get("representations"):
                raise BadRequest("add-view-version needs a view-version with at least one representation")
            if version.get("schema-id") == LAST_ADDED:
                if last_schema is None:
                    raise BadRequest("add-view-version names the last added schema (-1), but none was added")
                version["schema-id"] = last_schema
            if version.get("schema-id") not in {s["schema-id"] for s in doc["schemas"]}:
                raise BadRequest(f"add-view-version names schema {version.get('schema-id')}, which the view lacks")
            version.setdefault("timestamp-ms", _now())
            same = next((v for v in doc["versions"] if _content(v) == _content(version)), None)
            if same is not None:
                last_version = same["version-id"]
                continue
            version["version-id"] = max(v["version-id"] for v in doc["versions"]) + 1
            doc["versions"].append(version)
            last_version = version["version-id"]
        elif action == "set-current-view-version":
            target = update.get("view-version-id")
            if target == LAST_ADDED:
                if last_version is None:
                    raise BadRequest("set-current-view-version names the last added version (-1), but none was added")
                target = last_version
            if target not in {v["version-id"] for v in doc["versions"]}:
                raise BadRequest(f"set-current-view-version names version {target}, which the view lacks")
            if target != doc["current-version-id"]:
                doc["current-version-id"] = target
                doc["version-log"].append({"timestamp-ms": _now(), "version-id": target})
        else:
            raise BadRequest(f"Unknown view update {action!r}")
    return validated(doc)


def _fields(schema: dict[str, Any]) -> Any:
    return orjson.dumps(schema.get("fields"))


def _content(version: dict[str, Any]) -> Any:
    """What makes two versions the same (ids and times aside)."""
    return orjson.dumps({k: version.get(k) for k in ("schema-id", "representations", "default-catalog",
                                                      "default-namespace", "summary")}, option=orjson.OPT_SORT_KEYS)


def validated(doc: dict[str, Any]) -> dict[str, Any]:
    try:
        ViewMetadata.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise BadRequest(f"Invalid view metadata ({where}): {first.get('msg')}") from None
    return doc


def current_schema(doc: dict[str, Any]) -> dict[str, Any]:
    version = next(v for v in doc["versions"] if v["version-id"] == doc["current-version-id"])
    return next(s for s in doc["schemas"] if s["schema-id"] == version["schema-id"])


def serialize(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc)
