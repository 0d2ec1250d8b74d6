"""Secrets at rest: client secrets and tokens are stored hashed; a generated admin secret is shown once."""

from __future__ import annotations

import os
import stat
import time
import uuid

from icemesh.server.process import CatalogProcess


def database_bytes(home) -> bytes:
    data = b""
    for name in os.listdir(home):
        if name.startswith("catalog.db"):
            with open(os.path.join(home, name), "rb") as f:
                data += f.read()
    return data


def test_secrets_and_tokens_never_stored_in_clear(tmp_path):
    with CatalogProcess(db=f"sqlite:///{tmp_path}/catalog.db", warehouse=str(tmp_path / "wh"), cwd=str(tmp_path)) as server:
        admin = server.client()
        created = admin.request("POST", "/management/v1/principals", json={"name": f"svc_{uuid.uuid4().hex[:6]}"})
        token = server.client(created["name"], created["client_secret"]).token()
        admin_token = admin.token()
        time.sleep(0.5)  # audit batches are flushed every 0.2 s
        stored = database_bytes(tmp_path)
        for secret in (created["client_secret"], token, admin_token, server.admin_secret):
            assert secret.encode() not in stored
        assert b"scrypt$" in stored  # the hashes are there instead
        assert server.admin_secret not in server.log()  # a secret from the environment is never printed


def test_generated_admin_secret_is_shown_once_and_kept_owner_only(tmp_path):
    server = CatalogProcess(db=f"sqlite:///{tmp_path}/catalog.db", warehouse=str(tmp_path / "wh"), cwd=str(tmp_path),
                            env={"ICEMESH_ADMIN_SECRET": ""})
    with server:
        secret_file = tmp_path / ".icemesh" / "admin-secret"
        secret = secret_file.read_text().strip()
        assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
        assert secret in server.log()
        assert server.client("admin", secret).request("GET", "/management/v1/whoami")["admin"] is True
    with server:  # second start: the admin exists, nothing new is generated or shown
        assert server.log().count(secret) == 1
        assert server.client("admin", secret).request("GET", "/management/v1/whoami")["name"] == "admin"
