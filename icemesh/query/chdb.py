"""chDB (ClickHouse in process): each product the query names is a view `<namespace>.<table>` selecting the
caller's visible columns from a table with ClickHouse's `IcebergLocal` engine over the table's directory
(in the database `_icemesh_sources`, which no query can name: it is not a product). A filtered or masked
reader's view applies the row filter and masks in ClickHouse SQL over the same source.

The query itself runs with `readonly = 1`, in which ClickHouse refuses every table function (file, url, s3,
icebergLocal, ...), DDL and setting changes; the products stay readable because they are tables and views,
not table functions. ClickHouse reads Iceberg tables only below its user-files directory, which chDB fixes at
the process's working directory (else PATH_ACCESS_DENIED): the adapter runs each query from the directory that
holds the tables, under a lock, and returns to where it was. A source table reads the metadata file the
catalog handed the caller (`iceberg_metadata_file_path`), for `--as-of` the earlier one whose current snapshot
is the one to read (as DataFusion does). `local_files=True` runs the query without `readonly`.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import threading
from urllib.parse import unquote, urlparse

from sqlglot import exp

from icemesh.query.engine import Engine, literal, quote
from icemesh.query.errors import QueryError
from icemesh.query.products import metadata_location
from icemesh.query.references import parse

SOURCES = "_icemesh_sources"

_working_directory = threading.Lock()  # the process has one
# chDB has one server per process: every connection sees the same databases, whichever principal made them.
# What each product name holds now, and which engine (so which principal) defined it, is kept process-wide:
# an engine redefines a name another engine defined last, so no session reads another principal's rows.
_defined: dict[str, tuple[int, str]] = {}
_owners = itertools.count(1)


class ChdbEngine(Engine):
    name = "chdb"
    dialect = "clickhouse"

    def connect(self):
        import chdb

        self._owner = next(_owners)
        self._sources: dict[str, str] = {}  # source table -> the metadata file it reads
        con = chdb.connect(":memory:")
        con.query(f"CREATE DATABASE IF NOT EXISTS {SOURCES}")
        return con

    def run(self, sql, products):
        con = self.native()
        directories = [local_path(p) for p in products]
        root = os.path.commonpath(directories) if directories else None
        with _in_directory(root):
            for product, directory in zip(products, directories):
                database = quote(".".join(product.ref.namespace), "`")
                name = f"{database}.{quote(product.ref.name, '`')}"
                source = self._source(con, product, directory)
                select = self._select(product, source)
                if select is None:
                    self._restricted_rows(con, product, database, name)
                    continue
                view = f"CREATE OR REPLACE VIEW {name} AS {select}"
                if _defined.get(name) != (self._owner, view):
                    con.query(f"CREATE DATABASE IF NOT EXISTS {database}")
                    con.query(f"DROP TABLE IF EXISTS {name}")  # it may hold a restricted reader's rows
                    con.query(view)
                    _defined[name] = (self._owner, view)
            return con.query(sql if self.local_files else read_only(sql), "ArrowTable")

    @staticmethod
    def _select(product, source: str) -> str | None:
        """What the product's view selects: its visible columns, or for a filtered or masked reader the row
        filter and masks compiled to ClickHouse SQL over the same source (restriction_sql.py), so ClickHouse
        filters while it scans and hashes natively, and a principal's view costs one DDL statement to
        redefine. None when the compiler cannot express the restrictions."""
        if product.restrictions:
            from icemesh.query import restricted

            return restricted.select_sql(product, "clickhouse", source)
        return f"SELECT {', '.join(quote(c, '`') for c in product.columns)} FROM {source}"

    def _restricted_rows(self, con, product, database: str, name: str) -> None:
        """Restrictions ClickHouse SQL cannot express: the rows the reader may see (restricted.py), copied into
        a Memory table under the product's name (chDB reads the Arrow table through its Python() table
        function, here only)."""
        marker = f"restricted {product.version}"
        if _defined.get(name) == (self._owner, marker):
            return
        rows = self.restricted_rows(product)  # noqa: F841 (named in the statement below)
        con.query(f"CREATE DATABASE IF NOT EXISTS {database}")
        con.query(f"DROP TABLE IF EXISTS {name}")
        con.query(f"CREATE TABLE {name} ENGINE = Memory AS SELECT * FROM Python(rows)")
        _defined[name] = (self._owner, marker)

    def _source(self, con, product, directory: str) -> str:
        """The IcebergLocal table reading exactly the metadata file the catalog handed the caller (an earlier
        one for --as-of), made once per metadata file."""
        metadata = metadata_location(product, "chDB")
        source = f"{SOURCES}.{quote(_source_name(product.name, metadata), '`')}"
        if source not in self._sources:
            relative = os.path.relpath(_local(metadata), directory)
            con.query(f"CREATE TABLE IF NOT EXISTS {source} ENGINE = IcebergLocal({literal(directory)}) "
                      f"SETTINGS iceberg_metadata_file_path = {literal(relative)}")
            self._sources[source] = metadata
        return source

    def close(self):
        if self._native is not None:
            self._native.close()
        super().close()


def _source_name(product: str, metadata: str) -> str:
    return "p_" + hashlib.sha256(f"{product}|{metadata}".encode()).hexdigest()[:20]


def read_only(sql: str) -> str:
    """The query with ClickHouse's `readonly = 1` (no table functions, DDL or setting changes) for its run."""
    (statement,) = parse(sql, "clickhouse")
    if not isinstance(statement, exp.Select):
        statement = exp.select("*").from_(statement.subquery("_icemesh_query"))
    readonly = exp.EQ(this=exp.column("readonly"), expression=exp.Literal.number(1))
    statement.set("settings", [*(statement.args.get("settings") or []), readonly])
    return statement.sql(dialect="clickhouse")


def _local(location: str) -> str:
    parsed = urlparse(location)
    return os.path.abspath(unquote(parsed.path) if parsed.scheme else location)


def local_path(product) -> str:
    location = product.location
    scheme = urlparse(location).scheme
    if scheme in ("", "file"):
        return _local(location)
    raise QueryError(f"{product.name} is stored at {scheme}://...; the chdb engine reads local warehouses "
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
