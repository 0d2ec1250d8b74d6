"""The interface every engine adapter implements, after dbt-duckdb's plugins: a lazily made native handle,
and `run(sql, products)` that makes each product readable as `<namespace>.<table>` and returns Arrow.

Adapters receive products already resolved as the caller (see products.py), and queries already checked to read
only them (guard.py): they never decide what may be read, they only expose exactly the columns and snapshot
they are given, switch off the engine's own reach outside the catalog where the engine allows it (unless the
caller opted in to its own files), and keep every engine-specific set-up (extensions, working directories,
storage options, provider pins) inside the adapter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import pyarrow as pa

from icemesh.client import CatalogClient
from icemesh.query.products import Product


class Engine(ABC):
    name: str = ""
    dialect: str | None = None  # sqlglot dialect the engine's SQL is parsed in

    def __init__(self, client: CatalogClient, local_files: bool = False) -> None:
        self.client = client
        self.local_files = local_files  # the caller opted in to its own files (icemesh.connect(local_files=True))
        self._native: Any = None
        self._registered: dict[str, tuple] = {}  # product name -> the Product.version the native handle holds

    def native(self) -> Any:
        """The engine's own handle (a DuckDB connection, a SparkSession, a DataFusion SessionContext...)."""
        if self._native is None:
            self._native = self.connect()
        return self._native

    @abstractmethod
    def connect(self) -> Any:
        """Create the native handle."""

    def stale(self, product: Product) -> bool:
        """True unless the native handle already holds exactly this version of the product (same metadata file,
        snapshot and columns): then its planned scan, provider or view is reused instead of built again."""
        return self._registered.get(product.name) != product.version

    def registered(self, product: Product) -> None:
        self._registered[product.name] = product.version

    @staticmethod
    def restricted_rows(product: Product) -> pa.Table | None:
        """The rows a filtered or masked reader may see (restricted.py), for the adapter to register in place of
        the engine's own reader of the table; None when the reader is not restricted."""
        if not product.restrictions:
            return None
        from icemesh.query import restricted

        return restricted.read(product)

    @abstractmethod
    def run(self, sql: str, products: list[Product]) -> pa.Table:
        """Run `sql` with every product readable under its `<namespace>.<table>` name."""

    def close(self) -> None:
        self._native = None
        self._registered.clear()


def quote(identifier: str, mark: str = '"') -> str:
    """A quoted SQL identifier (names are quoted, never pasted raw)."""
    return mark + identifier.replace(mark, mark * 2) + mark


def literal(value: str) -> str:
    """A SQL string literal, for the engines whose DDL takes no bound parameters."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
