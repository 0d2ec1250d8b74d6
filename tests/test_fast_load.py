"""loadTable's ASGI fast path (icemesh/server/fast_load.py) answers exactly as the FastAPI route it bypasses:
status, headers that matter, body, and audit rows, for admins, limited readers, outsiders and bad requests."""

from __future__ import annotations

import json
import re

import pytest

from icemesh.server import fast_load
from tests.inprocess import shop_world

SCHEMA = {"type": "struct", "schema-id": 0, "fields": [
    {"id": 1, "name": "id", "type": "long", "required": False},
    {"id": 2, "name": "email", "type": "string", "required": False}]}
TAGS = json.dumps([{"column": "", "key": "sens", "value": "public"}, {"column": "email", "key": "sens", "value": "confidential"}])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    catalog, admin, who, client = shop_world(tmp_path_factory.mktemp("fastload"))
    body = {"name": "customers", "schema": SCHEMA, "properties": {"icemesh.tags": TAGS}}
    assert catalog.http.post(catalog.rest("/namespaces/shop/tables"), json=body, headers=admin).status_code == 200
    yield catalog, admin, who, client
    client.__exit__(None, None, None)


def both_ways(monkeypatch, catalog, path: str, headers: dict) -> tuple:
    """(fast answer, route answer, audit rows each wrote) for one GET."""
    audit = catalog.http.app.state.service.audit

    def one():
        before = audit.audit_count()
        r = catalog.http.get(path, headers=headers)
        return r, audit.audit_count() - before

    fast, fast_rows = one()
    with monkeypatch.context() as m:
        m.setattr(fast_load, "_LOAD_PATH", re.compile(r"(?!)"))  # nothing matches: every request takes the route
        slow, slow_rows = one()
    return fast, slow, fast_rows, slow_rows


def same(fast, slow) -> None:
    assert fast.status_code == slow.status_code, (fast.text, slow.text)
    assert fast.content == slow.content
    for header in ("content-type", "etag", "content-length"):
        assert fast.headers.get(header) == slow.headers.get(header), header


@pytest.mark.parametrize("who_name, suffix, extra", [
    ("admin", "/namespaces/shop/tables/customers", {}),
    ("admin", "/namespaces/shop/tables/customers?snapshots=refs", {}),
    ("admin", "/namespaces/shop/tables/customers?snapshots=bogus", {}),
    ("admin", "/namespaces/shop/tables/nothing", {}),
    ("admin", "/namespaces/no_such_ns/tables/customers", {}),
    ("reader", "/namespaces/shop/tables/customers", {}),
    ("reader", "/namespaces/shop/tables/customers", {"X-Icemesh-Column-Limits": "apply"}),
    ("outsider", "/namespaces/shop/tables/customers", {}),
    ("nobody", "/namespaces/shop/tables/customers", {}),
    ("forged", "/namespaces/shop/tables/customers", {}),
])
def test_fast_path_answers_as_the_route(world, monkeypatch, who_name, suffix, extra):
    catalog, admin, who, _client = world
    fixed = {"admin": admin, "nobody": {}, "forged": {"Authorization": "Bearer not-a-token"}}
    headers = fixed[who_name] if who_name in fixed else who[who_name]
    fast, slow, fast_rows, slow_rows = both_ways(monkeypatch, catalog, catalog.rest(suffix), {**headers, **extra})
    same(fast, slow)
    assert fast_rows == slow_rows


def test_fast_path_honours_if_none_match_and_unknown_warehouses(world, monkeypatch):
    catalog, admin, _who, _client = world
    path = catalog.rest("/namespaces/shop/tables/customers")
    etag = catalog.http.get(path, headers=admin).headers["etag"]
    fast, slow, _, _ = both_ways(monkeypatch, catalog, path, {**admin, "If-None-Match": etag})
    assert fast.status_code == 304 and fast.headers["etag"] == etag
    same(fast, slow)
    fast, slow, _, _ = both_ways(monkeypatch, catalog, path, {**admin, "If-None-Match": '"stale"'})
    assert fast.status_code == 200
    same(fast, slow)
    fast, slow, _, _ = both_ways(monkeypatch, catalog, "/v1/elsewhere/namespaces/shop/tables/customers", admin)
    assert fast.status_code == 404
    same(fast, slow)


def test_an_unexpected_error_is_a_500_and_the_connection_stays_usable():
    """A route that fails unexpectedly answers the spec's 500 error, and the client's next request on the same
    keep-alive connection is answered (Starlette re-raises after its 500; uvicorn used to drop the connection)."""
    import http.client
    import socket
    import threading
    import time

    import uvicorn

    from icemesh.server.errors import install_error_handlers

    app = fast_load.CatalogApp()
    install_error_handlers(app)

    @app.post("/boom")
    def boom():
        raise ValueError("not a user's mistake")

    @app.get("/fine")
    def fine():
        return {"ok": True}

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("POST", "/boom", body=b"{}", headers={"content-type": "application/json"})
            failed = conn.getresponse()
            error = json.loads(failed.read())["error"]
            assert failed.status == 500 and error["type"] == "ServerErrorException" and "ValueError" in error["message"]
            time.sleep(0.3)  # long enough for a server that closes the connection to have closed it
            sock = conn.sock
            conn.request("GET", "/fine")
            assert conn.sock is sock  # the same connection, not a new one
            answer = conn.getresponse()
            assert answer.status == 200 and json.loads(answer.read()) == {"ok": True}
        finally:
            conn.close()
    finally:
        server.should_exit = True
        thread.join(10)
