"""Kept loadTable answers (icemesh/catalog/load_cache.py) never outlive what they were decided on: a revoked
grant, a tag change, a commit, a client that stops declaring column limits, or another reader, each gets a
fresh decision at its next load; every load is audited; the thin ASGI path leaves unusual requests to FastAPI."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from icemesh.backends.sql.database import LOOKUP_THREADS, Database
from icemesh.catalog.load_cache import KeptLoad, LoadCache
from icemesh.server import fast_load
from tests.inprocess import M, shop_world

SCHEMA = {"type": "struct", "schema-id": 0, "fields": [
    {"id": 1, "name": "id", "type": "long", "required": False},
    {"id": 2, "name": "email", "type": "string", "required": False}]}
TAGS = json.dumps([{"column": "", "key": "sens", "value": "public"}, {"column": "email", "key": "sens", "value": "confidential"}])
LIMITS = {"X-Icemesh-Column-Limits": "apply"}


@pytest.fixture()
def world(tmp_path):
    catalog, admin, who, client = shop_world(tmp_path)
    body = {"name": "customers", "schema": SCHEMA, "properties": {"icemesh.tags": TAGS}}
    assert catalog.http.post(catalog.rest("/namespaces/shop/tables"), json=body, headers=admin).status_code == 200
    yield catalog, admin, who
    client.__exit__(None, None, None)


def load(catalog, headers, **extra):
    return catalog.http.get(catalog.rest("/namespaces/shop/tables/customers"), headers={**headers, **extra})


def columns(response) -> list[str]:
    metadata = response.json()["metadata"]
    schema = next(s for s in metadata["schemas"] if s["schema-id"] == metadata["current-schema-id"])
    return [f["name"] for f in schema["fields"]]


def kept(catalog) -> int:
    return len(catalog.http.app.state.service.loads)


def test_a_revoked_grant_is_refused_at_the_next_load(world):
    catalog, admin, who = world
    reader = {**who["reader"], **LIMITS}
    for _ in range(3):
        assert load(catalog, reader).status_code == 200
    assert kept(catalog) >= 1  # the reader's answer is kept
    grant = {"permissions": "SELECT,DESCRIBE", "principal": "svc_reader", "tags": ["domain=shop", "sens=public"]}
    assert catalog.http.post(f"{M}/grants/revoke", json=grant, headers=admin).status_code == 200
    refused = load(catalog, reader)
    assert refused.status_code in (403, 404), refused.text
    assert catalog.http.post(f"{M}/grants", json=grant, headers=admin).status_code == 201
    assert load(catalog, reader).status_code == 200


def test_a_kept_answer_is_not_served_to_a_request_without_column_limits(world):
    catalog, _admin, who = world
    assert columns(load(catalog, who["reader"], **LIMITS)) == ["id"]
    plain = load(catalog, who["reader"])  # the same token, the promise to apply limits not made this time
    assert plain.status_code == 403 and "does not apply column limits" in plain.text
    assert columns(load(catalog, who["reader"], **LIMITS)) == ["id"]


def test_one_readers_kept_answer_is_not_anothers(world):
    catalog, admin, who = world
    assert columns(load(catalog, admin)) == ["id", "email"]
    assert columns(load(catalog, admin)) == ["id", "email"]
    assert columns(load(catalog, who["reader"], **LIMITS)) == ["id"]  # not the admin's kept answer
    assert load(catalog, who["outsider"]).status_code in (403, 404)
    assert columns(load(catalog, admin)) == ["id", "email"]


def test_a_commit_is_seen_by_the_next_load(world):
    catalog, admin, _who = world
    before = load(catalog, admin).json()
    load(catalog, admin)
    commit = {"requirements": [], "updates": [{"action": "set-properties", "updates": {"owner-note": "v2"}}]}
    done = catalog.http.post(catalog.rest("/namespaces/shop/tables/customers"), json=commit, headers=admin)
    assert done.status_code == 200, done.text
    after = load(catalog, admin).json()
    assert after["metadata-location"] != before["metadata-location"]
    assert after["metadata"]["properties"]["owner-note"] == "v2"


def test_a_tag_change_is_seen_by_the_next_load(world):
    catalog, admin, who = world
    reader = {**who["reader"], **LIMITS}
    assert columns(load(catalog, reader)) == ["id"]
    retag = {"key": "sens", "value": "public", "table": "shop.customers", "column": "email"}
    tagged = catalog.http.post(f"{M}/tag-assignments", json=retag, headers=admin)
    assert tagged.status_code in (200, 201), tagged.text
    shown = load(catalog, reader)
    assert columns(shown) == ["id", "email"]
    email_id = next(f["id"] for f in SCHEMA["fields"] if f["name"] == "email")
    labels = {f["field-id"]: f["labels"] for f in shown.json()["labels"].get("fields", [])}
    assert labels[email_id]["sens"] == "public"


def test_every_load_is_audited_even_when_kept(world):
    catalog, admin, _who = world
    audit = catalog.http.app.state.service.audit
    load(catalog, admin)
    audit.flush_audit()
    before = audit.audit_count()
    for _ in range(5):
        assert load(catalog, admin).status_code == 200
    audit.flush_audit()
    assert audit.audit_count() - before == 5
    rows = audit.audit_records(principal="admin", limit=5)
    assert {r.action for r in rows} == {"SELECT"} and all(r.allowed for r in rows)
    assert len({r.request_id for r in rows}) == 5  # each its own request


def test_if_none_match_on_a_kept_answer(world):
    catalog, admin, _who = world
    etag = load(catalog, admin).headers["etag"]
    assert load(catalog, admin, **{"If-None-Match": etag}).status_code == 304
    assert load(catalog, admin, **{"If-None-Match": '"other"'}).status_code == 200


def test_a_get_with_a_body_is_left_to_fastapi(world, monkeypatch):
    catalog, admin, _who = world

    async def refuse(*_args, **_kwargs):
        raise AssertionError("the thin path answered a request with a body")

    monkeypatch.setattr(fast_load.LoadTableFastPath, "_answer", refuse)
    answered = catalog.http.request("GET", catalog.rest("/namespaces/shop/tables/customers"), headers=admin,
                                    content=b"{}")
    assert answered.status_code == 200 and columns(answered) == ["id", "email"]


def test_an_unexpected_error_is_a_500_in_the_error_model(world, monkeypatch):
    catalog, admin, _who = world

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(catalog.http.app.state.service, "load_table", broken)
    answer = load(catalog, admin)
    assert answer.status_code == 500
    assert answer.json()["error"]["message"] == "Internal error (RuntimeError); see the server log"
    assert "disk on fire" not in answer.text


class _Loaded:
    def __init__(self, size: int) -> None:
        self.metadata_json = b"x" * size


def test_the_cache_starts_over_past_its_capacity_and_its_bytes():
    cache, snapshot = LoadCache(capacity=2), object()
    for i in range(3):
        cache.put(i, KeptLoad(f"loc{i}", snapshot, None, _Loaded(10)))
    assert len(cache) == 1 and cache.get(2, "loc2", snapshot) is not None
    assert cache.get(2, "other-file", snapshot) is None and cache.get(2, "loc2", object()) is None
    small = LoadCache(max_bytes=80_000)
    small.put("huge", KeptLoad("l", snapshot, None, _Loaded(9_000)))  # over an eighth of the bound: never kept
    assert small.get("huge", "l", snapshot) is None
    for i in range(20):  # 5,024 bytes each: 15 fit in 80,000, the 16th starts over
        small.put(i, KeptLoad("l", snapshot, None, _Loaded(2_000)))
    assert len(small) == 5 and small.get(19, "l", snapshot) is not None and small.get(3, "l", snapshot) is None


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_lookups_see_other_connections_commits_and_survive_a_dropped_connection(backend, tmp_path, request):
    url = f"sqlite:///{tmp_path}/l.db" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    db = Database(url)
    table = f"lookup_{backend}_probe"
    stmt = text(f"SELECT v FROM {table} WHERE k = :k")  # a fixed test table name, no input in it
    with db.write() as conn, conn.begin():
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(text(f"CREATE TABLE {table} (k VARCHAR(10) PRIMARY KEY, v INTEGER)"))
        conn.execute(text(f"INSERT INTO {table} VALUES ('a', 1)"))
    try:
        assert db.lookup(stmt, {"k": "a"}) == (1,) and db.lookup(stmt, {"k": "b"}) is None
        with db.write() as conn, conn.begin():
            conn.execute(text(f"UPDATE {table} SET v = 2 WHERE k = 'a'"))
        assert db.lookup(stmt, {"k": "a"}) == (2,)  # autocommit: no snapshot held from the last read
        if backend == "postgres":
            with db.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                                  "current_database() AND pid <> pg_backend_pid()"))
                conn.commit()
            assert db.lookup(stmt, {"k": "a"}) == (2,)  # read through the pool, a new connection next time
            assert db.lookup(stmt, {"k": "a"}) == (2,)
        assert len(db._lookup_conns) <= LOOKUP_THREADS
    finally:
        with db.write() as conn, conn.begin():
            conn.execute(text(f"DROP TABLE {table}"))
        db.close()
