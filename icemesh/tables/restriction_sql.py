"""Read restrictions (a row filter and column masks) compiled into one SELECT for DuckDB, Spark SQL or ClickHouse.

Engines that read a product with their own scanner (DuckDB's iceberg_scan, Spark's catalog, chDB's IcebergLocal,
a dbt ref on DuckDB) apply the restrictions in SQL instead of materializing rows in Python: the filter reaches
the scan (fewer rows read, fewer hashed) and the masks run as the engine's native functions. The compiler works on the bound Iceberg
expression, never on the admin's text: identifiers are quoted and escaped, literals are typed by the column
they compare with and rendered from their values (strings escaped, dates and timestamps as typed literals,
numbers from Python's own representation), so nothing the admin or producer wrote reaches the SQL raw.

The order is the spec's: the WHERE sees the unmasked columns, the masks are the SELECT list, and a caller's
own query runs on the result. Each mask gives exactly what icemesh.query.restricted computes in Arrow.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any, Iterable

DIALECTS = ("duckdb", "spark", "clickhouse")
_EPOCH = dt.datetime(1970, 1, 1)


class UnsupportedRestriction(ValueError):
    """A filter or mask this compiler cannot express: the caller falls back to reading in Python, or refuses."""


def quote(name: str, dialect: str) -> str:
    if dialect in ("spark", "clickhouse"):
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def string_literal(value: str, dialect: str) -> str:
    if "\x00" in value:
        raise UnsupportedRestriction("a string literal with a NUL character")
    escaped = value.replace("'", "''")
    if dialect in ("spark", "clickhouse"):  # both also treat the backslash as an escape inside string literals
        escaped = escaped.replace("\\", "\\\\")
    return f"'{escaped}'"


def snapshot_source(dialect: str, snapshot_id: int, metadata_location: str = "", table: tuple[str, ...] = ()) -> str:
    """The relation a restricted SELECT reads: one snapshot of the table. DuckDB scans the metadata file itself
    (`iceberg_scan`); Spark names `table` (catalog, namespace..., name) in a catalog that serves it."""
    if dialect == "spark":
        return ".".join(quote(part, "spark") for part in table) + f" VERSION AS OF {int(snapshot_id)}"
    return f"iceberg_scan({string_literal(metadata_location, 'duckdb')}, snapshot_from_id => {int(snapshot_id)})"


def select(columns: Iterable[Any], masks: dict[str, str], row_filter: Any, schema: Any, source: str,
           dialect: str) -> str:
    """`SELECT <columns, masked> FROM <source> [WHERE <row filter>]`. `columns` are the pyiceberg NestedFields
    the reader may see, `schema` the pyiceberg Schema the filter binds to, `source` a relation already safe
    to paste (built by the caller from quoted parts)."""
    if dialect not in DIALECTS:
        raise ValueError(f"no SQL dialect {dialect!r}: one of {', '.join(DIALECTS)}")
    items = []
    for column in columns:
        name = quote(column.name, dialect)
        action = masks.get(column.name)
        expression = name if action is None else _mask(action, name, column.field_type, dialect)
        items.append(f"{expression} AS {name}" if action is not None else name)
    if row_filter is not None and dialect == "clickhouse":
        # ClickHouse lets WHERE name a SELECT alias, which would filter on the masked value: filter first
        source = f"(SELECT * FROM {source} WHERE {where(row_filter, schema, dialect)}) AS _unmasked"
        row_filter = None
    sql = f"SELECT {', '.join(items) or '*'} FROM {source}"
    if row_filter is not None:
        sql += f" WHERE {where(row_filter, schema, dialect)}"
    return sql


def where(row_filter: Any, schema: Any, dialect: str) -> str:
    """The row filter bound to `schema` (names checked, literals typed) as a SQL condition."""
    from pyiceberg.expressions.visitors import bind

    try:
        bound = bind(schema, row_filter, case_sensitive=True)
    except ValueError as exc:
        raise UnsupportedRestriction(f"the row filter does not fit the table: {exc}") from None
    return _condition(bound, dialect)


def _condition(node: Any, dialect: str) -> str:
    from pyiceberg import expressions as e

    if isinstance(node, e.AlwaysTrue):
        return "TRUE"
    if isinstance(node, e.AlwaysFalse):
        return "FALSE"
    if isinstance(node, e.And):
        return f"({_condition(node.left, dialect)} AND {_condition(node.right, dialect)})"
    if isinstance(node, e.Or):
        return f"({_condition(node.left, dialect)} OR {_condition(node.right, dialect)})"
    if isinstance(node, e.Not):
        return f"(NOT {_condition(node.child, dialect)})"
    field = node.term.ref().field
    column = quote(node.term.ref().field.name, dialect)
    unary = {e.BoundIsNull: f"{column} IS NULL", e.BoundNotNull: f"{column} IS NOT NULL",
             e.BoundIsNaN: f"isNaN({column})", e.BoundNotNaN: f"NOT isNaN({column})"}
    for kind, text in unary.items():
        if isinstance(node, kind):
            return f"({text})"
    if isinstance(node, (e.BoundIn, e.BoundNotIn)):
        values = ", ".join(_literal(v.value, field.field_type, dialect) for v in
                           sorted(node.literals, key=lambda lit: repr(lit.value)))
        # pyiceberg's Arrow reader (and Iceberg's own evaluator) answer IN for a NULL with false, so NOT IN keeps
        # it; SQL would answer NULL to both. Written out so every engine keeps the same rows.
        if isinstance(node, e.BoundNotIn):
            return f"({column} IS NULL OR {column} NOT IN ({values}))"
        return f"({column} IS NOT NULL AND {column} IN ({values}))"
    value = _literal(node.literal.value, field.field_type, dialect)
    if isinstance(node, (e.BoundStartsWith, e.BoundNotStartsWith)):
        function = {"spark": "startswith", "clickhouse": "startsWith"}.get(dialect, "starts_with")
        test = f"{function}({column}, {value})"
        return f"(NOT {test})" if isinstance(node, e.BoundNotStartsWith) else f"({test})"
    operators = {e.BoundEqualTo: "=", e.BoundNotEqualTo: "<>", e.BoundLessThan: "<", e.BoundLessThanOrEqual: "<=",
                 e.BoundGreaterThan: ">", e.BoundGreaterThanOrEqual: ">="}
    for kind, operator in operators.items():
        if isinstance(node, kind):
            return f"({column} {operator} {value})"
    raise UnsupportedRestriction(f"a row filter predicate {type(node).__name__}")


def _literal(value: Any, kind: Any, dialect: str) -> str:
    from pyiceberg import types as t

    if isinstance(kind, t.BooleanType):
        return "TRUE" if value else "FALSE"
    if isinstance(kind, (t.IntegerType, t.LongType)):
        return str(int(value))
    if isinstance(kind, (t.FloatType, t.DoubleType)):
        number = float(value)
        if not math.isfinite(number):
            raise UnsupportedRestriction("a non-finite number in a row filter")
        return f"CAST({number!r} AS {'Float64' if dialect == 'clickhouse' else 'DOUBLE'})"
    if isinstance(kind, t.DecimalType):
        return f"CAST({string_literal(str(Decimal(value)), dialect)} AS {sql_type(kind, dialect)})"
    if isinstance(kind, t.StringType):
        return string_literal(str(value), dialect)
    if isinstance(kind, t.DateType):
        day = (_EPOCH.date() + dt.timedelta(days=int(value))).isoformat()
        return f"toDate32('{day}')" if dialect == "clickhouse" else f"DATE '{day}'"
    if dialect == "clickhouse":  # how IcebergLocal types timestamps is not pinned down here: Arrow reads those
        raise UnsupportedRestriction(f"a row filter on a {kind} column in ClickHouse")
    if isinstance(kind, (t.TimestampType, t.TimestamptzType)):
        moment = (_EPOCH + dt.timedelta(microseconds=int(value))).isoformat(sep=" ")
        if isinstance(kind, t.TimestamptzType):
            return f"TIMESTAMP '{moment}+00:00'" if dialect == "duckdb" else f"TIMESTAMP '{moment}Z'"
        return f"TIMESTAMP '{moment}'" if dialect == "duckdb" else f"TIMESTAMP_NTZ '{moment}'"
    raise UnsupportedRestriction(f"a row filter on a {kind} column")


def sql_type(kind: Any, dialect: str) -> str:
    from pyiceberg import types as t

    if dialect == "clickhouse":
        return _clickhouse_type(kind)
    names = {t.BooleanType: "BOOLEAN", t.IntegerType: "INTEGER", t.LongType: "BIGINT", t.FloatType: "FLOAT",
             t.DoubleType: "DOUBLE", t.DateType: "DATE",
             t.StringType: "STRING" if dialect == "spark" else "VARCHAR",
             t.BinaryType: "BINARY" if dialect == "spark" else "BLOB",
             t.TimestampType: "TIMESTAMP_NTZ" if dialect == "spark" else "TIMESTAMP",
             t.TimestamptzType: "TIMESTAMP" if dialect == "spark" else "TIMESTAMPTZ"}
    if isinstance(kind, t.DecimalType):
        return f"DECIMAL({kind.precision}, {kind.scale})"
    for cls, name in names.items():
        if isinstance(kind, cls):
            return name
    raise UnsupportedRestriction(f"a mask on a {kind} column")


def _clickhouse_type(kind: Any) -> str:
    """The type IcebergLocal gives an Iceberg column (without Nullable), for the types a mask keeps."""
    from pyiceberg import types as t

    if isinstance(kind, t.DecimalType):
        return f"Decimal({kind.precision}, {kind.scale})"
    names = {t.BooleanType: "Bool", t.IntegerType: "Int32", t.LongType: "Int64", t.FloatType: "Float32",
             t.DoubleType: "Float64", t.DateType: "Date32", t.StringType: "String", t.BinaryType: "String"}
    for cls, name in names.items():
        if isinstance(kind, cls):
            return name
    raise UnsupportedRestriction(f"a mask on a {kind} column in ClickHouse")


def _fixed(name: str, kind: Any, dialect: str) -> str:
    """One value of the column's type for every present value (as restricted._fixed): NULL stays NULL."""
    from pyiceberg import types as t

    if dialect == "clickhouse":
        return _clickhouse_fixed(name, kind)
    if isinstance(kind, t.StringType):
        value = "'****'"
    elif isinstance(kind, t.BinaryType):
        value = "X''" if dialect == "spark" else "''::BLOB"
    elif isinstance(kind, t.BooleanType):
        value = "FALSE"
    elif isinstance(kind, (t.IntegerType, t.LongType, t.FloatType, t.DoubleType, t.DecimalType)):
        value = f"CAST(0 AS {sql_type(kind, dialect)})"
    elif isinstance(kind, t.DateType):
        value = "DATE '1970-01-01'"
    elif isinstance(kind, (t.TimestampType, t.TimestamptzType)):
        value = _literal(0, kind, dialect)
    else:
        return _null(name, kind, dialect)
    return f"CASE WHEN {name} IS NULL THEN NULL ELSE {value} END"


def _clickhouse_fixed(name: str, kind: Any) -> str:
    from pyiceberg import types as t

    if isinstance(kind, (t.StringType, t.BinaryType)):
        value = "'****'" if isinstance(kind, t.StringType) else "''"
    elif isinstance(kind, t.BooleanType):
        value = "false"
    elif isinstance(kind, t.DateType):
        value = "toDate32('1970-01-01')"
    else:
        value = f"CAST(0 AS {_clickhouse_type(kind)})"
    return f"if(isNull({name}), NULL, {value})"


def _null(name: str, kind: Any, dialect: str) -> str:
    if dialect == "clickhouse":  # NULL of the column's own (Nullable) type, whatever IcebergLocal made it
        return f"if(0, {name}, NULL)"
    return f"CAST(NULL AS {sql_type(kind, dialect)})"


def _mask(action: str, name: str, kind: Any, dialect: str) -> str:
    from pyiceberg import types as t

    if action == "replace-with-null":
        return _null(name, kind, dialect)
    if action == "mask-to-fixed-value":
        return _fixed(name, kind, dialect)
    if action in ("hash-sha256", "show-first-4", "show-last-4") and not isinstance(kind, t.StringType):
        raise UnsupportedRestriction(f"{action} on a {kind} column")
    if action == "hash-sha256":  # the lowercase hex SHA-256 of the UTF-8 bytes, as hashlib's hexdigest()
        hashes = {"spark": f"sha2({name}, 256)", "clickhouse": f"lower(hex(SHA256({name})))"}
        return hashes.get(dialect, f"sha256({name})")
    if action in ("show-first-4", "show-last-4") and dialect == "clickhouse":
        stars = f"repeat('*', toUInt64(greatest(lengthUTF8({name}) - 4, 0)))"
        kept = f"leftUTF8({name}, 4)" if action == "show-first-4" else f"rightUTF8({name}, 4)"
        return f"concat({kept}, {stars})" if action == "show-first-4" else f"concat({stars}, {kept})"
    if action in ("show-first-4", "show-last-4"):
        stars = f"repeat('*', greatest(length({name}) - 4, 0))"
        kept = f"left({name}, 4)" if action == "show-first-4" else f"right({name}, 4)"
        # `||` is NULL in, NULL out on both engines (DuckDB's concat() would turn a NULL into '****')
        return f"({kept} || {stars})" if action == "show-first-4" else f"({stars} || {kept})"
    if action.startswith("truncate-to-"):
        unit = action.removeprefix("truncate-to-")
        if unit not in ("year", "month", "day"):
            raise UnsupportedRestriction(f"the mask {action}")
        if isinstance(kind, t.DateType) and dialect == "clickhouse":  # stays Date32 (toStartOf* may give Date)
            if unit == "day":
                return name
            day = "toDayOfYear" if unit == "year" else "toDayOfMonth"
            return f"subtractDays({name}, {day}({name}) - 1)"
        if dialect == "clickhouse":
            raise UnsupportedRestriction(f"{action} on a {kind} column in ClickHouse")
        if isinstance(kind, t.DateType):
            return f"CAST(date_trunc('{unit}', {name}) AS DATE)"
        if isinstance(kind, (t.TimestampType, t.TimestamptzType)):
            return f"CAST(date_trunc('{unit}', {name}) AS {sql_type(kind, dialect)})"
        raise UnsupportedRestriction(f"{action} on a {kind} column")
    raise UnsupportedRestriction(f"the mask {action}")
