"""A dbt `view` model with catalog_name, published on Spark as an Iceberg view product.

Spark's Iceberg catalog creates the view (its SQL, schema and dialect, as Spark writes them); this module then
records what makes it a product, the `icemesh.dbt.*` properties and the description a table product carries, with
one view commit through the catalog's REST API (`set-properties`, asserting the view's uuid), as the project's
principal, which owns the view it created. Nothing of the model's config is pasted into SQL.

A view product holds no data: its readers run its SQL on the products it names, each governed on its own, so it
never widens what they may read. Tags are not declared by view models (governance tags a view by name).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from icemesh.client import CatalogClient
from icemesh.dbt import catalogs
from icemesh.dbt.product import PROPERTY_PREFIX, ProductSpec


def _spec(product: dict[str, Any]) -> ProductSpec:
    return ProductSpec.from_config(dict(product))


def check(client: CatalogClient, product: dict[str, Any]) -> None:
    """What must hold before the view is created (raises ValueError with the one line dbt shows)."""
    spec = _spec(product)
    elsewhere = catalogs.mismatch(spec.catalog_entry, client.uri, client.warehouse)
    if elsewhere:
        raise ValueError(elsewhere)
    if spec.tags or any(c.tags for c in spec.columns):
        raise ValueError(f"view model {spec.model} declares icemesh_tags: a view product's tags are set by governance "
                         f"(icemesh tag --table {spec.identifier} ...), not by the model")


def _path(client: CatalogClient, spec: ProductSpec) -> str:
    namespace = "\x1f".join(spec.namespace.split("."))
    return (f"/v1/{quote(client.prefix(), safe='')}/namespaces/{quote(namespace, safe='')}/views/"
            f"{quote(spec.table, safe='')}")


def describe(client: CatalogClient, product: dict[str, Any]) -> dict[str, Any]:
    """Record the product's properties on the view Spark just created or replaced; stale ones are removed."""
    spec = _spec(product)
    path = _path(client, spec)
    loaded = client.request("GET", path)
    metadata = loaded["metadata"]
    wanted = spec.properties()
    current = metadata.get("properties") or {}
    stale = [k for k in current if k.startswith(PROPERTY_PREFIX) and k not in wanted]
    updates: list[dict[str, Any]] = [{"action": "set-properties", "updates": wanted}]
    if stale:
        updates.append({"action": "remove-properties", "removals": stale})
    client.request("POST", path, json={"requirements": [{"type": "assert-view-uuid", "uuid": metadata["view-uuid"]}],
                                       "updates": updates})
    return {"view": spec.identifier, "version": metadata.get("current-version-id")}
