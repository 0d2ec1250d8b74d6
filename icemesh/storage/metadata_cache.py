"""Parsed table metadata, cached by metadata-file location.

Metadata files are immutable once written, so a location always maps to the same content and the
cache never needs invalidation; it is an LRU bounded by bytes to keep memory flat on large catalogs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable

import orjson
from pyiceberg.table.metadata import TableMetadata, TableMetadataUtil


class CachedMetadata:
    """One metadata file: its exact bytes (served as-is), and the parsed forms, built on first use."""

    __slots__ = ("location", "raw", "_model", "_refs_only", "_columns", "_fields", "_sources", "_pruned", "_lock")

    def __init__(self, location: str, raw: bytes, model: TableMetadata | None = None) -> None:
        self.location = location
        self.raw = raw
        self._model = model
        self._refs_only: bytes | None = None
        self._columns: list[tuple[int, str]] | None = None
        self._fields: list[dict] | None = None
        self._sources: frozenset[int] | None = None
        self._pruned: dict[tuple[frozenset[int], bool], bytes] = {}
        self._lock = threading.Lock()

    def columns(self) -> list[tuple[int, str]]:
        """(field-id, name) of the current schema's top-level columns, in schema order."""
        if self._columns is None:
            self._columns = [(f["id"], f["name"]) for f in self.fields()]
        return self._columns

    def fields(self) -> list[dict]:
        """The current schema's top-level fields as the metadata JSON has them (id, name, type, required).

        Parsed once per file (metadata files never change) and shared: callers read it, never change it."""
        if self._fields is None:
            doc = orjson.loads(self.raw)
            current = doc.get("current-schema-id", 0)
            schemas = doc.get("schemas") or ([doc["schema"]] if "schema" in doc else [])
            schema = next((s for s in schemas if s.get("schema-id", 0) == current), schemas[0] if schemas else {})
            self._fields = list(schema.get("fields", []))
        return self._fields

    def without_fields(self, hidden_ids: set[int], refs_only: bool) -> bytes:
        """The metadata with the hidden top-level fields removed from every schema (column limits)."""
        key = (frozenset(hidden_ids), refs_only)
        cached = self._pruned.get(key)
        if cached is None:
            cached = self._prune(hidden_ids, refs_only)
            if len(self._pruned) < 64:
                self._pruned[key] = cached
        return cached

    def _prune(self, hidden_ids: set[int], refs_only: bool) -> bytes:
        doc = orjson.loads(self.refs_only() if refs_only else self.raw)
        for schema in doc.get("schemas") or []:
            schema["fields"] = [f for f in schema.get("fields", []) if f.get("id") not in hidden_ids]
            if schema.get("identifier-field-ids"):
                schema["identifier-field-ids"] = [i for i in schema["identifier-field-ids"] if i not in hidden_ids]
        if "schema" in doc:
            doc["schema"]["fields"] = [f for f in doc["schema"].get("fields", []) if f.get("id") not in hidden_ids]
        return orjson.dumps(doc)

    def partition_and_sort_sources(self) -> frozenset[int]:
        if self._sources is None:
            doc = orjson.loads(self.raw)
            sources = {f.get("source-id") for spec in doc.get("partition-specs") or [] for f in spec.get("fields", [])}
            sources |= {f.get("source-id") for order in doc.get("sort-orders") or [] for f in order.get("fields", [])}
            self._sources = frozenset(sources)
        return self._sources

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
    """LRU bounded by the bytes of metadata held (a catalog of 10,000 small tables fits in ~30 MB)."""

    def __init__(self, max_bytes: int = 256 * 1024 * 1024) -> None:
        self._entries: OrderedDict[str, CachedMetadata] = OrderedDict()
        self._max_bytes = max_bytes
        self._bytes = 0
        self._lock = threading.Lock()

    def peek(self, location: str) -> CachedMetadata | None:
        with self._lock:
            return self._entries.get(location)

    def get(self, location: str, read: Callable[[str], bytes]) -> CachedMetadata:
        with self._lock:
            entry = self._entries.get(location)
            if entry is not None:
                self._entries.move_to_end(location)
                return entry
        entry = CachedMetadata(location, read(location))
        self.put(entry)
        return entry

    def discard(self, location: str) -> None:
        """Forget a superseded version (a reader still holding its location reads the file again)."""
        with self._lock:
            evicted = self._entries.pop(location, None)
            if evicted is not None:
                self._bytes -= len(evicted.raw)

    def put(self, entry: CachedMetadata) -> None:
        with self._lock:
            previous = self._entries.pop(entry.location, None)
            if previous is not None:
                self._bytes -= len(previous.raw)
            self._entries[entry.location] = entry
            self._bytes += len(entry.raw)
            while self._bytes > self._max_bytes and len(self._entries) > 1:
                _location, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted.raw)
