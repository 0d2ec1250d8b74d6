"""An append that lost a race, moved onto the table's newer snapshot by the catalog instead of refused.

Writers appending to one table conflict all the time: each commit asserts the snapshot its writer started
from (`assert-ref-snapshot-id`), another append landed meanwhile, and the writer gets a 409, reloads the
table, rebuilds its snapshot and tries again after a sleep (pyiceberg: 100 ms doubling, 4 retries, then it
gives up). An append only adds files; it reads nothing, so it means the same on top of any newer snapshot:
Iceberg's own Java append re-applies itself that way on retry, without a check. A table that sets
`icemesh.commit.rebase-appends=true` lets the catalog take that step for the writer, in the same request.

Only a commit that is exactly one append qualifies: one new snapshot (operation `append`) whose parent is the
snapshot the writer asserted, an ancestor of the branch's head now, and that branch set to it; the snapshot's
manifest list carries every manifest of that parent unchanged plus new data manifests of its own, each only
adding files whose sequence numbers are inherited. Anything else keeps its 409. The catalog writes the
rebased manifest list (the head's manifests and the new ones) into the table's own metadata folder, gives the
snapshot the next sequence number and the head as parent, recomputes the summary's totals, and the commit
then goes through every check any commit does (its files, its effects and the permissions they need).
Format v2 only: v1 has no sequence numbers to inherit, v3's row lineage would need new row ids.
"""

from __future__ import annotations

import time
import uuid
from copy import copy
from dataclasses import dataclass

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.io import FileIO
from pyiceberg.manifest import UNASSIGNED_SEQ, ManifestContent, ManifestFile, read_manifest_list, write_manifest_list
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.refs import SnapshotRefType
from pyiceberg.table.snapshots import Operation, Snapshot, Summary, update_snapshot_summaries
from pyiceberg.table.update import (
    AddSnapshotUpdate,
    AssertRefSnapshotId,
    SetSnapshotRefUpdate,
    TableRequirement,
    TableUpdate,
)

from icemesh.tables import avro_manifests
from icemesh.tables.effects import MAX_MANIFEST_BYTES
from icemesh.tables.locations import TableFiles

REBASE_PROPERTY = "icemesh.commit.rebase-appends"
MAX_LIST_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Rebased:
    requirements: list[TableRequirement]
    updates: list[TableUpdate]
    manifest_list: str  # written here: the caller deletes it if the commit does not land


def enabled(base: TableMetadata | None) -> bool:
    return base is not None and base.format_version == 2 and \
        str(base.properties.get(REBASE_PROPERTY, "")).strip().lower() == "true"


def rebase_append(base: TableMetadata, requirements: list[TableRequirement], updates: list[TableUpdate], io: FileIO,
                  files: TableFiles) -> Rebased | None:
    """The append moved onto its branch's head, or None when the commit is not exactly one append that can be
    moved (the caller then answers the 409 it had)."""
    shape = _append_shape(base, requirements, updates)
    if shape is None:
        return None
    snapshot, ref, started, others = shape
    head = base.snapshot_by_id(base.refs[ref.ref_name].snapshot_id)
    if head is None or (started is not None and not _descends(base, head, started)):
        return None
    try:
        new = _new_manifests(base, snapshot, started, io, files)
        if new is None:
            return None
        sequence = base.last_sequence_number + 1
        listed = f"{base.location.rstrip('/')}/metadata/snap-{snapshot.snapshot_id}-rebased-{uuid.uuid4().hex}.avro"
        files.require(listed, "manifest list")
        carried = _read_list(io, head.manifest_list, files)
        with write_manifest_list(format_version=2, output_file=io.new_output(listed), snapshot_id=snapshot.snapshot_id,
                                 parent_snapshot_id=head.snapshot_id, sequence_number=sequence,
                                 avro_compression="deflate") as writer:
            writer.add_manifests([*carried, *(_unassigned(m) for m in new)])
    except (OSError, ValueError, KeyError, TypeError):  # an unreadable list or manifest: not ours to fix
        return None
    added = {k: v for k, v in snapshot.summary.additional_properties.items() if not k.startswith("total-")}
    summary = update_snapshot_summaries(Summary(Operation.APPEND, **added),
                                        head.summary.additional_properties if head.summary else None)
    moved = snapshot.model_copy(update={
        "parent_snapshot_id": head.snapshot_id, "sequence_number": sequence, "manifest_list": listed,
        "summary": summary, "timestamp_ms": max(snapshot.timestamp_ms, int(time.time() * 1000))})
    return Rebased([*others, AssertRefSnapshotId(ref=ref.ref_name, snapshot_id=head.snapshot_id)],
                   [AddSnapshotUpdate(snapshot=moved), ref], listed)


def _append_shape(base: TableMetadata, requirements: list[TableRequirement], updates: list[TableUpdate]):
    """(snapshot, ref update, asserted parent, the other requirements) of a commit that is one append whose only
    failing requirement is its branch's stale head; None otherwise."""
    if len(updates) != 2:
        return None
    adds = [u for u in updates if isinstance(u, AddSnapshotUpdate)]
    refs = [u for u in updates if isinstance(u, SetSnapshotRefUpdate)]
    if len(adds) != 1 or len(refs) != 1:
        return None
    snapshot, ref = adds[0].snapshot, refs[0]
    if ref.snapshot_id != snapshot.snapshot_id or ref.type != SnapshotRefType.BRANCH or ref.ref_name not in base.refs \
            or base.refs[ref.ref_name].snapshot_ref_type != SnapshotRefType.BRANCH:
        return None
    if snapshot.summary is None or snapshot.summary.operation != Operation.APPEND \
            or base.snapshot_by_id(snapshot.snapshot_id) is not None:  # a replay of a landed append stays a 409
        return None
    stale = [r for r in requirements if isinstance(r, AssertRefSnapshotId) and r.ref == ref.ref_name]
    others = [r for r in requirements if not (isinstance(r, AssertRefSnapshotId) and r.ref == ref.ref_name)]
    if len(stale) != 1 or snapshot.parent_snapshot_id != stale[0].snapshot_id:
        return None
    try:
        for requirement in others:
            requirement.validate(base)
    except CommitFailedException:
        return None
    return snapshot, ref, stale[0].snapshot_id, others


def _descends(base: TableMetadata, head: Snapshot, ancestor: int) -> bool:
    seen: set[int] = set()
    current: Snapshot | None = head
    while current is not None and current.snapshot_id not in seen:
        if current.snapshot_id == ancestor:
            return True
        seen.add(current.snapshot_id)
        current = base.snapshot_by_id(current.parent_snapshot_id) if current.parent_snapshot_id is not None else None
    return False


def _new_manifests(base: TableMetadata, snapshot: Snapshot, started: int | None, io: FileIO,
                   files: TableFiles) -> list[ManifestFile] | None:
    """The append's own manifests, when its list is its parent's manifests unchanged plus those, each only adding
    data files with inherited sequence numbers."""
    mine = _read_list(io, snapshot.manifest_list, files)
    parent = base.snapshot_by_id(started) if started is not None else None
    if started is not None and parent is None:
        return None  # the snapshot the writer started from has expired since
    theirs = {m.manifest_path for m in _read_list(io, parent.manifest_list, files)} if parent is not None else set()
    if not theirs <= {m.manifest_path for m in mine}:
        return None  # the writer rewrote a manifest (a merge): not a plain append
    new = [m for m in mine if m.manifest_path not in theirs]
    if not new:
        return None
    for m in new:
        if m.added_snapshot_id != snapshot.snapshot_id or m.content != ManifestContent.DATA or m.existing_files_count \
                or m.deleted_files_count:
            return None
        files.require(m.manifest_path, "manifest")
        with io.new_input(m.manifest_path).open() as stream:
            data = stream.read(MAX_MANIFEST_BYTES + 1)
        if len(data) > MAX_MANIFEST_BYTES:
            return None  # too large to judge here: the commit's own checks answer it
        try:
            if not avro_manifests.only_added_and_inheriting(data):
                return None
        except (avro_manifests.Unsupported, avro_manifests.Malformed):
            return None
    return new


def _read_list(io: FileIO, location: str, files: TableFiles) -> list[ManifestFile]:
    files.require(location, "manifest list")
    source = io.new_input(location)
    if len(source) > MAX_LIST_BYTES:
        raise ValueError(f"manifest list larger than {MAX_LIST_BYTES >> 20} MiB")
    return list(read_manifest_list(source))


def _unassigned(manifest: ManifestFile) -> ManifestFile:
    """The append's manifest, its sequence numbers left for the new list to assign (its entries inherit them)."""
    moved = copy(manifest)
    moved.sequence_number = UNASSIGNED_SEQ
    moved.min_sequence_number = UNASSIGNED_SEQ
    return moved
