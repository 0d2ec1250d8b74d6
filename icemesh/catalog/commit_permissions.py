"""Which permissions a table commit needs, from what its updates change.

Appending data needs INSERT, removing data DELETE (an overwrite or a compaction needs both), and any
change to the table's shape or settings (schema, partitioning, properties, refs moved by hand) ALTER.
"""

from __future__ import annotations

from pyiceberg.table.update import (
    AddSnapshotUpdate,
    RemoveSnapshotRefUpdate,
    RemoveSnapshotsUpdate,
    SetPropertiesUpdate,
    SetSnapshotRefUpdate,
    TableUpdate,
)

from icemesh.governance.permissions import Permission

_DATA_OPERATIONS = {
    "append": {Permission.INSERT},
    "overwrite": {Permission.INSERT, Permission.DELETE},
    "delete": {Permission.DELETE},
    "replace": {Permission.INSERT, Permission.DELETE},
}


def required_permissions(updates: list[TableUpdate]) -> set[Permission]:
    needed: set[Permission] = set()
    writes_snapshot = any(isinstance(u, AddSnapshotUpdate) for u in updates)
    for update in updates:
        if isinstance(update, AddSnapshotUpdate):
            summary = update.snapshot.summary
            operation = summary.operation.value if summary is not None else "append"
            needed |= _DATA_OPERATIONS.get(operation, {Permission.INSERT, Permission.DELETE})
        elif isinstance(update, (SetSnapshotRefUpdate, RemoveSnapshotRefUpdate, RemoveSnapshotsUpdate)):
            if not writes_snapshot:
                needed.add(Permission.ALTER)  # rollback, tagging, expiry: not part of a data write
        elif isinstance(update, SetPropertiesUpdate) and not update.updates:
            continue
        else:
            needed.add(Permission.ALTER)
    return needed
