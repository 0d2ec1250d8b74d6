"""Read restrictions compiled to SQL (icemesh/tables/restriction_sql.py) against the Arrow path: for random rows
(NULLs included), random row filters and random masks, DuckDB running the compiled SELECT returns exactly the
rows and values that pyiceberg's Arrow evaluation of the filter plus icemesh's Arrow masks return (the path
Polars, DataFusion, Daft and chDB read through), so every engine answers alike. No server: pure, many cases."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from hypothesis import given, settings, strategies as st
from pyiceberg import expressions as e
from pyiceberg.expressions.visitors import bind
from pyiceberg.io.pyarrow import expression_to_pyarrow
from pyiceberg.schema import Schema
from pyiceberg.types import DateType, LongType, NestedField, StringType

from icemesh.query.restricted import MASKS, mask
from icemesh.tables import restriction_sql

SCHEMA = Schema(NestedField(1, "n", LongType()), NestedField(2, "s", StringType()), NestedField(3, "d", DateType()))
ARROW = pa.schema([("n", pa.int64()), ("s", pa.string()), ("d", pa.date32())])
WORDS = ["", "a", "ab", "abcd", "abcdef", "O'Hara", 'say "hi"', "back\\slash", "ünïcødé"]

rows = st.lists(st.fixed_dictionaries({
    "n": st.one_of(st.none(), st.integers(-5, 5)),
    "s": st.one_of(st.none(), st.sampled_from(WORDS)),
    "d": st.one_of(st.none(), st.dates(dt.date(1969, 12, 1), dt.date(2001, 3, 1))),
}), max_size=25)
leaf = st.one_of(
    st.builds(lambda op, v: op("n", v), st.sampled_from([e.EqualTo, e.NotEqualTo, e.LessThan, e.LessThanOrEqual,
                                                         e.GreaterThan, e.GreaterThanOrEqual]), st.integers(-5, 5)),
    st.builds(lambda op, v: op("s", v), st.sampled_from([e.EqualTo, e.NotEqualTo, e.StartsWith, e.NotStartsWith]),
              st.sampled_from(WORDS[1:])),
    st.builds(lambda op, vs: op("s", vs), st.sampled_from([e.In, e.NotIn]),
              st.sets(st.sampled_from(WORDS), min_size=2, max_size=3)),
    st.builds(lambda op, vs: op("n", vs), st.sampled_from([e.In, e.NotIn]),
              st.sets(st.integers(-5, 5), min_size=2, max_size=3)),
    st.builds(lambda op, c: op(c), st.sampled_from([e.IsNull, e.NotNull]), st.sampled_from(["n", "s", "d"])),
    st.builds(lambda op, v: op("d", v), st.sampled_from([e.LessThan, e.GreaterThanOrEqual, e.EqualTo]),
              st.dates(dt.date(1969, 12, 1), dt.date(2001, 3, 1)).map(lambda d: d.isoformat())),
)
filters = st.recursive(leaf, lambda inner: st.one_of(
    st.builds(e.And, inner, inner), st.builds(e.Or, inner, inner), st.builds(e.Not, inner)), max_leaves=4)
masks = st.fixed_dictionaries({}, optional={
    "n": st.sampled_from(["replace-with-null", "mask-to-fixed-value"]),
    "s": st.sampled_from(["replace-with-null", "mask-to-fixed-value", "hash-sha256", "show-first-4", "show-last-4"]),
    "d": st.sampled_from(["replace-with-null", "mask-to-fixed-value", "truncate-to-year", "truncate-to-month",
                          "truncate-to-day"]),
})


def arrow_path(table: pa.Table, row_filter, actions: dict[str, str]) -> list[tuple]:
    kept = ds.dataset(table).to_table(filter=expression_to_pyarrow(bind(SCHEMA, row_filter, True)))
    return [tuple(r.values()) for r in mask(kept, actions).to_pylist()], kept.num_rows


def sql_path(table: pa.Table, row_filter, actions: dict[str, str]) -> list[tuple]:
    con = duckdb.connect()
    con.register("people", table)
    sql = restriction_sql.select(SCHEMA.fields, actions, row_filter, SCHEMA, '"people"', "duckdb")
    return [tuple(r) for r in con.execute(sql).fetchall()]


def clickhouse_path(table: pa.Table, row_filter, actions: dict[str, str]) -> list[tuple]:
    """The compiled ClickHouse SELECT run by chDB over the same rows (what the chdb engine's view runs)."""
    import chdb

    con = chdb.connect(":memory:")
    try:
        people = table  # noqa: F841 (named by Python() below)
        sql = restriction_sql.select(SCHEMA.fields, actions, row_filter, SCHEMA, "Python(people)", "clickhouse")
        return [tuple(r.values()) for r in con.query(sql, "ArrowTable").to_pylist()]
    finally:
        con.close()


def _comparable(rows: list[tuple]) -> list[tuple]:
    return sorted((tuple(str(v) if v is not None else None for v in r) for r in rows), key=repr)


def _same_as_arrow(compiled_path, data, row_filter, actions) -> None:
    table = pa.Table.from_pylist(data, schema=ARROW)
    expected, _kept = arrow_path(table, row_filter, actions)
    assert _comparable(compiled_path(table, row_filter, actions)) == _comparable(expected), (row_filter, actions)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=rows, row_filter=filters, actions=masks)
def test_compiled_sql_keeps_and_masks_what_the_arrow_path_does(data, row_filter, actions):
    _same_as_arrow(sql_path, data, row_filter, actions)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(data=rows, row_filter=filters, actions=masks)
def test_compiled_clickhouse_keeps_and_masks_what_the_arrow_path_does(data, row_filter, actions):
    _same_as_arrow(clickhouse_path, data, row_filter, actions)


def test_literals_and_names_never_reach_the_sql_raw():
    """Quotes, backslashes and a column named like SQL stay inside their literal or identifier."""
    schema = Schema(NestedField(1, 'we"ird`name', StringType()))
    sql = restriction_sql.select(schema.fields, {}, e.EqualTo('we"ird`name', "x' OR '1'='1"), schema, "t", "duckdb")
    assert sql == 'SELECT "we""ird`name" FROM t WHERE ("we""ird`name" = \'x\'\' OR \'\'1\'\'=\'\'1\')'
    spark = restriction_sql.select(schema.fields, {}, e.EqualTo('we"ird`name', "a\\' OR 1=1 --"), schema, "t", "spark")
    assert spark == "SELECT `we\"ird``name` FROM t WHERE (`we\"ird``name` = 'a\\\\'' OR 1=1 --')"
    con = duckdb.connect()
    con.register("t", pa.table({'we"ird`name': ["x' OR '1'='1", "y"]}))
    assert con.execute(sql).fetchall() == [("x' OR '1'='1",)]


def test_what_cannot_be_compiled_is_said_not_guessed():
    with pytest.raises(restriction_sql.UnsupportedRestriction):
        restriction_sql.select(SCHEMA.fields, {"n": "hash-sha256"}, None, SCHEMA, "t", "duckdb")
    with pytest.raises(restriction_sql.UnsupportedRestriction):
        restriction_sql.where(e.EqualTo("missing", 1), SCHEMA, "duckdb")
    assert set(MASKS) >= {"hash-sha256", "show-first-4", "truncate-to-month"}
