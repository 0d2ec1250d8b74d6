"""The dbt-duckdb plugin: `plugins: [{module: icemesh.dbt.duckdb}]` in a profile.

It loads DuckDB's Iceberg extensions from the pinned wheels (no network), attaches the mesh catalog
as this project's principal (before dbt-duckdb's own `attach:`), and records what the `iceberg`
materialization hands it through `store_relation`: the product's `icemesh.` properties.
Settings come from the plugin's `config:` or the environment: ICEMESH_CATALOG_URI, and
ICEMESH_CLIENT_ID + ICEMESH_CLIENT_SECRET (or ICEMESH_TOKEN).
"""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from icemesh.client import CatalogClient
from icemesh.dbt.publish import record_product
from icemesh.engines import duckdb as duck_engine


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self.alias = plugin_config.get("catalog", "mesh")
        self.client = CatalogClient.from_env(plugin_config.get("uri"), client_id=plugin_config.get("client_id"),
                                             client_secret=plugin_config.get("client_secret"),
                                             token=plugin_config.get("token"))

    def configure_connection(self, conn) -> None:
        duck_engine.load_extensions(conn)
        if self.client.client_id and self.client.client_secret:
            duck_engine.attach_catalog(conn, self.client.uri, self.alias, client_id=self.client.client_id,
                                       client_secret=self.client.client_secret)
        else:
            duck_engine.attach_catalog(conn, self.client.uri, self.alias, token=self.client.token())

    def store(self, target_config) -> None:
        """Called by the materialization once the product is written: record its dbt metadata."""
        record_product(self.client, target_config.relation.schema, target_config.relation.identifier,
                       dict(target_config.config))
