"""Publish the commonest product, a table model that replaces an unpartitioned product of the same columns,
without pyiceberg: DuckDB writes the Parquet file (with Iceberg field ids), icemesh writes the manifest and
the manifest list, and the commit goes to the catalog as plain REST JSON.

Why: the full writer (writer.py) imports pyiceberg's table layer, pyarrow's datasets and pandas, about
0.7 s of every dbt invocation, and each publish then converts the rows to Arrow and back. Anything else (a new
product, a schema or partition change, incremental modes, a type outside the plain ones,
object storage, `write.*` settings, OpenLineage) answers None here and goes to the full writer, so both
paths give one product the same schema, properties and rows; the catalog checks this commit as any other.
"""

from __future__ import annotations

import datetime
import os
import re
import struct
import time
import uuid
from urllib.parse import quote, unquote, urlsplit

from icemesh.client import ClientError
from icemesh.dbt import catalogs, openlineage, tagging
from icemesh.dbt.product import ProductSpec
from icemesh.dbt.publishing import WriteResult, product_properties, snapshot_properties, stale_properties
from icemesh.tables import manifest_writer

COMMIT_ATTEMPTS = 4
# DuckDB's column types that Parquet holds exactly as Iceberg's (the full writer maps them the same way).
_TYPES = {"BOOLEAN": "boolean", "INTEGER": "int", "BIGINT": "long", "FLOAT": "float", "DOUBLE": "double",
          "DATE": "date", "VARCHAR": "string", "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamptz"}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
_LONGEST_DECIMAL = 18  # DuckDB writes wider decimals as 16-byte fixed, not the minimal width Iceberg names
_CODECS = {"zstd", "snappy", "gzip", "uncompressed"}
_EPOCH = datetime.date(1970, 1, 1)
STRING_BOUND_CHARS = 16  # as Iceberg's default metrics mode, truncate(16)
_SAFE_PATH = re.compile(r"/[A-Za-z0-9/_.=+@%~,:-]*")  # what a table's folder may hold for its path to be a literal


class NotLean(Exception):
    """The product needs the full writer."""


def iceberg_type(duckdb_type: str) -> str | None:
    text = str(duckdb_type)
    decimal = _DECIMAL.fullmatch(text)
    if decimal:
        return f"decimal({decimal.group(1)}, {decimal.group(2)})" if int(decimal.group(1)) <= _LONGEST_DECIMAL else None
    return _TYPES.get(text)


def _bound(kind: str, text: str, upper: bool) -> bytes | None:
    """Iceberg's single-value serialisation of an exact Parquet statistic, for the types it is kept for; None
    for the others (floats' NaN rules, decimals, timestamps) and for a value it cannot read: no bound rather
    than a doubtful one."""
    try:
        if kind == "long":
            return struct.pack("<q", int(text))
        if kind == "int":
            return struct.pack("<i", int(text))
        if kind == "date":
            return struct.pack("<i", (datetime.date.fromisoformat(text) - _EPOCH).days)
        if kind == "boolean":
            return {"true": b"\x01", "false": b"\x00"}[text]
    except (ValueError, KeyError, struct.error):
        return None
    if kind == "string":
        if len(text) <= STRING_BOUND_CHARS:
            return text.encode("utf-8")
        if not upper:
            return text[:STRING_BOUND_CHARS].encode("utf-8")  # a prefix is still a lower bound
        head = text[:STRING_BOUND_CHARS]
        for i in range(len(head) - 1, -1, -1):  # the shortest string above every value with this prefix
            following = ord(head[i]) + 1
            if 0xD800 <= following <= 0xDFFF:
                following = 0xE000
            if following <= 0x10FFFF:
                return (head[:i] + chr(following)).encode("utf-8")
    return None


def _local_path(location: str) -> str | None:
    if location.startswith("/"):
        return location
    parts = urlsplit(location)
    if parts.scheme == "file" and parts.netloc in ("", "localhost"):
        return unquote(parts.path)
    return None


class LeanWriter:
    def __init__(self, client, connection, memo: dict) -> None:
        self.client = client          # the project's principal: loads and commits over REST
        self.connection = connection  # the dbt-duckdb connection the model's SQL runs on
        self.memo = memo              # shared with the full writer: the tag vocabulary

    def _path(self, spec: ProductSpec) -> str:
        namespace = "\x1f".join(spec.namespace.split("."))
        return (f"/v1/{quote(self.client.prefix(), safe='')}/namespaces/{quote(namespace, safe='')}/tables/"
                f"{quote(spec.table, safe='')}")

    def publish(self, spec: ProductSpec) -> WriteResult | None:
        """The result, or None when this product needs the full writer (nothing was written then)."""
        if spec.mode != "replace" or spec.partition_by or openlineage.configured():
            return None
        started = time.perf_counter()
        elsewhere = catalogs.mismatch(spec.catalog_entry, self.client.uri, self.client.warehouse)
        if elsewhere:
            raise ValueError(elsewhere)
        cursor = self.connection.cursor()
        try:
            return self._publish(spec, cursor, started)
        finally:
            cursor.close()

    def _publish(self, spec: ProductSpec, cursor, started: float) -> WriteResult | None:
        relation = cursor.sql(spec.sql)
        if relation is None:
            return None
        columns = list(relation.columns)
        lowered = [c.lower() for c in columns]
        for key in spec.unique_key:
            if key.lower() not in lowered:
                raise ValueError(f"unique_key {key!r} is not a column of the model")
        wanted = [iceberg_type(t) for t in relation.types]
        if None in wanted or len(set(lowered)) != len(lowered):
            return None
        if "vocabulary" not in self.memo:
            self.memo["vocabulary"] = tagging.vocabulary(self.client)
        tagging.check(self.memo["vocabulary"], spec, columns)  # all checks before any write
        properties = product_properties(spec, columns)
        try:
            loaded = self.client.request("GET", self._path(spec))
        except ClientError as exc:
            if exc.code != 404:
                raise
            loaded = self._stage(spec, columns, wanted, properties)  # a new product: staged, created by the commit
            if loaded is None:
                return None
        try:
            table = _Table(loaded["metadata"], spec, columns, wanted, creating=loaded.get("staged", False))
        except NotLean:
            return None

        data_file, written = self._write(cursor, relation, table)
        if data_file is None:
            return None  # no rows: the full writer records an empty product its own way
        for name in table.required:  # a contract's not_null, from the file's own null counts
            nulls = data_file.null_counts.get(table.field_ids[name])
            if nulls is None or nulls:
                _remove(written)
                if nulls is None:
                    return None  # not counted: the full writer checks the rows
                raise ValueError(f"column {name} has {nulls} null values, but the contract makes it not_null")
        manifest_path = f"{table.location}/metadata/{uuid.uuid4()}-m0.avro"
        posted = False  # after a commit is sent, only the catalog's refusal says its files are ours to remove
        try:
            manifest = manifest_writer.data_manifest([data_file], table.snapshot_id, table.schema, table.spec_id)
            written.append(_write_file(_local_path(manifest_path), manifest))
            for attempt in range(COMMIT_ATTEMPTS):
                body, listed = table.commit_body(spec, data_file, manifest_path, len(manifest), properties)
                written.append(_write_file(_local_path(listed), body.pop("_list")))
                try:
                    posted = True
                    self.client.request("POST", self._path(spec), json=body)
                    break
                except ClientError as exc:
                    if exc.code == 409 and table.creating:
                        raise NotLean from None  # another run created it meanwhile: the full writer replaces it
                    if exc.code != 409 or attempt == COMMIT_ATTEMPTS - 1:
                        raise
                time.sleep(0.05 * 2 ** attempt)  # another writer won: replace what it committed
                _remove([written.pop()])
                again = _Table(self.client.request("GET", self._path(spec))["metadata"], spec, columns, wanted,
                               snapshot_id=table.snapshot_id)
                if (again.schema["schema-id"], again.spec_id) != (table.schema["schema-id"], table.spec_id):
                    raise NotLean
                table = again
        except NotLean:
            _remove(written)  # the product changed shape meanwhile: the full writer takes it from here
            return None
        except ClientError as exc:
            if not posted or 400 <= exc.code < 500:
                _remove(written)  # refused: nothing of it stays in the table's folders
            raise
        except BaseException:
            if not posted:
                _remove(written)
            raise  # the commit's outcome is unknown (5xx, a lost connection): its files stay
        mode = "create" if table.creating else "replace"
        return WriteResult(spec.identifier, mode, data_file.records, table.snapshot_id, time.perf_counter() - started)

    def _stage(self, spec: ProductSpec, columns: list[str], wanted: list[str],
               properties: dict[str, str]) -> dict | None:
        """A staged create of the product (nothing exists until the commit), or None for the full writer: a
        namespace that does not exist yet."""
        fields = []
        for i, (name, kind) in enumerate(zip(columns, wanted), start=1):
            column = spec.column(name)
            fields.append({"id": i, "name": name, "required": bool(column and column.not_null), "type": kind,
                           **({"doc": column.description} if column and column.description else {})})
        namespace = "\x1f".join(spec.namespace.split("."))
        path = f"/v1/{quote(self.client.prefix(), safe='')}/namespaces/{quote(namespace, safe='')}/tables"
        try:
            staged = self.client.request("POST", path, json={
                "name": spec.table, "stage-create": True, "properties": properties,
                "schema": {"type": "struct", "schema-id": 0, "fields": fields},
                "partition-spec": {"spec-id": 0, "fields": []}, "write-order": {"order-id": 0, "fields": []}})
        except ClientError as exc:
            if exc.code in (404, 409):  # no namespace yet, or created meanwhile: the full writer's cases
                return None
            raise
        return {**staged, "staged": True}

    def _write(self, cursor, relation, table: "_Table"):
        path = f"{table.location}/data/00000-0-{uuid.uuid4()}.parquet"
        local = _local_path(path)
        os.makedirs(os.path.dirname(local), exist_ok=True)
        written = [local]
        try:
            relation.write_parquet(local, compression=table.codec, field_ids=dict(table.field_ids))
            # The path as a literal, not a parameter: DuckDB imports pandas (0.3 s) to convert a Python parameter.
            # _SAFE_PATH lets no quote or control character in, so the literal cannot end early.
            literal = f"'{local}'"
            stats = cursor.execute(
                "select path_in_schema, sum(num_values), sum(stats_null_count), sum(total_compressed_size), "
                "min(row_group_id), bool_and(min_is_exact), bool_and(max_is_exact), "
                f"list(stats_min_value), list(stats_max_value) from parquet_metadata({literal}) group by path_in_schema"
            ).fetchall()
            rows = cursor.execute(f"select num_rows from parquet_file_metadata({literal})").fetchone()[0]
            if not rows:
                _remove(written)
                return None, []
            data_file = manifest_writer.NewDataFile(path=path, size=os.path.getsize(local), records=rows)
            for name, values, nulls, size, _, min_exact, max_exact, minimums, maximums in stats:
                if name not in table.field_ids:
                    continue
                field_id, kind = table.field_ids[name], table.kinds[name]
                data_file.value_counts[field_id] = int(values)
                data_file.column_sizes[field_id] = int(size)
                if nulls is not None:
                    data_file.null_counts[field_id] = int(nulls)
                present = [(m, n) for m, n in zip(minimums, maximums) if m is not None and n is not None]
                if min_exact and max_exact and present and len(present) == len(minimums):
                    lows = [_bound(kind, m, upper=False) for m, _ in present]
                    highs = [_bound(kind, n, upper=True) for _, n in present]
                    if None not in lows and None not in highs:
                        key = _order(kind)
                        data_file.lower_bounds[field_id] = min(lows, key=key)
                        data_file.upper_bounds[field_id] = max(highs, key=key)
        except BaseException:
            _remove(written)  # a model that fails half way leaves no part of a file behind
            raise
        return data_file, written


def _order(kind: str):
    """How bounds compare: numbers by value, strings and booleans by their bytes."""
    if kind == "long":
        return lambda b: struct.unpack("<q", b)[0]
    if kind in ("int", "date"):
        return lambda b: struct.unpack("<i", b)[0]
    return lambda b: b


class _Table:
    """An existing product's metadata, checked to be one the lean writer may replace, and its next snapshot."""

    def __init__(self, metadata: dict, spec: ProductSpec, columns: list[str], wanted: list[str],
                 snapshot_id: int | None = None, creating: bool = False) -> None:
        self.metadata = metadata
        self.creating = creating  # a staged create: the commit makes the table, its first snapshot included
        if metadata.get("format-version") != 2:
            raise NotLean
        self.location = metadata["location"].rstrip("/")
        local = _local_path(self.location)
        if local is None or not _SAFE_PATH.fullmatch(local):
            raise NotLean
        specs = {s["spec-id"]: s for s in metadata.get("partition-specs", [])}
        self.spec_id = metadata.get("default-spec-id", 0)
        if specs.get(self.spec_id, {}).get("fields"):
            raise NotLean
        properties = metadata.get("properties") or {}
        codec = properties.get("write.parquet.compression-codec", "zstd").lower()
        if codec not in _CODECS or any(k.startswith("write.") and k != "write.parquet.compression-codec"
                                       for k in properties):
            raise NotLean
        self.codec = codec
        self.properties = properties
        schemas = {s["schema-id"]: s for s in metadata.get("schemas", [])}
        self.schema = schemas[metadata["current-schema-id"]]
        fields = self.schema["fields"]
        if [f["name"] for f in fields] != columns:
            raise NotLean
        for f, kind in zip(fields, wanted):
            column = spec.column(f["name"])
            doc = (column.description or None) if column else None
            if bool(f.get("required")) != bool(column and column.not_null) or not isinstance(f["type"], str) \
                    or f["type"].replace(" ", "") != kind.replace(" ", "") or (doc and doc != f.get("doc")):
                raise NotLean  # a schema change, or a contract to check row by row: the full writer's work
        self.field_ids = {f["name"]: f["id"] for f in fields}
        self.required = [f["name"] for f in fields if f.get("required")]
        self.kinds = {f["name"]: f["type"] for f in fields}
        self.snapshot_id = snapshot_id or (int.from_bytes(os.urandom(8), "big") & ((1 << 63) - 1)) or 1
        current = metadata.get("current-snapshot-id")
        self.parent = current if current is not None and current >= 0 else None
        self.parent_summary = next((s.get("summary") or {} for s in metadata.get("snapshots", [])
                                    if s["snapshot-id"] == self.parent), {})

    def commit_body(self, spec: ProductSpec, data_file, manifest_path: str, manifest_length: int,
                    properties: dict[str, str]) -> tuple[dict, str]:
        """The commit (its manifest list's bytes under `_list`) and the list's location."""
        sequence = int(self.metadata.get("last-sequence-number", 0)) + 1
        listed = f"{self.location}/metadata/snap-{self.snapshot_id}-0-{uuid.uuid4()}.avro"
        manifest = {
            "manifest_path": manifest_path, "manifest_length": manifest_length, "partition_spec_id": self.spec_id,
            "content": 0, "sequence_number": sequence, "min_sequence_number": sequence,
            "added_snapshot_id": self.snapshot_id, "added_files_count": 1, "existing_files_count": 0,
            "deleted_files_count": 0, "added_rows_count": data_file.records, "existing_rows_count": 0,
            "deleted_rows_count": 0, "partitions": []}
        summary = {"operation": "overwrite" if self.parent is not None else "append", **self._summary(data_file),
                   **snapshot_properties(spec)}
        snapshot = {"snapshot-id": self.snapshot_id, "sequence-number": sequence,
                    "timestamp-ms": int(time.time() * 1000), "manifest-list": listed, "summary": summary,
                    "schema-id": self.schema["schema-id"]}
        if self.parent is not None:
            snapshot["parent-snapshot-id"] = self.parent
        updates = [{"action": "add-snapshot", "snapshot": snapshot},
                   {"action": "set-snapshot-ref", "ref-name": "main", "type": "branch",
                    "snapshot-id": self.snapshot_id},
                   {"action": "set-properties", "updates": properties}]
        stale = stale_properties(self.properties, properties)
        if stale:
            updates.append({"action": "remove-properties", "removals": stale})
        if self.creating:
            requirements = [{"type": "assert-create"}]
            updates = self._creation() + updates
        else:
            requirements = [{"type": "assert-table-uuid", "uuid": self.metadata["table-uuid"]},
                            {"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": self.parent},
                            {"type": "assert-current-schema-id", "current-schema-id": self.schema["schema-id"]},
                            {"type": "assert-default-spec-id", "default-spec-id": self.spec_id}]
        namespace = spec.namespace.split(".")
        body = {"identifier": {"namespace": namespace, "name": spec.table}, "requirements": requirements,
                "updates": updates,
                "_list": manifest_writer.manifest_list([manifest], self.snapshot_id, self.parent, sequence)}
        return body, listed

    def _creation(self) -> list[dict]:
        """What a staged create's commit sets first, as every REST client's create transaction does."""
        m = self.metadata
        orders = {o["order-id"]: o for o in m.get("sort-orders", [])}
        return [{"action": "assign-uuid", "uuid": m["table-uuid"]},
                {"action": "upgrade-format-version", "format-version": m["format-version"]},
                {"action": "add-schema", "schema": self.schema, "last-column-id": m.get("last-column-id")},
                {"action": "set-current-schema", "schema-id": -1},
                {"action": "add-spec", "spec": {"spec-id": self.spec_id, "fields": []}},
                {"action": "set-default-spec", "spec-id": -1},
                {"action": "add-sort-order", "sort-order": orders.get(m.get("default-sort-order-id", 0),
                                                                     {"order-id": 0, "fields": []})},
                {"action": "set-default-sort-order", "sort-order-id": -1},
                {"action": "set-location", "location": m["location"]}]

    def _summary(self, data_file) -> dict[str, str]:
        """pyiceberg's summary keys for a replace: what was added, what went, and the new totals."""
        before = self.parent_summary
        summary = {"added-data-files": "1", "added-records": str(data_file.records),
                   "added-files-size": str(data_file.size)}
        for gone, total in (("deleted-data-files", "total-data-files"), ("deleted-records", "total-records"),
                            ("removed-files-size", "total-files-size"), ("removed-delete-files", "total-delete-files"),
                            ("removed-position-deletes", "total-position-deletes"),
                            ("removed-equality-deletes", "total-equality-deletes")):
            if int(before.get(total, 0) or 0):
                summary[gone] = str(before[total])
        summary.update({"total-data-files": "1", "total-delete-files": "0", "total-records": str(data_file.records),
                        "total-files-size": str(data_file.size), "total-position-deletes": "0",
                        "total-equality-deletes": "0"})
        return summary


def _write_file(path: str, data: bytes) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "xb") as f:
        f.write(data)
    return path


def _remove(paths: list[str]) -> None:
    for path in paths:
        try:
            os.remove(path)
        except OSError:
            pass
