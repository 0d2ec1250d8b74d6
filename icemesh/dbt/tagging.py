"""The LF-tags a model declares (`icemesh_tags` in its config, `meta: {icemesh_tags: ...}` on its columns),
checked against the catalog's tag vocabulary before anything is written, and declared in the product's
`icemesh.tags` property, which the catalog applies in the same commit as the rows.

The catalog keeps the declared tags equal to that property: a tag the model no longer declares goes with the
next run, a tag a governance team set on the product is never removed (nor overridden) by a run.
"""

from __future__ import annotations

import json

from icemesh.client import CatalogClient
from icemesh.dbt.product import ProductSpec

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


def record(tags: Tags) -> str:
    """The `icemesh.tags` property: every tag the model declares, table ("" column) and columns."""
    return json.dumps([{"column": c, "key": k, "value": v} for (c, k), v in sorted(tags.items())])
