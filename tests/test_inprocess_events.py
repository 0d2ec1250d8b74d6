"""The change feed, in process: one event per change, in the change's transaction, none for a refused or failed
one, filtered by what the reader may DESCRIBE, and a cursor that never skips or repeats.

The world: namespaces `shop` (a producer owns what it creates there; a reader may SELECT tables tagged
domain=shop AND sens=public) and `vault` (the admin's, seen by nobody else); an outsider may see nothing.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.inprocess import M, shop_world

pytestmark = pytest.mark.inprocess

SCHEMA = {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}
PUBLIC = {"icemesh.tags": json.dumps([{"column": "", "key": "sens", "value": "public"}])}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    catalog, admin, who, client = shop_world(tmp_path_factory.mktemp("events"), other_namespaces=("vault",))
    yield catalog, admin, who
    client.__exit__(None, None, None)


def create(catalog, headers, ns: str, name: str):
    return catalog.http.post(catalog.rest(f"/namespaces/{ns}/tables"),
                             json={"name": name, "schema": SCHEMA, "properties": dict(PUBLIC)}, headers=headers)


def commit(catalog, headers, ns: str, name: str, updates: list, requirements: list | None = None):
    return catalog.http.post(catalog.rest(f"/namespaces/{ns}/tables/{name}"),
                             json={"updates": updates, "requirements": requirements or []}, headers=headers)


def feed(catalog, headers, after: int = 0, **params) -> dict:
    response = catalog.http.get(f"{M}/events", params={"after": after, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def names(page: dict) -> list[tuple[str, str]]:
    return [(e["operation-type"], ".".join([*e["identifier"]["namespace"], *[e["identifier"].get("name", "")]]).rstrip("."))
            for e in page["events"]]


def test_each_change_is_one_event_and_a_refused_or_failed_one_none(world):
    catalog, admin, who = world
    start_at = feed(catalog, admin)["next-after"]
    assert create(catalog, who["producer"], "shop", "orders").status_code == 200
    assert commit(catalog, who["producer"], "shop", "orders", [{"action": "set-properties",
                                                                "updates": {"owner-note": "x"}}]).status_code == 200
    # Refused (the outsider), failed (a requirement that does not hold), and no-op commits: no events.
    assert commit(catalog, who["outsider"], "shop", "orders", [{"action": "set-properties",
                                                                "updates": {"x": "y"}}]).status_code == 404
    stale = [{"type": "assert-table-uuid", "uuid": "00000000-0000-0000-0000-000000000000"}]
    assert commit(catalog, who["producer"], "shop", "orders", [{"action": "set-properties", "updates": {"x": "y"}}],
                  stale).status_code == 409
    assert commit(catalog, who["producer"], "shop", "orders", []).status_code == 200
    assert create(catalog, who["outsider"], "shop", "intruder").status_code in (403, 404)
    renamed = catalog.http.post(catalog.rest("/tables/rename"), headers=who["producer"], json={
        "source": {"namespace": ["shop"], "name": "orders"}, "destination": {"namespace": ["shop"], "name": "orders2"}})
    assert renamed.status_code == 204, renamed.text
    assert catalog.http.delete(catalog.rest("/namespaces/shop/tables/orders2"), headers=who["producer"]).status_code == 204
    page = feed(catalog, admin, start_at)
    assert names(page) == [("create-table", "shop.orders"), ("update-table", "shop.orders"),
                           ("rename-table", "shop.orders"), ("drop-table", "shop.orders2")]
    ids = [e["event-id"] for e in page["events"]]
    assert ids == sorted(ids) and len(set(ids)) == 4 and page["next-after"] == ids[-1]
    first = page["events"][0]
    assert first["principal"] == "svc_producer" and first["warehouse"] == catalog.prefix and first["table-uuid"]
    assert page["events"][2]["destination"] == {"namespace": ["shop"], "name": "orders2"}


def test_a_reader_sees_what_it_may_describe_and_the_cursor_moves_past_the_rest(world):
    catalog, admin, who = world
    start_at = feed(catalog, admin)["next-after"]
    create(catalog, admin, "vault", "secrets")  # the admin's: nobody else may see it
    create(catalog, who["producer"], "shop", "visible")
    everything = feed(catalog, admin, start_at)
    assert names(everything) == [("create-table", "vault.secrets"), ("create-table", "shop.visible")]
    for reader, expected in (("reader", [("create-table", "shop.visible")]), ("producer", [("create-table", "shop.visible")]),
                             ("outsider", [])):
        page = feed(catalog, who[reader], start_at)
        assert names(page) == expected, reader
        assert page["next-after"] == everything["next-after"]  # moved past what it may not see: no rereading
    assert feed(catalog, who["outsider"], everything["next-after"])["events"] == []


def test_paging_by_cursor_neither_skips_nor_repeats(world):
    catalog, admin, who = world
    start_at = feed(catalog, admin)["next-after"]
    for i in range(7):
        create(catalog, who["producer"], "shop", f"paged{i}")
    seen, cursor = [], start_at
    while True:
        page = feed(catalog, admin, cursor, limit=3, type="create-table")
        if not page["events"]:
            break
        seen += [e["identifier"]["name"] for e in page["events"]]
        cursor = page["next-after"]
    assert seen == [f"paged{i}" for i in range(7)]


def test_a_long_poll_returns_when_the_next_change_lands(world):
    catalog, admin, who = world
    latest = feed(catalog, admin)["next-after"]
    threading.Timer(0.5, lambda: create(catalog, who["producer"], "shop", "awaited")).start()
    began = time.monotonic()
    page = feed(catalog, who["reader"], latest, wait=10)
    assert names(page) == [("create-table", "shop.awaited")] and time.monotonic() - began < 5
    began = time.monotonic()
    assert feed(catalog, who["reader"], page["next-after"], wait=0.5)["events"] == []
    assert time.monotonic() - began >= 0.45  # held for the wait, then an empty answer


def test_namespaces_have_events_and_bad_input_gets_one_line(world):
    catalog, admin, who = world
    start_at = feed(catalog, admin)["next-after"]
    assert catalog.http.post(catalog.rest("/namespaces"), json={"namespace": ["scratch"]}, headers=admin).status_code == 200
    assert catalog.http.delete(catalog.rest("/namespaces/scratch"), headers=admin).status_code == 204
    assert names(feed(catalog, admin, start_at)) == [("create-namespace", "scratch"), ("drop-namespace", "scratch")]
    assert names(feed(catalog, who["outsider"], start_at)) == []
    bad = catalog.http.get(f"{M}/events", params={"type": "commit"}, headers=admin)
    assert bad.status_code == 400 and "Unknown event type 'commit'" in bad.json()["error"]["message"]
    assert catalog.http.get(f"{M}/events").status_code == 401  # no token, no feed


def test_governance_changes_are_events_seen_by_whom_they_concern(world):
    catalog, admin, who = world
    http = catalog.http
    create(catalog, who["producer"], "shop", "tagged")
    start_at = feed(catalog, admin)["next-after"]
    assert http.post(f"{M}/tags", json={"key": "tier", "values": ["gold", "silver"]}, headers=admin).status_code in (200, 201)
    assert http.post(f"{M}/tag-assignments", json={"key": "tier", "value": "gold",
                                                   "table": "shop.tagged"}, headers=admin).status_code in (200, 201)
    assert http.post(f"{M}/tag-assignments", json={"key": "tier", "value": "gold", "namespace": "vault"},
                     headers=admin).status_code in (200, 201)
    granted = http.post(f"{M}/grants", json={"permissions": "DESCRIBE,SELECT", "principal": "svc_reader",
                                            "namespace": "shop"}, headers=admin)
    assert granted.status_code in (200, 201), granted.text
    assert http.post(f"{M}/grants/revoke", json={"permissions": "SELECT", "principal": "svc_reader", "namespace": "shop"},
                     headers=admin).status_code == 200
    # A refused change is no event.
    assert http.post(f"{M}/tags", json={"key": "nope", "values": ["a"]}, headers=who["producer"]).status_code == 403
    types = lambda page: [(e["operation-type"], e.get("change")) for e in page["events"]]  # noqa: E731
    assert types(feed(catalog, admin, start_at)) == [
        ("x-tag-key", "add"), ("x-tag-assignment", "add"), ("x-tag-assignment", "add"), ("x-grant", "add"),
        ("x-grant", "change")]
    assert types(feed(catalog, who["reader"], start_at)) == [  # its own grant, and the tag on a table it may see
        ("x-tag-key", "add"), ("x-tag-assignment", "add"), ("x-grant", "add"), ("x-grant", "change")]
    assert types(feed(catalog, who["outsider"], start_at)) == [("x-tag-key", "add")]
    change = feed(catalog, admin, start_at)["events"][4]
    assert change["permissions"] == ["DESCRIBE"] and change["grantee"] == {"type": "principal", "name": "svc_reader"}

    policy = "tags:\n  sens: [public, internal, confidential]\n  domain: [shop, billing]\n  tier: [gold, silver, bronze]\n"
    applied = http.post(f"{M}/policy", json={"document": policy, "dry_run": False}, headers=admin)
    assert applied.status_code == 200 and applied.json()["applied"], applied.text
    last = feed(catalog, admin, start_at)["events"][-1]
    assert last["operation-type"] == "x-policy-apply" and last["changes"] == ["~ tag tier"]
    assert "x-policy-apply" not in [e["operation-type"] for e in feed(catalog, who["reader"], start_at)["events"]]
