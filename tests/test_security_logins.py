"""Logins cannot take the catalog down or be forged in the record (a server of its own: failures are counted
per address, and every test here fails some on purpose)."""

from __future__ import annotations

import statistics
import threading
import time
import uuid

import httpx
import pytest

from icemesh.server.process import CatalogProcess

M = "/management/v1"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("logins")
    with CatalogProcess(db=f"sqlite:///{home}/catalog.db", warehouse=str(home / "wh"), cwd=str(home)) as server:
        yield server


def login(server, client_id: str, secret: str, **extra) -> httpx.Response:
    return httpx.post(f"{server.uri}/v1/oauth/tokens", timeout=60,
                      data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
                            "scope": "catalog", **extra})


def new_principal(server) -> tuple[str, str]:
    name = f"svc_{uuid.uuid4().hex[:8]}"
    return name, server.client().request("POST", f"{M}/principals", json={"name": name})["client_secret"]


def test_failed_logins_back_off_per_client_id(server):
    name, secret = new_principal(server)
    for _ in range(5):
        assert login(server, name, "wrong").status_code == 401
    blocked = login(server, name, "wrong")
    assert blocked.status_code == 429 and blocked.json()["error"] == "slow_down"
    assert int(blocked.headers["Retry-After"]) >= 1
    assert login(server, name, secret).status_code == 429  # even the right secret waits: guessing is slowed
    other, other_secret = new_principal(server)
    assert login(server, other, other_secret).status_code == 200  # another id from the same address is not
    time.sleep(float(blocked.headers["Retry-After"]) + 0.2)
    assert login(server, name, secret).status_code == 200


def test_an_unknown_client_id_costs_a_wrong_secrets_time(server):
    name, _secret = new_principal(server)

    def timed(client_id: str) -> float:
        started = time.perf_counter()
        assert login(server, client_id, "wrong").status_code == 401
        return time.perf_counter() - started

    unknown = statistics.median(timed(f"nobody_{uuid.uuid4().hex[:6]}") for _ in range(3))
    known = statistics.median(timed(name) for _ in range(3))
    assert 0.4 < unknown / known < 2.5, (unknown, known)


def test_logins_are_audited_without_forging_the_record(server):
    name, secret = new_principal(server)
    assert login(server, name, secret).status_code == 200
    assert login(server, name, "wrong").status_code == 401
    admin = server.client()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        mine = admin.request("GET", f"{M}/audit", params={"principal": name, "limit": 100})
        anonymous = admin.request("GET", f"{M}/audit", params={"principal": "anonymous", "limit": 1000})
        failed = [r for r in anonymous if r["action"] == "LOGIN" and repr(name) in r["reason"]]
        if any(r["action"] == "LOGIN" and r["allowed"] for r in mine) and failed:
            break
        time.sleep(0.2)
    assert any(r["action"] == "LOGIN" and r["allowed"] for r in mine)
    assert not any(r["action"] == "LOGIN" and not r["allowed"] for r in mine)  # a failure is not the principal's
    assert failed and not failed[0]["allowed"]


def test_token_exchange_keeps_scopes_and_lifetime(server):
    name, secret = new_principal(server)
    first = login(server, name, secret).json()
    exchange = {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": first["access_token"],
                "subject_token_type": "urn:ietf:params:oauth:token-type:access_token"}
    refused = httpx.post(f"{server.uri}/v1/oauth/tokens", data={**exchange, "scope": "catalog admin"}, timeout=30)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"
    time.sleep(1.1)
    second = httpx.post(f"{server.uri}/v1/oauth/tokens", data=exchange, timeout=30).json()
    assert second["expires_in"] < first["expires_in"]  # never extended past the token it came from
    # DuckDB asks for PRINCIPAL_ROLE:ALL by default: a client-credentials login still works, without that scope.
    duck = login(server, name, secret, scope="PRINCIPAL_ROLE:ALL").json()
    assert duck["scope"] == "catalog"


def test_a_login_flood_does_not_starve_loads(server):
    admin = server.client()
    token = admin.token()
    prefix = admin.prefix()
    ns = f"flood_{uuid.uuid4().hex[:6]}"
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.post(f"{server.uri}/v1/{prefix}/namespaces", json={"namespace": [ns]}, headers=headers).status_code == 200
    name, _secret = new_principal(server)

    def median_load() -> float:
        latencies = []
        for _ in range(20):
            started = time.perf_counter()
            assert httpx.get(f"{server.uri}/v1/{prefix}/namespaces/{ns}", headers=headers, timeout=30).status_code == 200
            latencies.append(time.perf_counter() - started)
        return statistics.median(latencies)

    quiet = median_load()
    stop = threading.Event()

    def flood():
        while not stop.is_set():
            try:
                login(server, f"{name}_{uuid.uuid4().hex[:4]}", "wrong")
            except httpx.HTTPError:
                pass

    threads = [threading.Thread(target=flood, daemon=True) for _ in range(16)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        flooded = median_load()
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    # The flood's own requests share the two cores, but no load waits behind secret hashing.
    assert flooded < max(0.5, 20 * quiet), (quiet, flooded)


def test_a_repeated_login_skips_scrypt_only_for_the_secret_that_matched(monkeypatch):
    """A right secret is remembered (as a keyed hash) so the next login of that client is fast; a wrong one
    always pays scrypt, and a new stored hash (a rotated secret) never matches through an old entry."""
    from icemesh.security import secrets

    calls = []
    real = secrets._scrypt_matches
    monkeypatch.setattr(secrets, "_scrypt_matches", lambda s, h: calls.append(s) or real(s, h))
    monkeypatch.setattr(secrets, "_RECENT", secrets._RecentlyVerified())
    right = secrets.new_secret()
    stored = secrets.hash_secret(right)
    assert secrets.verify_secret(right, stored) and secrets.verify_secret(right, stored)
    assert len(calls) == 1
    for _ in range(2):
        assert not secrets.verify_secret(right + "x", stored)
    assert len(calls) == 3  # every wrong guess costs scrypt
    rotated = secrets.hash_secret(secrets.new_secret())
    assert not secrets.verify_secret(right, rotated)  # the old secret against the new hash: scrypt, and no
    assert len(calls) == 4
    expiring = secrets._RecentlyVerified()
    expiring.TTL_S = -1.0  # an entry past its time is checked again
    monkeypatch.setattr(secrets, "_RECENT", expiring)
    assert secrets.verify_secret(right, stored) and secrets.verify_secret(right, stored)
    assert len(calls) == 6
