"""One small strategy per dbt adapter, in the spirit of dbt-duckdb's plugin hooks: everything that differs between
dbt-duckdb and dbt-spark in one place (how a product's relation is named, how dbt must quote it, where a target's
catalog settings come from, what `icemesh dbt init` adds to a profile's output). The rest of icemesh.dbt asks here
instead of branching on the adapter type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

QUOTE_ALL = {"database": True, "schema": True, "identifier": True}
QUOTE_NONE = {"database": False, "schema": False, "identifier": False}
DUCKDB_PLUGIN = "icemesh.dbt.duckdb"


@dataclass(frozen=True)
class Relation:
    """(database, schema, identifier) as dbt stores them, and the name rendered in the consumer's SQL."""

    database: str | None
    schema: str
    identifier: str
    rendered: str


class DuckDB:
    """dbt-duckdb: the catalog is attached as a database; parts are double-quoted (dbt quotes them itself)."""

    type = "duckdb"
    quoting = QUOTE_ALL

    @staticmethod
    def render(*parts: str) -> str:
        return ".".join('"' + part.replace('"', '""') + '"' for part in parts)

    def relation(self, alias: str, namespace: str, table: str, snapshot_id: int | None,
                 view: Callable[[str, str, int | None], tuple[str, str]] | None = None) -> Relation:
        """A pinned snapshot or a name dbt cannot carry safely is read through a view of the project's own database
        (`view(namespace, table, snapshot_id)` makes it); anything else is the attached catalog's table."""
        if view is not None:
            database = self.local_database()
            schema, identifier = view(namespace, table, snapshot_id)
            return Relation(database, schema, identifier, self.render(database, schema, identifier))
        return Relation(alias, namespace, table, self.render(alias, namespace, table))

    @staticmethod
    def local_database() -> str:
        """The name dbt-duckdb gives the project's own DuckDB file (where the views live)."""
        from dbt.adapters.factory import FACTORY

        return FACTORY.adapters["duckdb"].config.credentials.database

    @staticmethod
    def target_config() -> dict[str, Any] | None:
        """The icemesh plugin's `config:` in the running target's profile output."""
        try:
            from dbt.adapters.factory import FACTORY

            for plugin in FACTORY.adapters["duckdb"].config.credentials.plugins or []:
                if plugin.module == DUCKDB_PLUGIN:
                    return plugin.config or {}
        except (KeyError, AttributeError):
            pass
        return None

    @staticmethod
    def setup_output(target: str, output, report) -> bool:
        """Load the icemesh plugin in this output (it attaches the catalog and publishes products)."""
        from ruamel.yaml.comments import CommentedMap, CommentedSeq

        plugins = output.get("plugins")
        if plugins is None:
            plugins = output["plugins"] = CommentedSeq()
        if any(isinstance(p, dict) and p.get("module") == DUCKDB_PLUGIN for p in plugins):
            return False
        plugins.append(CommentedMap(module=DUCKDB_PLUGIN))
        report.changes.append(f"profiles.yml: target {target} loads the {DUCKDB_PLUGIN} plugin")
        return True


class Spark:
    """dbt-spark: no databases, so the catalog leads the schema; parts go to dbt already quoted with backticks
    escaped, and dbt is told not to quote them again (it would not escape them)."""

    type = "spark"
    quoting = QUOTE_NONE

    @staticmethod
    def render(*parts: str) -> str:
        return ".".join(f"`{part.replace('`', '``')}`" for part in parts)

    def relation(self, alias: str, namespace: str, table: str, snapshot_id: int | None, view=None) -> Relation:
        """`view(namespace, table, snapshot_id)` names a global temporary view that stands for the product
        (a filtered one, see filtered_refs.py); anything else is the catalog's table, or its snapshot."""
        if view is not None:
            _schema, name = view(namespace, table, snapshot_id)
            schema, identifier = self.render("global_temp"), self.render(name)
            return Relation(None, schema, identifier, f"{schema}.{identifier}")
        schema = self.render(alias, *namespace.split("."))
        if snapshot_id is not None:  # Iceberg's Spark catalog reads `<table>.snapshot_id_<id>` at that snapshot
            schema = f"{schema}.{self.render(table)}"
            identifier = self.render(f"snapshot_id_{int(snapshot_id)}")
        else:
            identifier = self.render(table)
        return Relation(None, schema, identifier, f"{schema}.{identifier}")

    @staticmethod
    def target_config() -> dict[str, Any] | None:
        return None  # dbt-spark has no plugin config: the environment says (icemesh.dbt.target)

    @staticmethod
    def setup_output(target: str, output, report) -> bool:
        return spark_session_parameters(target, output, report)


def spark_parameters() -> dict[str, str]:
    """The Spark settings a dbt-spark session needs for the mesh; credentials stay in the environment
    (dbt renders `env_var` when it runs), only the jars' paths are written as they are now."""
    from icemesh.dbt.target import UPSTREAM_WAREHOUSE_ENV, WAREHOUSE_ENV, TargetCatalog
    from icemesh.runtimes import spark as spark_engine
    from icemesh.runtimes import spark_classes

    uri = "{{ env_var('ICEMESH_CATALOG_URI') }}"
    credential = "{{ env_var('ICEMESH_CLIENT_ID') }}:{{ env_var('ICEMESH_CLIENT_SECRET') }}"
    properties = {"oauth2-server-uri": uri + "/v1/oauth/tokens"}
    # Environments: `mesh` is the warehouse the target publishes to, `mesh_upstream` the one its refs read when
    # that differs (refs name it then); empty is the server's default warehouse, production. The names are
    # the ones the resolver gives refs.
    names = TargetCatalog()
    warehouses = {names.alias: WAREHOUSE_ENV, names.upstream_alias: UPSTREAM_WAREHOUSE_ENV}
    catalogs = {}
    for name, variable in warehouses.items():
        catalogs.update(spark_engine.catalog_conf(name, uri, credential=credential, s3={}, properties={
            **properties, "warehouse": f"{{{{ env_var('{variable}', '') }}}}"}))  # s3={}: nothing of this machine's env
    return {
        "spark.jars": ",".join(spark_engine.session_jars()),
        "spark.sql.extensions": spark_engine.EXTENSIONS,
        "spark.driver.extraJavaOptions": spark_classes.java_options(),
        **catalogs,
    }


def spark_session_parameters(target: str, output, report) -> bool:
    """Add what is missing to a spark output's server_side_parameters; jar paths from an earlier install are
    replaced, any other value the project set is kept."""
    from ruamel.yaml.comments import CommentedMap

    from icemesh.runtimes import spark as spark_engine
    from icemesh.runtimes import spark_classes

    if output.get("method") != "session":
        report.notes.append(f"target {target} uses method {output.get('method')}: materialized='iceberg' on Spark "
                            "needs `method: session` (Spark runs in dbt's process)")
        return False
    parameters = output.get("server_side_parameters")
    if parameters is None:
        parameters = output["server_side_parameters"] = CommentedMap()
    changed = []
    for key, value in spark_parameters().items():
        current = parameters.get(key)
        if key in ("spark.jars", "spark.sql.extensions") and current:
            entries = [e.strip() for e in str(current).split(",") if e.strip()]
            ours = value.split(",")
            kept = [e for e in entries if e not in ours and not (key == "spark.jars" and spark_engine.is_session_jar(e))]
            value = ",".join(kept + ours)
            if value == str(current):
                continue
        elif key == "spark.driver.extraJavaOptions" and current:
            kept = [o for o in str(current).split() if not spark_classes.is_ours(o)]
            value = " ".join(kept + value.split())
            if value == str(current):
                continue
        elif current is not None:
            continue
        parameters[key] = value
        changed.append(key)
    if changed:
        report.changes.append(f"profiles.yml: target {target} gets the Iceberg runtime and the mesh catalog "
                              f"({', '.join(changed)})")
    return bool(changed)


ADAPTERS = {a.type: a for a in (DuckDB(), Spark())}


def for_type(adapter_type: str | None):
    """The strategy of an adapter type; None for one icemesh does not publish from."""
    return ADAPTERS.get(adapter_type or "")


def current():
    """The strategy of the adapter dbt registered for this run (dbt-duckdb when none is yet, as during deps)."""
    try:
        from dbt.adapters.factory import FACTORY

        return ADAPTERS.get(next(iter(FACTORY.adapters), "duckdb"), ADAPTERS["duckdb"])
    except Exception:  # noqa: BLE001 - no adapter registered: the name is not used then
        return ADAPTERS["duckdb"]
