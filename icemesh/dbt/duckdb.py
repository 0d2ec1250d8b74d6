"""The dbt-duckdb plugin: `plugins: [{module: icemesh.dbt.duckdb}]` in a profile.

It loads DuckDB's Iceberg extensions from the pinned wheels (no network), attaches the mesh catalog
as this project's principal (before dbt-duckdb's own `attach:`), so models read products in place, and
publishes what the `iceberg` materialization hands it through `store_relation` (see writer.py).
Settings come from the plugin's `config:` or the environment: ICEMESH_CATALOG_URI, and
ICEMESH_CLIENT_ID + ICEMESH_CLIENT_SECRET (or ICEMESH_TOKEN).
"""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin
from dbt_common.exceptions import DbtRuntimeError

from icemesh.client import CatalogClient
from icemesh.dbt import pinning
from icemesh.dbt.product import ProductSpec
from icemesh.dbt.writer import ProductWriter, publish_error
from icemesh.engines import duckdb as duck_engine


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self.alias = plugin_config.get("catalog", "mesh")
        # Column limits declared: a product this project may read only in part is attached with just the
        # columns it may read (a model selecting another fails naming it), instead of being refused whole.
        self.client = CatalogClient.from_env(plugin_config.get("uri"), client_id=plugin_config.get("client_id"),
                                             client_secret=plugin_config.get("client_secret"),
                                             token=plugin_config.get("token"), column_limits=True)
        self.connection = None
        self._catalog = None

    def configure_connection(self, conn) -> None:
        duck_engine.load_extensions(conn)
        duck_engine.attach_catalog(conn, self.client.uri, self.alias, token=self.client.token())
        pinning.create_views(conn, self.alias)  # upstream products pinned to a snapshot (icemesh_pin)
        self.connection = conn

    def store(self, target_config) -> None:
        """Called by the `iceberg` materialization with the model's compiled SQL and dbt metadata."""
        config = target_config.config
        identifier = f"{target_config.relation.schema}.{target_config.relation.identifier}"
        try:
            spec = ProductSpec.from_config(dict(config))
            if self._catalog is None:
                self._catalog = self.client.rest_catalog()
            result = ProductWriter(self.client, self._catalog, self.connection).publish(spec)
        except Exception as exc:  # the catalog's refusals (pyiceberg) and bad config carry their own message
            raise DbtRuntimeError(publish_error(identifier, exc)) from None
        config["icemesh_result"] = {"rows": result.rows, "snapshot_id": result.snapshot_id,
                                    "seconds": round(result.seconds, 3)}

