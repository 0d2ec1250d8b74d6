"""Avro container bytes written by hand, for manifests no Iceberg writer would make (tests of the commit
checks' manifest reader, icemesh/tables/avro_manifests.py)."""

from __future__ import annotations

import json
import zlib

SYNC = b"0123456789abcdef"


def zigzag(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def text(s: str | bytes) -> bytes:
    raw = s.encode() if isinstance(s, str) else s
    return zigzag(len(raw)) + raw


def container(schema: dict, body: bytes, count: int, codec: str = "null", sync: bytes = SYNC) -> bytes:
    meta = {"avro.schema": json.dumps(schema).encode(), "avro.codec": codec.encode()}
    head = b"Obj\x01" + zigzag(len(meta)) + b"".join(text(k) + text(v) for k, v in meta.items()) + zigzag(0) + SYNC
    if codec == "deflate":
        packer = zlib.compressobj(wbits=-15)
        body = packer.compress(body) + packer.flush()
    return head + zigzag(count) + zigzag(len(body)) + body + sync


def entry_schema(data_file_fields: list[dict]) -> dict:
    return {"type": "record", "name": "manifest_entry", "fields": [
        {"name": "status", "type": "int", "field-id": 0},
        {"name": "snapshot_id", "type": ["null", "long"], "field-id": 1},
        {"name": "data_file", "field-id": 2, "type": {"type": "record", "name": "r2", "fields": data_file_fields}}]}
