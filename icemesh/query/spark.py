"""Spark: the local session of icemesh.runtimes.spark with the mesh registered as a REST catalog for this
principal and made current, so `<namespace>.<table>` names a product. Time travel is `VERSION AS OF n`.

While a query runs, `spark.sql.runSQLOnFiles` is off (no `csv.`/path`` tables), unless the caller opted in to
its own files; the session is the process's, so the setting is put back afterwards."""

from __future__ import annotations

import hashlib
import threading


from icemesh.compat.pyspark import spark_schema, to_arrow
from icemesh.protocol import COLUMN_LIMITS_APPLY, COLUMN_LIMITS_HEADER, COLUMN_LIMITS_SCOPE, READ_RESTRICTIONS_HEADER
from icemesh.query import restricted
from icemesh.query.engine import Engine
from icemesh.query.references import pin_snapshots, restricted_name, to_single_names
from icemesh.tables.restriction_sql import quote as _quote, snapshot_source

_current_catalog = threading.Lock()  # one SparkSession per process: its current catalog is shared


class SparkEngine(Engine):
    name = "spark"
    dialect = "spark"

    @property
    def catalog_name(self) -> str:
        """One Spark catalog per server and principal: Spark caches catalogs by name for the session's life."""
        who = f"{self.client.uri}|{self.client.client_id or self.client.token()}"
        return "icemesh_" + hashlib.sha256(who.encode()).hexdigest()[:12]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._kept: set[str] = set()  # restricted views this engine cached in the process's session

    def connect(self):
        from icemesh.runtimes import spark as spark_engine

        session = spark_engine.session(None, app_name="icemesh-query",
                                       extra_conf={"spark.sql.session.timeZone": "UTC",
                                                   "spark.ui.showConsoleProgress": "false"})
        properties = {"oauth2-server-uri": self.client.token_endpoint, "scope": f"catalog {COLUMN_LIMITS_SCOPE}",
                      f"header.{COLUMN_LIMITS_HEADER}": COLUMN_LIMITS_APPLY}
        if self.client.client_id and self.client.client_secret:
            credentials = {"credential": f"{self.client.client_id}:{self.client.client_secret}"}
        else:
            credentials = {"token": self.client.token()}
        spark_engine.add_catalog(session, self.catalog_name, self.client.uri, properties=properties, **credentials)
        # The same principal, declaring that it applies read restrictions: only the views this engine makes
        # for filtered or masked products read through it (the default catalog stays refused them).
        spark_engine.add_catalog(session, self.restricted_catalog, self.client.uri, properties={
            **properties, f"header.{READ_RESTRICTIONS_HEADER}": COLUMN_LIMITS_APPLY}, **credentials)
        return session

    @property
    def restricted_catalog(self) -> str:
        return self.catalog_name + "_restricted"

    def run(self, sql, products):
        session = self.native()
        pinned = {p.ref: p.snapshot_id for p in products if p.pinned and not p.restrictions}
        if pinned:
            sql = pin_snapshots(sql, self.dialect, pinned, "version_as_of")
        # the session is the process's: each engine (so each principal's session) has its own view names
        names = {p.ref: restricted_name(p, f"{self.catalog_name}|{id(self)}") for p in products if p.restrictions}
        for product in products:  # filtered or masked: the rows the reader may see, as a temporary view
            if product.restrictions and self.stale(product):
                view = self._restricted_view(product)
                session.sql(f"UNCACHE TABLE IF EXISTS {quote(names[product.ref])}")
                if view is not None:  # Spark reads the files itself, the filter and masks in the view's SQL
                    session.sql(f"CREATE OR REPLACE TEMPORARY VIEW {quote(names[product.ref])} AS {view}")
                    if restricted.worth_keeping(product):  # hashed once per version (restricted.py)
                        session.sql(f"CACHE TABLE {quote(names[product.ref])}")
                        self._kept.add(names[product.ref])
                else:
                    rows = self.restricted_rows(product)
                    session.createDataFrame(rows.to_pandas(), schema=spark_schema(rows.schema)) \
                        .createOrReplaceTempView(names[product.ref])
                self.registered(product)
        if names:
            sql = to_single_names(sql, self.dialect, names)
        with _current_catalog:
            session.catalog.setCurrentCatalog(self.catalog_name)
            if self.local_files:
                return to_arrow(session.sql(sql))
            previous = session.conf.get("spark.sql.runSQLOnFiles", "true")
            session.conf.set("spark.sql.runSQLOnFiles", "false")
            try:
                return to_arrow(session.sql(sql))
            finally:
                session.conf.set("spark.sql.runSQLOnFiles", previous)

    def _restricted_view(self, product) -> str | None:
        if product.snapshot_id is None:
            return None
        source = snapshot_source("spark", product.snapshot_id,
                                 table=(self.restricted_catalog, *product.ref.namespace, product.ref.name))
        return restricted.select_sql(product, "spark", source)

    def close(self):
        if self._native is not None:  # the cache is the session's: free what this engine kept
            for name in self._kept:
                self._native.sql(f"UNCACHE TABLE IF EXISTS {quote(name)}")
        self._kept.clear()
        super().close()  # the SparkSession is the process's: whoever started Spark stops it


def quote(name: str) -> str:
    return _quote(name, "spark")
