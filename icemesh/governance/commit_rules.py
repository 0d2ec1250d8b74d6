"""Which permission each effect of a table commit really exercises: the one table, written down.

A commit is judged by what it does to the table, not by what its updates call themselves: an "append"
snapshot that drops live data files removes rows, a ref moved to a snapshot that does not descend from
its head rewinds history. The catalog inspects a commit (its manifests, its refs) and reports the effects
below; this module, pure, turns them into the permissions needed, the way Lake Formation would:
adding rows is INSERT, losing rows or history is DELETE, changing the table's shape or settings is ALTER.
"""

from __future__ import annotations

from enum import Enum

from icemesh.governance.permissions import Permission


class Effect(str, Enum):
    ADDS_ROWS = "adds rows"                          # a snapshot adds data files
    REMOVES_ROWS = "removes rows"                    # a snapshot drops live data files or adds delete files
    PUBLISHES = "publishes snapshots"                # a branch fast-forwards over snapshots already in the table
    REWINDS_BRANCH = "moves a branch backwards"      # a branch moves to a snapshot that does not descend from its head
    REMOVES_BRANCH = "removes a branch"
    REMOVES_SNAPSHOTS = "removes snapshots"
    CREATES_REF = "creates a branch or tag"          # any ref other than a new table's first `main`
    MOVES_TAG = "moves or removes a tag"
    CHANGES_SCHEMA = "changes the schema"
    CHANGES_PARTITIONING = "changes the partition spec"
    CHANGES_SORT_ORDER = "changes the sort order"
    CHANGES_LOCATION = "changes the location"
    CHANGES_PROPERTIES = "changes properties"
    CHANGES_FORMAT = "changes the format version"
    CHANGES_STATISTICS = "changes statistics"
    CHANGES_IDENTITY = "changes the table uuid"
    DECLARES_TAGS = "declares tags"                   # the owner's tags, carried in the commit (icemesh.tags)


PERMISSION_FOR: dict[Effect, Permission] = {
    Effect.ADDS_ROWS: Permission.INSERT,
    Effect.REMOVES_ROWS: Permission.DELETE,
    Effect.PUBLISHES: Permission.INSERT,
    Effect.REWINDS_BRANCH: Permission.DELETE,
    Effect.REMOVES_BRANCH: Permission.DELETE,
    Effect.REMOVES_SNAPSHOTS: Permission.DELETE,
    Effect.CREATES_REF: Permission.ALTER,
    Effect.MOVES_TAG: Permission.ALTER,
    Effect.CHANGES_SCHEMA: Permission.ALTER,
    Effect.CHANGES_PARTITIONING: Permission.ALTER,
    Effect.CHANGES_SORT_ORDER: Permission.ALTER,
    Effect.CHANGES_LOCATION: Permission.ALTER,
    Effect.CHANGES_PROPERTIES: Permission.ALTER,
    Effect.CHANGES_FORMAT: Permission.ALTER,
    Effect.CHANGES_STATISTICS: Permission.ALTER,
    Effect.CHANGES_IDENTITY: Permission.ALTER,
    Effect.DECLARES_TAGS: Permission.ALTER,
}

# What an existing snapshot's recorded operation did, for snapshots a branch is fast-forwarded over.
OPERATION_EFFECTS: dict[str, frozenset[Effect]] = {
    "append": frozenset({Effect.ADDS_ROWS}),
    "delete": frozenset({Effect.REMOVES_ROWS}),
    "overwrite": frozenset({Effect.ADDS_ROWS, Effect.REMOVES_ROWS}),
    "replace": frozenset({Effect.ADDS_ROWS, Effect.REMOVES_ROWS}),
}
UNKNOWN_OPERATION = frozenset({Effect.ADDS_ROWS, Effect.REMOVES_ROWS})


def required(effects: set[Effect] | frozenset[Effect]) -> dict[Permission, list[Effect]]:
    """Each permission the effects need, with the effects that need it (for the denial's message)."""
    needed: dict[Permission, list[Effect]] = {}
    for effect in sorted(effects, key=lambda e: e.value):
        needed.setdefault(PERMISSION_FOR[effect], []).append(effect)
    return needed
