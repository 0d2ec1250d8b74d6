"""What one reader's loadTable answered, kept per table version and policy snapshot.

Deciding a load (the grant, hidden columns, read restrictions, labels, the ETag) cost most of a cached
table's loadTable (profiled in process: benchmarks/catalog.py). That answer is a function of the metadata
file, the policy snapshot (grants, tags, owners: any change to them makes a new snapshot object), the
reader's name and what its request declares (column limits, read restrictions, `snapshots`), so it is
kept under exactly those and reused. A new metadata file or a new policy snapshot misses; a refusal is
never kept (it is decided, and audited, every time); loads that vend credentials are not kept (each mints
its own keys). Every hit is still audited as the decision it repeats.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Hashable

from icemesh.governance.evaluator import Decision


@dataclass(frozen=True)
class KeptLoad:
    location: str  # the metadata file the answer was made from
    snapshot: object  # the policy snapshot (Evaluator) it was decided under, compared by identity
    decision: Decision  # the SELECT decision, audited again on each hit
    loaded: Any  # the service's LoadedTable (its serialized body is memoized on it by the HTTP layer)


class LoadCache:
    """Bounded: past `capacity` answers it starts over (a reader's next load decides again)."""

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self._kept: dict[Hashable, KeptLoad] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, location: str, snapshot: object) -> KeptLoad | None:
        kept = self._kept.get(key)
        if kept is None or kept.location != location or kept.snapshot is not snapshot:
            return None
        return kept

    def put(self, key: Hashable, kept: KeptLoad) -> None:
        with self._lock:
            if len(self._kept) >= self.capacity and key not in self._kept:
                self._kept.clear()
            self._kept[key] = kept

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)
