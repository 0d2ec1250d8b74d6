"""`--lakeformation`: client commands that read and write AWS Glue and Lake Formation directly (no server)."""

from __future__ import annotations

import functools
from typing import Callable

import click


def lakeformation_options(func: Callable) -> Callable:
    """`--lakeformation [--region R] [--endpoint URL] [--catalog-id ID]`: passes `direct` (None without the flag)."""

    @click.option("--lakeformation", is_flag=True, help="Read and write AWS Glue and Lake Formation directly (no server).")
    @click.option("--region", envvar="AWS_REGION", default=None, help="AWS region (with --lakeformation) [env AWS_REGION].")
    @click.option("--endpoint", envvar="ICEMESH_GLUE_ENDPOINT", default=None,
                  help="Endpoint for Glue, Lake Formation and STS, e.g. a moto server (with --lakeformation).")
    @click.option("--catalog-id", default=None, help="AWS account of the Glue catalog (with --lakeformation).")
    @functools.wraps(func)
    def wrapper(*args, lakeformation: bool = False, region: str | None = None, endpoint: str | None = None,
                catalog_id: str | None = None, **kwargs):
        kwargs["direct"] = None
        if lakeformation:
            from icemesh.backends.aws.settings import AwsSettings
            from icemesh.backends.aws.direct import DirectLakeFormation

            kwargs["direct"] = DirectLakeFormation(AwsSettings(region or "", endpoint, catalog_id))
        return func(*args, **kwargs)

    return wrapper
