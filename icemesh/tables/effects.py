"""What a commit really does to a table, read from the metadata it produces and the files it names.

The permissions a commit needs follow from its effects (icemesh.governance.commit_rules), and its effects
are found by comparing the new metadata with the old one, field by field, and the new snapshots' manifests
with their parents': an update type nobody thought of still shows up as a changed field. On the way, every
file the commit makes part of the table (manifest lists, manifests, data and delete files, statistics) is
checked to lie under the table's own location, so a table can never be pointed at another table's files.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

from pyiceberg.io import FileIO
from pyiceberg.manifest import DataFileContent, ManifestContent, ManifestEntryStatus, ManifestFile
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.refs import SnapshotRefType
from pyiceberg.table.snapshots import Snapshot

from icemesh.tables.locations import TableFiles
from icemesh.compat import pyiceberg_core as fast
from icemesh.tables import avro_manifests
from icemesh.tables.metadata import changed_fields
from icemesh.errors import BadRequest
from icemesh.governance.commit_rules import OPERATION_EFFECTS, UNKNOWN_OPERATION, Effect

# Metadata fields (pyiceberg's model names) every commit may change as bookkeeping, the ones judged by
# their own rules (snapshots, refs), and the effect of a change to each other field. A field not listed
# (a newer format's) counts as a change of the table's settings: ALTER.
_BOOKKEEPING = {"last_updated_ms", "metadata_log", "snapshot_log", "last_sequence_number", "next_row_id",
                "last_column_id", "last_partition_id", "current_snapshot_id", "snapshots", "refs"}
_JUDGED = {
    "schemas": Effect.CHANGES_SCHEMA, "current_schema_id": Effect.CHANGES_SCHEMA, "schema_": Effect.CHANGES_SCHEMA,
    "partition_specs": Effect.CHANGES_PARTITIONING, "default_spec_id": Effect.CHANGES_PARTITIONING,
    "partition_spec": Effect.CHANGES_PARTITIONING,
    "sort_orders": Effect.CHANGES_SORT_ORDER, "default_sort_order_id": Effect.CHANGES_SORT_ORDER,
    "properties": Effect.CHANGES_PROPERTIES, "format_version": Effect.CHANGES_FORMAT,
    "statistics": Effect.CHANGES_STATISTICS, "partition_statistics": Effect.CHANGES_STATISTICS,
    "table_uuid": Effect.CHANGES_IDENTITY, "location": Effect.CHANGES_LOCATION,
}


MAX_MANIFEST_BYTES = 256 * 1024 * 1024
DELETED, EXISTING, DATA = int(ManifestEntryStatus.DELETED), int(ManifestEntryStatus.EXISTING), int(DataFileContent.DATA)


@dataclass
class Inspection:
    effects: set[Effect] = field(default_factory=set)

    @property
    def changes_nothing(self) -> bool:
        return not self.effects


def metadata_effects(base: TableMetadata | None, new: TableMetadata, files: TableFiles) -> Inspection:
    """What the new metadata itself says, without reading a file: changed fields, refs, removed snapshots, and
    INSERT at least for each new snapshot. Checked before `file_effects`, so a caller who may not even write
    costs the catalog no file reads."""
    found = Inspection()
    _check_statistics(base, new, files)
    known = {s.snapshot_id for s in base.snapshots} if base is not None else set()
    snapshots = {s.snapshot_id: s for s in new.snapshots}
    for snapshot in new.snapshots:
        if snapshot.snapshot_id not in known:
            files.require(snapshot.manifest_list, "manifest list")
            found.effects.add(Effect.ADDS_ROWS)  # a snapshot writes history at least: the least a write needs
    if base is not None:
        for name in changed_fields(base, new) - _BOOKKEEPING:
            found.effects.add(_JUDGED.get(name, Effect.CHANGES_PROPERTIES))
        if known - set(snapshots):
            found.effects.add(Effect.REMOVES_SNAPSHOTS)
        found.effects |= _ref_effects(base, new, snapshots, known)
    return found


def file_effects(base: TableMetadata | None, new: TableMetadata, files: TableFiles, io: FileIO) -> Inspection:
    """What the new snapshots do to the data, read from their manifests against their parents' (only the
    manifests that differ); raises BadRequest for a file that lies outside the table's location."""
    found = Inspection()
    snapshots = {s.snapshot_id: s for s in new.snapshots}
    known = {s.snapshot_id for s in base.snapshots} if base is not None else set()
    reader = _ManifestReader(io, str(new.table_uuid))
    for snapshot in new.snapshots:
        if snapshot.snapshot_id not in known:
            parent = snapshots.get(snapshot.parent_snapshot_id) if snapshot.parent_snapshot_id is not None else None
            found.effects |= _data_effects(snapshot, parent, files, reader, parent is not None and
                                           parent.snapshot_id in known)
    return found


def inspect(base: TableMetadata | None, new: TableMetadata, files: TableFiles, io: FileIO) -> Inspection:
    """Both: every effect of going from `base` (None: a new table) to `new`."""
    found = metadata_effects(base, new, files)
    found.effects |= file_effects(base, new, files, io).effects
    return found


def _check_statistics(base: TableMetadata | None, new: TableMetadata, files: TableFiles) -> None:
    for name in ("statistics", "partition_statistics"):
        old = {s.statistics_path for s in getattr(base, name, None) or []}
        for entry in getattr(new, name, None) or []:
            if entry.statistics_path not in old:
                files.require(entry.statistics_path, "statistics file")


class _ManifestReader:
    """Manifest lists and manifests of one inspection, each read once: manifests by icemesh's own reader
    (avro_manifests.py), lists by pyiceberg-core's Rust reader, and either by pyiceberg's when those cannot
    parse a file (whose error then says why)."""

    def __init__(self, io: FileIO, table: str = "") -> None:
        self.io = io
        self.table = table
        self._lists: dict[str, list[fast.ListedManifest]] = {}
        self._entries: dict[str, list[fast.ManifestEntry]] = {}

    def _bytes(self, location: str) -> bytes:
        with self.io.new_input(location).open() as stream:
            data = stream.read(MAX_MANIFEST_BYTES + 1)
        if len(data) > MAX_MANIFEST_BYTES:
            raise BadRequest(f"The commit names a manifest larger than {MAX_MANIFEST_BYTES // 2**20} MiB: {location}")
        return data

    def manifests(self, snapshot: Snapshot, committed: bool = False) -> list[fast.ListedManifest]:
        """`committed`: the snapshot is already the table's, so its list may come from `_READ_LISTS` (an append's
        parent is the list the previous commit read); a new snapshot's list is always read from its file."""
        location = snapshot.manifest_list
        if location not in self._lists:
            listed = _READ_LISTS.get((self.table, location)) if committed else None
            if listed is None:
                listed = _readable(lambda: fast.read_manifest_list(self._bytes(location)), location)
                if listed is None:
                    listed = _readable(lambda: [fast.ListedManifest(m.manifest_path, int(m.content))
                                                for m in snapshot.manifests(self.io)], location)
                _READ_LISTS.put((self.table, location), listed)
            self._lists[location] = listed
        return self._lists[location]

    def entries(self, manifest: fast.ListedManifest) -> list[fast.ManifestEntry]:
        location = manifest.path
        if location not in self._entries:
            found = _readable(lambda: _entries(self._bytes(location)), location)
            if found is None:
                found = _readable(lambda: [fast.ManifestEntry(e.data_file.file_path, int(e.status), int(e.data_file.content))
                                           for e in _pyiceberg_manifest(location, manifest.content)
                                           .fetch_manifest_entry(self.io, discard_deleted=False)], location)
            self._entries[location] = found
        return self._entries[location]


class _ListMemory:
    """The manifest lists commits read lately, by (table uuid, location): each commit's parent list is its
    predecessor's new one, read and checked then (about 0.4 ms a commit, profiled). Bounded in lists and in
    manifests named."""

    MAX_LISTS, MAX_MANIFESTS = 256, 200_000

    def __init__(self) -> None:
        self._lists: OrderedDict[tuple[str, str], list[fast.ListedManifest]] = OrderedDict()
        self._manifests = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> list[fast.ListedManifest] | None:
        with self._lock:
            found = self._lists.get(key)
            if found is not None:
                self._lists.move_to_end(key)
            return found

    def put(self, key: tuple[str, str], listed: list[fast.ListedManifest]) -> None:
        if len(listed) > self.MAX_MANIFESTS // 4:
            return
        with self._lock:
            old = self._lists.pop(key, None)
            self._manifests += len(listed) - (len(old) if old is not None else 0)
            self._lists[key] = listed
            while len(self._lists) > self.MAX_LISTS or self._manifests > self.MAX_MANIFESTS:
                _key, dropped = self._lists.popitem(last=False)
                self._manifests -= len(dropped)


_READ_LISTS = _ListMemory()


def _entries(data: bytes) -> list[fast.ManifestEntry] | None:
    """A manifest's entries by icemesh's own reader (a tenth of the Rust reader's cost for an append's one-file
    manifest), or by pyiceberg-core's for a codec it leaves to others."""
    try:
        return avro_manifests.manifest_entries(data)
    except avro_manifests.Unsupported:
        return fast.read_manifest_entries(data)


def _readable(read: Callable[[], list | None], location: str) -> list | None:
    try:
        return read()
    except BadRequest:
        raise
    except FileNotFoundError:
        raise BadRequest(f"The commit names a file that does not exist: {location}") from None
    except Exception as exc:  # not Avro, truncated, wrong schema: never echo the file's content
        raise BadRequest(f"The commit names a file that is not a readable Iceberg manifest ({exc.__class__.__name__}): "
                         f"{location}") from None


def _pyiceberg_manifest(location: str, content: int) -> ManifestFile:
    """Enough of a ManifestFile for pyiceberg to read its entries."""
    return ManifestFile.from_args(manifest_path=location, manifest_length=0, partition_spec_id=0,
                                  content=ManifestContent(content), sequence_number=0, min_sequence_number=0,
                                  added_snapshot_id=0)


def _data_effects(snapshot: Snapshot, parent: Snapshot | None, files: TableFiles, reader: _ManifestReader,
                  parent_committed: bool = False) -> set[Effect]:
    """Compare a new snapshot's live files with its parent's: only manifests that differ are read."""
    mine = reader.manifests(snapshot)
    theirs = reader.manifests(parent, parent_committed) if parent is not None else []
    my_paths = {m.path for m in mine}
    their_paths = {m.path for m in theirs}
    carried: dict[str, int] = {}
    for manifest in theirs:
        if manifest.path not in my_paths:
            for entry in reader.entries(manifest):
                if entry.status != DELETED:
                    carried[entry.path] = entry.content
    effects: set[Effect] = set()
    live: set[str] = set()
    for manifest in mine:
        if manifest.path in their_paths:
            continue
        files.require(manifest.path, "manifest")
        for entry in reader.entries(manifest):
            if entry.status == DELETED:
                continue
            live.add(entry.path)
            if entry.status == EXISTING and entry.path in carried:
                continue  # carried over from the parent unchanged (a rewritten manifest)
            files.require(entry.path, "data file")
            effects.add(Effect.ADDS_ROWS if entry.content == DATA else Effect.REMOVES_ROWS)
    for path, content in carried.items():
        if path not in live:  # a live file of the parent is gone: rows removed (or, for a delete file, brought back)
            effects.add(Effect.REMOVES_ROWS if content == DATA else Effect.ADDS_ROWS)
    return effects


def _ref_effects(base: TableMetadata, new: TableMetadata, snapshots: dict[int, Snapshot], known: set[int]) -> set[Effect]:
    effects: set[Effect] = set()
    for name in set(base.refs) - set(new.refs):
        effects.add(Effect.MOVES_TAG if base.refs[name].snapshot_ref_type == SnapshotRefType.TAG else Effect.REMOVES_BRANCH)
    for name, ref in new.refs.items():
        old = base.refs.get(name)
        if old is None:
            if not (name == "main" and not base.refs):
                effects.add(Effect.CREATES_REF)
            continue
        if old == ref:
            continue
        if old.snapshot_ref_type != ref.snapshot_ref_type:  # retyped: the old ref ends, a new one begins
            effects.add(Effect.MOVES_TAG if old.snapshot_ref_type == SnapshotRefType.TAG else Effect.REMOVES_BRANCH)
            effects.add(Effect.CREATES_REF)
            continue
        if ref.snapshot_ref_type == SnapshotRefType.TAG:
            effects.add(Effect.MOVES_TAG)
            continue
        if old.snapshot_id == ref.snapshot_id:
            effects.add(Effect.CHANGES_PROPERTIES)  # retention settings of the branch
            continue
        chain = _chain(ref.snapshot_id, old.snapshot_id, snapshots)
        if chain is None:
            effects.add(Effect.REWINDS_BRANCH)
            continue
        for snapshot_id in chain:  # fast-forward: snapshots that were already in the table get published
            if snapshot_id in known:
                summary = snapshots[snapshot_id].summary
                operation = summary.operation.value if summary is not None else ""
                effects |= {Effect.PUBLISHES} | OPERATION_EFFECTS.get(operation, UNKNOWN_OPERATION)
    return effects


def _chain(target: int, head: int, snapshots: dict[int, Snapshot]) -> list[int] | None:
    """The snapshots from `target` back to (not including) `head`, or None when `target` does not descend from it."""
    chain: list[int] = []
    current: int | None = target
    for _step in range(len(snapshots) + 1):
        if current == head:
            return chain
        snapshot = snapshots.get(current) if current is not None else None
        if snapshot is None:
            return None
        chain.append(current)
        current = snapshot.parent_snapshot_id
    return None
