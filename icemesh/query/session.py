"""`icemesh.connect()`: one principal's view of the mesh, queried from any engine.

`sql()` checks that the query is one query reading only products (guard.py: no files, URLs, table functions or
statements other than queries, unless `local_files=True` lets the caller read its own files), finds the products
it names (sqlglot, in the engine's dialect), loads each as the caller (so the catalog's policies decide: a refusal
is the catalog's one-line reason, hidden columns are absent, and a column hidden by policy is named as such, see
hidden.py), picks the snapshots for `as_of`, and hands them to the engine's adapter. Nothing is copied or
written: every engine reads the table's own files.
"""

from __future__ import annotations

import importlib
from typing import Any

import pyarrow as pa

from sqlglot.errors import SqlglotError

from icemesh.client import CatalogClient
from icemesh.protocol import COLUMN_LIMITS_APPLY, READ_RESTRICTIONS_HEADER
from icemesh.query import guard, hidden
from icemesh.query.engine import Engine
from icemesh.query.engine_names import ENGINES
from icemesh.query.errors import QueryError
from icemesh.query.products import AsOf, list_products, resolve
from icemesh.query.references import product_references
from icemesh.query.tables import TableCache



class MeshSession:
    def __init__(self, client: CatalogClient, local_files: bool = False) -> None:
        if not client.column_limits:  # icemesh's adapters expose only the columns they are given: say so
            client = CatalogClient(None if client.uri_is_default else client.uri,
                                   token=None if client.client_id else client.token(),
                                   client_id=client.client_id, client_secret=client.client_secret, column_limits=True,
                                   warehouse=client.warehouse)
        self.client = client
        self.local_files = local_files
        self._catalog = None
        self._tables: TableCache | None = None
        self._engines: dict[str, Engine] = {}

    @property
    def catalog(self):
        """The pyiceberg RestCatalog, logged in as this principal with column limits applied."""
        if self._catalog is None:  # this session applies read restrictions (restricted.py): it says so
            self._catalog = self.client.rest_catalog(**{f"header.{READ_RESTRICTIONS_HEADER}": COLUMN_LIMITS_APPLY})
        return self._catalog

    @property
    def tables(self) -> TableCache:
        """The products this session has loaded, revalidated with the catalog before every query."""
        if self._tables is None:
            self._tables = TableCache(self.catalog)
        return self._tables

    def engine(self, name: str) -> Engine:
        if name not in ENGINES:
            raise QueryError(f"Unknown engine {name!r}: choose one of {', '.join(ENGINES)}")
        if name not in self._engines:
            module, cls = ENGINES[name].split(":")
            try:
                adapter = getattr(importlib.import_module(module), cls)
                self._engines[name] = adapter(self.client, local_files=self.local_files)
            except ImportError as exc:
                raise QueryError(f"The {name} engine is not installed ({exc.name} is missing): "
                                 "pip install 'icemesh[engines]'") from None
        return self._engines[name]

    def native(self, engine: str = "duckdb") -> Any:
        """The engine's own handle; products named in earlier `sql()` calls stay registered in it."""
        return self.engine(engine).native()

    def products(self) -> list[str]:
        """Every product this principal may see, as `<namespace>.<table>`."""
        return list_products(self.catalog)

    def sql(self, query: str, engine: str = "duckdb", as_of: "str | int | AsOf | None" = None) -> pa.Table:
        """Run `query` on `engine` and return the result as a pyarrow Table."""
        adapter = self.engine(engine)
        guard.check(query, adapter.dialect, self.local_files)
        products = resolve(self.tables.load, product_references(query, adapter.dialect), AsOf.parse(as_of),
                           self.tables.restrictions)
        hidden.check(self.client, query, adapter.dialect, products)
        try:
            return adapter.run(query, products)
        except QueryError:
            raise
        except SqlglotError as exc:  # rewriting the query for the engine (pins, names) failed
            raise QueryError(f"{engine}: cannot rewrite the query for this engine: {_first_line(exc)}") from None
        except Exception as exc:  # the engines' own error types: one line, named after the engine
            raise QueryError(f"{engine}: {_first_line(exc)}") from exc

    def close(self) -> None:
        for adapter in self._engines.values():
            adapter.close()
        self._engines.clear()
        if self._tables is not None:
            self._tables.clear()

    def __enter__(self) -> "MeshSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else exc.__class__.__name__


def connect(uri: str | None = None, *, token: str | None = None, client_id: str | None = None,
            client_secret: str | None = None, client: CatalogClient | None = None,
            local_files: bool = False) -> MeshSession:
    """A session on the mesh as one principal: the arguments, else ICEMESH_CATALOG_URI and ICEMESH_TOKEN or
    ICEMESH_CLIENT_ID / ICEMESH_CLIENT_SECRET. Queries read only the catalog's products; `local_files=True`
    also lets them read the caller's own files and URLs (read_csv(...), FROM 'x.parquet', ...) and leaves the
    engines' file access on: for your own data, never for SQL someone else wrote."""
    if client is None:
        client = CatalogClient.from_env(uri, token=token, client_id=client_id, client_secret=client_secret)
    return MeshSession(client, local_files=local_files)
