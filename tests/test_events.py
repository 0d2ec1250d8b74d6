"""The change feed with real clients, on SQLite and PostgreSQL: concurrent pyiceberg appends give exactly one
event each, in commit order, carrying the new snapshot and its summary for readers who may SELECT; `icemesh
events tail` shows the same feed."""

from __future__ import annotations

import json
import threading
import uuid

import pyarrow as pa

M = "/management/v1"
SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("name", pa.string())])


def _feed(client, after: int, **params) -> list[dict]:
    events, cursor = [], after
    while True:
        page = client.request("GET", f"{M}/events", params={"after": cursor, "limit": 7, **params})
        events += page["events"]
        if not page["events"] and page["next-after"] == cursor:
            return events
        cursor = page["next-after"]


def test_concurrent_commits_give_one_event_each_in_commit_order(catalog_server):
    admin = catalog_server.client()
    ns = f"ev_{uuid.uuid4().hex[:8]}"
    rest = admin.rest_catalog()
    rest.create_namespace(ns)
    start = admin.request("GET", f"{M}/events", params={"after": 0, "limit": 1000})["next-after"]
    while True:  # the feed's current end (more than 1,000 events may be there already)
        page = admin.request("GET", f"{M}/events", params={"after": start, "limit": 1000})
        if page["next-after"] == start:
            break
        start = page["next-after"]
    tables = [rest.create_table((ns, f"t{i}"), schema=SCHEMA) for i in range(4)]
    errors: list[Exception] = []

    def appends(table) -> None:
        try:
            for n in range(5):
                table.append(pa.table({"id": [n], "name": [f"r{n}"]}, schema=SCHEMA))
        except Exception as exc:  # pragma: no cover - the assertion below says what happened
            errors.append(exc)

    threads = [threading.Thread(target=appends, args=(t,)) for t in tables]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    events = [e for e in _feed(admin, start) if e["identifier"]["namespace"] == [ns]]
    ids = [e["event-id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) == 4 + 20
    assert [e["operation-type"] for e in events].count("create-table") == 4
    for i in range(4):
        commits = [e for e in events if e["operation-type"] == "update-table" and e["identifier"]["name"] == f"t{i}"]
        snapshots = [s.snapshot_id for s in rest.load_table((ns, f"t{i}")).snapshots()]
        assert [e["snapshot-id"] for e in commits] == snapshots  # one per commit, in the order they landed
        assert all(e["summary"]["operation"] == "append" and e["summary"]["added-records"] == "1" for e in commits)


def test_a_describe_only_reader_sees_the_commit_but_not_its_snapshot(catalog_server):
    admin = catalog_server.client()
    ns = f"evd_{uuid.uuid4().hex[:8]}"
    name = f"watcher_{uuid.uuid4().hex[:6]}"
    secret = admin.request("POST", f"{M}/principals", json={"name": name})["client_secret"]
    rest = admin.rest_catalog()
    rest.create_namespace(ns)
    admin.request("POST", f"{M}/grants", json={"permissions": "DESCRIBE", "principal": name, "namespace": ns})
    table = rest.create_table((ns, "t"), schema=SCHEMA)
    table.append(pa.table({"id": [1], "name": ["a"]}, schema=SCHEMA))
    watcher = catalog_server.client(name, secret)
    seen = [e for e in _feed(watcher, 0, type="update-table")
            if e["identifier"]["namespace"] == [ns]]
    assert len(seen) == 1 and "snapshot-id" not in seen[0] and "summary" not in seen[0]
    full = [e for e in _feed(admin, seen[0]["event-id"] - 1, type="update-table") if e["identifier"]["namespace"] == [ns]]
    assert full[0]["snapshot-id"] == table.refresh().current_snapshot().snapshot_id

    from click.testing import CliRunner

    from icemesh.cli.main import cli

    env = {"ICEMESH_CATALOG_URI": catalog_server.uri, "ICEMESH_CLIENT_ID": name, "ICEMESH_CLIENT_SECRET": secret}
    shown = CliRunner().invoke(cli, ["events", "tail", "--after", str(seen[0]["event-id"] - 1), "--type", "update-table"],
                               env=env)
    assert shown.exit_code == 0 and f"update-table     {ns}.t" in shown.output and "snapshot" not in shown.output, \
        shown.output
    as_json = CliRunner().invoke(cli, ["events", "tail", "--after", str(seen[0]["event-id"] - 1), "--type",
                                       "update-table", "--output", "json"], env=env)
    assert json.loads(as_json.output)["events"][0]["event-id"] == seen[0]["event-id"]
