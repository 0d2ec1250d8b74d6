"""dbt's entry point for icemesh on Spark: dbt-core imports every top-level module named `dbt_*` and
initialises the `plugins` it lists, for every command. This one gives dbt-spark projects
`materialized='iceberg'` (see icemesh/dbt/spark.py); it does nothing for other adapters (and does not import
dbt-spark for them).
"""

from dbt.plugins.manager import dbtPlugin


class IcemeshSpark(dbtPlugin):
    def initialize(self) -> None:
        from icemesh.compat.dbt import profile_adapter_type

        if profile_adapter_type() in (None, "spark"):
            from icemesh.dbt.spark import install

            install()


plugins = [IcemeshSpark]
