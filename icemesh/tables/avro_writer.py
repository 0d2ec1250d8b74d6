"""Write an Avro object container file from plain Python values, for the manifests icemesh writes itself.

Why not pyiceberg's writer: importing pyiceberg's manifest module and its models costs a dbt invocation about
0.3 s before the first byte is written, and a product publish needs only two small files of fixed shape.
Only what those files use is encoded: null, boolean, int, long, string, bytes, records, arrays and unions
whose first branch is null. The reader side is avro_manifests.py (decoding by Iceberg field id).
"""

from __future__ import annotations

import json
import os
import zlib
from typing import Any

MAGIC = b"Obj\x01"


def _long(value: int, out: bytearray) -> None:
    zigzag = (value << 1) ^ (value >> 63)
    while zigzag > 0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)


def _bytes(value: bytes, out: bytearray) -> None:
    _long(len(value), out)
    out += value


def _encode(schema: Any, value: Any, out: bytearray) -> None:
    if isinstance(schema, list):  # a union: ["null", T]
        if value is None:
            out.append(0)
            return
        out.append(2)  # branch 1, zigzag-encoded
        _encode(schema[1], value, out)
        return
    kind = schema if isinstance(schema, str) else schema["type"]
    if kind in ("int", "long"):
        _long(int(value), out)
    elif kind == "string":
        _bytes(value.encode("utf-8"), out)
    elif kind == "bytes":
        _bytes(bytes(value), out)
    elif kind == "boolean":
        out.append(1 if value else 0)
    elif kind == "record":
        for f in schema["fields"]:
            _encode(f["type"], value.get(f["name"]), out)
    elif kind == "array":
        if value:
            _long(len(value), out)
            for item in value:
                _encode(schema["items"], item, out)
        out.append(0)
    else:
        raise ValueError(f"avro type {kind!r} is not written here")


def container(schema: dict, records: list[dict], metadata: dict[str, str]) -> bytes:
    """The whole file: header (schema, codec, the caller's metadata), one deflate block, sync marker."""
    sync = os.urandom(16)
    header = bytearray(MAGIC)
    entries = {"avro.schema": json.dumps(schema, separators=(",", ":")), "avro.codec": "deflate", **metadata}
    _long(len(entries), header)
    for key, text in entries.items():
        _bytes(key.encode("utf-8"), header)
        _bytes(text.encode("utf-8"), header)
    header.append(0)
    header += sync
    body = bytearray()
    for record in records:
        _encode(schema, record, body)
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)  # Avro's deflate codec is raw deflate (RFC 1951)
    packed = packer.compress(bytes(body)) + packer.flush()
    block = bytearray()
    _long(len(records), block)
    _long(len(packed), block)
    return bytes(header) + bytes(block) + packed + sync
