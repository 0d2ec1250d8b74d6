"""What a published product carries besides its rows: `icemesh.` table properties from dbt."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from icemesh.client import CatalogClient

PROPERTY_PREFIX = "icemesh."


def product_properties(metadata: dict[str, Any]) -> dict[str, str]:
    """Flatten the materialization's metadata into string properties (`icemesh.dbt.project`, ...)."""
    properties = {}
    for key, value in sorted(metadata.items()):
        if value is None or value == "":
            continue
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        properties[f"{PROPERTY_PREFIX}dbt.{key}"] = text
    return properties


def record_product(client: CatalogClient, namespace: str, table: str, metadata: dict[str, Any]) -> None:
    """One commit that sets the properties; stale `icemesh.dbt.*` keys from earlier runs are removed."""
    path = f"/v1/{quote(client.prefix(), safe='')}/namespaces/{quote(namespace, safe='')}/tables/{quote(table, safe='')}"
    current = client.request("GET", path)["metadata"].get("properties", {})
    wanted = product_properties(metadata)
    stale = [k for k in current if k.startswith(f"{PROPERTY_PREFIX}dbt.") and k not in wanted]
    updates = [{"action": "set-properties", "updates": wanted}]
    if stale:
        updates.append({"action": "remove-properties", "removals": stale})
    client.request("POST", path, json={"requirements": [], "updates": updates})
