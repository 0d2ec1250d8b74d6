"""AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> / AWS_REGION, honoured as boto3 honours them, by the server and by
clients, for S3 as for Glue: with nothing but the environment pointing at moto (no --glue-endpoint, no
--s3-endpoint, no keys handed out by the server), Glue calls and every S3 write land in moto. Before, Glue
followed the environment (boto3 does) while the S3 writes of the server and of clients went to AWS.
"""

from __future__ import annotations

import uuid

import pyarrow as pa
import pytest

from icemesh.client import CatalogClient
from icemesh.server.process import CatalogProcess, free_port
from icemesh.storage import aws_environment
from tests.aws import FAKE_AWS_ENV, boto_client

ROWS = pa.table({"id": pa.array([1, 2, 3], pa.int64())})


def test_endpoints_and_region_are_read_as_boto3_reads_them():
    env = {"AWS_ENDPOINT_URL": "http://all", "AWS_ENDPOINT_URL_S3": "http://s3", "AWS_DEFAULT_REGION": "eu-west-1"}
    assert aws_environment.endpoint_url("s3", env) == "http://s3"  # the service's own wins
    assert aws_environment.endpoint_url("glue", env) == "http://all"
    assert aws_environment.endpoint_url("lakeformation", {**env, "AWS_ENDPOINT_URL_LAKEFORMATION": "http://lf"}) == "http://lf"
    assert aws_environment.endpoint_url("s3", {**env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}) is None
    assert aws_environment.endpoint_url("s3", {}) is None
    assert aws_environment.region(env) == "eu-west-1" and aws_environment.region({**env, "AWS_REGION": "us-west-2"}) == "us-west-2"
    assert aws_environment.s3_properties(env) == {"s3.endpoint": "http://s3", "s3.path-style-access": "true",
                                                  "s3.region": "eu-west-1"}
    assert aws_environment.s3_properties({}) == {}


def _objects(moto: str, bucket: str, prefix: str) -> list[str]:
    listed = boto_client("s3", moto).list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


@pytest.fixture
def aws_env(monkeypatch):
    """This process (the client) sees only the environment: fake keys and region, endpoints set per test."""
    for key, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_GLUE", "ICEMESH_S3_ENDPOINT",
                "ICEMESH_GLUE_ENDPOINT"):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def _publish(server: CatalogProcess, ns: str) -> CatalogClient:
    client = server.client()
    catalog = client.rest_catalog()
    catalog.create_namespace(ns)
    table = catalog.create_table(f"{ns}.orders", ROWS.schema)  # the server writes the metadata file
    table.append(ROWS)  # this process writes the data file, the server the new metadata
    assert catalog.load_table(f"{ns}.orders").scan().to_arrow().num_rows == 3
    return client


def test_only_aws_endpoint_url_sends_glue_and_every_s3_write_to_moto(moto, aws_env, tmp_path):
    bucket = f"icemesh-env-{uuid.uuid4().hex[:8]}"
    boto_client("s3", moto).create_bucket(Bucket=bucket)
    aws_env.setenv("AWS_ENDPOINT_URL", moto)
    server = CatalogProcess(db=f"sqlite:///{tmp_path}/catalog.db", warehouse=f"s3://{bucket}/wh", cwd=str(tmp_path),
                            extra_args=["--backend", "glue"], env={"ICEMESH_LAKEFORMATION_REFRESH_SECONDS": "5"})
    with server:
        ns = f"env_{uuid.uuid4().hex[:8]}"
        _publish(server, ns)
    glue = boto_client("glue", moto).get_table(DatabaseName=ns, Name="orders")["Table"]
    metadata_location = glue["Parameters"]["metadata_location"]
    assert metadata_location.startswith(f"s3://{bucket}/wh/{ns}/orders")
    keys = _objects(moto, bucket, f"wh/{ns}/")
    assert any(k.endswith(".parquet") for k in keys)  # written by the client
    assert sum(k.endswith(".metadata.json") for k in keys) >= 2  # written by the server, create and append
    assert metadata_location.split(f"s3://{bucket}/", 1)[1] in keys
    assert "Glue goes to" not in server.log()  # no warning: S3 followed the same endpoint


def test_aws_endpoint_url_s3_wins_for_s3_on_the_sql_backend(moto, aws_env, tmp_path):
    bucket = f"icemesh-env-{uuid.uuid4().hex[:8]}"
    boto_client("s3", moto).create_bucket(Bucket=bucket)
    aws_env.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing there: S3 must not use it
    aws_env.setenv("AWS_ENDPOINT_URL_S3", moto)
    with CatalogProcess(db=f"sqlite:///{tmp_path}/catalog.db", warehouse=f"s3://{bucket}/wh", cwd=str(tmp_path)) as server:
        ns = f"env_{uuid.uuid4().hex[:8]}"
        client = _publish(server, ns)
        con = client.duckdb()  # DuckDB reads the same files through the same environment
        assert con.execute(f"SELECT count(*) FROM mesh.{ns}.orders").fetchone() == (3,)
    keys = _objects(moto, bucket, f"wh/{ns}/")
    assert any(k.endswith(".parquet") for k in keys) and any(k.endswith(".metadata.json") for k in keys)
