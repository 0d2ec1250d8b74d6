"""dbt's `catalogs.yml`: an `iceberg_rest` write integration pointing at icemesh, for dbt-duckdb and dbt-spark.

dbt 1.10+ describes where a model's Iceberg table lives with a catalog entry and the model config
`catalog_name`; neither dbt-duckdb nor dbt-spark ships an integration type, so icemesh registers one,
`catalog_type: iceberg_rest` with `table_format: iceberg` and optional `adapter_properties` `uri` and `warehouse`
(checked against the target's catalog); `icemesh dbt init --style catalogs` writes such an entry (project_setup.py).

A `materialized='table'` or `'incremental'` model with `catalog_name: mesh` is then published by the same
materialization and writer as `materialized='iceberg'` (macros/catalogs.sql). Credentials stay where the target
keeps them (the plugin's config or the environment): catalogs.yml names the catalog, it does not log in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

from dbt.adapters.catalogs import CatalogIntegration

from icemesh.compat.dbt import add_catalog_integration_type

CATALOGS_FILE = "catalogs.yml"
CATALOG_TYPE = "iceberg_rest"
PROPERTIES = frozenset({"uri", "warehouse"})


@dataclass(frozen=True)
class ProductRelation:
    """What dbt's `adapter.build_catalog_relation(model)` answers for a model in an icemesh catalog."""

    catalog_name: Optional[str]
    table_format: Optional[str] = "iceberg"
    external_volume: Optional[str] = None
    file_format: Optional[str] = "parquet"


class IcemeshCatalog(CatalogIntegration):
    """An `iceberg_rest` entry of catalogs.yml: the icemesh catalog a target publishes products to."""

    catalog_type = CATALOG_TYPE
    table_format = "iceberg"
    allows_writes = True

    def __init__(self, config) -> None:
        from dbt_common.exceptions import DbtValidationError

        if (config.table_format or "iceberg").lower() != "iceberg":
            raise DbtValidationError(f"catalogs.yml: {config.name} has table_format {config.table_format!r}; icemesh "
                                     "publishes Iceberg tables: set table_format: iceberg")
        properties: dict[str, Any] = dict(config.adapter_properties or {})
        unknown = sorted(set(properties) - PROPERTIES)
        if unknown:
            raise DbtValidationError(f"catalogs.yml: {config.name} has adapter_properties {', '.join(unknown)} that "
                                     f"icemesh does not know: use {', '.join(sorted(PROPERTIES))} (credentials stay "
                                     "in the profile or the environment)")
        super().__init__(config)
        self.uri = str(properties["uri"]).rstrip("/") if properties.get("uri") else None
        self.warehouse = str(properties["warehouse"]) if properties.get("warehouse") is not None else None

    def build_relation(self, config) -> ProductRelation:
        return ProductRelation(catalog_name=self.catalog_name)


def register(project_dir: str) -> bool:
    """Give dbt-duckdb and dbt-spark (those installed) the `iceberg_rest` type, when the project has a catalogs.yml
    (the adapters are imported only then). Must run before dbt makes the adapter: from the plugin's initialize."""
    if not os.path.exists(os.path.join(project_dir, CATALOGS_FILE)):
        return False
    registered = False
    for module, name in (("dbt.adapters.duckdb.impl", "DuckDBAdapter"), ("dbt.adapters.spark.impl", "SparkAdapter")):
        try:
            adapter_class = getattr(__import__(module, fromlist=[name]), name)
        except ImportError:
            continue
        add_catalog_integration_type(adapter_class, IcemeshCatalog)
        registered = True
    return registered


def mismatch(entry: dict[str, Any] | None, uri: str, warehouse: str) -> str | None:
    """Why a catalogs.yml entry does not point where the target publishes (a product must not land elsewhere than
    the entry says), or None."""
    if not entry:
        return None
    if entry.get("uri") and str(entry["uri"]).rstrip("/") != uri.rstrip("/"):
        return (f"catalogs.yml entry {entry.get('name')!r} points at {entry['uri']}, but this target's icemesh catalog "
                f"is {uri}: make them the same (ICEMESH_CATALOG_URI, or the profile's plugin config)")
    if entry.get("warehouse") is not None and str(entry["warehouse"]) != (warehouse or ""):
        return (f"catalogs.yml entry {entry.get('name')!r} names warehouse {entry['warehouse']!r}, but this target "
                f"publishes to {warehouse or 'the default warehouse'!r}: set the target's warehouse to match")
    return None
