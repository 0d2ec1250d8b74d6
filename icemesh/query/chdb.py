"""chDB (ClickHouse in process): each product the query names is a view `<namespace>.<table>` over
`icebergLocal(<table directory>)`, selecting the caller's visible columns.

ClickHouse reads files only below its user-files directory, which chDB fixes at the process's working
directory (else PATH_ACCESS_DENIED): the adapter runs each query from the directory that holds the tables,
under a lock, and returns to where it was. ClickHouse finds the newest metadata file in the table directory
itself; `--as-of` pins the snapshot with its `iceberg_snapshot_id` setting.
"""

from __future__ import annotations

import contextlib
import os
import threading
from urllib.parse import unquote, urlparse

from icemesh.query.engine import Engine, literal, quote
from icemesh.query.errors import QueryError

_working_directory = threading.Lock()  # the process has one


class ChdbEngine(Engine):
    name = "chdb"
    dialect = "clickhouse"

    def connect(self):
        import chdb

        self._views: dict[str, str] = {}  # view name -> the DDL that made it: unchanged products are not redefined
        return chdb.connect(":memory:")

    def run(self, sql, products):
        con = self.native()
        directories = [local_path(p) for p in products]
        root = os.path.commonpath(directories) if directories else None
        with _in_directory(root):
            for product, directory in zip(products, directories):
                database = quote(".".join(product.ref.namespace), "`")
                columns = ", ".join(quote(c, "`") for c in product.columns)
                settings = f" SETTINGS iceberg_snapshot_id = {int(product.snapshot_id)}" if product.pinned else ""
                view = (f"CREATE OR REPLACE VIEW {database}.{quote(product.ref.name, '`')} AS "
                        f"SELECT {columns} FROM icebergLocal({literal(directory)}){settings}")
                if self._views.get(product.name) != view:
                    con.query(f"CREATE DATABASE IF NOT EXISTS {database}")
                    con.query(view)
                    self._views[product.name] = view
            return con.query(sql, "ArrowTable")

    def close(self):
        if self._native is not None:
            self._native.close()
        super().close()


def local_path(product) -> str:
    location = product.location
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return os.path.abspath(unquote(parsed.path) if parsed.scheme else location)
    raise QueryError(f"{product.name} is stored at {parsed.scheme}://...; the chdb engine reads local warehouses "
                     "only: use duckdb, polars, datafusion, daft or spark for it")


@contextlib.contextmanager
def _in_directory(path: str | None):
    if path is None:
        yield
        return
    with _working_directory:
        previous = os.getcwd()
        os.chdir(path)
        try:
            yield
        finally:
            os.chdir(previous)
