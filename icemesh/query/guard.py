"""What a query may read: the products the catalog hands the caller, and nothing around them.

Engines read more than tables: DuckDB's read_csv and `FROM 'x.csv'`, chDB's file() and url(), a glob over the
warehouse that finds a product's files with its hidden columns still in them. Before anything runs, this pass
over sqlglot's syntax tree (the engine's dialect) refuses, each with a one-line reason:
- anything but one query: COPY, ATTACH, INSTALL, LOAD, PRAGMA, SET, CREATE, INSERT, EXPLAIN, several statements;
- a FROM item that is not a product (`<namespace>.<table>`, loaded from the catalog as the caller), a CTE or a
  subquery: table functions (read_csv, read_parquet, glob, file, url, s3, iceberg_scan, icebergLocal, ...),
  string paths, one-part names; row generators (range, generate_series, unnest, numbers, VALUES) read nothing
  and pass;
- a function that reads files, URLs or the environment anywhere in the query (chDB's scalar file(), Spark's
  reflect, ...).
`local_files=True` (`icemesh.connect(local_files=True)`: the caller's own files) lifts the last two rules.
The engines are locked down as well where they can be (see each adapter); this pass is the same for all six.
"""

from __future__ import annotations

from functools import lru_cache

from sqlglot import exp

from icemesh.query.errors import QueryError
from icemesh.query.references import parsed

# Generators: they make rows, they read nothing.
GENERATORS = {"range", "generate_series", "unnest", "numbers", "numbers_mt", "zeros", "explode", "posexplode",
              "inline", "stack", "json_each", "sequence"}

# Functions that reach files, URLs, other databases or the process's environment, in any of the six engines.
OUTSIDE = {
    # DuckDB
    "read_csv", "read_csv_auto", "read_parquet", "parquet_scan", "parquet_metadata", "parquet_schema",
    "parquet_file_metadata", "parquet_kv_metadata", "read_json", "read_json_auto", "read_json_objects",
    "read_json_objects_auto", "read_ndjson", "read_ndjson_auto", "read_ndjson_objects", "read_text", "read_blob",
    "glob", "sniff_csv", "iceberg_scan", "iceberg_metadata", "iceberg_snapshots", "delta_scan", "read_xlsx",
    "st_read", "sqlite_scan", "postgres_scan", "mysql_scan", "query", "query_table", "getenv", "read_avro",
    # ClickHouse (chDB)
    "file", "filecluster", "url", "urlcluster", "s3", "s3cluster", "gcs", "hdfs", "hdfscluster", "azureblobstorage",
    "azureblobstoragecluster", "iceberg", "iceberglocal", "icebergs3", "icebergazure", "iceberghdfs",
    "icebergcluster", "icebergs3cluster", "deltalake", "deltalakelocal", "deltalakecluster", "hudi", "mysql",
    "postgresql", "sqlite", "mongodb", "redis", "remote", "remotesecure", "cluster", "clusterallreplicas", "jdbc",
    "odbc", "input", "executable", "merge", "dictionary", "arrowflight", "ytsaurus",
    # Polars, Daft, DataFusion
    "read_ipc", "read_deltalake", "read_iceberg", "read_lance", "read_warc", "read_sql", "read_hudi",
    # Spark
    "reflect", "java_method", "try_reflect", "read_files",
}

REFUSED_STATEMENTS = (exp.DML, exp.DDL, exp.Command, exp.Set, exp.Pragma, exp.Attach, exp.Detach, exp.Install,
                      exp.Use, exp.Transaction, exp.Commit, exp.Rollback, exp.LoadData, exp.Cache, exp.Uncache,
                      exp.Refresh, exp.Describe, exp.Show, exp.Summarize, exp.Kill, exp.Into, exp.Grant, exp.Revoke,
                      exp.Analyze, exp.Export)

HINT = "icemesh query reads only products from the catalog, named <namespace>.<table>"


def check(sql: str, dialect: str | None, local_files: bool = False) -> None:
    """Raise QueryError, one line, unless `sql` is one query that reads only products (and CTEs, subqueries)."""
    _check(sql, dialect, local_files)


@lru_cache(maxsize=256)
def _check(sql: str, dialect: str | None, local_files: bool) -> bool:
    statements = parsed(sql, dialect)
    if len(statements) != 1:
        raise QueryError(f"{len(statements)} statements: icemesh query runs one query at a time")
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        raise QueryError(f"{_kind(statement)} is refused: icemesh query runs queries (SELECT ...) only")
    for node in statement.walk():
        if isinstance(node, REFUSED_STATEMENTS):
            raise QueryError(f"{_kind(node)} is refused inside a query: icemesh query runs queries (SELECT ...) only")
        if isinstance(node, exp.Table):
            _check_from_item(node, local_files)
        elif isinstance(node, exp.Func) and not local_files and function_name(node) in OUTSIDE:
            raise QueryError(f"{function_name(node)}() reads files, URLs or the environment directly; {HINT}"
                             " (icemesh.connect(local_files=True) reads your own files)")
    return True


def _check_from_item(table: exp.Table, local_files: bool) -> None:
    source = table.this
    if isinstance(source, exp.Func):
        name = function_name(source)
        if name in GENERATORS or local_files:
            return
        raise QueryError(f"FROM {name}(...) reads outside the catalog; {HINT}"
                         " (icemesh.connect(local_files=True) reads your own files)")
    parts = [part.name for part in table.parts]
    if any(_looks_like_path(part) for part in parts) and not local_files:
        raise QueryError(f"FROM {'.'.join(parts)!r} names a file or URL, not a product; {HINT}")
    if len(parts) == 1 and not local_files and not _is_cte(table, parts[0]):
        raise QueryError(f"{parts[0]!r} is not a product or a CTE of the query; {HINT}")


def function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def _looks_like_path(name: str) -> bool:
    return any(mark in name for mark in ("/", "\\", ":", "*")) or name.lower().endswith(
        (".csv", ".tsv", ".parquet", ".json", ".jsonl", ".ndjson", ".txt", ".avro", ".orc", ".gz", ".zst"))


def _is_cte(table: exp.Table, name: str) -> bool:
    """Whether a WITH clause around the reference defines `name`."""
    node = table.parent
    while node is not None:
        with_ = node.args.get("with_") or node.args.get("with")  # sqlglot 30 names it with_
        if isinstance(with_, exp.With) and any(cte.alias_or_name.lower() == name.lower() for cte in with_.expressions):
            return True
        node = node.parent
    return False


def _kind(node: exp.Expression) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    if isinstance(node, exp.Create):
        return f"CREATE {node.args.get('kind') or ''}".strip()
    if isinstance(node, REFUSED_STATEMENTS):
        return node.key.upper()
    return f"{node.sql()[:40]!r} (not a query)"
