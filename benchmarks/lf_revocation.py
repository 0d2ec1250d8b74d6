"""How long a revocation made directly in Lake Formation takes to reach icemesh's REST clients.

    .venv/bin/python benchmarks/lf_revocation.py [--trials 10]

Starts moto (Glue, Lake Formation, S3) and `icemesh serve --backend glue` with its default refresh; per trial,
grants SELECT on a table through icemesh, checks the reader loads it, revokes the grant in Lake Formation
itself (boto3, as an AWS admin would), then loads every 50 ms until the load is refused. Reports the
latency's min/median/max (the floor: 5 s; the refresh is 4 s). Revocations made through icemesh take effect at once.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
       "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    os.environ.update(ENV)
    import boto3
    import pyarrow as pa

    from icemesh.server.process import CatalogProcess

    home = tempfile.mkdtemp(prefix="lf-revocation-")
    moto_port = _port()
    moto = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1", "-p",
                             str(moto_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    moto_url = f"http://127.0.0.1:{moto_port}"
    for _ in range(100):
        try:
            httpx.get(moto_url + "/moto-api/", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    aws = {"endpoint_url": moto_url, "region_name": "us-east-1"}
    boto3.client("s3", **aws).create_bucket(Bucket="bench")
    lf = boto3.client("lakeformation", **aws)
    extra = ["--backend", "glue", "--glue-region", "us-east-1", "--glue-endpoint", moto_url, "--s3-endpoint", moto_url,
             "--s3-region", "us-east-1", "--share-storage-keys"]
    env = {k: v for k, v in ENV.items()}
    latencies = []
    try:
        with CatalogProcess(db=f"sqlite:///{home}/c.db", warehouse="s3://bench/wh", extra_args=extra, env=env,
                            cwd=home) as server:
            admin = server.client()
            rest = admin.rest_catalog("bench_admin")
            rest.create_namespace("bench")
            schema = pa.schema([("id", pa.int64())])
            rest.create_table(("bench", "t"), schema=schema).append(pa.table({"id": [1]}, schema=schema))
            secret = admin.request("POST", "/management/v1/principals", json={"name": "reader"})["client_secret"]
            reader = server.client("reader", secret)
            url = f"{server.uri}/v1/{admin.prefix()}/namespaces/bench/tables/t"
            account = boto3.client("sts", **aws).get_caller_identity()["Account"]
            principal = {"DataLakePrincipalIdentifier": f"arn:aws:iam::{account}:user/icemesh/reader"}
            for trial in range(args.trials):
                admin.request("POST", "/management/v1/grants", json={"permissions": "SELECT,DESCRIBE",
                                                                     "principal": "reader", "table": "bench.t"})
                assert httpx.get(url, headers=reader.headers(), timeout=10).status_code == 200
                lf.revoke_permissions(Principal=principal, Resource={"Table": {"DatabaseName": "bench", "Name": "t"}},
                                      Permissions=["DESCRIBE", "SELECT"])
                start = time.monotonic()
                while httpx.get(url, headers=reader.headers(), timeout=10).status_code == 200:
                    time.sleep(0.05)
                latencies.append(time.monotonic() - start)
                print(f"trial {trial + 1}/{args.trials}: revoked in Lake Formation, refused after "
                      f"{latencies[-1]:.2f} s", flush=True)
    finally:
        moto.kill()
    report = {"trials": len(latencies), "min_s": round(min(latencies), 2),
              "median_s": round(statistics.median(latencies), 2), "max_s": round(max(latencies), 2)}
    print(json.dumps(report))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "lf_revocation.json"), "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
