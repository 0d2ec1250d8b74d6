"""From the catalog's change feed to Prefect events, so a deployment runs when its upstream products change.

`forward_catalog_events` reads `GET /management/v1/events` (commits only, as the caller may see them) after a cursor
and emits one Prefect event per new snapshot of a product, `icemesh.product.updated`, whose resource is the
product's asset key (assets.py); it returns the cursor to resume from. Run it where Prefect's API is reachable (a
small always-on flow, or a loop of your own). `upstream_trigger(project_dir)` is the deployment trigger that
matches the products a dbt project declares as upstream (`dependencies.yml`).
"""

from __future__ import annotations

from typing import Any

from icemesh.client import CatalogClient
from icemesh.protocol import SNAPSHOT_EVENTS
from icemesh.prefect.assets import asset_key, catalog_uri

EVENT = "icemesh.product.updated"


def forward_catalog_events(client: CatalogClient | None = None, after: int = 0, wait: float = 0.0,
                           limit: int = 100) -> tuple[int, list[Any]]:
    """Emit `icemesh.product.updated` for each commit after `after`; returns (next cursor, the events emitted)."""
    from prefect.events import emit_event

    client = client or CatalogClient.from_env()
    params: dict[str, Any] = {"after": after, "limit": limit, "type": list(SNAPSHOT_EVENTS)}
    if wait:
        params["wait"] = wait
    answer = client.request("GET", "/management/v1/events", params=params)
    emitted = []
    for event in answer.get("events", []):
        identifier = event.get("identifier") or {}
        product = ".".join([*identifier.get("namespace", []), identifier.get("name", "")])
        snapshot = event.get("snapshot-id")
        if not identifier or snapshot is None:
            continue  # a commit the caller may see but not read (no snapshot): nothing to rebuild from
        sent = emit_event(EVENT, resource={"prefect.resource.id": asset_key(client, product, event.get("warehouse")),
                                           "prefect.resource.name": product,
                                           "icemesh.snapshot-id": str(snapshot)},
                          payload={"event-id": event.get("event-id"), "principal": event.get("principal"),
                                   "summary": event.get("summary") or {}})
        if sent is not None:
            emitted.append(sent)
    return int(answer.get("next-after", after)), emitted


def upstream_trigger(project_dir: str, client: CatalogClient | None = None, within_s: int = 0):
    """A DeploymentEventTrigger firing on a new snapshot of any product of the projects `project_dir` declares."""
    from prefect.events import DeploymentEventTrigger

    from icemesh.dbt.resolver import declared_projects

    client = client or CatalogClient.from_env()
    upstream = set(declared_projects(project_dir))
    # only the declared projects' products: the catalog filters, however large the mesh
    products = client.request("GET", "/management/v1/products", params={"project": sorted(upstream)}) if upstream else []
    keys = sorted(asset_key(client, p["name"]) for p in products if (p.get("dbt") or {}).get("project") in upstream)
    if not keys:
        keys = [f"{catalog_uri(client)}/__none__"]  # nothing to follow yet: a trigger that never fires, not one that always does
    return DeploymentEventTrigger(expect={EVENT}, match={"prefect.resource.id": keys}, within=within_s)
