"""A hostile principal against `icemesh serve`, over plain HTTP and pyiceberg, on SQLite and PostgreSQL.

Each test is one attack from the security review (and its obvious variants): it must fail with a 4xx in
the spec's error model, change nothing (the victim's pointer, files and governance stay as they were) and
leave a row in the audit log.

The world (once per backend): the victim `svc_victim_*` owns namespace v_* with table `customers`
(id, email; email tagged confidential by governance, the namespace public); the attacker `svc_attacker_*`
owns namespace a_*; the reader has SELECT on public; the appender INSERT+SELECT on customers.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field

import httpx
import pyarrow as pa
import pytest
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.types import StringType

from icemesh.client import CatalogClient
from icemesh.server.process import CatalogProcess

M = "/management/v1"
LIMITS = {"X-Icemesh-Column-Limits": "apply"}
CUSTOMERS = pa.schema([pa.field("id", pa.int64()), pa.field("email", pa.string())])
SCHEMA = {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}


@dataclass
class World:
    server: CatalogProcess
    admin: CatalogClient
    prefix: str
    sfx: str
    tag: str
    secrets: dict[str, str] = field(default_factory=dict)
    clients: dict[str, CatalogClient] = field(default_factory=dict)

    @property
    def v(self) -> str:
        return f"v_{self.sfx}"

    @property
    def a(self) -> str:
        return f"a_{self.sfx}"

    def name(self, who: str) -> str:
        return f"svc_{who}_{self.sfx}"

    def client(self, who: str) -> CatalogClient:
        if who not in self.clients:
            self.clients[who] = self.server.client(self.name(who), self.secrets[who])
        return self.clients[who]

    def http(self, who: str, **headers) -> httpx.Client:
        client = self.admin if who == "admin" else self.client(who)
        return httpx.Client(base_url=f"{self.server.uri}/v1/{self.prefix}", timeout=30,
                            headers={**client.headers(), **headers})

    def rest(self, who: str, **props):
        return self.client(who).rest_catalog(**props)

    def pointer(self, ns: str, table: str) -> str:
        return self.admin.request("GET", f"/v1/{self.prefix}/namespaces/{ns}/tables/{table}")["metadata-location"]

    def metadata(self, ns: str, table: str) -> dict:
        return self.admin.request("GET", f"/v1/{self.prefix}/namespaces/{ns}/tables/{table}")["metadata"]

    def audit(self, who: str) -> list[dict]:
        return self.admin.request("GET", f"{M}/audit", params={"principal": self.name(who), "denied": "true",
                                                               "limit": 1000})

    def audited(self, who: str, text: str) -> None:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if any(text in row["reason"] for row in self.audit(who)):
                return
            time.sleep(0.2)
        raise AssertionError(f"no audit row of {self.name(who)} saying {text!r}")


def local_path(location: str) -> str:
    return location.removeprefix("file://")


@pytest.fixture(scope="module")
def world(catalog_server) -> World:
    sfx = uuid.uuid4().hex[:8]
    admin = catalog_server.client()
    tag = f"sens_{sfx}"
    w = World(catalog_server, admin, admin.prefix(), sfx, tag)
    admin.request("POST", f"{M}/tags", json={"key": tag, "values": ["public", "internal", "confidential"]})
    for who in ("victim", "attacker", "reader", "peeker", "appender"):
        w.secrets[who] = admin.request("POST", f"{M}/principals", json={"name": w.name(who)})["client_secret"]
    for who in ("victim", "attacker"):
        admin.request("POST", f"{M}/grants", json={"permissions": "CREATE_TABLE", "principal": w.name(who), "catalog": True})
    victim = w.rest("victim")
    victim.create_namespace(w.v)
    table = victim.create_table(f"{w.v}.customers", schema=CUSTOMERS)
    table.append(pa.Table.from_pylist([{"id": 1, "email": "ann@example.com"}, {"id": 2, "email": "bob@example.com"}],
                                      schema=CUSTOMERS))
    table.append(pa.Table.from_pylist([{"id": 3, "email": "cy@example.com"}], schema=CUSTOMERS))
    w.rest("attacker").create_namespace(w.a)
    for who in ("victim", "attacker"):  # least privilege: each owns its namespace, nothing catalog-wide
        admin.request("POST", f"{M}/grants/revoke", json={"permissions": "CREATE_TABLE", "principal": w.name(who),
                                                          "catalog": True})
    admin.request("POST", f"{M}/tag-assignments", json={"key": tag, "value": "public", "namespace": w.v})
    admin.request("POST", f"{M}/tag-assignments", json={"key": tag, "value": "confidential",
                                                        "table": f"{w.v}.customers", "column": "email"})
    admin.request("POST", f"{M}/grants", json={"permissions": "SELECT,DESCRIBE", "principal": w.name("reader"),
                                               "tags": [f"{tag}=public"]})
    admin.request("POST", f"{M}/grants", json={"permissions": "DESCRIBE", "principal": w.name("peeker"),
                                               "table": f"{w.v}.customers"})
    admin.request("POST", f"{M}/grants", json={"permissions": "INSERT,SELECT", "principal": w.name("appender"),
                                               "table": f"{w.v}.customers"})
    return w


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == status and body["type"] and body["message"]
    return body["message"]


def new_own_table(w: World, name: str) -> str:
    """A fresh table of the attacker's, in its own namespace; returns its location."""
    created = w.http("attacker").post(f"/namespaces/{w.a}/tables", json={"name": name, "schema": SCHEMA})
    assert created.status_code == 200, created.text
    return created.json()["metadata"]["location"]


def snapshot_commit(manifest_list: str, snapshot_id: int = 4242, parent: int | None = None, operation: str = "append",
                    sequence: int = 1) -> list[dict]:
    snapshot = {"snapshot-id": snapshot_id, "timestamp-ms": int(time.time() * 1000), "manifest-list": manifest_list,
                "summary": {"operation": operation}, "sequence-number": sequence, "schema-id": 0}
    if parent is not None:
        snapshot["parent-snapshot-id"] = parent
    return [{"action": "add-snapshot", "snapshot": snapshot},
            {"action": "set-snapshot-ref", "ref-name": "main", "type": "branch", "snapshot-id": snapshot_id}]


# -- 1. every file belongs to one table -------------------------------------------------------------------

def test_registering_another_tables_metadata_is_refused(world):
    w = world
    victim_pointer = w.pointer(w.v, "customers")
    previous = w.metadata(w.v, "customers")["metadata-log"][-1]["metadata-file"]
    http = w.http("attacker")
    for location in (victim_pointer, previous):
        message = error(http.post(f"/namespaces/{w.a}/register", json={"name": "stolen", "metadata-location": location}), 400)
        assert "overlaps another table's location" in message
    # A copy of the victim's metadata placed in the attacker's own folder still names the victim's location.
    own = new_own_table(w, "decoy")
    copy = f"{own}/metadata/99999-copy.metadata.json"
    shutil.copyfile(local_path(victim_pointer), local_path(copy))
    message = error(http.post(f"/namespaces/{w.a}/register", json={"name": "stolen", "metadata-location": copy}), 400)
    assert "lies outside the table's location" in message or "overlaps" in message
    with pytest.raises(NoSuchTableError):
        w.rest("attacker").load_table(f"{w.a}.stolen")
    assert w.pointer(w.v, "customers") == victim_pointer
    w.audited("attacker", "overlaps another table's location")


def test_locations_never_overlap_another_tables(world):
    w = world
    victim_location = w.metadata(w.v, "customers")["location"]
    parent = victim_location.rsplit("/", 1)[0]  # the victim namespace's folder, holding all its tables
    http = w.http("attacker")
    for location in (parent, victim_location, f"{victim_location}/data", f"{victim_location}/data/x"):
        for stage in (False, True):
            body = {"name": "evil", "schema": SCHEMA, "location": location, "stage-create": stage}
            assert "overlaps another table's location" in error(http.post(f"/namespaces/{w.a}/tables", json=body), 400)
        create = {"requirements": [{"type": "assert-create"}],
                  "updates": [{"action": "assign-uuid", "uuid": str(uuid.uuid4())},
                              {"action": "add-schema", "schema": SCHEMA}, {"action": "set-current-schema", "schema-id": -1},
                              {"action": "set-location", "location": location}]}
        assert "overlaps" in error(http.post(f"/namespaces/{w.a}/tables/evil", json=create), 400)
    # A table cannot move either (its files live where it was created), nor steer writes elsewhere.
    own = new_own_table(w, "mover")
    assert "keeps the location" in error(http.post(f"/namespaces/{w.a}/tables/mover", json={
        "updates": [{"action": "set-location", "location": f"{parent}/elsewhere"}]}), 400)
    for key in ("write.data.path", "write.metadata.path"):
        message = error(http.post(f"/namespaces/{w.a}/tables/mover", json={
            "updates": [{"action": "set-properties", "updates": {key: victim_location}}]}), 400)
        assert "lies outside the table's location" in message
    assert own and os.path.isdir(local_path(victim_location))
    assert w.rest("victim").load_table(f"{w.v}.customers").scan().to_arrow().num_rows == 3
    # The catalog keeps answering everyone, even with a table whose metadata file went missing.
    doomed = new_own_table(w, "doomed")
    shutil.rmtree(local_path(doomed))
    listed = w.admin.request("GET", f"{M}/products", params={"include_tables": "true"})
    assert any(p["name"] == f"{w.v}.customers" for p in listed)


def test_purge_deletes_only_the_tables_own_files(world):
    w = world
    own = new_own_table(w, "purged")
    victim_files = sorted(os.listdir(local_path(w.metadata(w.v, "customers")["location"]) + "/metadata"))
    assert w.http("attacker").delete(f"/namespaces/{w.a}/tables/purged", params={"purgeRequested": "true"}).status_code == 204
    assert not os.path.exists(local_path(own))
    assert sorted(os.listdir(local_path(w.metadata(w.v, "customers")["location"]) + "/metadata")) == victim_files


def test_a_dropped_tables_files_are_adopted_only_by_an_admin(world):
    w = world
    own = new_own_table(w, "kept")
    pointer = w.pointer(w.a, "kept")
    assert w.http("attacker").delete(f"/namespaces/{w.a}/tables/kept").status_code == 204  # no purge: files stay
    for body in ({"name": "again", "metadata-location": pointer},):
        assert "dropped table" in error(w.http("attacker").post(f"/namespaces/{w.a}/register", json=body), 400)
    again = w.http("attacker").post(f"/namespaces/{w.a}/tables", json={"name": "again", "schema": SCHEMA, "location": own})
    assert "dropped table" in error(again, 400)
    adopted = w.http("admin").post(f"/namespaces/{w.a}/register", json={"name": "adopted", "metadata-location": pointer})
    assert adopted.status_code == 200, adopted.text


def test_snapshots_may_not_name_another_tables_files(world, tmp_path):
    from pyiceberg.io.pyarrow import PyArrowFileIO
    from pyiceberg.manifest import write_manifest_list

    w = world
    victim = w.metadata(w.v, "customers")
    victim_list = next(s for s in victim["snapshots"] if s["snapshot-id"] == victim["current-snapshot-id"])["manifest-list"]
    http = w.http("attacker")
    own = new_own_table(w, "thief")
    before = w.pointer(w.a, "thief")
    # (a) the victim's manifest list itself; (b) a copy in the attacker's folder (it still lists the victim's
    # manifests); (c) a manifest copied in too, listed by a manifest list the attacker wrote (its data files
    # are still the victim's).
    copied_list = f"{own}/metadata/snap-copied.avro"
    shutil.copyfile(local_path(victim_list), local_path(copied_list))
    io = PyArrowFileIO()
    from pyiceberg.table.metadata import TableMetadataUtil
    model = TableMetadataUtil.parse_obj(victim)
    manifest = copy.deepcopy(model.current_snapshot().manifests(io)[0])  # pyiceberg caches the original
    copied_manifest = f"{own}/metadata/copied-m0.avro"
    shutil.copyfile(local_path(manifest.manifest_path), local_path(copied_manifest))
    manifest[0] = copied_manifest  # a Record: position 0 is manifest_path
    crafted_list = f"{own}/metadata/snap-crafted.avro"
    with write_manifest_list(format_version=2, output_file=io.new_output(crafted_list), snapshot_id=4242,
                             parent_snapshot_id=None, sequence_number=1, avro_compression="deflate") as writer:
        writer.add_manifests([manifest])
    for manifest_list, what in ((victim_list, "manifest list"), (copied_list, "manifest"), (crafted_list, "data file")):
        message = error(http.post(f"/namespaces/{w.a}/tables/thief", json={"updates": snapshot_commit(manifest_list)}), 400)
        assert f"The {what}" in message and "lies outside the table's location" in message, message
    # Through a symlink in its own folder: followed, and found to be the victim's.
    os.symlink(local_path(victim["location"]), local_path(f"{own}/metadata/link"))
    linked = f"{own}/metadata/link/" + victim_list.rsplit("/metadata/", 1)[1].lstrip("/")
    if not os.path.exists(local_path(linked)):
        linked = f"{own}/metadata/link/metadata/" + victim_list.rsplit("/", 1)[1]
    message = error(http.post(f"/namespaces/{w.a}/tables/thief", json={"updates": snapshot_commit(linked)}), 400)
    assert "lies outside the table's location" in message
    assert w.pointer(w.a, "thief") == before
    w.audited("attacker", "lies outside the table's location")


def test_a_manifest_cannot_hide_another_tables_file_behind_a_field_name(world):
    """Iceberg's readers find a data file's path by its field id (100), not its name: a manifest whose field
    named `file_path` holds a path of the attacker's own table while id 100 holds the victim's data file is read
    as an engine would read it, and refused."""
    from pyiceberg.io.pyarrow import PyArrowFileIO
    from pyiceberg.manifest import ManifestContent, ManifestFile, write_manifest_list

    from icemesh.compat import pyiceberg_core as fast
    from tests.avro_bytes import container, entry_schema, text, zigzag

    w = world
    victim = w.metadata(w.v, "customers")
    victim_list = next(s for s in victim["snapshots"] if s["snapshot-id"] == victim["current-snapshot-id"])["manifest-list"]
    with open(local_path(victim_list), "rb") as f:
        victim_manifest = fast.read_manifest_list(f.read())[0].path
    with open(local_path(victim_manifest), "rb") as f:
        victim_file = fast.read_manifest_entries(f.read())[0].path
    own = new_own_table(w, "id_decoy")
    before = w.pointer(w.a, "id_decoy")
    swapped = entry_schema([{"name": "content", "type": "int", "field-id": 134},
                            {"name": "file_path", "type": "string", "field-id": 999},
                            {"name": "decoy", "type": "string", "field-id": 100}])
    manifest = f"{own}/metadata/decoy-m0.avro"
    data = container(swapped, zigzag(1) + zigzag(0) + zigzag(0) + text(f"{own}/data/mine.parquet") + text(victim_file), 1,
                     "deflate")
    with open(local_path(manifest), "wb") as f:
        f.write(data)
    listed = f"{own}/metadata/snap-decoy.avro"
    entry = ManifestFile.from_args(manifest_path=manifest, manifest_length=len(data), partition_spec_id=0,
                                   content=ManifestContent.DATA, sequence_number=1, min_sequence_number=1,
                                   added_snapshot_id=4343, added_files_count=1, existing_files_count=0,
                                   deleted_files_count=0, added_rows_count=1, existing_rows_count=0, deleted_rows_count=0)
    with write_manifest_list(format_version=2, output_file=PyArrowFileIO().new_output(listed), snapshot_id=4343,
                             parent_snapshot_id=None, sequence_number=1, avro_compression="deflate") as writer:
        writer.add_manifests([entry])
    http = w.http("attacker")
    message = error(http.post(f"/namespaces/{w.a}/tables/id_decoy", json={"updates": snapshot_commit(listed, 4343)}), 400)
    assert "The data file" in message and "lies outside the table's location" in message and victim_file in message, message
    assert w.pointer(w.a, "id_decoy") == before
    w.audited("attacker", "lies outside the table's location")


def test_a_gzip_bomb_cannot_be_registered(world):
    import gzip

    w = world
    own = new_own_table(w, "bomb")
    bomb = f"{own}/metadata/00001-bomb.gz.metadata.json"
    with gzip.open(local_path(bomb), "wb") as f:
        chunk = b" " * (1024 * 1024)
        for _ in range(80):
            f.write(chunk)
    message = error(w.http("attacker").post(f"/namespaces/{w.a}/register",
                                            json={"name": "bomb2", "metadata-location": bomb}), 400)
    assert "larger than 64 MiB" in message
    assert w.http("admin").get("/namespaces").status_code == 200


# -- 2. every update needs the permission it really exercises ---------------------------------------------

def test_a_caller_that_may_not_read_gets_nothing_from_a_commit(world):
    w = world
    before = w.pointer(w.v, "customers")
    for who, headers in (("peeker", {}), ("reader", {})):  # DESCRIBE only; SELECT without the column-limits promise
        for body in ({"updates": []}, {"requirements": [{"type": "assert-table-uuid", "uuid": w.metadata(w.v, "customers")["table-uuid"]}],
                                       "updates": []}):
            response = w.http(who, **headers).post(f"/namespaces/{w.v}/tables/customers", json=body)
            message = error(response, 403)
            assert "metadata" not in response.json() and "email" not in response.text
            assert "lacks SELECT" in message or "column limits" in message
    # With the promise, the reader gets the table as loadTable gives it: without the hidden column.
    answer = w.http("reader", **LIMITS).post(f"/namespaces/{w.v}/tables/customers", json={"updates": []})
    assert answer.status_code == 200
    assert [f["name"] for f in answer.json()["metadata"]["schemas"][-1]["fields"]] == ["id"]
    assert w.pointer(w.v, "customers") == before


def test_a_commit_that_changes_nothing_writes_nothing(world):
    w = world
    before = w.pointer(w.v, "customers")
    folder = local_path(w.metadata(w.v, "customers")["location"]) + "/metadata"
    files = sorted(os.listdir(folder))
    http = w.http("victim")
    current = w.metadata(w.v, "customers")["properties"]
    for updates in ([{"action": "set-properties", "updates": {}}],
                    [{"action": "set-properties", "updates": dict(current)}]):
        response = http.post(f"/namespaces/{w.v}/tables/customers", json={"updates": updates})
        assert response.status_code == 200, response.text
        assert response.json()["metadata-location"] == before
    assert w.pointer(w.v, "customers") == before and sorted(os.listdir(folder)) == files


def test_insert_only_cannot_rewrite_history(world):
    w = world
    table = w.rest("appender").load_table(f"{w.v}.customers")
    table.append(pa.Table.from_pylist([{"id": 4, "email": "dee@example.com"}], schema=CUSTOMERS))  # allowed: INSERT
    meta = w.metadata(w.v, "customers")
    before = w.pointer(w.v, "customers")
    head = meta["current-snapshot-id"]
    snapshots = {s["snapshot-id"]: s for s in meta["snapshots"]}
    older = snapshots[head]["parent-snapshot-id"]
    seq = meta["last-sequence-number"] + 1
    http = w.http("appender")
    attempts = {
        # an "append" that keeps the data, moves main to it and removes the old snapshots
        "removes snapshots": snapshot_commit(snapshots[head]["manifest-list"], 777, head, "append", seq) + [
            {"action": "remove-snapshots", "snapshot-ids": [s for s in snapshots]}],
        # an "append" whose manifest list is an older snapshot's: the last append's files are dropped
        "removes rows": snapshot_commit(snapshots[older]["manifest-list"], 778, head, "append", seq),
        # main moved back, or removed
        "moves a branch backwards": [{"action": "set-snapshot-ref", "ref-name": "main", "type": "branch", "snapshot-id": older}],
        "removes a branch": [{"action": "remove-snapshot-ref", "ref-name": "main"}],
    }
    attempts = list(attempts.items()) + [  # main retyped as a tag ends the branch just the same
        ("removes a branch", [{"action": "set-snapshot-ref", "ref-name": "main", "type": "tag", "snapshot-id": head}])]
    for effect, updates in attempts:
        message = error(http.post(f"/namespaces/{w.v}/tables/customers", json={"updates": updates}), 403)
        assert re.search(r"lacks (ALTER and )?DELETE", message) and effect in message, (effect, message)
    for updates, effect in (([{"action": "set-properties", "updates": {"x": "1"}}], "changes properties"),
                            ([{"action": "assign-uuid", "uuid": str(uuid.uuid4())}], "changes the table uuid"),
                            ([{"action": "set-snapshot-ref", "ref-name": "audit", "type": "tag", "snapshot-id": head}],
                             "creates a branch or tag"),
                            ([{"action": "add-sort-order", "sort-order": {"order-id": 1, "fields": [
                                {"source-id": 1, "transform": "identity", "direction": "asc", "null-order": "nulls-first"}]}},
                              {"action": "set-default-sort-order", "sort-order-id": -1}], "changes the sort order")):
        message = error(http.post(f"/namespaces/{w.v}/tables/customers", json={"updates": updates}), 403)
        assert "lacks ALTER" in message and effect in message, (effect, message)
    assert w.pointer(w.v, "customers") == before
    assert w.rest("victim").load_table(f"{w.v}.customers").scan().to_arrow().num_rows == 4
    w.audited("appender", "lacks DELETE")


def test_an_idempotency_key_is_bound_to_its_request(world):
    w = world
    http = w.http("attacker")
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = http.post(f"/namespaces/{w.a}/tables", json={"name": "idem1", "schema": SCHEMA}, headers=key)
    assert first.status_code == 200
    replay = http.post(f"/namespaces/{w.a}/tables", json={"name": "idem1", "schema": SCHEMA}, headers=key)
    assert replay.status_code == 200 and replay.headers.get("Idempotent-Replayed") == "true"
    other = http.post(f"/namespaces/{w.a}/tables", json={"name": "idem2", "schema": SCHEMA}, headers=key)
    assert other.status_code == 422
    assert w.http("attacker").get(f"/namespaces/{w.a}/tables/idem2").status_code == 404


# -- 3. tags bind to what they protect ----------------------------------------------------------------------

def test_renaming_a_tagged_column_keeps_it_hidden(world):
    w = world
    victim = w.rest("victim")
    victim.create_table(f"{w.v}.people", schema=CUSTOMERS).append(
        pa.Table.from_pylist([{"id": 1, "email": "x@example.com"}], schema=CUSTOMERS))
    w.admin.request("POST", f"{M}/tag-assignments", json={"key": w.tag, "value": "confidential",
                                                          "table": f"{w.v}.people", "column": "email"})
    reader = w.rest("reader", **{f"header.{k}": v for k, v in LIMITS.items()})
    assert [f.name for f in reader.load_table(f"{w.v}.people").schema().fields] == ["id"]
    with victim.load_table(f"{w.v}.people").update_schema() as update:
        update.rename_column("email", "contact")
    assert [f.name for f in reader.load_table(f"{w.v}.people").schema().fields] == ["id"]
    shown = w.admin.request("GET", f"{M}/effective-tags", params={"resource": f"{w.v}.people"})
    assert shown["columns"]["contact"][w.tag]["value"] == "confidential"
    check = w.client("reader").request("GET", f"{M}/access",
                                       params={"principal": w.name("reader"), "resource": f"{w.v}.people"})
    assert check["hidden_columns"] == ["contact"]
    # Dropped, its tags go with it; a new column of the old name starts with the table's own tags.
    with victim.load_table(f"{w.v}.people").update_schema() as update:
        update.delete_column("contact")
    with victim.load_table(f"{w.v}.people").update_schema() as update:
        update.add_column("email", StringType())
    shown = w.admin.request("GET", f"{M}/effective-tags", params={"resource": f"{w.v}.people"})
    assert shown["columns"]["email"][w.tag]["value"] == "public" and "contact" not in shown["columns"]
    assert [f.name for f in reader.load_table(f"{w.v}.people").schema().fields] == ["id", "email"]


def test_grants_and_tags_end_with_their_resource(world):
    w = world
    victim = w.rest("victim")
    victim.create_table(f"{w.v}.temp", schema=CUSTOMERS)
    w.admin.request("POST", f"{M}/grants", json={"permissions": "SELECT", "principal": w.name("peeker"),
                                                 "table": f"{w.v}.temp"})
    w.admin.request("POST", f"{M}/tag-assignments", json={"key": w.tag, "value": "internal", "table": f"{w.v}.temp"})
    victim.drop_table(f"{w.v}.temp")
    victim.create_table(f"{w.v}.temp", schema=CUSTOMERS)
    grants = w.admin.request("GET", f"{M}/grants", params={"principal": w.name("peeker")})
    assert not any(g.get("table") == f"{w.v}.temp" for g in grants)
    with pytest.raises(NoSuchTableError):
        w.rest("peeker").load_table(f"{w.v}.temp")
    shown = w.admin.request("GET", f"{M}/effective-tags", params={"resource": f"{w.v}.temp"})
    assert shown["tags"][w.tag]["value"] == "public"  # the namespace's again, not the dropped table's
    # A deleted principal's grants and ownership end with it: a new principal of the same name inherits nothing.
    ghost = f"svc_ghost_{w.sfx}"
    secret = w.admin.request("POST", f"{M}/principals", json={"name": ghost})["client_secret"]
    w.admin.request("POST", f"{M}/grants", json={"permissions": "CREATE_TABLE", "principal": ghost, "catalog": True})
    w.server.client(ghost, secret).rest_catalog().create_namespace(f"g_{w.sfx}")
    w.admin.request("DELETE", f"{M}/principals/{ghost}")
    secret = w.admin.request("POST", f"{M}/principals", json={"name": ghost})["client_secret"]
    again = w.server.client(ghost, secret)
    assert again.request("GET", f"/v1/{w.prefix}/namespaces")["namespaces"] == []
    with pytest.raises(Exception, match="you may see"):
        again.request("GET", f"/v1/{w.prefix}/namespaces/g_{w.sfx}")


# -- 4. nothing leaks around the front door ------------------------------------------------------------------

def test_nothing_about_an_invisible_table_leaks(world):
    w = world
    outsider = w.client("attacker")
    missing, hidden = (w.http("attacker").get(f"/namespaces/{w.v}/tables/{t}") for t in ("nope", "customers"))
    assert missing.status_code == hidden.status_code == 404
    assert error(hidden, 404) == f"no table {w.v}.customers you may see" and w.tag not in hidden.text
    for resource in (f"{w.v}.customers", f"{w.v}.nope", w.v):
        for path, params in ((f"{M}/access", {"principal": w.name("attacker"), "resource": resource}),
                             (f"{M}/effective-tags", {"resource": resource})):
            response = httpx.get(f"{w.server.uri}{path}", params=params, headers=outsider.headers(), timeout=30)
            assert response.status_code == 404, (path, resource, response.text)
            assert w.tag not in response.text and "email" not in response.text
    # A caller that may see the table but not read every column is not told the hidden columns' tags.
    shown = w.client("reader").request("GET", f"{M}/effective-tags", params={"resource": f"{w.v}.customers"})
    assert list(shown["columns"]) == ["id"]


def test_the_catalog_files_are_private(tmp_path):
    with CatalogProcess(db=f"sqlite:///{tmp_path}/state/catalog.db", warehouse=str(tmp_path / "wh"),
                        cwd=str(tmp_path)) as server:
        server.client().request("GET", f"{M}/whoami")
        assert os.stat(tmp_path / "state").st_mode & 0o777 == 0o700
        for name in os.listdir(tmp_path / "state"):
            assert os.stat(tmp_path / "state" / name).st_mode & 0o077 == 0, name


def test_creating_namespaces_gives_nothing_inside_anothers(world):
    """CREATE_TABLE on the catalog makes top-level namespaces (Lake Formation's CREATE_DATABASE), nothing more."""
    w = world
    grant = {"permissions": "CREATE_TABLE", "principal": w.name("attacker"), "catalog": True}
    w.admin.request("POST", f"{M}/grants", json=grant)
    try:
        http = w.http("attacker")
        assert [w.v] not in http.get("/namespaces").json()["namespaces"]
        message = error(http.post(f"/namespaces/{w.v}/tables", json={"name": "planted", "schema": SCHEMA}), 404)
        assert message == f"no namespace {w.v} you may see"
        assert error(http.post("/namespaces", json={"namespace": [w.v, "sub"]}), 404) == f"no namespace {w.v} you may see"
        assert http.post("/namespaces", json={"namespace": [f"own_{w.sfx}"]}).status_code == 200  # what it is for
    finally:
        w.admin.request("POST", f"{M}/grants/revoke", json=grant)
