"""Parsed table metadata, cached by metadata-file location.

Metadata files are immutable once written, so a location always maps to the same content and the
cache never needs invalidation; it is bounded (LRU) to keep memory flat on large catalogs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable

import orjson
from pyiceberg.table.metadata import TableMetadata, TableMetadataUtil


class CachedMetadata:
    """One metadata file: its exact bytes (served as-is), and the parsed forms, built on first use."""

    __slots__ = ("location", "raw", "_model", "_refs_only", "_lock")

    def __init__(self, location: str, raw: bytes, model: TableMetadata | None = None) -> None:
        self.location = location
        self.raw = raw
        self._model = model
        self._refs_only: bytes | None = None
        self._lock = threading.Lock()

    @property
    def model(self) -> TableMetadata:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = TableMetadataUtil.parse_raw(self.raw)
        return self._model

    def refs_only(self) -> bytes:
        """The metadata with only the snapshots some branch or tag points at (`snapshots=refs`)."""
        if self._refs_only is None:
            doc = orjson.loads(self.raw)
            referenced = {ref.get("snapshot-id") for ref in (doc.get("refs") or {}).values()}
            if doc.get("current-snapshot-id") not in (None, -1):
                referenced.add(doc["current-snapshot-id"])
            doc["snapshots"] = [s for s in doc.get("snapshots") or [] if s.get("snapshot-id") in referenced]
            self._refs_only = orjson.dumps(doc)
        return self._refs_only


class MetadataCache:
    def __init__(self, max_entries: int = 2048) -> None:
        self._entries: OrderedDict[str, CachedMetadata] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, location: str, read: Callable[[str], bytes]) -> CachedMetadata:
        with self._lock:
            entry = self._entries.get(location)
            if entry is not None:
                self._entries.move_to_end(location)
                return entry
        entry = CachedMetadata(location, read(location))
        self.put(entry)
        return entry

    def put(self, entry: CachedMetadata) -> None:
        with self._lock:
            self._entries[entry.location] = entry
            self._entries.move_to_end(entry.location)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
