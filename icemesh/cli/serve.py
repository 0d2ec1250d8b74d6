"""`icemesh serve`: run the catalog server (embedded SQLite and a local warehouse by default)."""

from __future__ import annotations

import os

import click

from icemesh.server.settings import DEFAULT_DB, DEFAULT_WAREHOUSE, DEFAULT_WAREHOUSE_NAME, SETTINGS_ENV, ServerSettings, WarehouseSettings
from icemesh.storage import aws_environment

KEEP_ALIVE_S = 75


def parse_warehouse(value: str, index: int) -> tuple[str, str]:
    """`NAME=URI` or a bare URI/path (the first bare one is named `default`)."""
    head, sep, tail = value.partition("=")
    if sep and head and not any(ch in head for ch in ":/\\"):
        return head, tail
    if index == 0:
        return DEFAULT_WAREHOUSE_NAME, value
    return os.path.basename(value.rstrip("/")) or f"warehouse{index}", value


@click.command()
@click.option("--db", envvar="ICEMESH_DB", default=DEFAULT_DB, show_default=True,
              help="Catalog database: sqlite:///path or postgresql://user@host/db.")
@click.option("--warehouse", "warehouses", envvar="ICEMESH_WAREHOUSE", multiple=True,
              help="Warehouse root (path, file:// or s3://), optionally NAME=URI; repeat for more. The first is the default. "
                   f"[default: {DEFAULT_WAREHOUSE}]")
@click.option("--host", envvar="ICEMESH_HOST", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", envvar="ICEMESH_PORT", default=8181, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="Server processes (they share the database).")
@click.option("--s3-endpoint", envvar="ICEMESH_S3_ENDPOINT",
              help="S3 endpoint URL (MinIO, moto, ...) [default: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, else AWS].")
@click.option("--s3-region", envvar="AWS_REGION", default=None, help="S3 region [env AWS_REGION, else AWS_DEFAULT_REGION].")
@click.option("--share-storage-keys", is_flag=True,
              help="Hand clients the S3 endpoint, region and the server's keys in loadTable config (local S3 "
                   "stand-ins only). Without it clients get no S3 settings and bring their own.")
@click.option("--backend", type=click.Choice(["sql", "glue"]), default="sql", show_default=True,
              help="Where namespaces, tables and governance live: the --db database, or AWS Glue + Lake Formation.")
@click.option("--glue-region", envvar="AWS_REGION", default=None, help="AWS region of the Glue catalog (--backend glue).")
@click.option("--glue-endpoint", envvar="ICEMESH_GLUE_ENDPOINT", default=None,
              help="Endpoint for Glue, Lake Formation and STS (a stand-in such as moto); default: as boto3 finds it "
                   "(AWS_ENDPOINT_URL_GLUE / _LAKEFORMATION / _STS, else AWS_ENDPOINT_URL, else AWS).")
@click.option("--glue-catalog-id", default=None, help="AWS account id of the Glue catalog; default: the caller's.")
@click.option("--access-log", is_flag=True, help="Log every request.")
@click.option("--token-ttl", default=3600, show_default=True, type=int, help="Lifetime of issued bearer tokens, seconds.")
@click.option("--admin-secret-file", default=".icemesh/admin-secret", show_default=True,
              help="Where a generated admin secret is written (mode 600) on first start.")
@click.option("--events-retention-days", default=30.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="How long the change feed (icemesh events tail) keeps events.")
@click.option("--scan-planning", type=click.Choice(["client", "server"]), default="client", show_default=True,
              help="scan-planning-mode told to clients: plan scans themselves, or on the server (POST .../plan, with "
                   "the caller's policies applied; pyiceberg 0.12 follows it). Server planning is available either way.")
@click.option("--vend-credentials-role", envvar="ICEMESH_VEND_CREDENTIALS_ROLE", default=None, metavar="ARN",
              help="IAM role to vend storage credentials from: clients that ask (X-Iceberg-Access-Delegation: "
                   "vended-credentials) get STS keys scoped to the table's prefix, read-only or read-write by their "
                   "grants. Replaces --share-storage-keys.")
@click.option("--vend-credentials-duration", envvar="ICEMESH_VEND_CREDENTIALS_DURATION", default=900, show_default=True,
              type=click.IntRange(900, 43200), help="Lifetime of vended credentials, seconds (STS: 900..43200).")
@click.option("--sts-endpoint", envvar="ICEMESH_STS_ENDPOINT", default=None,
              help="STS endpoint for vending (a stand-in such as moto) [default: AWS_ENDPOINT_URL_STS, else "
                   "AWS_ENDPOINT_URL, else AWS].")
def serve(db, warehouses, host, port, workers, s3_endpoint, s3_region, share_storage_keys, backend, glue_region,
          glue_endpoint, glue_catalog_id, access_log, token_ttl, admin_secret_file, events_retention_days,
          scan_planning, vend_credentials_role, vend_credentials_duration, sts_endpoint) -> None:
    """Run the Iceberg REST catalog."""
    import uvicorn

    check_port_free(host, port)
    if vend_credentials_role is not None and not _is_role_arn(vend_credentials_role):
        raise click.ClickException(f"--vend-credentials-role {vend_credentials_role!r} is not an IAM role ARN: use "
                                   "arn:aws:iam::ACCOUNT:role/NAME")
    if vend_credentials_role and share_storage_keys:
        share_storage_keys = False  # never both: a client must not get the server's bucket-wide keys beside scoped ones
        click.echo("  --share-storage-keys is ignored: --vend-credentials-role vends scoped keys instead", err=True)  # before the database, the warehouse or the admin secret is created
    if any(_is_s3(w) for w in warehouses):  # S3 follows AWS_ENDPOINT_URL(_S3) and AWS_DEFAULT_REGION as Glue does
        s3_endpoint = s3_endpoint or aws_environment.endpoint_url("s3")
        s3_region = s3_region or aws_environment.region()
    storage: dict[str, str] = {}
    if s3_endpoint:
        storage["s3.endpoint"] = s3_endpoint
        storage["s3.path-style-access"] = "true"
    if s3_region:
        storage["s3.region"] = s3_region
    # Keys go into the warehouse properties only when they are to be shared: they then reach clients (loadTable
    # `config`, see Warehouse.client_config) and the catalog database. Otherwise the server's own S3 client finds
    # them through the AWS default chain (environment, profile, instance role), and clients get no S3 config.
    if share_storage_keys:
        if os.environ.get("AWS_ACCESS_KEY_ID"):
            storage["s3.access-key-id"] = os.environ["AWS_ACCESS_KEY_ID"]
        if os.environ.get("AWS_SECRET_ACCESS_KEY"):
            storage["s3.secret-access-key"] = os.environ["AWS_SECRET_ACCESS_KEY"]
    if vend_credentials_role:
        storage_for_clients_note = (f"storage credentials vended from {vend_credentials_role} for "
                                    f"{vend_credentials_duration} s, scoped to each table and grant"
                                    if any(_is_s3(w) for w in warehouses) else
                                    "warning: --vend-credentials-role vends keys for S3 warehouses only, and none "
                                    "is in S3")
    elif not share_storage_keys:
        storage_for_clients_note = ("S3 keys are not shared with clients: they need their own S3 settings"
                                    if s3_endpoint or s3_region or any(_is_s3(w) for w in warehouses) else "")
    elif "s3.access-key-id" in storage and "s3.secret-access-key" in storage:
        storage_for_clients_note = "S3 keys are shared with clients"
    else:
        storage_for_clients_note = ("--share-storage-keys: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set, "
                                    "so clients get no S3 settings")
    specs = [parse_warehouse(w, i) for i, w in enumerate(warehouses or (DEFAULT_WAREHOUSE,))]
    settings = ServerSettings(
        db=db,
        warehouses=[WarehouseSettings(name, root, dict(storage)) for name, root in specs],
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        token_ttl_s=token_ttl,
        admin_secret_file=admin_secret_file,
        backend=backend,
        glue_region=glue_region,
        glue_endpoint=glue_endpoint,
        glue_catalog_id=glue_catalog_id,
        events_retention_days=events_retention_days,
        scan_planning=scan_planning,
        vend_credentials_role=vend_credentials_role,
        vend_credentials_duration_s=vend_credentials_duration,
        sts_endpoint=sts_endpoint,
    )
    os.environ[SETTINGS_ENV] = settings.to_env()

    from icemesh.server.app import app_from_env

    app = app_from_env()  # fail fast (bad database URL, bad warehouse) before binding the port
    service = app.state.service
    click.echo(f"icemesh catalog on http://{host}:{port}  db={_redact(db)}", err=True)
    if backend == "glue":
        glue_at = glue_endpoint or aws_environment.endpoint_url("glue")
        click.echo(f"  tables in AWS Glue, governance in Lake Formation ({settings.aws().region}"
                   f"{', ' + glue_at if glue_at else ''}); principals, tokens and audit in the db", err=True)
        if glue_at and not s3_endpoint:
            click.echo(f"  warning: Glue goes to {glue_at} but S3 to AWS: set --s3-endpoint, or AWS_ENDPOINT_URL for "
                       "both", err=True)
        if not any(_is_s3(w) for w in warehouses):
            click.echo("  warning: the warehouse is not in S3, so AWS engines cannot read these tables", err=True)
    for note in service.backend.notes():
        click.echo(f"  {note}", err=True)
    for wh in service.warehouses.values():
        click.echo(f"  warehouse {wh.name!r}: {wh.root}{' (default)' if wh.name == service.default_warehouse else ''}", err=True)
    if storage_for_clients_note:
        click.echo(f"  {storage_for_clients_note}", err=True)
    generated = service.authenticator.ensure_admin(admin_secret_file)
    if generated:
        click.echo(f"  created principal 'admin'; its secret, shown once (also in {admin_secret_file}, mode 600):", err=True)
        click.echo(f"  {generated}", err=True)
    # Clients keep connections open between calls (pyiceberg, DuckDB, Spark). With uvicorn's 5 s default, a client
    # that pauses a little longer (a busy writer rebuilding its snapshot) sends its commit just as the server closes
    # the connection: "connection reset by peer", a failed commit for the client. 75 s, as common proxies use.
    common = dict(host=host, port=port, access_log=access_log, log_level="info" if access_log else "warning",
                  timeout_keep_alive=KEEP_ALIVE_S)
    if workers > 1:
        service.backend.close()
        uvicorn.run("icemesh.server.app:app_from_env", factory=True, workers=workers, **common)
    else:
        uvicorn.run(app, **common)


def check_port_free(host: str, port: int) -> None:
    """Fail with one line naming --port when something already listens there. Checked first, so a second
    `icemesh serve` in the same directory creates no database, warehouse or admin secret before failing."""
    import errno
    import socket

    try:
        family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                                 flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise click.ClickException(f"Cannot listen on {host!r} ({exc.strerror}): check --host") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a closed socket's TIME_WAIT is no conflict
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise click.ClickException(f"Port {port} on {host} is already in use (another icemesh serve?): stop it, "
                                           f"or choose another port with --port") from None
            raise click.ClickException(f"Cannot listen on {host}:{port} ({exc.strerror}): check --host and --port") from None


def _is_role_arn(value: str) -> bool:
    parts = value.split(":", 5)
    return len(parts) == 6 and parts[0] == "arn" and parts[2] == "iam" and parts[5].startswith("role/") and \
        len(parts[5]) > len("role/")


def _is_s3(warehouse: str) -> bool:
    return "s3://" in warehouse or "s3a://" in warehouse


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else url
    return url
