"""The REST protocol itself over raw HTTP: errors, caching, idempotency, confinement, atomicity."""

from __future__ import annotations

import os
import threading
import uuid

import pyarrow as pa
import pytest
from pyiceberg.exceptions import CommitFailedException

from tests.conftest import warehouse_files

SCHEMA = {"type": "struct", "schema-id": 0, "fields": [
    {"id": 1, "name": "id", "type": "long", "required": False},
    {"id": 2, "name": "v", "type": "string", "required": False},
]}


def create(http, ns, name="t", **extra):
    response = http.post(f"/namespaces/{ns}/tables", json={"name": name, "schema": SCHEMA, **extra})
    return response


def error_of(response):
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "code"}
    assert body["error"]["code"] == response.status_code
    return body["error"]


def warehouse_root(http):
    return http.get(http.server.uri + "/v1/config").json()["overrides"]["warehouse"].removeprefix("file://")


def test_config_advertises_endpoints_and_prefix(catalog_server, http):
    config = http.get(catalog_server.uri + "/v1/config").json()
    assert config["overrides"]["prefix"] == "default"
    assert "POST /v1/{prefix}/transactions/commit" in config["endpoints"]
    assert http.get(catalog_server.uri + "/v1/config", params={"warehouse": "default"}).status_code == 200
    unknown = http.get(catalog_server.uri + "/v1/config", params={"warehouse": "nowhere"})
    assert unknown.status_code == 404 and "nowhere" in error_of(unknown)["message"]


def test_errors_use_the_spec_model(http, ns):
    missing = http.get(f"/namespaces/{ns}/tables/t")
    assert missing.status_code == 404 and error_of(missing)["type"] == "NoSuchTableException"
    assert error_of(http.get(f"/namespaces/{ns}"))["type"] == "NoSuchNamespaceException"
    malformed = http.post("/namespaces", content=b"{not json")
    assert malformed.status_code == 400 and error_of(malformed)["type"] == "BadRequestException"
    assert http.head(f"/namespaces/{ns}").status_code == 404


def test_etag_and_if_none_match(http, ns):
    http.post("/namespaces", json={"namespace": [ns]})
    assert create(http, ns).status_code == 200
    first = http.get(f"/namespaces/{ns}/tables/t", headers={"X-Iceberg-Access-Delegation": "vended-credentials"})
    etag = first.headers["etag"]
    assert http.get(f"/namespaces/{ns}/tables/t", headers={"If-None-Match": etag}).status_code == 304
    commit = {"requirements": [], "updates": [{"action": "set-properties", "updates": {"owner": "sales"}}]}
    assert http.post(f"/namespaces/{ns}/tables/t", json=commit).status_code == 200
    changed = http.get(f"/namespaces/{ns}/tables/t", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["metadata"]["properties"]["owner"] == "sales"


def test_snapshots_refs_returns_only_referenced_snapshots(rest, http, ns):
    rest.create_namespace(ns)
    table = rest.create_table(f"{ns}.t", schema=pa.schema([("id", pa.int64())]))
    table.append(pa.table({"id": [1]}))
    table.append(pa.table({"id": [2]}))
    everything = http.get(f"/namespaces/{ns}/tables/t", params={"snapshots": "all"}).json()["metadata"]
    refs = http.get(f"/namespaces/{ns}/tables/t", params={"snapshots": "refs"}).json()["metadata"]
    assert len(everything["snapshots"]) == 2
    assert [s["snapshot-id"] for s in refs["snapshots"]] == [everything["current-snapshot-id"]]


def test_idempotency_key_replays_instead_of_repeating(http, ns):
    key = str(uuid.uuid4())
    first = http.post("/namespaces", json={"namespace": [ns]}, headers={"Idempotency-Key": key})
    again = http.post("/namespaces", json={"namespace": [ns]}, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 200  # not a 409: the retry is recognised
    assert again.headers.get("idempotent-replayed") == "true"
    other = http.post(f"/namespaces/{ns}/tables", json={"name": "t", "schema": SCHEMA}, headers={"Idempotency-Key": key})
    assert other.status_code == 422

    create(http, ns)
    commit = {"requirements": [], "updates": [{"action": "set-properties", "updates": {"n": "1"}}]}
    commit_key = str(uuid.uuid4())
    a = http.post(f"/namespaces/{ns}/tables/t", json=commit, headers={"Idempotency-Key": commit_key}).json()
    b = http.post(f"/namespaces/{ns}/tables/t", json=commit, headers={"Idempotency-Key": commit_key}).json()
    assert a["metadata-location"] == b["metadata-location"]
    assert len(http.get(f"/namespaces/{ns}/tables/t").json()["metadata"]["metadata-log"]) == 1  # one commit, not two


def test_unknown_update_is_400_and_changes_nothing(http, ns):
    http.post("/namespaces", json={"namespace": [ns]})
    create(http, ns)
    before = http.get(f"/namespaces/{ns}/tables/t").json()["metadata-location"]
    bad = http.post(f"/namespaces/{ns}/tables/t", json={"updates": [{"action": "teleport-table"}]})
    assert bad.status_code == 400 and "teleport-table" in error_of(bad)["message"]
    assert http.get(f"/namespaces/{ns}/tables/t").json()["metadata-location"] == before


def test_locations_outside_the_warehouse_are_refused(http, ns, tmp_path):
    http.post("/namespaces", json={"namespace": [ns]})
    root = warehouse_root(http)
    files_before = warehouse_files(root)
    for location in (f"file://{tmp_path}/elsewhere", f"file://{root}/../escape", "s3://other-bucket/t"):
        refused = create(http, ns, location=location)
        assert refused.status_code == 400, location
        assert "outside the warehouse" in error_of(refused)["message"]
    refused = create(http, ns, properties={"write.data.path": f"{tmp_path}/data"})
    assert refused.status_code == 400
    assert http.get(f"/namespaces/{ns}/tables").json()["identifiers"] == []
    assert not os.path.exists(f"{tmp_path}/elsewhere")
    assert warehouse_files(root) == files_before

    create(http, ns)
    move = http.post(f"/namespaces/{ns}/tables/t", json={"updates": [{"action": "set-location", "location": str(tmp_path)}]})
    assert move.status_code == 400
    register = http.post(f"/namespaces/{ns}/register", json={"name": "r", "metadata-location": f"{tmp_path}/x.metadata.json"})
    assert register.status_code == 400


def test_create_makes_data_and_metadata_dirs_and_purge_removes_them(http, ns):
    http.post("/namespaces", json={"namespace": [ns]})
    staged = create(http, ns, name="staged", **{"stage-create": True}).json()
    location = staged["metadata"]["location"].removeprefix("file://")
    assert staged["metadata-location"] is None
    assert os.path.isdir(f"{location}/metadata") and os.path.isdir(f"{location}/data")
    assert http.head(f"/namespaces/{ns}/tables/staged").status_code == 404  # staged tables are not visible

    kept = create(http, ns, name="kept").json()["metadata"]["location"].removeprefix("file://")
    purged = create(http, ns, name="purged").json()["metadata"]["location"].removeprefix("file://")
    assert http.delete(f"/namespaces/{ns}/tables/kept").status_code == 204
    assert http.delete(f"/namespaces/{ns}/tables/purged", params={"purgeRequested": "true"}).status_code == 204
    assert os.listdir(f"{kept}/metadata") and not os.path.exists(purged)


def test_pagination(http, ns):
    http.post("/namespaces", json={"namespace": [ns]})
    for i in range(5):
        http.post("/namespaces", json={"namespace": [ns, f"c{i}"]})
        create(http, ns, name=f"t{i}")
    seen, token = [], ""
    while token is not None:
        page = http.get("/namespaces", params={"parent": ns, "pageToken": token, "pageSize": 2}).json()
        assert len(page["namespaces"]) <= 2
        seen += page["namespaces"]
        token = page.get("next-page-token")
    assert seen == [[ns, f"c{i}"] for i in range(5)]
    tables = http.get(f"/namespaces/{ns}/tables", params={"pageToken": "", "pageSize": 3}).json()
    assert len(tables["identifiers"]) == 3 and tables["next-page-token"]
    rest_of = http.get(f"/namespaces/{ns}/tables", params={"pageToken": tables["next-page-token"], "pageSize": 3}).json()
    assert [t["name"] for t in rest_of["identifiers"]] == ["t3", "t4"] and "next-page-token" not in rest_of
    assert len(http.get(f"/namespaces/{ns}/tables").json()["identifiers"]) == 5  # no token: everything


@pytest.mark.parametrize("name", ["robert'); DROP TABLE icemesh_tables;--", "semi;colon", "dots.in.name", "ünïcødé 表"])
def test_hostile_identifiers_are_refused(http, rest, name):
    ns = f"h_{uuid.uuid4().hex[:8]}"
    assert http.post("/namespaces", json={"namespace": [ns]}).status_code == 200
    nested = http.post("/namespaces", json={"namespace": [ns, name]})
    assert nested.status_code == 400 and "use only letters, digits" in error_of(nested)["message"]
    created = http.post(f"/namespaces/{ns}/tables", json={"name": name, "schema": SCHEMA})
    assert created.status_code == 400 and error_of(created)["type"] == "BadRequestException"
    assert http.get(f"/namespaces/{ns}/tables").json()["identifiers"] == []
    assert http.get("/namespaces", params={"parent": ns}).json()["namespaces"] == []


@pytest.mark.parametrize("bad", [["a/b"], [".."], [""], ["x\x00y"], []])
def test_invalid_namespace_names_are_400(http, bad):
    response = http.post("/namespaces", json={"namespace": bad})
    assert response.status_code == 400 and error_of(response)["type"] == "BadRequestException"


def test_oversized_body_is_413(http):
    response = http.post("/namespaces", content=b" " * (33 * 1024 * 1024))
    assert response.status_code == 413 and error_of(response)


def test_transaction_is_all_or_nothing(http, ns):
    http.post("/namespaces", json={"namespace": [ns]})
    create(http, ns, name="a")
    create(http, ns, name="b")
    before = {t: http.get(f"/namespaces/{ns}/tables/{t}").json()["metadata-location"] for t in ("a", "b")}
    changes = {"table-changes": [
        {"identifier": {"namespace": [ns], "name": "a"}, "requirements": [],
         "updates": [{"action": "set-properties", "updates": {"x": "1"}}]},
        {"identifier": {"namespace": [ns], "name": "b"},
         "requirements": [{"type": "assert-current-schema-id", "current-schema-id": 7}],
         "updates": [{"action": "set-properties", "updates": {"x": "1"}}]},
    ]}
    failed = http.post("/transactions/commit", json=changes)
    assert failed.status_code == 409 and error_of(failed)["type"] == "CommitFailedException"
    assert {t: http.get(f"/namespaces/{ns}/tables/{t}").json()["metadata-location"] for t in ("a", "b")} == before

    changes["table-changes"][1]["requirements"] = [{"type": "assert-current-schema-id", "current-schema-id": 0}]
    assert http.post("/transactions/commit", json=changes).status_code == 204
    for t in ("a", "b"):
        assert http.get(f"/namespaces/{ns}/tables/{t}").json()["metadata"]["properties"]["x"] == "1"


def test_drop_namespace_with_tables_is_409(http, ns):
    http.post("/namespaces", json={"namespace": [ns]})
    create(http, ns)
    refused = http.delete(f"/namespaces/{ns}")
    assert refused.status_code == 409 and error_of(refused)["type"] == "NamespaceNotEmptyException"
    assert http.post(f"/namespaces/{ns}/tables/t/metrics", json={"report-type": "scan-report"}).status_code == 204


def test_concurrent_writers_never_lose_a_commit(catalog_server, ns):
    writers, appends = 6, 5
    admin = catalog_server.client().rest_catalog()
    admin.create_namespace(ns)
    admin.create_table(f"{ns}.t", schema=pa.schema([("writer", pa.int64()), ("n", pa.int64())]))
    acknowledged, errors = [], []

    def write(w: int) -> None:
        catalog = catalog_server.client().rest_catalog(f"w{w}")
        for n in range(appends):
            for _attempt in range(50):
                try:
                    catalog.load_table(f"{ns}.t").append(pa.table({"writer": [w], "n": [n]}))
                    acknowledged.append((w, n))
                    break
                except CommitFailedException:
                    continue
            else:
                errors.append((w, n))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    table = admin.load_table(f"{ns}.t")
    assert not errors
    assert len(table.metadata.snapshots) == writers * appends == len(acknowledged)
    got = sorted(tuple(r.values()) for r in table.scan().to_arrow().to_pylist())
    assert got == sorted(acknowledged)
