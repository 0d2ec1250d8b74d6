"""Secrets and tokens on PostgreSQL with the access log on: never in clear in the database or the logs;
forged, tampered, expired and revoked tokens get 401 and every such refusal is audited.
(test_secrets_at_rest.py covers SQLite; test_governance_http.py covers 403s and their audit.)"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from icemesh.server.process import CatalogProcess

pytestmark = [pytest.mark.reliability, pytest.mark.postgres]

M = "/management/v1"


@pytest.fixture(scope="module")
def server(postgres_url, tmp_path_factory):
    home = tmp_path_factory.mktemp("security")
    process = CatalogProcess(db=postgres_url, warehouse=str(home / "wh"), cwd=str(home),
                             extra_args=["--access-log", "--token-ttl", "2"]).start()
    yield process
    process.stop()


def login(server, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(f"{server.uri}/v1/oauth/tokens", timeout=30, data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret, "scope": "catalog"})


def call(server, token: str, request_id: str, path: str = f"{M}/whoami") -> httpx.Response:
    return httpx.get(server.uri + path, timeout=30, headers={"Authorization": f"Bearer {token}", "X-Request-Id": request_id})


def database_text(db_url: str) -> str:
    """Every row of every icemesh table, as text."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'icemesh_%'")).scalars().all()
            return "\n".join(str(row) for t in tables for row in conn.execute(text(f'SELECT * FROM "{t}"')))
    finally:
        engine.dispose()


def test_bad_tokens_are_401_and_audited(server):
    admin = server.client()
    names = [f"svc_{uuid.uuid4().hex[:6]}" for _ in range(2)]
    created = [admin.request("POST", f"{M}/principals", json={"name": n}) for n in names]
    good = login(server, created[0]["client_id"], created[0]["client_secret"]).json()["access_token"]
    assert call(server, good, "ok").status_code == 200
    rotated_away = login(server, created[1]["client_id"], created[1]["client_secret"]).json()["access_token"]
    admin.request("POST", f"{M}/principals/{names[1]}/rotate-secret")
    cases = {
        "forged": "icm_" + uuid.uuid4().hex,
        "tampered": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "revoked": rotated_away,
        "sql": "x' OR '1'='1",
    }
    time.sleep(2.2)  # `good` has expired (--token-ttl 2)
    cases["expired"] = good
    ids = {}
    for kind, token in cases.items():
        for path in (f"{M}/whoami", f"/v1/{admin.prefix()}/namespaces"):
            ids[kind] = f"{kind}-{uuid.uuid4().hex[:8]}"
            response = call(server, token, ids[kind], path)
            assert response.status_code == 401, (kind, path, response.text)
            assert response.json()["error"]["type"] == "NotAuthorizedException"
    assert "expired" in call(server, good, "again").json()["error"]["message"].lower()
    huge = httpx.get(server.uri + f"{M}/whoami", headers={"Authorization": "Bearer " + "x" * 60_000}, timeout=30)
    assert 400 <= huge.status_code < 500

    admin = server.client()  # the admin's own token may have expired too
    deadline = time.monotonic() + 3
    while True:
        rows = admin.request("GET", f"{M}/audit", params={"principal": "anonymous", "denied": "true", "limit": 10000})
        audited = {r["request_id"] for r in rows if r["action"] == "AUTHENTICATE"}
        if set(ids.values()) <= audited or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert set(ids.values()) <= audited, f"401s missing from the audit log: {set(ids.values()) - audited}"


def test_no_secret_or_token_in_clear_in_database_or_logs(server, postgres_url):
    admin = server.client()
    name = f"svc_{uuid.uuid4().hex[:6]}"
    created = admin.request("POST", f"{M}/principals", json={"name": name})
    wrong = "wrong-" + uuid.uuid4().hex
    assert login(server, created["client_id"], wrong).status_code == 401  # a mistyped secret is sensitive too
    token = login(server, created["client_id"], created["client_secret"]).json()["access_token"]
    assert call(server, token, "r1", f"/v1/{admin.prefix()}/namespaces").status_code in (200, 403)
    rotated = admin.request("POST", f"{M}/principals/{name}/rotate-secret")["client_secret"]
    time.sleep(0.5)  # audit batches are written every 0.2 s
    stored, log = database_text(postgres_url), server.log() + open(server.log_path, errors="replace").read()
    assert "scrypt$" in stored
    assert "GET /management/v1/whoami" in log or "POST /v1/oauth/tokens" in log  # the access log is on
    for secret in (created["client_secret"], rotated, wrong, token, admin.token(), server.admin_secret):
        assert secret not in stored
        assert secret not in log
