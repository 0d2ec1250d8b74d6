"""Spark: a local SparkSession bound to an icemesh catalog over the Iceberg REST protocol.

The only Iceberg Spark runtime on PyPI is the jar shipped in `snowpark-connect-deps-iceberg` (for Spark 3.5,
Scala 2.12), so the session points `spark.jars` at that file instead of resolving Maven coordinates (no network).
"""

from __future__ import annotations

import glob
import importlib.util
import os

RUNTIME_PACKAGE = "snowpark_connect_deps_iceberg"
RUNTIME_PATTERN = "iceberg-spark-runtime-3.5_2.12-*.jar"
EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"


def iceberg_runtime_jar() -> str:
    """Path of the Iceberg runtime jar for Spark 3.5 / Scala 2.12 (what pyspark 3.5 ships with)."""
    spec = importlib.util.find_spec(RUNTIME_PACKAGE)
    jars = []
    if spec is not None and spec.submodule_search_locations:
        for base in spec.submodule_search_locations:
            jars += glob.glob(os.path.join(base, "jars", RUNTIME_PATTERN))
    if not jars:
        raise RuntimeError(f"Iceberg Spark runtime jar ({RUNTIME_PATTERN}) not found: "
                           "install snowpark-connect-deps-iceberg==1.0.2 (or icemesh[spark])")
    return sorted(jars)[-1]


def catalog_conf(name: str, uri: str, credential: str | None = None, token: str | None = None,
                 warehouse: str | None = None, properties: dict[str, str] | None = None) -> dict[str, str]:
    """Spark settings that declare catalog `name` as an Iceberg REST catalog at `uri`.

    `credential` is OAuth2 client credentials (`id:secret`), `token` a bearer token; `warehouse` selects a
    warehouse when the server hosts several (the server advertises its prefix in /v1/config).
    Spark's table cache is off by default: in a mesh other engines commit too, and a cached table would
    hide their snapshots for up to 30 s. `properties` adds or overrides further catalog properties.
    """
    _check_name(name)
    key = f"spark.sql.catalog.{name}"
    conf = {key: "org.apache.iceberg.spark.SparkCatalog", f"{key}.type": "rest", f"{key}.uri": uri,
            f"{key}.cache-enabled": "false"}
    if credential:
        conf[f"{key}.credential"] = credential
    if token:
        conf[f"{key}.token"] = token
    if warehouse:
        conf[f"{key}.warehouse"] = warehouse
    for prop, value in (properties or {}).items():
        conf[f"{key}.{prop}"] = str(value)
    return conf


def session(uri: str | None, catalog: str = "mesh", credential: str | None = None, token: str | None = None,
            warehouse: str | None = None, properties: dict[str, str] | None = None, app_name: str = "icemesh",
            master: str = "local[2]", shuffle_partitions: int = 2, extra_conf: dict[str, str] | None = None):
    """A local SparkSession with the Iceberg runtime and the catalog at `uri` registered as `catalog`.

    The driver is bound to 127.0.0.1 (no hostname lookups, nothing exposed) and the UI is off; few shuffle
    partitions because catalog work is small and the default 200 makes every query slow on a laptop.
    `uri=None` starts a session with no catalog yet. If a session is already running in this process, Spark
    returns it unchanged: use `add_catalog` to reach more servers.
    """
    from pyspark.sql import SparkSession

    conf = {
        "spark.jars": iceberg_runtime_jar(),
        "spark.sql.extensions": EXTENSIONS,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.default.parallelism": str(shuffle_partitions),
        **(extra_conf or {}),
    }
    if uri:
        conf.update(catalog_conf(catalog, uri, credential=credential, token=token, warehouse=warehouse,
                                 properties=properties))
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def add_catalog(spark, name: str, uri: str, credential: str | None = None, token: str | None = None,
                warehouse: str | None = None, properties: dict[str, str] | None = None) -> None:
    """Register one more REST catalog on a running session.

    Spark 3.5 instantiates catalogs lazily, the first time a name is used, so setting the conf at runtime is
    enough; this is how one session talks to several servers. Re-registering a name already used in the
    session has no effect (Spark caches the loaded catalog).
    """
    conf = catalog_conf(name, uri, credential=credential, token=token, warehouse=warehouse, properties=properties)
    for key, value in conf.items():
        spark.conf.set(key, value)


def error_message(exc: BaseException) -> str:
    """A Spark failure in one line: the innermost Java exception and its message (for a refused load or commit,
    the catalog's reason, e.g. `ForbiddenException: Forbidden: svc_x lacks SELECT on table ...`) instead of the
    JVM stack trace that py4j puts in str(exc)."""
    java = getattr(exc, "java_exception", None)
    if java is None:
        return next((line.strip() for line in str(exc).splitlines() if line.strip()), exc.__class__.__name__)
    cause = java
    while cause.getCause() is not None and not cause.getCause().equals(cause):
        cause = cause.getCause()
    message = next((line.strip() for line in str(cause.getMessage() or java.getMessage() or "").splitlines()
                    if line.strip()), "")
    return f"{cause.getClass().getSimpleName()}: {message}"


def _check_name(name: str) -> None:
    """Catalog names end up in conf keys and in SQL identifiers: keep them plain."""
    if not name.isidentifier():
        raise ValueError(f"Invalid Spark catalog name {name!r}: use letters, digits and underscores")
