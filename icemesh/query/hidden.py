"""A column hidden by policy, named as such instead of an engine's "column not found".

The catalog hands the caller each product without its hidden columns, so every engine can only say the column
does not exist. Before a query runs, the column names it references (sqlglot) are compared with the visible
columns of the products it reads; a name that none of them has and that the query does not define itself (an
alias, a CTE's or a table alias's column, a lambda parameter) is looked up in the catalog's access decision for
the caller (`GET /management/v1/access`: hidden_columns), and a hidden one is refused with the tags it carries
(`GET /management/v1/effective-tags`):

    column email of shop.customers is hidden from svc_marketing by policy (sensitivity=confidential)

A query that names only visible columns costs nothing more; one with a typo costs one or two calls and then
gets the engine's own message.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlglot import exp

from icemesh.client import ClientError
from icemesh.query.errors import QueryError
from icemesh.query.references import parsed

M = "/management/v1"


def check(client, sql: str, dialect: str | None, products: list) -> None:
    """Raise QueryError when the query names a column of one of `products` that policy hides from the caller."""
    if not products:
        return
    unknown = _unknown_columns(sql, dialect, {c.lower() for p in products for c in p.columns})
    if not unknown:
        return
    principal = None
    for qualifier, column in unknown:
        for product in _candidates(products, qualifier):
            principal = principal or _principal(client)
            if principal is None:
                return
            hidden = _hidden_columns(client, principal, product.name)
            match = next((h for h in hidden if h.lower() == column.lower()), None)
            if match is not None:
                raise QueryError(f"column {match} of {product.name} is hidden from {principal} by policy"
                                 f"{_why(client, product.name, match)}")


def _unknown_columns(sql: str, dialect: str | None, visible: set[str]) -> list[tuple[str | None, str]]:
    referenced, defined = _column_names(sql, dialect)
    return [(qualifier, name) for qualifier, name in referenced if name.lower() not in visible | defined]


@lru_cache(maxsize=256)
def _column_names(sql: str, dialect: str | None) -> tuple[tuple[tuple[str | None, str], ...], frozenset[str]]:
    """The (qualifier, name) column references of the query, and the names it defines itself (lower-cased)."""
    defined: set[str] = set()
    referenced: dict[tuple[str | None, str], None] = {}
    for statement in parsed(sql, dialect):
        for node in statement.walk():
            if isinstance(node, exp.Alias):
                defined.add(node.alias.lower())
            elif isinstance(node, exp.TableAlias):
                defined.update(c.name.lower() for c in node.columns)
            elif isinstance(node, exp.Lambda):
                defined.update(e.name.lower() for e in node.expressions)
            elif isinstance(node, exp.Column) and node.name:
                referenced.setdefault((node.table or None, node.name), None)
    return tuple(referenced), frozenset(defined)


def _candidates(products: list, qualifier: str | None) -> list:
    """The products a column reference may belong to: the one its qualifier names first, then the others."""
    if qualifier:
        named = [p for p in products if p.ref.name.lower() == qualifier.lower()]
        return named + [p for p in products if p not in named]
    return list(products)


def _principal(client) -> str | None:
    try:
        return client.request("GET", f"{M}/whoami")["name"]
    except (ClientError, KeyError, TypeError):
        return None


def _hidden_columns(client, principal: str, product: str) -> list[str]:
    try:
        decision = client.request("GET", f"{M}/access", params={"principal": principal, "resource": product,
                                                                "action": "SELECT"})
    except ClientError:
        return []
    return [str(c) for c in (decision or {}).get("hidden_columns") or []]


def _why(client, product: str, column: str) -> str:
    """` (key=value, ...)`: the tags set on the column itself, else all it inherits; empty when unknown."""
    try:
        tags: dict[str, Any] = (client.request("GET", f"{M}/effective-tags", params={"resource": product})
                                .get("columns", {}).get(column) or {})
    except (ClientError, AttributeError):
        return ""
    own = {k: t for k, t in tags.items() if str(t.get("from", "")).startswith("column")}
    shown = sorted((own or tags).items())
    if not shown:
        return ""
    return " (" + ", ".join(f"{key}={tag.get('value')}" for key, tag in shown) + ")"
