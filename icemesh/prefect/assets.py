"""Prefect asset keys for products, named by the catalog (as the OpenLineage events name datasets), so every
domain's flow, whatever engine builds it, names one product the same way: `iceberg://host:port/<warehouse>/<ns>.<table>`."""

from __future__ import annotations

from icemesh.client import CatalogClient


def catalog_uri(client: CatalogClient) -> str:
    """`iceberg://host:port[/path]/<warehouse prefix>`: the same string OpenLineage's dataset namespace uses."""
    from icemesh.dbt.openlineage import dataset_namespace

    return dataset_namespace(client)


def asset_key(client: CatalogClient, product: str, warehouse: str | None = None) -> str:
    """The Prefect asset key of product `namespace.table` in the catalog `client` speaks to (in its warehouse, or
    in `warehouse`, a prefix as the change feed names it)."""
    base = catalog_uri(client)
    if warehouse:
        base = f"{base.rsplit('/', 1)[0]}/{warehouse}"
    return f"{base}/{product}"
