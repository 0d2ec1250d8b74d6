"""icemesh's own manifest reader (icemesh/tables/avro_manifests.py): the same entries as pyiceberg-core's reader on
files pyiceberg writes, fields found by Iceberg field id (never by name), and hostile bytes refused with
Malformed (a commit check then answers 400), never a hang, a crash or a huge allocation."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from icemesh.compat import pyiceberg_core as fast
from icemesh.compat.pyiceberg_core import ListedManifest, ManifestEntry
from icemesh.tables import avro_manifests as av
from tests.avro_bytes import container, entry_schema, text, zigzag

PLAIN = entry_schema([{"name": "content", "type": "int", "field-id": 134},
                      {"name": "file_path", "type": "string", "field-id": 100},
                      {"name": "value_counts", "field-id": 109, "type": ["null", {"type": "array", "items": {
                          "type": "record", "name": "k119_v120", "fields": [
                              {"name": "key", "type": "int", "field-id": 119},
                              {"name": "value", "type": "long", "field-id": 120}]}}]},
                      {"name": "key_metadata", "type": ["null", "bytes"], "field-id": 131},
                      {"name": "digest", "type": {"type": "fixed", "name": "d16", "size": 16}, "field-id": 900},
                      {"name": "again", "type": "d16", "field-id": 901}])


def plain_entry(path: str, status: int = 1, content: int = 0) -> bytes:
    counts = zigzag(1) + zigzag(2) + zigzag(1) + zigzag(10) + zigzag(2) + zigzag(20) + zigzag(0)  # union branch 1
    return (zigzag(status) + zigzag(1) + zigzag(7) + zigzag(content) + text(path) + counts + zigzag(0)
            + b"D" * 16 + b"E" * 16)


# -- what pyiceberg writes: the same as pyiceberg-core reads -------------------------------------------


@pytest.mark.parametrize("format_version", [1, 2])  # v3: Spark commits them over HTTP in test_rest_spark.py
def test_pyiceberg_written_files_read_as_pyiceberg_core_reads_them(tmp_path, format_version):
    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}")
    catalog.create_namespace("n")
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("region", pa.string())])
    table = catalog.create_table("n.t", schema=schema, properties={"format-version": str(format_version)})
    for i in range(3):
        table.append(pa.Table.from_pylist([{"id": i, "region": "EU"}, {"id": 10 + i, "region": "US"}], schema=schema))
    if format_version >= 2:
        table.delete("id = 1")  # a rewrite: deleted and existing entries beside added ones
    with table.io.new_input(table.current_snapshot().manifest_list).open() as f:
        listed = fast.read_manifest_list(f.read())
    assert len(listed) >= 2
    for manifest in listed:
        with table.io.new_input(manifest.path).open() as f:
            data = f.read()
        ours = av.manifest_entries(data)
        assert ours == fast.read_manifest_entries(data) and ours
        assert all(e.path.endswith(".parquet") for e in ours)
    statuses = {e.status for m in listed for e in av.manifest_entries(table.io.new_input(m.path).open().read())}
    assert 1 in statuses


def test_a_many_file_manifest_and_both_codecs():
    body = b"".join(plain_entry(f"file:///w/t/data/{i}.parquet", status=i % 3, content=i % 2) for i in range(500))
    want = [ManifestEntry(f"file:///w/t/data/{i}.parquet", i % 3, i % 2) for i in range(500)]
    assert av.manifest_entries(container(PLAIN, body, 500)) == want
    assert av.manifest_entries(container(PLAIN, body, 500, "deflate")) == want


def test_v1_shapes_default_to_data():
    v1 = entry_schema([{"name": "file_path", "type": "string", "field-id": 100}])
    assert av.manifest_entries(container(v1, zigzag(1) + zigzag(0) + text("file:///w/a.parquet"), 1)) == [
        ManifestEntry("file:///w/a.parquet", 1, 0)]
    listing = {"type": "record", "name": "manifest_file", "fields": [
        {"name": "manifest_path", "type": "string", "field-id": 500},
        {"name": "manifest_length", "type": "long", "field-id": 501}]}
    assert av.manifest_list(container(listing, text("file:///w/m.avro") + zigzag(9), 1)) == [
        ListedManifest("file:///w/m.avro", 0)]


# -- hostile files --------------------------------------------------------------------------------------


def test_fields_are_found_by_field_id_not_by_name():
    """A data file whose schema calls a field `file_path` but gives the path's id (100) to another: read as
    Iceberg's readers read it, so a commit check sees the path an engine would open."""
    swapped = entry_schema([{"name": "file_path", "type": "string", "field-id": 999},
                            {"name": "decoy", "type": "string", "field-id": 100}])
    data = container(swapped, zigzag(1) + zigzag(0) + text("file:///w/mine/a.parquet") + text("file:///w/victim/b.parquet"), 1)
    assert av.manifest_entries(data) == [ManifestEntry("file:///w/victim/b.parquet", 1, 0)]


@pytest.mark.parametrize("case", ["truncated", "bad sync", "count past bytes", "trailing bytes", "overlong varint",
                                  "no path", "two path ids", "undefined type", "self-nested", "not avro",
                                  "bad union", "negative length", "deep schema", "zero-width records"])
def test_malformed_files_are_refused(case):
    good = container(PLAIN, plain_entry("file:///w/a.parquet"), 1)
    data = {
        "truncated": good[:-20],
        "bad sync": container(PLAIN, plain_entry("file:///w/a.parquet"), 1, sync=b"X" * 16),
        "count past bytes": container(PLAIN, plain_entry("file:///w/a.parquet"), 10 ** 12),
        "trailing bytes": container(PLAIN, plain_entry("file:///w/a.parquet") + b"\x00", 1),
        "overlong varint": container(PLAIN, b"\xff" * 20, 1),
        "no path": container(entry_schema([{"name": "content", "type": "int", "field-id": 134}]),
                             zigzag(1) + zigzag(0) + zigzag(0), 1),
        "two path ids": container(entry_schema([{"name": "a", "type": "string", "field-id": 100},
                                                {"name": "b", "type": "string", "field-id": 100}]),
                                  zigzag(1) + zigzag(0) + text("x") + text("y"), 1),
        "undefined type": container(entry_schema([{"name": "file_path", "type": "string", "field-id": 100},
                                                  {"name": "x", "type": "nowhere", "field-id": 5}]),
                                    zigzag(1) + zigzag(0) + text("x"), 1),
        "self-nested": container({"type": "record", "name": "loop", "fields": [
            {"name": "status", "type": "int", "field-id": 0}, {"name": "next", "type": ["null", "loop"], "field-id": 7}]},
            zigzag(1) + zigzag(0), 1),
        "not avro": b"PAR1 this is not avro",
        "bad union": container(PLAIN, zigzag(1) + zigzag(5), 1),
        "negative length": container(PLAIN, zigzag(1) + zigzag(0) + zigzag(0) + zigzag(0) + zigzag(-3), 1),
        "deep schema": container(_nested(60), zigzag(1), 1),
        "zero-width records": container({"type": "record", "name": "e", "fields": [
            {"name": "n", "type": "null", "field-id": 0}]}, b"", 3),
    }[case]
    with pytest.raises(av.Malformed):
        av.manifest_entries(data)


def _nested(depth: int) -> dict:
    schema: dict = {"type": "record", "name": "leaf", "fields": [{"name": "status", "type": "int", "field-id": 0}]}
    for i in range(depth):
        schema = {"type": "record", "name": f"n{i}", "fields": [{"name": "x", "type": schema, "field-id": 2}]}
    return schema


def test_a_deflate_bomb_stops_at_the_bound(monkeypatch):
    monkeypatch.setattr(av, "MAX_DECODED_BYTES", 1 << 20)
    bomb = container(PLAIN, plain_entry("file:///w/a.parquet") + b"\x00" * (8 << 20), 1, "deflate")
    assert len(bomb) < 64 * 1024
    with pytest.raises(av.Malformed, match="inflate past"):
        av.manifest_entries(bomb)


def test_other_codecs_are_left_to_the_other_readers():
    data = container(PLAIN, plain_entry("file:///w/a.parquet"), 1, codec="snappy")
    with pytest.raises(av.Unsupported):
        av.manifest_entries(data)


def test_a_huge_declared_length_allocates_nothing():
    data = b"Obj\x01" + zigzag(1) + text("avro.schema") + zigzag(1 << 40)
    with pytest.raises(av.Malformed):
        av.manifest_entries(data)
