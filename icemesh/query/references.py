"""Which products a query names, and the same query pinned to snapshots, using sqlglot's parser (never a regex).

A product reference is a table name with a namespace (`sales.orders`, or `a.b.t` for a nested namespace);
one-part names can only be CTEs (guard.py refuses the others). Each engine parses in its own dialect.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

from icemesh.query.errors import QueryError

# sqlglot warns on stderr when it falls back to an opaque Command (`LOAD x`): guard.py refuses those in one line.
logging.getLogger("sqlglot").setLevel(logging.ERROR)


@dataclass(frozen=True, order=True)
class Reference:
    namespace: tuple[str, ...]
    name: str

    @property
    def dotted(self) -> str:
        return ".".join((*self.namespace, self.name))


def parse(sql: str, dialect: str | None) -> list[exp.Expression]:
    """The query's statements, or a QueryError with the parser's own message (where, near what)."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except ParseError as exc:
        raise QueryError(f"Cannot parse the query: {parse_error(exc)}") from None
    except SqlglotError as exc:  # the tokenizer: an unterminated string or comment
        raise QueryError(f"Cannot parse the query: {_one_line(str(exc)) or 'syntax error'} (check quotes and comments)") from None
    if not statements:
        raise QueryError("Empty query: pass one SQL statement")
    return statements


@lru_cache(maxsize=256)
def parsed(sql: str, dialect: str | None) -> tuple[exp.Expression, ...]:
    """`parse`, once per text and dialect, for readers that never change the tree (the guard, the references, the
    hidden-column check): a query is parsed once however many of them look at it. Rewrites parse their own copy."""
    return tuple(parse(sql, dialect))


def parse_error(exc: ParseError) -> str:
    """Where the parser stopped and near what, without sqlglot's internals (class names, terminal colours)."""
    errors = getattr(exc, "errors", None) or []
    if not errors:
        return _one_line(str(exc)) or "syntax error"
    first = errors[0]
    description = str(first.get("description") or "")
    what = "syntax error" if "<class" in description or not description else description.split(". ")[0]
    near = _one_line(str(first.get("highlight") or ""))
    where = f" at line {first.get('line')}, column {first.get('col')}" if first.get("line") else ""
    return f"{what}{where}" + (f" near {near!r}" if near else "")


def _one_line(text: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return " ".join(text.split())


def _product_tables(statements: list[exp.Expression]):
    for statement in statements:
        for table in statement.find_all(exp.Table):
            if isinstance(table.this, exp.Identifier) and table.args.get("db") is not None:
                yield table


def _reference(table: exp.Table) -> Reference:
    parts = [p.name for p in table.parts]
    return Reference(tuple(parts[:-1]), parts[-1])


def product_references(sql: str, dialect: str | None) -> list[Reference]:
    """The distinct `<namespace>.<table>` names the query reads."""
    return list(_references(sql, dialect))


# Parsing is a fixed cost of every query; the same text in the same dialect always names the same products,
# and a session (a dashboard, a loop) tends to repeat its queries. Failed parses raise and are not cached.
@lru_cache(maxsize=256)
def _references(sql: str, dialect: str | None) -> tuple[Reference, ...]:
    seen: dict[Reference, None] = {}
    for table in _product_tables(parsed(sql, dialect)):
        seen.setdefault(_reference(table), None)
    return tuple(seen)


def pin_snapshots(sql: str, dialect: str, snapshots: dict[Reference, int], style: str) -> str:
    """The query with every product reference read at its snapshot.

    `style` is the engine's time-travel syntax: "version_as_of" (Spark: `t VERSION AS OF n`) or "at_version"
    (DuckDB: `t AT (VERSION => n)`). References already carrying a time-travel clause are left alone.
    """
    return _pinned(sql, dialect, tuple(sorted(snapshots.items())), style)


@lru_cache(maxsize=256)
def _pinned(sql: str, dialect: str, pins: tuple[tuple[Reference, int], ...], style: str) -> str:
    snapshots = dict(pins)
    statements = parse(sql, dialect)
    for table in _product_tables(statements):
        snapshot = snapshots.get(_reference(table))
        if snapshot is None or table.args.get("version") or table.args.get("when"):
            continue
        if style == "version_as_of":
            table.set("version", exp.Version(this="VERSION", kind="AS OF", expression=exp.Literal.number(snapshot)))
        elif style == "at_version":
            table.set("when", exp.HistoricalData(this="AT", kind="VERSION", expression=exp.Literal.number(snapshot)))
        else:
            raise ValueError(f"unknown time-travel style {style!r}")
    return ";\n".join(s.sql(dialect=dialect) for s in statements)


def to_single_names(sql: str, dialect: str, names: dict[Reference, str]) -> str:
    """The query with each product reference replaced by a one-part name, for engines that cannot register
    qualified names. A reference without an alias is aliased to its table name, so `orders.id` still binds."""
    return _single_names(sql, dialect, tuple(sorted(names.items())))


@lru_cache(maxsize=256)
def _single_names(sql: str, dialect: str, renames: tuple[tuple[Reference, str], ...]) -> str:
    names = dict(renames)
    statements = parse(sql, dialect)
    for table in list(_product_tables(statements)):
        name = names.get(_reference(table))
        if name is None:
            continue
        alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.name))
        replacement = exp.Table(this=exp.to_identifier(name, quoted=True), alias=alias)
        table.replace(replacement)
    return ";\n".join(s.sql(dialect=dialect) for s in statements)


def restricted_name(product, scope: str = "") -> str:
    """The private one-part name an engine registers a filtered or masked product's rows under; `scope` tells
    apart the engines that share one namespace in the process (Spark's session: one per engine instance)."""
    import hashlib

    return "_icemesh_rows_" + hashlib.sha256(f"{scope}|{product.name}".encode()).hexdigest()[:16]
