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
    """Bounded by count and by bytes (each answer holds its metadata JSON and, once served, its encoded body:
    counted as twice the metadata): past either bound it starts over (a reader's next load decides again). An
    answer larger than an eighth of the byte bound is not kept."""

    def __init__(self, capacity: int = 20_000, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._kept: dict[Hashable, KeptLoad] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, location: str, snapshot: object) -> KeptLoad | None:
        kept = self._kept.get(key)
        if kept is None or kept.location != location or kept.snapshot is not snapshot:
            return None
        return kept

    def put(self, key: Hashable, kept: KeptLoad) -> None:
        size = _size(kept)
        if size > self.max_bytes // 8:
            return
        with self._lock:
            old = self._kept.pop(key, None)
            if old is not None:
                self._bytes -= _size(old)
            if len(self._kept) >= self.capacity or self._bytes + size > self.max_bytes:
                self._kept.clear()
                self._bytes = 0
            self._kept[key] = kept
            self._bytes += size

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._kept)


def _size(kept: KeptLoad) -> int:
    return 2 * len(getattr(kept.loaded, "metadata_json", b"") or b"") + 1024
