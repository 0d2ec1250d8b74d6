"""AWS stand-ins for tests: moto as a real server on 127.0.0.1, and fake keys that can reach nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

KEY_ID = SECRET = "testing"
REGION = "us-east-1"
# Fake keys only, and never a real AWS endpoint: nothing here may reach the internet or the machine's profile.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": KEY_ID,
    "AWS_SECRET_ACCESS_KEY": SECRET,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def start_moto(home, port: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`moto_server` on a free port; returns once it answers (raises with its log if it does not). `env` adds
    settings of moto's own (e.g. INITIAL_NO_AUTH_ACTION_COUNT, which turns on its IAM checks)."""
    url = f"http://127.0.0.1:{port}"
    binary = os.path.join(os.path.dirname(sys.executable), "moto_server")
    with open(home / "moto.log", "ab") as log:
        proc = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)], cwd=str(home),
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **FAKE_AWS_ENV, **(env or {})})
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with {proc.returncode}: {(home / 'moto.log').read_text()[-2000:]}")
        try:
            httpx.get(url + "/moto-api/", timeout=1)
            return proc
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"moto_server did not answer on {url}: {(home / 'moto.log').read_text()[-2000:]}")
            time.sleep(0.1)


def boto_client(service: str, endpoint: str):
    import boto3

    return boto3.client(service, endpoint_url=endpoint, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
                        region_name=REGION)
