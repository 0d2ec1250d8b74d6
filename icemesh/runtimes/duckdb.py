"""DuckDB: load the Iceberg extensions offline and attach the mesh catalog.

DuckDB cannot download extensions here, so they come from the pinned `duckdb-extension-*` wheels and
are loaded by file path (avro before iceberg; httpfs for the REST client). S3 follows the AWS environment
(AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, AWS_REGION, keys) as boto3 would.
"""

from __future__ import annotations

import importlib
import os

from icemesh.storage import aws_environment

EXTENSIONS = ("avro", "httpfs", "iceberg")


def extension_path(name: str) -> str:
    import duckdb

    module = importlib.import_module(f"duckdb_extension_{name}")
    base = os.path.dirname(module.__file__)
    path = os.path.join(base, "extensions", f"v{duckdb.__version__}", f"{name}.duckdb_extension")
    if not os.path.exists(path):
        raise RuntimeError(f"DuckDB extension {name} for duckdb {duckdb.__version__} not found at {path}: "
                           f"install duckdb-extension-{name}=={duckdb.__version__}")
    return path


def load_extensions(con) -> None:
    for name in EXTENSIONS:
        con.execute(f"LOAD {_quote(extension_path(name))}")


def attach_catalog(con, uri: str, alias: str = "mesh", warehouse: str = "", token: str | None = None,
                   client_id: str | None = None, client_secret: str | None = None) -> None:
    """Attach the REST catalog as `alias`; values are passed as bound literals, never pasted SQL."""
    _check_alias(alias)
    s3_from_environment(con)
    options = ["TYPE iceberg", f"ENDPOINT {_quote(uri)}"]
    if token:
        con.execute(f"CREATE OR REPLACE SECRET {alias}_secret (TYPE iceberg, TOKEN {_quote(token)})")
        options.append(f"SECRET {alias}_secret")
    elif client_id and client_secret:
        con.execute(
            f"CREATE OR REPLACE SECRET {alias}_secret (TYPE iceberg, CLIENT_ID {_quote(client_id)}, "
            f"CLIENT_SECRET {_quote(client_secret)}, OAUTH2_SERVER_URI {_quote(uri.rstrip('/') + '/v1/oauth/tokens')})"
        )
        options.append(f"SECRET {alias}_secret")
    else:
        options.append("AUTHORIZATION_TYPE 'none'")
    con.execute(f"ATTACH {_quote(warehouse)} AS {alias} ({', '.join(options)})")


def s3_from_environment(con) -> None:
    """DuckDB reads the AWS keys and AWS_REGION from the environment itself, but no AWS_ENDPOINT_URL: set the
    endpoint the environment names (storage/aws_environment.py) so DuckDB reaches the same S3 as boto3 and
    pyiceberg. As settings, not a secret, so any S3 secret (the user's, or a table's own from the server with
    serve --share-storage-keys) still wins."""
    from urllib.parse import urlparse

    props = aws_environment.s3_properties()
    if "s3.region" in props:
        con.execute(f"SET s3_region = {_quote(props['s3.region'])}")
    if "s3.endpoint" in props:
        endpoint = urlparse(props["s3.endpoint"])
        con.execute(f"SET s3_endpoint = {_quote(endpoint.netloc or endpoint.path)}")
        con.execute("SET s3_url_style = 'path'")
        con.execute(f"SET s3_use_ssl = {'false' if endpoint.scheme == 'http' else 'true'}")


def connect(uri: str, alias: str = "mesh", **credentials):
    import duckdb

    con = duckdb.connect()
    load_extensions(con)
    attach_catalog(con, uri, alias, **credentials)
    return con


def _quote(value: str) -> str:
    """A SQL string literal (ATTACH and CREATE SECRET options do not accept bound parameters)."""
    return "'" + str(value).replace("'", "''") + "'"


def _check_alias(alias: str) -> None:
    if not alias.isidentifier():
        raise ValueError(f"Invalid catalog alias {alias!r}: use letters, digits and underscores")


def read_only_within(con, directories: list[str]) -> None:
    """Lock the connection to what it has attached: external access off, except for reading `directories`
    (a warehouse's tables, which the attached catalog reads), and the configuration locked so that no later
    statement turns it back on. DuckDB 1.5.5 still makes the REST catalog's HTTP calls."""
    allowed: set[str] = set()
    for directory in filter(None, directories):  # a local root is read as file:///... and as /... alike
        root = directory.rstrip("/") + "/"
        allowed.add(root)
        if root.startswith("file://"):
            allowed.add(root[len("file://"):])
        elif root.startswith("/"):
            allowed.add("file://" + root)
    con.execute(f"SET allowed_directories = [{', '.join(_quote(d) for d in sorted(allowed))}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
