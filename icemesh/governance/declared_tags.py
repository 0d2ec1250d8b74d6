"""Tags a table declares for itself, in its `icemesh.tags` property, applied by the commit that carries them.

Whoever may create a table may say how it is tagged as part of creating it: the tags and the first rows
land in one commit (the tags are in force before any row is readable; a failed commit leaves neither),
and later commits need only what owning the table gives. The property is a JSON list of
`{"column": "" | name, "key": ..., "value": ...}`; the catalog keeps the declared assignments exactly equal
to it. A declared tag may not change a value that governance set (directly or inherited).
"""

from __future__ import annotations

import json
from typing import Callable

from icemesh.errors import BadRequest, Forbidden
from icemesh.governance.tags import TagKey

PROPERTY = "icemesh.tags"

# (column or "" for the table, key) -> (value, field id of the column or None)
Declared = dict[tuple[str, str], tuple[str, int | None]]


def parse(raw: str, vocabulary: dict[str, TagKey], columns: list[tuple[int, str]]) -> Declared:
    """The declared tags, checked against the tag vocabulary and the table's current columns."""
    try:
        entries = json.loads(raw)
    except ValueError:
        raise BadRequest(f"Property {PROPERTY} must be a JSON list of {{\"column\", \"key\", \"value\"}}") from None
    if not isinstance(entries, list):
        raise BadRequest(f"Property {PROPERTY} must be a JSON list of {{\"column\", \"key\", \"value\"}}")
    ids = {name: fid for fid, name in columns}
    declared: Declared = {}
    for entry in entries:
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k, ""), str) for k in ("column", "key", "value")):
            raise BadRequest(f"Property {PROPERTY}: each entry is {{\"column\": \"\" or a column, \"key\": ..., \"value\": ...}}")
        column, key, value = entry.get("column", ""), entry.get("key", ""), entry.get("value", "")
        tag = vocabulary.get(key)
        if tag is None:
            known = ", ".join(sorted(vocabulary)) or "none yet"
            raise BadRequest(f"Property {PROPERTY}: unknown tag key {key!r} (the catalog's keys: {known}); an admin "
                             f"creates it with `icemesh tags create {key} --values ...`")
        if value not in tag.values:
            raise BadRequest(f"Property {PROPERTY}: {value!r} is not an allowed value of tag {key} "
                             f"(allowed: {', '.join(tag.values)})")
        if column and column not in ids:
            raise BadRequest(f"Property {PROPERTY}: the table has no column {column!r} to tag")
        if (column, key) in declared and declared[(column, key)][0] != value:
            raise BadRequest(f"Property {PROPERTY} declares {key} twice for {column or 'the table'}")
        declared[(column, key)] = (value, ids.get(column) if column else None)
    return declared


def check_not_governed(declared: Declared, nearest: Callable[[str, str], tuple | None], principal: str,
                       resource: str) -> None:
    """Refuse a declared value that differs from one governance set for the same resource (directly or
    inherited from the namespace): `nearest(column, key)` answers (resource, value, assigned_by, declared)."""
    for (column, key), (value, _fid) in sorted(declared.items()):
        found = nearest(column, key)
        if found is None:
            continue
        where, current, assigned_by, _is_declared = found
        if assigned_by is None and current != value:
            target = f"column {resource}.{column}" if column else f"table {resource}"
            raise Forbidden(f"Property {PROPERTY}: tag {key}={current} on {_describe(where)} was set by governance; "
                             f"{principal} cannot declare {key}={value} on {target} (ask an admin)")


def _describe(resource: tuple) -> str:
    ns, table, column = resource
    if column:
        return f"column {ns}.{table}.{column}"
    if table:
        return f"table {ns}.{table}"
    return f"namespace {ns}"
