"""Snapshot retention applied by the catalog at commit time, the way S3 Tables manages snapshots.

Without maintenance every commit adds a snapshot and table metadata grows without bound, so each load,
refresh and commit of a busy table gets slower. A table that sets Iceberg's own retention properties,
`history.expire.max-snapshot-age-ms` (and optionally `history.expire.min-snapshots-to-keep`, default 1),
has its expired snapshots removed in the same commit that adds a new one: older than the age, not among the
newest ancestors of a branch that must be kept (a branch ref's own settings win), and not the head of any
branch or tag. Data files are left in place: a reader still scanning an old snapshot keeps working, and
deleting files no snapshot references is a separate clean-up job. Pure: no I/O.
"""

from __future__ import annotations

from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.refs import SnapshotRefType

from icemesh.errors import BadRequest

MAX_AGE = "history.expire.max-snapshot-age-ms"
MIN_KEEP = "history.expire.min-snapshots-to-keep"


def _positive_int(properties: dict[str, str], key: str, default: int | None) -> int | None:
    raw = properties.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise BadRequest(f"Table property {key}={raw!r} must be a positive whole number; set it again or remove it")
    return value


def check_properties(properties: dict[str, str]) -> None:
    """Refuse a commit that sets retention properties the catalog could not apply."""
    _positive_int(properties, MAX_AGE, None)
    _positive_int(properties, MIN_KEEP, 1)


def expired_snapshots(metadata: TableMetadata, now_ms: int) -> list[int]:
    """The ids of the snapshots retention removes now; [] when the table sets no maximum age."""
    max_age = _positive_int(metadata.properties, MAX_AGE, None)
    if max_age is None:
        return []
    table_min_keep = _positive_int(metadata.properties, MIN_KEEP, 1)
    by_id = {s.snapshot_id: s for s in metadata.snapshots}
    keep: set[int] = set()
    for ref in metadata.refs.values():
        keep.add(ref.snapshot_id)
        if ref.snapshot_ref_type != SnapshotRefType.BRANCH:
            continue
        min_keep = ref.min_snapshots_to_keep or table_min_keep
        cutoff = now_ms - (ref.max_snapshot_age_ms or max_age)
        snapshot, kept = by_id.get(ref.snapshot_id), 0
        while snapshot is not None and (kept < min_keep or snapshot.timestamp_ms >= cutoff):
            keep.add(snapshot.snapshot_id)
            kept += 1
            snapshot = by_id.get(snapshot.parent_snapshot_id) if snapshot.parent_snapshot_id is not None else None
    cutoff = now_ms - max_age
    return [s.snapshot_id for s in metadata.snapshots if s.snapshot_id not in keep and s.timestamp_ms < cutoff]
