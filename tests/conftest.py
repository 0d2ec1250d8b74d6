"""Shared fixtures: real `icemesh serve` processes over HTTP on random ports, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid

import httpx
import pytest

from icemesh.server.process import CatalogProcess, free_port
from tests.aws import start_moto

# Test tiers, by module: the fast in-process tier (make test-quick), and the dbt runs (the slowest).
INPROCESS_MODULES = ("test_inprocess_", "test_governance_properties", "test_compat", "test_dbt_schema_rules")
DBT_MODULES = ("test_dbt_", "test_demo", "test_hostile_producer", "test_user_errors")


# The slowest modules first (measured, slowest first: mostly dbt-spark JVMs), so that `-n 2 --dist loadfile` does not
# end on one long module running alone; the rest keep their order.
SLOW_FIRST = ("test_demo", "test_dbt_environments", "test_dagster", "test_dbt_catalogs", "test_dbt_cross_project",
              "test_dbt_spark", "test_cli_governance", "test_openlineage", "test_dbt_duckdb", "test_prefect",
              "test_user_errors", "test_commit_model", "test_reliability_crash", "test_namespaces_cli")


def _module(item) -> str:
    return item.module.__name__.rsplit(".", 1)[-1]


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(_module(item), len(SLOW_FIRST)))  # stable: modules stay whole
    for item in items:
        module = _module(item)
        if module.startswith(INPROCESS_MODULES):
            item.add_marker(pytest.mark.inprocess)
        elif module.startswith(DBT_MODULES):
            item.add_marker(pytest.mark.dbt)


POSTGRES_ADMIN = dict(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")


def _postgres_database(name: str, create: bool) -> None:
    import psycopg
    from psycopg import sql

    try:
        conn = psycopg.connect(**POSTGRES_ADMIN, connect_timeout=5, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable on 127.0.0.1:5432 ({exc}); start it with "
                    "'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'")
    with conn.cursor() as cur:
        if create:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        else:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    conn.close()


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh database on the machine's PostgreSQL server, dropped at the end of the session."""
    name = f"icemesh_test_{uuid.uuid4().hex[:10]}"
    _postgres_database(name, create=True)
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    _postgres_database(name, create=False)


def start_catalog(tmp_path_factory, db: str | None, label: str, **kwargs) -> CatalogProcess:
    home = tmp_path_factory.mktemp(f"catalog-{label}")
    warehouse = kwargs.pop("warehouse", str(home / "warehouse"))
    return CatalogProcess(db=db or f"sqlite:///{home}/catalog.db", warehouse=warehouse, cwd=str(home), **kwargs).start()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def catalog_server(request, tmp_path_factory):
    """A running catalog server, once per backend; tests using it run against both."""
    db = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    server = start_catalog(tmp_path_factory, db, request.param)
    server.backend = request.param
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory):
    """One SQLite-backed server for tests that need not run on both backends."""
    server = start_catalog(tmp_path_factory, None, "sqlite-only")
    server.backend = "sqlite"
    yield server
    server.stop()


@pytest.fixture
def ns() -> str:
    """A namespace name unique to the test, so tests sharing a server never collide."""
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def rest(catalog_server):
    """A pyiceberg RestCatalog pointed at the server."""
    return catalog_server.client().rest_catalog()


@pytest.fixture
def http(catalog_server):
    """Raw HTTP against the server's default warehouse prefix, for what clients do not expose."""
    admin = catalog_server.client()
    with httpx.Client(base_url=f"{catalog_server.uri}/v1/{admin.prefix()}", headers=admin.headers(), timeout=30) as client:
        client.server = catalog_server
        yield client


@pytest.fixture
def duck(catalog_server):
    """A DuckDB connection with the catalog attached as `mesh`."""
    con = catalog_server.client().duckdb()
    yield con
    con.close()


def warehouse_files(root: str) -> dict[str, int]:
    """Every file under a local warehouse with its size: to prove what a failed operation left alone."""
    found = {}
    for base, _dirs, files in os.walk(root):
        for f in files:
            path = os.path.join(base, f)
            found[path] = os.path.getsize(path)
    return found


@pytest.fixture(scope="session")
def spark():
    """One local SparkSession for the whole run (a JVM per test would cost seconds each); catalogs are added
    to it per server with `spark_catalog`."""
    from icemesh.runtimes import spark as spark_engine

    session = spark_engine.session(None, app_name="icemesh-tests", extra_conf={"spark.sql.session.timeZone": "UTC"})
    yield session
    session.stop()


def spark_catalog(spark, server, name: str, client_id: str = "admin", client_secret: str | None = None,
                  s3: dict[str, str] | None = None) -> str:
    """Register `server` in the Spark session as catalog `name`, logged in as the given principal (with the
    client's own S3 settings when the server hands out none)."""
    from icemesh.runtimes import spark as spark_engine

    secret = client_secret if client_secret is not None else server.admin_secret
    spark_engine.add_catalog(spark, name, server.uri, credential=f"{client_id}:{secret}", s3=s3,
                             properties={"oauth2-server-uri": server.uri + "/v1/oauth/tokens", "scope": "catalog"})
    return name


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    """moto as a real AWS stand-in (S3, Glue, Lake Formation, STS) over HTTP for the whole session; yields its URL."""
    port = free_port()
    try:
        proc = start_moto(tmp_path_factory.mktemp("moto"), port)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield f"http://127.0.0.1:{port}"
    proc.kill()
    proc.wait(10)


GLUE_BUCKET = "icemesh-glue"
GLUE_WAREHOUSE = f"s3://{GLUE_BUCKET}/wh"


def start_glue_catalog(tmp_path_factory, moto: str, label: str, db: str | None = None, extra_args: tuple = (),
                       warehouse: str | list[str] = GLUE_WAREHOUSE, **kwargs) -> CatalogProcess:
    """`icemesh serve --backend glue` against moto: tables in Glue, governance in Lake Formation, data in S3."""
    from tests.aws import FAKE_AWS_ENV, REGION

    home = tmp_path_factory.mktemp(f"catalog-glue-{label}")
    extra = ["--backend", "glue", "--glue-region", REGION, "--glue-endpoint", moto,
             "--s3-endpoint", moto, "--s3-region", REGION, "--share-storage-keys", *extra_args]
    return CatalogProcess(db=db or f"sqlite:///{home}/catalog.db", warehouse=warehouse, extra_args=extra,
                          env={**FAKE_AWS_ENV, "ICEMESH_LAKEFORMATION_REFRESH_SECONDS": "5"}, cwd=str(home),
                          **kwargs).start()


@pytest.fixture(scope="session")
def glue_bucket(moto):
    from tests.aws import boto_client

    boto_client("s3", moto).create_bucket(Bucket=GLUE_BUCKET)
    return GLUE_BUCKET


@pytest.fixture(scope="session")
def glue_server(tmp_path_factory, moto, glue_bucket):
    """One Glue-backed server for the session (the Glue and Lake Formation modules share it)."""
    server = start_glue_catalog(tmp_path_factory, moto, "shared")
    server.backend = "glue"
    server.moto = moto
    yield server
    server.stop()
