"""The dbt-duckdb plugin: `plugins: [{module: icemesh.dbt.duckdb}]` in a profile.

It loads DuckDB's Iceberg extensions from the pinned wheels (no network), attaches the mesh catalog
as this project's principal (before dbt-duckdb's own `attach:`), so models read products in place, and
publishes what the `iceberg` materialization hands it through `store_relation` (see writer.py).
Settings come from the plugin's `config:` or the environment: ICEMESH_CATALOG_URI, and
ICEMESH_CLIENT_ID + ICEMESH_CLIENT_SECRET (or ICEMESH_TOKEN); `warehouse` and `upstream_warehouse` per
target (see target.py).
"""

from __future__ import annotations

import importlib
import sys
import threading
from typing import Any

import duckdb
from dbt.adapters.duckdb.plugins import BasePlugin
from dbt_common.exceptions import DbtRuntimeError

from icemesh.dbt import parse_cache, product_views
from icemesh.dbt.product import ProductSpec
from icemesh.dbt.target import TargetCatalog
from icemesh.runtimes import duckdb as duck_engine
from icemesh.errors import IcemeshError
from icemesh.terminal import plain


def _warn(message: str) -> None:
    from dbt_common.events.base_types import EventLevel
    from dbt_common.events.functions import fire_event
    from dbt_common.events.types import Note

    fire_event(Note(msg=plain(f"icemesh: {message}")), level=EventLevel.WARN)


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self.target = TargetCatalog.from_config(plugin_config)
        self.alias = self.target.alias
        self.client = self.target.client()
        self.upstream = self.target.client(upstream=True)
        self._upstream_alias: str | None = None
        self.connection = None
        self._catalog = None
        self._memo: dict = {}  # what the writer asks the catalog once per invocation (writer.py)

    def configure_connection(self, conn) -> None:
        """Attach the mesh; a catalog that cannot be reached or logged in to fails the run with one dbt error
        line naming the URI (dbt prints a traceback for anything but its own errors). A parse-only command
        that parsed from the cache (the catalog unreachable, said once) opens its connection without it."""
        if parse_cache.OFFLINE.is_set() and parse_cache.parse_only(parse_cache.command()):
            self.connection = conn
            return
        try:
            self._attach(conn)
        except IcemeshError as exc:
            raise DbtRuntimeError(plain(f"icemesh: {exc.message}")) from None
        except duckdb.Error as exc:
            raise DbtRuntimeError(plain(self.client.where(f"icemesh: cannot attach the catalog at {self.client.uri}: "
                                                          f"{str(exc).strip().splitlines()[0]}"))) from None

    def _attach(self, conn) -> None:
        duck_engine.load_extensions(conn)
        duck_engine.attach_catalog(conn, self.client.uri, self.alias, warehouse=self.client.warehouse,
                                   token=self.client.token())
        if self._upstream_alias is None:
            self._upstream_alias = (self.target.upstream_alias if self.target.reads_elsewhere(self.client, self.upstream)
                                    else self.alias)
        if self._upstream_alias != self.alias:  # a dev target reading production products (or another warehouse)
            duck_engine.attach_catalog(conn, self.upstream.uri, self._upstream_alias, warehouse=self.upstream.warehouse,
                                       token=self.upstream.token())
        from icemesh.dbt.filtered_refs import FilteredRefs

        # pinned products, names dbt cannot carry, and products this principal reads filtered or masked
        for failure in product_views.create_views(conn, self._upstream_alias, FilteredRefs(self.upstream)):
            _warn(failure)
        self.connection = conn

    def store(self, target_config) -> None:
        """Called by the `iceberg` materialization with the model's compiled SQL and dbt metadata."""
        from icemesh.dbt.lean_writer import LeanWriter
        from icemesh.dbt.publishing import publish_error

        config = target_config.config
        identifier = f"{target_config.relation.schema}.{target_config.relation.identifier}"
        try:
            spec = ProductSpec.from_config(dict(config))
            # A table model replacing a product of the same columns needs no pyiceberg (lean_writer.py).
            result = LeanWriter(self.client, self.connection, self._memo).publish(spec)
            if result is None:
                result = self._publish_in_full(spec)
        except Exception as exc:  # the catalog's refusals (pyiceberg) and bad config carry their own message
            raise DbtRuntimeError(publish_error(identifier, exc)) from None
        config["icemesh_result"] = {"rows": result.rows, "snapshot_id": result.snapshot_id,
                                    "seconds": round(result.seconds, 3)}

    def _publish_in_full(self, spec: ProductSpec):
        """The full writer, its first import (0.7 s) on a thread while DuckDB runs the model's SQL (which releases
        the GIL), so a large model's first publish pays the longer of the two, not both."""
        from icemesh.dbt import openlineage

        if openlineage.configured():  # the SQL runs inside the run its START and FAIL events frame
            return self._full_writer().publish(spec)
        importer = None
        if "icemesh.dbt.writer" not in sys.modules:
            importer = threading.Thread(target=importlib.import_module, args=("icemesh.dbt.writer",),
                                        name="icemesh-import-writer", daemon=True)
            importer.start()
        cursor = self.connection.cursor()
        try:
            data = cursor.execute(spec.sql).to_arrow_table()
        finally:
            cursor.close()
            if importer is not None:
                importer.join()
        return self._full_writer().publish(spec, data)

    def _full_writer(self):
        # The full writer (pyiceberg's table layer, pyarrow's datasets, pandas: 0.7 s) only when a model needs
        # it, so `dbt ls`, `compile`, `test`, `docs` and builds of unchanged table products start without it.
        from icemesh.dbt.writer import ProductWriter

        if self._catalog is None:  # one pyiceberg catalog per invocation, on the token the attach used
            self._catalog = self.client.rest_catalog(reuse_token=True)
        upstream = self.upstream if self._upstream_alias != self.alias else None
        return ProductWriter(self.client, self._catalog, self.connection, upstream, self._memo)
