"""Manifests and manifest lists read straight from their Avro bytes, for the few fields a commit check needs.

A commit check needs three things of each file a new snapshot names: its path, its status and its content
type. pyiceberg-core's reader builds the whole entry and pays about a millisecond a manifest before the first
entry (profiled on the append path: benchmarks/commit_path.py); this reader decodes the container itself and
keeps only those fields, skipping the rest by the writer's schema. Fields are found by their Iceberg field id,
as Iceberg's own readers resolve them, never by name: a file whose schema names a field `file_path` but gives
the path's id to another field is read as an engine would read it. Codecs other than null and deflate are
left to the other readers (`Unsupported`); anything that does not decode is `Malformed`.
"""

from __future__ import annotations

import json
import zlib
from typing import Any, Callable

from icemesh.compat.pyiceberg_core import AVRO_MAGIC, ListedManifest, ManifestEntry

# Iceberg's reserved field ids (the spec's manifest and manifest list schemas).
STATUS, DATA_FILE, SEQUENCE, FILE_SEQUENCE, FILE_PATH, FILE_CONTENT = 0, 2, 3, 4, 100, 134
ADDED = 1
MANIFEST_PATH, MANIFEST_CONTENT = 500, 517
MAX_DECODED_BYTES = 1 << 30  # a deflated block may not expand past this
MAX_SCHEMA_DEPTH = 32


class Unsupported(Exception):
    """A codec this reader leaves to the others."""


class Malformed(ValueError):
    """Bytes that are not an Avro file of the expected shape."""


def manifest_entries(data: bytes) -> list[ManifestEntry]:
    """Every entry of a manifest: (data or delete file path, status, content)."""
    wanted = {STATUS: None, DATA_FILE: {FILE_PATH: None, FILE_CONTENT: None}}
    found = []
    for record in _records(data, wanted):
        data_file = record.get(DATA_FILE)
        if not isinstance(data_file, dict) or not isinstance(data_file.get(FILE_PATH), str) \
                or not isinstance(record.get(STATUS), int):
            raise Malformed("a manifest entry without a status or a data file path")
        found.append(ManifestEntry(data_file[FILE_PATH], record[STATUS], _int(data_file.get(FILE_CONTENT, 0))))
    return found


def only_added_and_inheriting(data: bytes) -> bool:
    """Whether every entry is a file this manifest adds whose sequence numbers are left to the manifest list
    (null: inherited), as an append's new manifests are written: such a manifest means the same under any
    sequence number, so an append may be moved onto a newer snapshot (rebase.py)."""
    wanted = {STATUS: None, SEQUENCE: None, FILE_SEQUENCE: None, DATA_FILE: {FILE_CONTENT: None}}
    records = _records(data, wanted)
    return bool(records) and all(r.get(STATUS) == ADDED and r.get(SEQUENCE) is None and r.get(FILE_SEQUENCE) is None
                                 and isinstance(r.get(DATA_FILE), dict) and r[DATA_FILE].get(FILE_CONTENT, 0) == 0
                                 for r in records)


def manifest_list(data: bytes) -> list[ListedManifest]:
    """Every manifest a manifest list names: (path, content)."""
    found = []
    for record in _records(data, {MANIFEST_PATH: None, MANIFEST_CONTENT: None}):
        if not isinstance(record.get(MANIFEST_PATH), str):
            raise Malformed("a manifest list entry without a manifest path")
        found.append(ListedManifest(record[MANIFEST_PATH], _int(record.get(MANIFEST_CONTENT, 0))))
    return found


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise Malformed("a content type that is not an int")
    return value


# -- the container -------------------------------------------------------------------------------------


class _Bytes:
    """A cursor over bytes that never reads past their end."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data, self.pos, self.end = data, pos, len(data) if end is None else end

    def long(self) -> int:
        data, pos, shift, value = self.data, self.pos, 0, 0
        while True:
            if pos >= self.end or shift > 63:
                raise Malformed("a truncated or overlong integer")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
        self.pos = pos
        return (value >> 1) ^ -(value & 1)

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > self.end:
            raise Malformed("a length past the end of the data")
        start = self.pos
        self.pos += size
        return self.data[start:self.pos]

    def skip(self, size: int) -> None:
        if size < 0 or self.pos + size > self.end:
            raise Malformed("a length past the end of the data")
        self.pos += size


def _records(data: bytes, wanted: dict[int, Any]) -> list[dict[int, Any]]:
    if not data.startswith(AVRO_MAGIC):
        raise Malformed("not an Avro file")
    cursor = _Bytes(data, len(AVRO_MAGIC))
    meta: dict[str, bytes] = {}
    _blocks(cursor, lambda c: meta.__setitem__(c.take(c.long()).decode("utf-8", "replace"), c.take(c.long())))
    codec = meta.get("avro.codec", b"null").decode("ascii", "replace")
    if codec not in ("null", "deflate"):
        raise Unsupported(codec)
    try:
        schema = json.loads(meta["avro.schema"])
    except (KeyError, ValueError, RecursionError):
        raise Malformed("no readable writer schema") from None
    read = _Compiler().value(schema, wanted, 0)
    sync = cursor.take(16)
    records: list[dict[int, Any]] = []
    decoded = 0
    while cursor.pos < cursor.end:
        count, size = cursor.long(), cursor.long()
        block = cursor.take(size)
        if codec == "deflate":
            inflater = zlib.decompressobj(-15)
            try:
                block = inflater.decompress(block, MAX_DECODED_BYTES - decoded)
            except zlib.error:
                raise Malformed("a block that does not inflate") from None
            if inflater.unconsumed_tail:
                raise Malformed(f"blocks that inflate past {MAX_DECODED_BYTES >> 20} MiB")
        decoded += len(block)
        if cursor.take(16) != sync:
            raise Malformed("a block without the file's sync marker")
        if count < 0 or count > len(block):  # every record holds at least a status or a path: one byte or more
            raise Malformed("a block count past its bytes")
        items = _Bytes(block)
        for _ in range(count):
            start = items.pos
            record = read(items)
            if items.pos == start or not isinstance(record, dict):
                raise Malformed("a record that is not an Iceberg entry")
            records.append(record)
        if items.pos != items.end:
            raise Malformed("a block with bytes after its records")
    return records


def _blocks(cursor: _Bytes, item: Callable[[_Bytes], None]) -> None:
    """Avro's blocked encoding (arrays, maps, the file's metadata): counts until a zero, each item at least
    a byte (so a count can never outrun the data)."""
    while True:
        count = cursor.long()
        if count == 0:
            return
        if count < 0:
            count = -count
            cursor.long()  # the block's byte size
        if count > cursor.end - cursor.pos:
            raise Malformed("a block count past the end of the data")
        for _ in range(count):
            start = cursor.pos
            item(cursor)
            if cursor.pos == start:
                raise Malformed("an empty item in an array or map")


# -- the writer's schema, compiled into readers and skippers -------------------------------------------


_FIXED_WIDTH = {"null": 0, "boolean": 1, "float": 4, "double": 8}


class _Compiler:
    """Readers for the wanted fields (by field id, nested dicts for nested records), skippers for the rest."""

    def __init__(self) -> None:
        self.named: dict[str, Any] = {}

    def value(self, schema: Any, wanted: dict[int, Any] | None, depth: int) -> Callable[[_Bytes], Any]:
        """A reader of `schema`: a record's wanted fields as {field id: value}; ints, longs and strings as
        themselves; anything else is only skipped (None)."""
        if depth > MAX_SCHEMA_DEPTH:
            raise Malformed("a schema nested too deep")
        schema = self._resolved(schema)
        if isinstance(schema, list):
            branches = [self.value(b, wanted, depth + 1) for b in schema]

            def union(c: _Bytes) -> Any:
                index = c.long()
                if not 0 <= index < len(branches):
                    raise Malformed("a union branch that does not exist")
                return branches[index](c)
            return union
        kind = schema.get("type") if isinstance(schema, dict) else schema
        if isinstance(kind, (dict, list)):  # {"type": {...}}: a nested definition
            return self.value(kind, wanted, depth + 1)
        if kind == "record":
            return self._record(schema, wanted or {}, depth)
        if kind in ("int", "long", "enum"):
            return _Bytes.long
        if kind == "string":
            return lambda c: _text(c.take(c.long()))
        return self.skipper(schema, depth)

    def skipper(self, schema: Any, depth: int) -> Callable[[_Bytes], None]:
        if depth > MAX_SCHEMA_DEPTH:
            raise Malformed("a schema nested too deep")
        schema = self._resolved(schema)
        if isinstance(schema, list):
            branches = [self.skipper(b, depth + 1) for b in schema]

            def union(c: _Bytes) -> None:
                index = c.long()
                if not 0 <= index < len(branches):
                    raise Malformed("a union branch that does not exist")
                branches[index](c)
            return union
        kind = schema.get("type") if isinstance(schema, dict) else schema
        if isinstance(kind, (dict, list)):
            return self.skipper(kind, depth + 1)
        if kind in _FIXED_WIDTH:
            width = _FIXED_WIDTH[kind]
            return lambda c: c.skip(width)
        if kind in ("int", "long", "enum"):
            return _Bytes.long
        if kind in ("string", "bytes"):
            return lambda c: c.skip(c.long())
        if kind == "fixed":
            size = schema.get("size")
            if not isinstance(size, int) or size < 0:
                raise Malformed("a fixed type without a size")
            return lambda c: c.skip(size)
        if kind == "array":
            item = self.skipper(schema.get("items"), depth + 1)
            return lambda c: _blocks(c, item)
        if kind == "map":
            value = self.skipper(schema.get("values"), depth + 1)

            def entry(c: _Bytes) -> None:
                c.skip(c.long())
                value(c)
            return lambda c: _blocks(c, entry)
        if kind == "record":
            fields = [self.skipper(f.get("type"), depth + 1) for f in self._fields(schema)]

            def record(c: _Bytes) -> None:
                for skip in fields:
                    skip(c)
            return record
        raise Malformed(f"an Avro type this reader does not know: {str(kind)[:40]}")

    def _record(self, schema: dict, wanted: dict[int, Any], depth: int) -> Callable[[_Bytes], dict[int, Any]]:
        steps: list[tuple[int | None, Callable[[_Bytes], Any]]] = []
        seen: set[int] = set()
        for f in self._fields(schema):
            field_id = f.get("field-id")
            if isinstance(field_id, int) and field_id in wanted:
                if field_id in seen:
                    raise Malformed(f"field id {field_id} given to two fields")
                seen.add(field_id)
                steps.append((field_id, self.value(f.get("type"), wanted[field_id], depth + 1)))
            else:
                steps.append((None, self.skipper(f.get("type"), depth + 1)))

        def record(c: _Bytes) -> dict[int, Any]:
            found: dict[int, Any] = {}
            for field_id, step in steps:
                if field_id is None:
                    step(c)
                else:
                    found[field_id] = step(c)
            return found
        return record

    def _fields(self, schema: dict) -> list[dict]:
        name, fields = schema.get("name"), schema.get("fields")
        if not isinstance(fields, list) or not all(isinstance(f, dict) for f in fields):
            raise Malformed("a record without a field list")
        if isinstance(name, str):
            self.named.setdefault(name, schema)
        return fields

    def _resolved(self, schema: Any) -> Any:
        """A named type's definition for a reference to it (records and fixed types are named once, then
        referred to by name); primitives stay as they are."""
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            found = self.named.get(schema)
            if found is None:
                raise Malformed(f"a reference to an undefined type: {schema[:40]}")
            return found
        if isinstance(schema, dict) and isinstance(schema.get("name"), str) and schema.get("type") in ("fixed", "enum"):
            self.named.setdefault(schema["name"], schema)
        return schema


_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("a path that is not UTF-8") from None
