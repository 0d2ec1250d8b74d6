"""Minimal reproduction of a Daft 0.7.26 bug that icemesh's column limits run into (no icemesh, DuckDB or pytest).

Daft reads an Iceberg data file by field id and drops the file's columns that the table's schema lacks. When such a
column is not the file's last one, the read fails with "DaftError::CorruptFile Failed to decode parquet column ...:
External: failed to fill whole buffer". A dropped column is one way to get there; a column the catalog hides from a
principal (its schema lacks the field) is the other, and that is what tests/test_query_engines.py marks as xfail.

    python tests/repro/daft_dropped_column.py middle   # fails: id, [email], note
    python tests/repro/daft_dropped_column.py first    # fails: [email], id, note
    python tests/repro/daft_dropped_column.py last     # works: id, note, [email]
"""

import sys
import tempfile

import daft
import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog

ORDERS = {"middle": ["id", "email", "note"], "first": ["email", "id", "note"], "last": ["id", "note", "email"]}


def main(where: str) -> None:
    home = tempfile.mkdtemp()
    catalog = SqlCatalog("repro", uri=f"sqlite:///{home}/catalog.db", warehouse=f"file://{home}")
    catalog.create_namespace("ns")
    columns = ORDERS[where]
    schema = pa.schema([(c, pa.int64() if c == "id" else pa.string()) for c in columns])
    table = catalog.create_table("ns.t", schema)
    table.append(pa.table({"id": [1], "email": ["a@x.org"], "note": ["late"]}).select(columns).cast(schema))
    with table.update_schema() as update:
        update.delete_column("email")
    table = catalog.load_table("ns.t")
    print("pyiceberg:", table.scan().to_arrow().to_pylist())
    print("daft:     ", daft.read_iceberg(table).to_arrow().to_pylist())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "middle")
