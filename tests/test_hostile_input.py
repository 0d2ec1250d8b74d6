"""Hostile input over raw HTTP, on both backends: each attempt gets a 4xx in the spec's error model and
changes nothing (no table, no pointer move, no file written). Complements test_rest_protocol.py, which
covers hostile namespace names, Content-Length over the limit, unknown update actions and plain
out-of-warehouse locations."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest

from tests.conftest import warehouse_files
from tests.test_rest_protocol import create, error_of, warehouse_root

pytestmark = pytest.mark.reliability

LIMIT = 32 * 1024 * 1024


@pytest.fixture
def table(http, ns):
    """A namespace with table `t`; returns a function giving everything a refused request must not change."""
    assert http.post("/namespaces", json={"namespace": [ns]}).status_code == 200
    assert create(http, ns).status_code == 200
    root = warehouse_root(http)

    def state():
        return (http.get("/namespaces", params={"parent": ns}).json(),
                http.get(f"/namespaces/{ns}/tables").json(),
                http.get(f"/namespaces/{ns}/tables/t").json()["metadata-location"],
                warehouse_files(root))

    return state


def refused(response, status=400):
    assert response.status_code == status, response.text
    return error_of(response)


def test_malformed_bodies_on_every_mutation(http, ns, table):
    before = table()
    endpoints = ["/namespaces", f"/namespaces/{ns}/properties", f"/namespaces/{ns}/tables", f"/namespaces/{ns}/tables/t",
                 f"/namespaces/{ns}/register", "/tables/rename", "/transactions/commit"]
    bodies = [b"{not json", b"[]", b"null", b'"text"', b"\xff\xfe\x00", b"[" * 100_000 + b"]" * 100_000,
              b'{"namespace": "x", "name": 7, "removals": 5, "updates": 1, "table-changes": 1, "source": []}']
    for path in endpoints:
        for body in bodies:
            error = refused(http.post(path, content=body))
            assert error["type"] == "BadRequestException", (path, body[:20], error)
    assert table() == before


def test_chunked_body_over_the_limit_is_413(http, ns, table):
    """Without Content-Length the guard counts the bytes as they arrive."""
    before = table()

    def chunks():
        yield b'{"namespace": ["' + ns.encode() + b'", "big"], "properties": {"k": "'
        for _ in range(LIMIT // (1024 * 1024) + 1):
            yield b"x" * (1024 * 1024)
        yield b'"}}'

    error = refused(http.post("/namespaces", content=chunks()), 413)
    assert str(LIMIT) in error["message"]
    assert table() == before
    small = http.post("/namespaces", content=iter([b'{"namespace": ["', ns.encode(), b'", "small"]}']))
    assert small.status_code == 200  # a chunked body under the limit is read as usual


@pytest.mark.parametrize("name", ["a/b", "..", ".", "", "x\x00y", "new\nline", "a\x1fb", "n" * 256])
def test_bad_table_names_are_400(http, ns, table, name):
    before = table()
    error = refused(create(http, ns, name=name))
    assert "table name" in error["message"].lower()
    rename = {"source": {"namespace": [ns], "name": "t"}, "destination": {"namespace": [ns], "name": name}}
    refused(http.post("/tables/rename", json=rename))
    assert table() == before


@pytest.mark.parametrize("name", ["o'hara\"; DROP TABLE icemesh_tables; --", "semi;colon", "dots.in.name", "ünïcødé 表",
                                  "with space", "back`tick"])
def test_names_outside_the_identifier_rule_are_400(http, ns, table, name):
    """Names flow into other domains' SQL and terminals: only letters, digits, _, - and $ are accepted."""
    before = table()
    error = refused(create(http, ns, name=name))
    assert "use only letters, digits, '_', '-' and '$'" in error["message"]
    rename = {"source": {"namespace": [ns], "name": "t"}, "destination": {"namespace": [ns], "name": name}}
    refused(http.post("/tables/rename", json=rename))
    refused(http.post("/namespaces", json={"namespace": [name]}))
    column = {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": name, "type": "long", "required": False}]}
    refused(http.post(f"/namespaces/{ns}/tables", json={"name": "ok_name", "schema": column}))
    add = {"action": "add-schema", "schema": {**column, "schema-id": 7, "fields": [
        {"id": 1, "name": "id", "type": "long", "required": False}, {"id": 9, "name": name, "type": "long", "required": False}]}}
    refused(http.post(f"/namespaces/{ns}/tables/t", json={"updates": [add]}))
    assert table() == before


@pytest.mark.parametrize("name", ["n" * 255, "a-b_c$1", "UPPER"])
def test_safe_table_names_are_kept_verbatim_and_confined(http, ns, table, name):
    created = create(http, ns, name=name)
    assert created.status_code == 200
    assert created.json()["metadata"]["location"].startswith("file://" + warehouse_root(http) + "/")
    assert http.get(f"/namespaces/{ns}/tables/{quote(name, safe='')}").json()["metadata-location"] == \
        created.json()["metadata-location"]
    assert {"namespace": [ns], "name": name} in http.get(f"/namespaces/{ns}/tables").json()["identifiers"]


def test_escaping_locations_are_refused(http, ns, table, tmp_path):
    root = warehouse_root(http)
    before = table()
    escapes = [f"file://{root}/%2e%2e/escape", f"file://{root}/%2E%2E/%2e%2e/escape", f"file://otherhost{root}/t",
               f"{root}/sub/../../escape", "s3://another-bucket/warehouse/t", f"file://{root}", f"file://{root}x/t"]
    for location in escapes:
        assert "outside the warehouse" in refused(create(http, ns, name="x", location=location))["message"], location
        commit = {"updates": [{"action": "set-location", "location": location}]}
        refused(http.post(f"/namespaces/{ns}/tables/t", json=commit))
    outside = f"file://{tmp_path}/stolen"
    snapshot = {"snapshot-id": 42, "timestamp-ms": 1, "manifest-list": f"{outside}/snap.avro",
                "summary": {"operation": "append"}, "sequence-number": 1, "schema-id": 0}
    statistics = {"snapshot-id": 42, "statistics-path": f"{outside}/stats.puffin", "file-size-in-bytes": 1,
                  "file-footer-size-in-bytes": 1, "blob-metadata": []}
    for updates in ([{"action": "add-snapshot", "snapshot": snapshot}],
                    [{"action": "set-statistics", "snapshot-id": 42, "statistics": statistics}],
                    [{"action": "set-properties", "updates": {"write.metadata.path": f"file://{root}/%2e%2e/m"}}]):
        error = refused(http.post(f"/namespaces/{ns}/tables/t", json={"updates": updates}))
        assert "lies outside the table's location" in error["message"], updates
    assert table() == before


def test_updates_that_would_corrupt_metadata_are_400(http, ns, table):
    before = table()
    attempts = [
        [{"action": "add-schema", "schema": {"type": "struct", "schema-id": 0, "fields": []}}],  # id already used
        [{"action": "add-spec", "spec": {"spec-id": 1, "fields": [
            {"source-id": 99, "field-id": 1000, "transform": "identity", "name": "p"}]}}],  # no column 99
        [{"action": "add-sort-order", "sort-order": {"order-id": 1, "fields": [
            {"source-id": 99, "transform": "identity", "direction": "asc", "null-order": "nulls-first"}]}}],
        [{"action": "set-current-schema", "schema-id": 5}],
        [{"action": "set-snapshot-ref", "ref-name": "main", "type": "branch", "snapshot-id": 12345}],
        [{"action": "upgrade-format-version", "format-version": 1}],
        [{"action": "assign-uuid", "uuid": "not-a-uuid"}],
        [{"action": "set-properties"}],
    ]
    for updates in attempts:
        error = refused(http.post(f"/namespaces/{ns}/tables/t", json={"updates": updates}))
        assert error["type"] == "BadRequestException"
    unknown = refused(http.post(f"/namespaces/{ns}/tables/t", json={"requirements": [{"type": "assert-nothing"}]}))
    assert "assert-nothing" in unknown["message"]
    transaction = {"table-changes": [{"identifier": {"namespace": [ns], "name": "t"}, "updates": attempts[0]}]}
    refused(http.post("/transactions/commit", json=transaction))
    assert table() == before


def test_unknown_warehouse_and_bad_paging_are_4xx(http, ns, table):
    base = str(http.base_url).rsplit("/v1/", 1)[0]
    missing = http.get(f"{base}/v1/nowhere-{uuid.uuid4().hex[:6]}/namespaces")
    assert missing.status_code == 404 and error_of(missing)["type"] == "NoSuchWarehouseException"
    for params in ({"pageSize": "0"}, {"pageSize": "-1"}, {"pageSize": str(10**30)}, {"pageToken": "\x00junk"}):
        refused(http.get(f"/namespaces/{ns}/tables", params=params))
    refused(http.post("/namespaces", json={"namespace": ["k"]}, headers={"Idempotency-Key": "k" * 256}))
