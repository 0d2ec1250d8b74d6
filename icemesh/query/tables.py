"""The tables a session has loaded, revalidated on every query with a conditional load.

Loading a product costs a round trip, the metadata's JSON parse and a FileIO; the engines' own set-up of
that product (a planned scan, a table provider, a view) costs more. A session keeps each product's
pyiceberg Table with the ETag the catalog sent, and asks again before every query with `If-None-Match`.
The catalog checks the caller's grants on every such request and answers 304 only while the metadata
file, the hidden columns and the labels are all unchanged, so:
- a commit by anyone is read by the very next query (new metadata file: a new ETag, a 200 and a new Table);
- a revoked grant fails the very next query with the catalog's reason (403, never a cached table);
- a change in hidden columns hands back the newly pruned schema.
A 304 returns the same Table object, which is what lets adapters keep what they built from it.

pyiceberg 0.12's RestCatalog has no conditional load: this sends the same request through the catalog's own
HTTP session (its login and headers) and builds the Table as `load_table` does. Anything but 200 or 304 is
left to `load_table` itself, for its token refresh and its errors.
"""

from __future__ import annotations

import json
from typing import Any

from icemesh.compat.pyiceberg import conditional_load, table_from_response

from icemesh.query import restricted
from icemesh.query.errors import QueryError
from icemesh.query.products import load
from icemesh.query.references import Reference


class TableCache:
    def __init__(self, catalog) -> None:
        self.catalog = catalog
        self._tables: dict[Reference, tuple[str, Any]] = {}  # reference -> (ETag, pyiceberg Table)
        self._restrictions: dict[Reference, dict | None] = {}  # reference -> the read-restrictions it came with

    def load(self, ref: Reference):
        """The product as the catalog hands it to the caller now: the cached Table while the catalog says 304."""
        cached = self._tables.get(ref)
        response = self._get(ref, cached[0] if cached else None)
        if response is not None and response.status_code == 304 and cached is not None:
            return cached[1]
        if response is not None and response.status_code == 200:
            table = self._table(ref, response.text)
        else:  # refused, missing, expired login, or the catalog unreachable: load_table's own handling
            self._tables.pop(ref, None)
            load(self.catalog, ref)  # raises the catalog's reason; else it logged in again: ask once more
            response = self._get(ref, None)
            if response is None or response.status_code != 200:
                raise QueryError(f"{ref.dotted}: the catalog answered a load and then refused the same; try again")
            table = self._table(ref, response.text)
        etag = response.headers.get("ETag") if response is not None and response.status_code == 200 else None
        if etag:
            self._tables[ref] = (etag, table)
        else:
            self._tables.pop(ref, None)
        return table

    def restrictions(self, ref: Reference, schema):
        """The row filter and masks the catalog sent with the product's last load (None: none)."""
        return restricted.parse(self._restrictions.get(ref), schema)

    def clear(self) -> None:
        self._tables.clear()
        self._restrictions.clear()

    def _get(self, ref: Reference, etag: str | None):
        try:
            return conditional_load(self.catalog, (*ref.namespace, ref.name), etag)
        except OSError:
            return None

    def _table(self, ref: Reference, body: str):
        # most loads carry none: parse the (possibly large) body a second time only when they do
        self._restrictions[ref] = json.loads(body).get("read-restrictions") if '"read-restrictions"' in body else None
        return table_from_response(self.catalog, (*ref.namespace, ref.name), body)
