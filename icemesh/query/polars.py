"""Polars: each product the query names is a lazy `scan_iceberg` of the table the catalog handed the caller,
registered in a SQLContext under `<namespace>.<table>`. On S3, Polars ignores pyiceberg's IO settings, so
they are translated into its `storage_options`."""

from __future__ import annotations

import os

from icemesh.query.engine import Engine

# pyiceberg property -> object_store option
S3_OPTIONS = {"s3.endpoint": "aws_endpoint_url", "s3.access-key-id": "aws_access_key_id",
              "s3.secret-access-key": "aws_secret_access_key", "s3.session-token": "aws_session_token",
              "s3.region": "aws_region"}


class PolarsEngine(Engine):
    name = "polars"
    dialect = "duckdb"  # Polars SQL is PostgreSQL-like; sqlglot's DuckDB dialect reads it

    def connect(self):
        import polars as pl

        # Planning with pyiceberg (the table object the catalog returned) is what we want; say so, quietly.
        os.environ.setdefault("POLARS_ICEBERG_PLANNER", "pyiceberg")
        return pl.SQLContext()

    def run(self, sql, products):
        import polars as pl

        ctx = self.native()
        for product in filter(self.stale, products):
            rows = self.restricted_rows(product)
            if rows is not None:
                frame = pl.from_arrow(rows).lazy()
            else:
                frame = pl.scan_iceberg(product.table, snapshot_id=product.snapshot_id if product.pinned else None,
                                        storage_options=storage_options(product.location, product.io_properties))
            ctx.register(product.name, frame.select(product.columns))
            self.registered(product)
        return ctx.execute(sql).collect().to_arrow()


def storage_options(location: str, io_properties: dict[str, str]) -> dict[str, str] | None:
    if not location.startswith(("s3://", "s3a://")):
        return None
    options = {S3_OPTIONS[k]: v for k, v in io_properties.items() if k in S3_OPTIONS}
    if options.get("aws_endpoint_url", "").startswith("http://"):
        options["aws_allow_http"] = "true"
    if io_properties.get("s3.path-style-access", "").lower() == "true":
        options["aws_virtual_hosted_style_request"] = "false"
    return options or None
