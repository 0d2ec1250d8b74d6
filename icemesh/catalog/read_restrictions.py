"""A reader's data filter as the REST spec's `read-restrictions` on loadTable (apache/iceberg#13879): the row
filter as an Expression, and a `required-column-projections` entry (field id, action) per masked column.

An action that cannot apply to a column's type is served as the one that reveals least and fits every type
(`mask-to-fixed-value`), never dropped: a mask that does not fit must not become an unmasked column. The spec
forbids `replace-with-null` on a required column, so it becomes the fixed value there too.
"""

from __future__ import annotations

from typing import Any

from icemesh.governance.data_filters import Restrictions
from icemesh.tables import row_filters

FIXED = "mask-to-fixed-value"
STRINGS = ("string", "binary", "fixed")
TIMES = ("date", "timestamp", "timestamptz", "timestamp_ns", "timestamptz_ns")
FITS = {
    "hash-sha256": lambda t: t == "string",
    "show-first-4": lambda t: t == "string",
    "show-last-4": lambda t: t == "string",
    "truncate-to-year": lambda t: t in TIMES,
    "truncate-to-month": lambda t: t in TIMES,
    "truncate-to-day": lambda t: t in TIMES,
}


def action_for(action: str, field: dict) -> str:
    kind = field.get("type") if isinstance(field.get("type"), str) else "nested"
    if action == "replace-with-null":
        return FIXED if field.get("required") else action
    fits = FITS.get(action)
    if fits is not None and not fits(kind):
        return FIXED
    return action


def served(restrictions: Restrictions, fields: list[dict]) -> dict[str, Any] | None:
    if not restrictions:
        return None
    out: dict[str, Any] = {}
    by_name = {f["name"]: f for f in fields}
    projections = [{"field-id": by_name[c]["id"], "action": action_for(a, by_name[c])}
                   for c, a in sorted(restrictions.masks.items(), key=lambda item: by_name.get(item[0], {}).get("id", 0))
                   if c in by_name]
    if projections:
        out["required-column-projections"] = projections
    if restrictions.row_filter is not None:
        out["row-filter"] = row_filters.to_json(restrictions.row_filter)
    return out or None
