"""Snapshot retention: a table that sets Iceberg's `history.expire.*` properties keeps bounded metadata,
the catalog expiring old snapshots in the commits that add new ones; rows are never lost."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pyiceberg.exceptions import BadRequestError

SCHEMA = pa.schema([("n", pa.int64())])


def batch(n: int) -> pa.Table:
    return pa.table({"n": [n]}, schema=SCHEMA)


@pytest.fixture
def table(sqlite_server, ns):
    catalog = sqlite_server.client().rest_catalog()
    catalog.create_namespace(ns)
    table = catalog.create_table(f"{ns}.events", schema=SCHEMA)
    for n in range(4):
        table.append(batch(n))
    return table


def test_without_retention_settings_every_snapshot_stays(table):
    table.append(batch(4))
    assert len(table.metadata.snapshots) == 5


def test_expired_snapshots_go_in_the_next_commit_and_no_row_is_lost(table, sqlite_server):
    with table.transaction() as tx:
        tx.set_properties({"history.expire.max-snapshot-age-ms": "1", "history.expire.min-snapshots-to-keep": "3"})
    assert len(table.metadata.snapshots) == 4  # only a commit that adds a snapshot expires
    old = table.metadata.snapshots[0].snapshot_id
    table.append(batch(4))
    kept = [s.snapshot_id for s in table.metadata.snapshots]
    assert len(kept) == 3 and old not in kept and kept[-1] == table.metadata.current_snapshot_id
    reloaded = sqlite_server.client().rest_catalog().load_table(table.name())
    assert sorted(r["n"] for r in reloaded.scan().to_arrow().to_pylist()) == [0, 1, 2, 3, 4]
    assert sorted(r["n"] for r in reloaded.scan(snapshot_id=kept[0]).to_arrow().to_pylist()) == [0, 1, 2]
    duck = sqlite_server.client().duckdb()
    ns, name = table.name()
    assert duck.execute(f'select count(*) from mesh."{ns}"."{name}"').fetchone()[0] == 5


def test_a_tagged_snapshot_outlives_retention(table):
    tagged = table.metadata.snapshots[0].snapshot_id
    table.manage_snapshots().create_tag(tagged, "audit-2026").commit()
    with table.transaction() as tx:
        tx.set_properties({"history.expire.max-snapshot-age-ms": "1"})
    table.append(batch(4))
    assert {s.snapshot_id for s in table.metadata.snapshots} == {tagged, table.metadata.current_snapshot_id}
    assert sorted(r["n"] for r in table.scan(snapshot_id=tagged).to_arrow().to_pylist()) == [0]


def test_a_bad_retention_setting_is_refused_and_changes_nothing(table):
    before = table.metadata_location
    with pytest.raises(BadRequestError, match="history.expire.max-snapshot-age-ms='soon' must be a positive whole number"):
        with table.transaction() as tx:
            tx.set_properties({"history.expire.max-snapshot-age-ms": "soon"})
    table.refresh()
    assert table.metadata_location == before and "history.expire.max-snapshot-age-ms" not in table.properties
