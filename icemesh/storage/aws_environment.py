"""AWS endpoints and region from the environment, read the way boto3 reads them, for every AWS client icemesh
makes: boto3 (Glue, Lake Formation, STS) follows these by itself, but the S3 clients that write table files
(pyarrow through pyiceberg, DuckDB's httpfs, Spark's S3FileIO, Polars) do not. Without this, setting
AWS_ENDPOINT_URL to a stand-in sent Glue calls there and S3 writes to *.amazonaws.com.

- `AWS_ENDPOINT_URL_<SERVICE>` (`_S3`, `_GLUE`, `_LAKEFORMATION`, `_STS`), else `AWS_ENDPOINT_URL`; neither when
  `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`;
- `AWS_REGION`, else `AWS_DEFAULT_REGION`.
An explicit setting (`--s3-endpoint`, a client's own `s3.endpoint`) always wins over the environment.
"""

from __future__ import annotations

import os
from typing import Mapping


def endpoint_url(service: str, env: Mapping[str, str] | None = None) -> str | None:
    """The endpoint the environment sets for `service` (boto3's service id, e.g. `s3`, `glue`), or None (AWS)."""
    env = os.environ if env is None else env
    if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").strip().lower() == "true":
        return None
    specific = f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_').replace(' ', '_')}"
    return (env.get(specific) or env.get("AWS_ENDPOINT_URL") or "").strip() or None


def region(env: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    return (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "").strip() or None


def s3_properties(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """pyiceberg's S3 FileIO properties for what the environment sets: the endpoint (a custom one, such as MinIO
    or moto, with path-style addressing, as `serve --s3-endpoint` does) and the region. Empty when it sets neither."""
    props: dict[str, str] = {}
    endpoint = endpoint_url("s3", env)
    if endpoint:
        props["s3.endpoint"] = endpoint
        props["s3.path-style-access"] = "true"
    found = region(env)
    if found:
        props["s3.region"] = found
    return props
