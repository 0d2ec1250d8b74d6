"""The LF-tags a model declares (`icemesh_tags` in its config, `meta: {icemesh_tags: ...}` on its columns),
checked against the catalog's tag vocabulary before anything is written, and applied through the catalog.

dbt owns only the tags it applied itself (recorded in the product's `icemesh.dbt.tags` property): a tag a
governance team set on the product is never removed by a run.
"""

from __future__ import annotations

import json
from typing import Any

from icemesh.client import CatalogClient
from icemesh.dbt.product import APPLIED_TAGS_PROPERTY, ProductSpec

# (column or "" for the table itself, tag key) -> value
Tags = dict[tuple[str, str], str]


def declared(spec: ProductSpec) -> Tags:
    tags: Tags = {("", key): value for key, value in spec.tags.items()}
    for column in spec.columns:
        tags.update({(column.name, key): value for key, value in column.tags.items()})
    return tags


def check(vocabulary: dict[str, list[str]], spec: ProductSpec, produced_columns: list[str]) -> None:
    """Raise ValueError naming the first unknown key, value or column, with what is allowed."""
    produced = {c.lower() for c in produced_columns}
    for (column, key), value in sorted(declared(spec).items()):
        where = f"column {column}" if column else "icemesh_tags"
        if key not in vocabulary:
            known = ", ".join(sorted(vocabulary)) or "none yet"
            raise ValueError(f"{where}: unknown tag key {key!r} (the catalog's keys: {known}); "
                             f"an admin creates it with `icemesh tags create {key} --values ...`")
        if value not in vocabulary[key]:
            raise ValueError(f"{where}: {value!r} is not an allowed value of tag {key} "
                             f"(allowed: {', '.join(vocabulary[key])})")
        if column and column.lower() not in produced:
            raise ValueError(f"column {column} carries icemesh_tags but the model's SQL does not produce it")


def vocabulary(client: CatalogClient) -> dict[str, list[str]]:
    return {t["key"]: list(t["values"]) for t in client.request("GET", "/management/v1/tags")}


def previously_applied(properties: dict[str, str]) -> Tags:
    try:
        return {(entry["column"], entry["key"]): entry["value"]
                for entry in json.loads(properties.get(APPLIED_TAGS_PROPERTY, "[]"))}
    except (ValueError, KeyError, TypeError):
        return {}


def record(tags: Tags) -> str:
    """The `icemesh.dbt.tags` property: what this run applied, so the next run knows what it may remove."""
    return json.dumps([{"column": c, "key": k, "value": v} for (c, k), v in sorted(tags.items())])


def sync(client: CatalogClient, spec: ProductSpec, wanted: Tags, applied_before: Tags) -> None:
    """Assign the declared tags (ahead of the rows, so no row is ever readable under weaker tags) and remove
    the ones an earlier run applied that the model no longer declares."""
    for (column, key), value in sorted(wanted.items()):
        body: dict[str, Any] = {"key": key, "value": value, "table": spec.identifier, "ahead": True}
        if client.warehouse:  # the product's warehouse decides who owns it (a dev target publishes elsewhere)
            body["warehouse"] = client.warehouse
        if column:
            body["column"] = column
        client.request("POST", "/management/v1/tag-assignments", json=body)
    for (column, key) in sorted(set(applied_before) - set(wanted)):
        body = {"key": key, "table": spec.identifier}
        if client.warehouse:
            body["warehouse"] = client.warehouse
        if column:
            body["column"] = column
        client.request("POST", "/management/v1/tag-assignments/remove", json=body)
