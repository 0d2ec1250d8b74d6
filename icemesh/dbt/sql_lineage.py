"""Which columns of which upstream products each column of a model comes from, read from its compiled SQL.

For the OpenLineage column-lineage facet. sqlglot parses the SQL in the engine's dialect and traces every output
column to the tables it reads; only tables that are upstream products (`{catalog alias}.{namespace}.{table}` with
the mesh's alias) are kept, so a column fed through a local staging model or a table function names no source
rather than a wrong one. Best effort by design: SQL that sqlglot cannot parse, or no sqlglot installed (it comes
with the `engines` extra), gives no column lineage at all.
"""

from __future__ import annotations

from collections.abc import Iterable

DIALECTS = {"duckdb": "duckdb", "spark": "spark"}


def column_sources(sql: str, engine: str, products: dict[str, list[str]], columns: Iterable[str],
                   catalogs: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    """{output column: [(product, product column), ...]} for the columns traced to at least one product.

    `products` maps the upstream products (`namespace.table`) to their column names; `catalogs` are the names
    the engine knows the mesh by (e.g. `mesh`, `mesh_upstream`)."""
    try:
        import sqlglot
        from sqlglot.errors import SqlglotError
        from sqlglot.lineage import lineage
    except ImportError:
        return {}
    dialect = DIALECTS.get(engine)
    catalogs = {c.lower() for c in catalogs}
    schema: dict = {}
    for product, names in products.items():
        namespace, _, table = product.rpartition(".")
        for catalog in catalogs:
            schema.setdefault(catalog, {}).setdefault(namespace, {})[table] = {n: "UNKNOWN" for n in names}
    try:
        expression = sqlglot.parse_one(sql, dialect=dialect)
    except SqlglotError:
        return {}
    by_lower = {p.lower(): (p, {n.lower(): n for n in names}) for p, names in products.items()}
    found: dict[str, list[tuple[str, str]]] = {}
    for column in columns:
        try:
            node = lineage(column, expression, schema=schema, dialect=dialect)
        except (SqlglotError, KeyError, ValueError):
            continue
        sources = []
        for leaf in node.walk():
            if leaf.downstream:
                continue
            source = _product_column(leaf, catalogs, by_lower)
            if source is not None and source not in sources:
                sources.append(source)
        if sources:
            found[column] = sources
    return found


def _product_column(leaf, catalogs: set[str], products: dict) -> tuple[str, str] | None:
    from sqlglot import exp

    table = leaf.source
    if not isinstance(table, exp.Table) or not table.db:
        return None
    if table.catalog and table.catalog.lower() not in catalogs:
        return None  # a table of the engine's own (dbt-duckdb's local database), not a product
    known = products.get(f"{table.db}.{table.name}".lower())
    if known is None:
        return None
    product, names = known
    field = names.get(leaf.name.rsplit(".", 1)[-1].lower())
    return (product, field) if field is not None else None
