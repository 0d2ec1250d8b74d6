"""Cross-engine queries: every product the caller may read, addressed `<namespace>.<table>`, in DuckDB, Spark,
Polars, DataFusion, Daft or chDB, read in place under the caller's policies.

    import icemesh
    mesh = icemesh.connect()                          # ICEMESH_CATALOG_URI and credentials from the environment
    mesh.sql("select count(*) from sales.orders", engine="polars")   # a pyarrow.Table
    mesh.native("duckdb")                             # the engine's own handle
"""

from icemesh.query.errors import QueryError
from icemesh.query.session import ENGINES, MeshSession, connect

__all__ = ["ENGINES", "MeshSession", "QueryError", "connect"]
