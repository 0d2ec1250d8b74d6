"""Cross-engine queries: every product the caller may read, addressed `<namespace>.<table>`, in DuckDB, Spark,
Polars, DataFusion, Daft or chDB, read in place under the caller's policies.

    import icemesh
    mesh = icemesh.connect()                          # ICEMESH_CATALOG_URI and credentials from the environment
    mesh.sql("select count(*) from sales.orders", engine="polars")   # a pyarrow.Table
    mesh.native("duckdb")                             # the engine's own handle
"""

from icemesh.query.engine_names import ENGINES
from icemesh.query.errors import QueryError

__all__ = ["ENGINES", "MeshSession", "QueryError", "connect"]


def __getattr__(name: str):
    """MeshSession and connect load pyarrow and sqlglot: imported when first named, so that a command that only
    names the engines (the CLI) starts without them."""
    if name in ("MeshSession", "connect"):
        from icemesh.query import session

        return getattr(session, name)
    raise AttributeError(f"module 'icemesh.query' has no attribute {name!r}")
