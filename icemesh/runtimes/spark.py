"""Spark: a local SparkSession bound to an icemesh catalog over the Iceberg REST protocol.

The only Iceberg Spark runtime on PyPI is the jar shipped in `snowpark-connect-deps-iceberg` (for Spark 3.5,
Scala 2.12), so the session points `spark.jars` at that file instead of resolving Maven coordinates (no network).
That runtime bundles Iceberg's S3FileIO but not the AWS SDK it needs; the SDK v2 jars come from the wheel
`bodo-iceberg-connector` (installed without its Python dependencies), and the session adds them when present,
so S3 warehouses work: the endpoint, region and keys come from the catalog's loadTable config
(`serve --share-storage-keys`) or from the `s3` settings given here, never from jar names.
"""

from __future__ import annotations

import glob
import importlib.util
import os

from icemesh.runtimes import spark_classes
from icemesh.storage import aws_environment

RUNTIME_PACKAGE = "snowpark_connect_deps_iceberg"
RUNTIME_PATTERN = "iceberg-spark-runtime-3.5_2.12-*.jar"
EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"

S3_PACKAGE = "bodo_iceberg_connector"
S3_JAR_DIR = ("jars", "libs")
# The AWS SDK v2 S3 client and its declared dependencies (the async netty client left out: S3FileIO uses the sync
# one), plus KMS and STS, whose classes Iceberg's AWS client factory loads along with the S3 client.
S3_JARS = (
    "s3", "kms", "sts", "aws-xml-protocol", "aws-json-protocol", "aws-query-protocol", "protocol-core", "aws-core",
    "sdk-core", "auth", "http-auth", "http-auth-aws", "http-auth-spi", "identity-spi", "regions", "profiles", "arns",
    "endpoints-spi", "http-client-spi", "apache-client", "metrics-spi", "json-utils", "third-party-jackson-core",
    "checksums", "checksums-spi", "retries", "retries-spi", "utils", "annotations", "crt-core", "eventstream",
    "reactive-streams",
)
# pyiceberg's names for S3 settings (what `rest_catalog(**properties)` takes) and Iceberg Java's for the same.
S3_SETTINGS = {"s3.endpoint": "s3.endpoint", "s3.region": "client.region", "s3.access-key-id": "s3.access-key-id",
               "s3.secret-access-key": "s3.secret-access-key", "s3.session-token": "s3.session-token",
               "s3.path-style-access": "s3.path-style-access"}
NO_S3_FILESYSTEM = 'No FileSystem for scheme "s3'


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


def session_jars() -> list[str]:
    """What `spark.jars` needs: the Iceberg runtime, and the AWS SDK for S3 warehouses when installed."""
    return [iceberg_runtime_jar(), *s3_jars()]


def is_session_jar(path: str) -> bool:
    """One of the jars `session_jars` names, possibly from an earlier install (a profile written then)."""
    name = os.path.basename(path)
    return name.startswith("iceberg-spark-runtime-") or f"{os.sep}{S3_PACKAGE}{os.sep}" in path


def s3_jars() -> list[str]:
    """Paths of the AWS SDK jars for S3 warehouses, or [] when `bodo-iceberg-connector` is not installed
    (then Spark reaches local warehouses only)."""
    spec = importlib.util.find_spec(S3_PACKAGE)  # finds the package without importing it (its deps are not installed)
    locations = (spec.submodule_search_locations or []) if spec else []
    bases = [os.path.join(base, *S3_JAR_DIR) for base in locations]
    if not bases:
        return []
    jars = []
    for name in S3_JARS:
        found = sorted(path for base in bases for path in glob.glob(os.path.join(base, f"{name}-[0-9]*.jar")))
        if not found:
            raise RuntimeError(f"AWS SDK jar {name}-*.jar not found in {bases[0]}: reinstall it with "
                               "`pip install --no-deps bodo-iceberg-connector==2026.10` (make install does)")
        jars.append(found[-1])
    return jars


def s3_properties(settings: dict[str, str]) -> dict[str, str]:
    """Catalog properties for S3 settings given in pyiceberg's names; a custom endpoint (MinIO, moto) gets
    path-style access, as `icemesh serve --s3-endpoint` does."""
    unknown = sorted(set(settings) - set(S3_SETTINGS))
    if unknown:
        raise ValueError(f"Unknown S3 setting(s) {', '.join(unknown)}: use {', '.join(S3_SETTINGS)}")
    props = {S3_SETTINGS[key]: str(value) for key, value in settings.items() if value is not None}
    if "s3.endpoint" in props:
        props.setdefault("s3.path-style-access", "true")
    return props


def catalog_conf(name: str, uri: str, credential: str | None = None, token: str | None = None,
                 warehouse: str | None = None, properties: dict[str, str] | None = None,
                 s3: dict[str, str] | None = None) -> dict[str, str]:
    """Spark settings that declare catalog `name` as an Iceberg REST catalog at `uri`.

    `credential` is OAuth2 client credentials (`id:secret`), `token` a bearer token; `warehouse` selects a
    warehouse when the server hosts several (the server advertises its prefix in /v1/config).
    Spark's table cache is off by default: in a mesh other engines commit too, and a cached table would
    hide their snapshots for up to 30 s. `properties` adds or overrides further catalog properties.
    `s3` gives the table files' S3 settings in pyiceberg's names (`s3.endpoint`, `s3.region`, keys), for a
    server that does not hand them out (default: the endpoint and region the environment sets, as boto3 reads
    them); what the server's loadTable config says takes precedence.
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
    for prop, value in s3_properties(aws_environment.s3_properties() if s3 is None else s3).items():
        conf[f"{key}.{prop}"] = value
    for prop, value in (properties or {}).items():
        conf[f"{key}.{prop}"] = str(value)
    return conf


def session(uri: str | None, catalog: str = "mesh", credential: str | None = None, token: str | None = None,
            warehouse: str | None = None, properties: dict[str, str] | None = None, s3: dict[str, str] | None = None,
            app_name: str = "icemesh", master: str = "local[2]", shuffle_partitions: int = 2,
            extra_conf: dict[str, str] | None = None):
    """A local SparkSession with the Iceberg runtime and the catalog at `uri` registered as `catalog`.

    The driver is bound to 127.0.0.1 (no hostname lookups, nothing exposed) and the UI is off; few shuffle
    partitions because catalog work is small and the default 200 makes every query slow on a laptop.
    The AWS SDK jars join the runtime on `spark.jars` when installed: jars can only be added when the JVM starts.
    The driver starts with icemesh.runtimes.spark_classes's options (a class-data archive when built).
    `uri=None` starts a session with no catalog yet. If a session is already running in this process, Spark
    returns it unchanged: use `add_catalog` to reach more servers.
    """
    from pyspark.sql import SparkSession

    conf = local_conf(shuffle_partitions, extra_conf)
    if uri:
        conf.update(catalog_conf(catalog, uri, credential=credential, token=token, warehouse=warehouse,
                                 properties=properties, s3=s3))
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def local_conf(shuffle_partitions: int = 2, extra_conf: dict[str, str] | None = None) -> dict[str, str]:
    """What a local session starts with, before any catalog (see `session`): also for a caller that starts the
    JVM itself (icemesh.demo.spark_jvm)."""
    return {
        "spark.driver.extraJavaOptions": spark_classes.java_options(),
        "spark.jars": ",".join(session_jars()),
        "spark.sql.extensions": EXTENSIONS,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.default.parallelism": str(shuffle_partitions),
        **(extra_conf or {}),
    }


def add_catalog(spark, name: str, uri: str, credential: str | None = None, token: str | None = None,
                warehouse: str | None = None, properties: dict[str, str] | None = None,
                s3: dict[str, str] | None = None) -> None:
    """Register one more REST catalog on a running session.

    Spark 3.5 instantiates catalogs lazily, the first time a name is used, so setting the conf at runtime is
    enough; this is how one session talks to several servers. Re-registering a name already used in the
    session has no effect (Spark caches the loaded catalog).
    """
    conf = catalog_conf(name, uri, credential=credential, token=token, warehouse=warehouse, properties=properties,
                        s3=s3)
    for key, value in conf.items():
        spark.conf.set(key, value)


def error_message(exc: BaseException) -> str:
    """A Spark failure in one line: the innermost Java exception and its message (for a refused load or commit,
    the catalog's reason, e.g. `ForbiddenException: Forbidden: svc_x lacks SELECT on table ...`) instead of the
    JVM stack trace that py4j puts in str(exc); an S3 warehouse reached without the AWS SDK says what to install."""
    java = getattr(exc, "java_exception", None)
    if java is None:
        line = next((line.strip() for line in str(exc).splitlines() if line.strip()), exc.__class__.__name__)
    else:
        cause = java
        while cause.getCause() is not None and not cause.getCause().equals(cause):
            cause = cause.getCause()
        message = next((line.strip() for line in str(cause.getMessage() or java.getMessage() or "").splitlines()
                        if line.strip()), "")
        line = f"{cause.getClass().getSimpleName()}: {message}"
    if NO_S3_FILESYSTEM in line:
        line += (" (Spark has no AWS SDK for S3 warehouses: `pip install --no-deps bodo-iceberg-connector==2026.10`,"
                 " which make install does, then start a new Spark process)")
    return line


def _check_name(name: str) -> None:
    """Catalog names end up in conf keys and in SQL identifiers: keep them plain."""
    if not name.isidentifier():
        raise ValueError(f"Invalid Spark catalog name {name!r}: use letters, digits and underscores")
