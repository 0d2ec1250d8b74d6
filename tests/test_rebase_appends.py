"""A table that sets `icemesh.commit.rebase-appends=true`: an append that lost a race to another commit lands on
the branch's new head in the same request (icemesh/tables/rebase.py), with every row kept, sequence numbers and
totals right; anything that is not exactly a plain append keeps its 409, and so does a caller that may not
write. pyiceberg's own retries are turned off (`commit.retry.num-retries=0`), so a 409 would be an error here."""

from __future__ import annotations

import os
import uuid

import httpx
import pyarrow as pa
import pytest
import requests
from pyiceberg.exceptions import CommitFailedException

SCHEMA = pa.schema([("n", pa.int64())])
NO_RETRIES = {"commit.retry.num-retries": "0"}
REBASE = {"icemesh.commit.rebase-appends": "true", **NO_RETRIES}
M = "/management/v1"


def batch(*values: int) -> pa.Table:
    return pa.table({"n": list(values)}, schema=SCHEMA)


@pytest.fixture
def two_writers(sqlite_server, ns):
    """The same table loaded by two writers; the table's properties are each test's."""

    def make(properties: dict[str, str]):
        first = sqlite_server.client().rest_catalog()
        first.create_namespace(ns)
        table = first.create_table(f"{ns}.events", schema=SCHEMA, properties=properties)
        table.append(batch(0))
        return table, sqlite_server.client().rest_catalog().load_table(f"{ns}.events")
    return make


def rows(server, ident) -> list[int]:
    return sorted(r["n"] for r in server.client().rest_catalog().load_table(ident).scan().to_arrow().to_pylist())


def metadata_files(table) -> set[str]:
    folder = table.metadata.location.removeprefix("file://") + "/metadata"
    return set(os.listdir(folder))


def test_a_stale_append_lands_on_the_new_head(two_writers, sqlite_server):
    a, b = two_writers(REBASE)
    a.append(batch(1, 2))
    head = a.current_snapshot()
    b.append(batch(3))  # b still holds the snapshot before a's: its commit asserts a stale head
    landed = b.current_snapshot()
    assert landed.parent_snapshot_id == head.snapshot_id
    assert landed.sequence_number == head.sequence_number + 1 == b.metadata.last_sequence_number
    assert landed.summary["total-records"] == "4" and landed.summary["added-records"] == "1"
    assert landed.summary["total-data-files"] == "3"
    assert "-rebased-" in landed.manifest_list
    assert rows(sqlite_server, b.name()) == [0, 1, 2, 3]
    fresh = sqlite_server.client().rest_catalog().load_table(b.name())
    entries = fresh.inspect.entries().to_pylist()
    mine = [e for e in entries if e["snapshot_id"] == landed.snapshot_id]
    assert len(mine) == 1 and mine[0]["sequence_number"] == landed.sequence_number  # inherited from the new list
    ns, name = b.name()
    duck = sqlite_server.client().duckdb()
    assert duck.execute(f'select count(*), sum(n) from mesh."{ns}"."{name}"').fetchone() == (4, 6)
    a.refresh()
    a.append(batch(4))  # and the history goes on from the rebased snapshot
    assert rows(sqlite_server, b.name()) == [0, 1, 2, 3, 4]


def test_many_stale_appends_in_a_row_all_land(two_writers, sqlite_server):
    a, b = two_writers(REBASE)
    for i in range(5):
        a.append(batch(10 + i))
        b.append(batch(20 + i))  # stale every time: b's last answer is one commit behind a's
        a.refresh()
    assert rows(sqlite_server, b.name()) == sorted([0, *range(10, 15), *range(20, 25)])
    sequence = [s.sequence_number for s in sqlite_server.client().rest_catalog().load_table(b.name()).snapshots()]
    assert sequence == sorted(sequence) and len(set(sequence)) == len(sequence) == 11


def test_without_the_property_a_stale_append_is_a_409(two_writers, sqlite_server):
    a, b = two_writers(NO_RETRIES)
    a.append(batch(1))
    before = metadata_files(a)
    with pytest.raises(CommitFailedException):
        b.append(batch(2))
    assert rows(sqlite_server, b.name()) == [0, 1]
    assert not [f for f in metadata_files(a) - before if "-rebased-" in f]


@pytest.mark.parametrize("stale", ["overwrite", "delete", "append with a property"])
def test_what_is_not_a_plain_append_keeps_its_409(two_writers, sqlite_server, stale):
    a, b = two_writers(REBASE)
    a.append(batch(1))
    before = metadata_files(a)
    with pytest.raises(CommitFailedException):
        if stale == "overwrite":
            b.overwrite(batch(9))
        elif stale == "delete":
            b.delete("n = 0")
        else:
            with b.transaction() as tx:
                tx.set_properties({"owner": "b"})
                tx.append(batch(9))
    assert rows(sqlite_server, b.name()) == [0, 1]
    assert not [f for f in metadata_files(a) - before if "-rebased-" in f]


def test_a_replayed_append_is_not_applied_twice(two_writers, sqlite_server):
    """The same request sent again (a client retrying after a lost answer): its snapshot is the table's already,
    so it is a 409, never a second copy of the rows."""
    a, b = two_writers(REBASE)
    sent: list[requests.PreparedRequest] = []
    send = requests.Session.send

    def capture(self, request, **kwargs):
        if request.method == "POST" and request.url.endswith("/tables/events"):
            sent.append(request.copy())
        return send(self, request, **kwargs)

    requests.Session.send = capture
    try:
        a.append(batch(1))
        b.append(batch(2))  # rebased
    finally:
        requests.Session.send = send
    replay = requests.Session().send(sent[-1])
    assert replay.status_code == 409, replay.text
    assert rows(sqlite_server, b.name()) == [0, 1, 2]


def test_a_caller_that_may_not_write_gets_its_409_and_no_file_is_written(two_writers, sqlite_server, ns):
    """A reader's stale append: refused as before (409, its requirement failed), and the catalog reads and
    writes nothing of the table's for it."""
    a, _b = two_writers(REBASE)
    admin = sqlite_server.client()
    who = f"svc_reader_{uuid.uuid4().hex[:8]}"
    secret = admin.request("POST", f"{M}/principals", json={"name": who})["client_secret"]
    admin.request("POST", f"{M}/grants", json={"permissions": "SELECT,DESCRIBE", "principal": who,
                                               "table": f"{ns}.events"})
    reader = sqlite_server.client(who, secret).rest_catalog().load_table(f"{ns}.events")
    a.append(batch(1))
    before = metadata_files(a)
    with pytest.raises(CommitFailedException):
        reader.append(batch(7))
    assert rows(sqlite_server, a.name()) == [0, 1]
    assert not [f for f in metadata_files(a) - before if "-rebased-" in f]


def test_the_rebased_commit_is_checked_like_any_other(two_writers, sqlite_server, tmp_path):
    """A stale append whose new manifest lies outside the table is refused for that (400), not moved."""
    from pyiceberg.io.pyarrow import PyArrowFileIO
    from pyiceberg.manifest import ManifestContent, ManifestFile, write_manifest_list

    a, b = two_writers(REBASE)
    a.append(batch(1))
    parent = b.current_snapshot()
    io = PyArrowFileIO()
    outside_manifest = str(tmp_path / "stray-m0.avro")
    own = parent.manifests(io)[0]
    with open(own.manifest_path.removeprefix("file://"), "rb") as f, open(outside_manifest, "wb") as out:
        out.write(f.read())
    stray = ManifestFile.from_args(manifest_path="file://" + outside_manifest, manifest_length=own.manifest_length,
                                   partition_spec_id=0, content=ManifestContent.DATA, sequence_number=-1,
                                   min_sequence_number=-1, added_snapshot_id=777, added_files_count=1,
                                   existing_files_count=0, deleted_files_count=0, added_rows_count=1,
                                   existing_rows_count=0, deleted_rows_count=0)
    listed = f"{b.metadata.location}/metadata/snap-777-crafted.avro"
    with write_manifest_list(format_version=2, output_file=io.new_output(listed), snapshot_id=777,
                             parent_snapshot_id=parent.snapshot_id, sequence_number=parent.sequence_number + 1,
                             avro_compression="deflate") as writer:
        writer.add_manifests([*parent.manifests(io), stray])
    snapshot = {"snapshot-id": 777, "parent-snapshot-id": parent.snapshot_id, "timestamp-ms": parent.timestamp_ms + 1,
                "manifest-list": listed, "summary": {"operation": "append"},
                "sequence-number": parent.sequence_number + 1, "schema-id": 0}
    body = {"requirements": [{"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": parent.snapshot_id}],
            "updates": [{"action": "add-snapshot", "snapshot": snapshot},
                        {"action": "set-snapshot-ref", "ref-name": "main", "type": "branch", "snapshot-id": 777}]}
    admin = sqlite_server.client()
    ns, name = b.name()
    response = httpx.post(f"{sqlite_server.uri}/v1/{admin.prefix()}/namespaces/{ns}/tables/{name}", json=body,
                          headers={"Authorization": f"Bearer {admin.token()}"})
    assert response.status_code == 400 and "lies outside the table's location" in response.text, response.text
    assert rows(sqlite_server, b.name()) == [0, 1]


def test_an_append_from_a_snapshot_the_branch_left_keeps_its_409(two_writers, sqlite_server):
    """The branch was rolled back past the snapshot the writer started from: that snapshot is no ancestor of the
    head, so the append is not moved onto a history it never saw."""
    a, b = two_writers(REBASE)
    first = a.current_snapshot().snapshot_id
    a.append(batch(1))
    b.refresh()  # b starts from the snapshot with row 1
    a.manage_snapshots().set_current_snapshot(first).commit()
    with pytest.raises(CommitFailedException):
        b.append(batch(2))
    assert rows(sqlite_server, b.name()) == [0]


def test_a_stale_append_in_a_multi_table_transaction_keeps_its_409(two_writers, sqlite_server):
    """A transaction's requirements say how its tables stand together: none of its changes is moved. The same
    change sent alone is (which shows it is a plain append)."""
    import json

    a, b = two_writers(REBASE)
    a.append(batch(1))
    captured: list[dict] = []
    send = requests.Session.send

    class Captured(Exception):
        pass

    def capture(self, request, **kwargs):
        if request.method == "POST" and request.url.endswith("/tables/events"):
            captured.append(json.loads(request.body))
            raise Captured()
        return send(self, request, **kwargs)

    requests.Session.send = capture
    try:
        with pytest.raises(Exception):
            b.append(batch(2))  # b's stale commit, built and written, never sent
    finally:
        requests.Session.send = send
    change = captured[0]
    admin = sqlite_server.client()
    ns, name = b.name()
    headers = {"Authorization": f"Bearer {admin.token()}"}
    together = {"table-changes": [{**change, "identifier": {"namespace": [ns], "name": name}}]}
    response = httpx.post(f"{sqlite_server.uri}/v1/{admin.prefix()}/transactions/commit", json=together, headers=headers)
    assert response.status_code == 409, response.text
    assert rows(sqlite_server, b.name()) == [0, 1]
    alone = httpx.post(f"{sqlite_server.uri}/v1/{admin.prefix()}/namespaces/{ns}/tables/{name}", json=change,
                       headers=headers)
    assert alone.status_code == 200, alone.text
    assert rows(sqlite_server, b.name()) == [0, 1, 2]
