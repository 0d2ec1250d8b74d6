"""Views in a DuckDB consumer's own database that stand for upstream products dbt cannot name directly.

dbt renders a ref from database, schema and identifier only, so two kinds of product are read through a view
the dbt-duckdb plugin creates when dbt opens its connection:
- a product pinned to a snapshot (`icemesh_pin`): `icemesh_pinned.<name>` = `... AT (VERSION => <id>)`, since a
  relation has no place for a time-travel clause;
- a product whose namespace or table name holds characters beyond `[A-Za-z0-9_$-]` (a catalog from before the
  server refused them): `icemesh_refs.<name>`, so the producer's name never reaches dbt's SQL or Jinja.

DuckDB compares names case-insensitively, so `<namespace>__<table>` would make `x.y__z` and `x__Y.z` one view.
A view's name is the lower-cased readable name plus a short hash of the exact (case-sensitive) namespace and
table: distinct products get distinct views, and a collision (a hash clash) is refused, never resolved by the
last view created winning.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading

PIN_SCHEMA = "icemesh_pinned"
REF_SCHEMA = "icemesh_refs"
FILTERED_SCHEMA = "icemesh_filtered"  # products served to this consumer filtered or masked (filtered_refs.py)

_SAFE_NAME = re.compile(r"[A-Za-z0-9_$-]+")
_READABLE = re.compile(r"[^a-z0-9_]+")

# (schema, view name) -> (namespace, table, snapshot id or None): filled at parse, read when the connection opens
_views: dict[tuple[str, str], tuple[str, str, int | None]] = {}
_lock = threading.Lock()


class ViewNameCollision(ValueError):
    """Two products would be read through one view."""


def renders_safely(namespace: str, table: str) -> bool:
    """Whether dbt may carry the product's own names (quoted identifiers and string literals stay intact)."""
    return all(_SAFE_NAME.fullmatch(part) for part in (*namespace.split("."), table))


def view_name(namespace: str, table: str) -> str:
    """`<namespace>__<table>` lower-cased and reduced to [a-z0-9_], plus 10 hex digits of the exact names."""
    readable = _READABLE.sub("_", f"{namespace}__{table}".lower()).strip("_")[:48] or "product"
    digest = hashlib.sha256(json.dumps([namespace, table]).encode()).hexdigest()[:10]
    return f"{readable}__{digest}"


def register(namespace: str, table: str, snapshot_id: int | None = None, filtered: bool = False) -> tuple[str, str]:
    """The (schema, view) a ref to the product renders as; the view is created when dbt connects."""
    schema = FILTERED_SCHEMA if filtered else PIN_SCHEMA if snapshot_id is not None else REF_SCHEMA
    name = view_name(namespace, table)
    entry = (namespace, table, None if snapshot_id is None else int(snapshot_id))
    with _lock:
        held = next((v for (s, n), v in _views.items() if s == schema and n.lower() == name.lower()), None)
        if held is not None and held[:2] != entry[:2]:
            raise ViewNameCollision(
                f"icemesh: products {held[0]}.{held[1]} and {namespace}.{table} would both be read through view "
                f"{schema}.{name}; rename one of them in the catalog")
        _views[(schema, name)] = entry
    return schema, name


def filtered_views() -> dict[tuple[str, str], tuple[str, str, int | None]]:
    """The filtered products' views registered at parse: (schema, view) -> (namespace, table, snapshot id)."""
    with _lock:
        return {key: entry for key, entry in _views.items() if key[0] == FILTERED_SCHEMA}


def ident(part: str) -> str:
    """A DuckDB quoted identifier."""
    return '"' + part.replace('"', '""') + '"'


def create_views(connection, catalog_alias: str, filtered=None) -> list[str]:
    """Create or refresh the views (names quoted, snapshot ids integers: nothing pasted raw). A product the catalog
    will not serve (e.g. a name it now refuses) costs its own view only: the reasons are returned, one line each,
    and the models reading it fail where they read it, the others run. `filtered(namespace, table, snapshot_id)`
    gives the SQL of a filtered product's view (filtered_refs.py)."""
    with _lock:
        views = dict(_views)
    for schema in sorted({schema for schema, _name in views}):
        connection.execute(f"create schema if not exists {ident(schema)}")
    failures = []
    for (schema, name), (namespace, table, snapshot_id) in views.items():
        at = f" AT (VERSION => {int(snapshot_id)})" if snapshot_id is not None else ""
        try:
            if schema == FILTERED_SCHEMA:
                if filtered is None:
                    raise ValueError("it is filtered or masked for this principal and this connection cannot apply that")
                body = filtered(namespace, table, snapshot_id)
            else:
                body = f"select * from {ident(catalog_alias)}.{ident(namespace)}.{ident(table)}{at}"
            connection.execute(f"create or replace view {ident(schema)}.{ident(name)} as {body}")
        except Exception as exc:  # noqa: BLE001 - DuckDB's and the catalog's refusals alike
            reason = " ".join(str(exc).split())[:300]
            failures.append(f"cannot read {namespace}.{table} (view {schema}.{name}): {reason}")
    return failures
