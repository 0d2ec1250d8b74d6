"""Reading a product under its read restrictions, the same way for every engine.

The catalog hands a filtered or masked reader the REST spec's `read-restrictions` with the table (see
icemesh.catalog.read_restrictions); icemesh's engines apply them in the spec's order: the row filter on the
unmasked data (pyiceberg evaluates it while it reads the files), then the masks, then the user's own query on
the result. Every engine then queries the same in-memory rows, so all six return the same answer; the engines'
own readers never see the table (the catalog refuses them: they do not declare that they apply restrictions).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from icemesh.query.errors import QueryError
from icemesh.tables import row_filters


@dataclass(frozen=True)
class ReadRestrictions:
    row_filter: Any = None  # a pyiceberg BooleanExpression, or None: every row
    masks: dict[str, str] = field(default_factory=dict)  # column name -> spec action
    raw: str = ""  # the JSON as served, which identifies them (Product.version)

    def __bool__(self) -> bool:
        return self.row_filter is not None or bool(self.masks)


def parse(data: dict | None, schema) -> ReadRestrictions | None:
    """The `read-restrictions` of a loadTable answer, with field ids named by the schema the caller received."""
    if not data:
        return None
    import json

    names = {f.field_id: f.name for f in schema.fields}
    masks = {}
    for projection in data.get("required-column-projections") or []:
        name = names.get(projection.get("field-id"))
        if name is None:  # a masked column this reader was not given: nothing of it to show
            continue
        masks[name] = projection.get("action", "")
    unknown = sorted({a for a in masks.values() if a not in MASKS})
    if unknown:  # fail closed: an action this client cannot apply means it may not read the table
        raise QueryError(f"The catalog asks for masks this icemesh cannot apply ({', '.join(unknown)}): upgrade icemesh")
    try:
        expression = row_filters.from_json(data["row-filter"]) if data.get("row-filter") is not None else None
    except ValueError as exc:
        raise QueryError(f"The catalog's row filter cannot be read ({exc}): upgrade icemesh") from None
    found = ReadRestrictions(expression, masks, json.dumps(data, sort_keys=True))
    return found or None


def read(product) -> pa.Table:
    """The product's rows and columns as its reader may see them."""
    restrictions: ReadRestrictions = product.restrictions
    kwargs: dict[str, Any] = {"selected_fields": tuple(product.columns)}
    if restrictions.row_filter is not None:
        kwargs["row_filter"] = restrictions.row_filter
    if product.snapshot_id is not None:
        kwargs["snapshot_id"] = product.snapshot_id
    table = product.table.scan(**kwargs).to_arrow()
    return mask(table, restrictions.masks)


def select_sql(product, dialect: str, source: str) -> str | None:
    """The product's restrictions as one SELECT over `source` (the engine's own scan of the table), for an
    engine that reads the files itself; None when the compiler cannot express them (read() then does)."""
    from icemesh.tables import restriction_sql

    restrictions: ReadRestrictions = product.restrictions
    schema = product.table.schema()
    try:
        columns = [schema.find_field(name) for name in product.columns]
        return restriction_sql.select(columns, restrictions.masks, restrictions.row_filter, schema, source, dialect)
    except (restriction_sql.UnsupportedRestriction, ValueError):
        return None


# Engines that compile the restrictions into their own SQL (DuckDB, Spark) keep the filtered and masked rows
# of a product whose snapshot's data files add up to no more than this, once per version of the product:
# SHA-256 costs them about as much as the whole scan, so hashing once instead of on every query is what keeps
# masked reads close to open ones. Only masked values are kept (what the reader sees anyway); larger
# products are read through the compiled SQL on every query.
KEEP_MAX_FILE_BYTES = 256 * 1024 * 1024


def worth_keeping(product) -> bool:
    """True when the product's snapshot is small enough to keep its restricted rows in the engine's memory."""
    table = product.table
    snapshot = table.snapshot_by_id(product.snapshot_id) if product.snapshot_id is not None else None
    summary = snapshot.summary if snapshot is not None and snapshot.summary is not None else None
    try:
        size = int(summary.get("total-files-size")) if summary is not None else None
    except (TypeError, ValueError):
        return False
    return size is not None and size <= KEEP_MAX_FILE_BYTES


def mask(table: pa.Table, masks: dict[str, str]) -> pa.Table:
    for name, action in masks.items():
        if name in table.column_names:
            index = table.column_names.index(name)
            table = table.set_column(index, table.field(index), MASKS[action](table.column(index)))
    return table


def _null(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pa.chunked_array([pa.nulls(len(column), column.type)], column.type) if len(column) else column


def _fixed_value(kind: pa.DataType):
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "****"
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return b""
    if pa.types.is_boolean(kind):
        return False
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return 0
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        return 0
    return None


def _fixed(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Every present value replaced by one value of the column's type (NULL stays NULL)."""
    value = _fixed_value(column.type)
    if value is None:
        return _null(column)
    if pa.types.is_date(column.type) or pa.types.is_timestamp(column.type):
        scalar = pa.scalar(0, pa.int64() if pa.types.is_timestamp(column.type) else pa.int32()).cast(column.type)
    else:
        scalar = pa.scalar(value, column.type)
    return pc.if_else(pc.is_valid(column), scalar, pa.scalar(None, column.type))


def _sha256(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """The lowercase hex SHA-256 of each value's UTF-8 bytes: DuckDB's vectorized sha256 over the Arrow column
    (no copy of the strings into Python), hashlib where DuckDB is missing."""
    try:
        import duckdb
    except ImportError:
        hashed = [None if v is None else hashlib.sha256(v.encode("utf-8")).hexdigest() for v in column.to_pylist()]
        return pa.chunked_array([pa.array(hashed, column.type)], column.type)
    con = duckdb.connect()
    try:
        values = pa.table({"v": column})
        con.register("_values", values)
        hashed = con.execute("SELECT sha256(v) AS h FROM _values").to_arrow_table().column("h")
    finally:
        con.close()
    return hashed.cast(column.type)


def _show(first: bool):
    def show(column: pa.ChunkedArray) -> pa.ChunkedArray:
        """Four characters kept (the first or the last), every other one replaced by '*'."""
        length = pc.utf8_length(column)
        hidden = pc.max_element_wise(pc.subtract(length, 4), 0)
        stars = pc.binary_repeat(pa.scalar("*", column.type), hidden)
        kept = pc.utf8_slice_codeunits(column, 0, 4) if first else pc.utf8_slice_codeunits(column, -4)
        nothing = pa.scalar("", column.type)  # the separator in the column's own type (string or large_string)
        joined = pc.binary_join_element_wise(*((kept, stars) if first else (stars, kept)), nothing)
        return joined.cast(column.type)
    return show


def _truncate(unit: str):
    def truncate(column: pa.ChunkedArray) -> pa.ChunkedArray:
        if pa.types.is_date(column.type):
            return pc.floor_temporal(column.cast(pa.timestamp("s")), unit=unit).cast(pa.date32()).cast(column.type)
        return pc.floor_temporal(column, unit=unit)
    return truncate


MASKS = {
    "replace-with-null": _null,
    "mask-to-fixed-value": _fixed,
    "hash-sha256": _sha256,
    "show-first-4": _show(True),
    "show-last-4": _show(False),
    "truncate-to-year": _truncate("year"),
    "truncate-to-month": _truncate("month"),
    "truncate-to-day": _truncate("day"),
}
