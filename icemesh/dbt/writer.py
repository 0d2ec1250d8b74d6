"""Publish one model as a product: run its SQL in DuckDB, then write the rows, the schema, the partition
spec and the `icemesh.` properties to the catalog in one commit.

Why not DuckDB's own Iceberg writes: DuckDB replaces a table's rows with positional delete files over
the old data files, so every full refresh would leave the old files live and make each read slower.
pyiceberg's overwrite drops the old files in the same commit that adds the new ones.
"""

from __future__ import annotations

import time

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError, TableAlreadyExistsError
from pyiceberg.table import Table
from pyiceberg.table.upsert_util import create_match_filter, has_duplicate_rows

from icemesh.client import CatalogClient
from icemesh.dbt import catalogs, openlineage, partitioning, schema_sync, tagging
from icemesh.dbt.product import ProductSpec
from icemesh.dbt.publishing import (WriteResult, actual, product_properties, publish_error,  # noqa: F401
                                     snapshot_properties, stale_properties)

COMMIT_ATTEMPTS = 4


class ProductWriter:
    ENGINE = "duckdb"  # the SQL dialect the model is written in (lineage names it)

    def __init__(self, client: CatalogClient, catalog, connection, upstream: CatalogClient | None = None,
                 memo: dict | None = None) -> None:
        self.client = client          # management API: tags
        self.catalog = catalog        # pyiceberg RestCatalog, as the project's principal
        self.connection = connection  # the dbt-duckdb connection the model's SQL runs on
        self.upstream = upstream      # where cross-project refs read, when not the same warehouse (lineage names them)
        # What one dbt invocation asks the catalog once, not per model: the tag vocabulary, the namespaces it saw.
        self.memo = memo if memo is not None else {}

    def publish(self, spec: ProductSpec, data: pa.Table | None = None) -> WriteResult:
        """Publish, with OpenLineage run events around it when OpenLineage is configured (see openlineage.py).
        `data`: the model's rows when the caller already ran its SQL."""
        lineage = openlineage.begin(spec, self.client, self.catalog, self.ENGINE, self.upstream)
        try:
            result, table = self._publish(spec, data)
        except Exception as exc:
            if lineage is not None:
                lineage.fail(publish_error(spec.identifier, exc))
            raise
        if lineage is not None:
            lineage.complete(table, result.rows)
        return result

    def _publish(self, spec: ProductSpec, data: pa.Table | None = None) -> tuple[WriteResult, Table]:
        started = time.perf_counter()
        elsewhere = catalogs.mismatch(spec.catalog_entry, self.client.uri, self.client.warehouse)
        if elsewhere:
            raise ValueError(elsewhere)
        if data is None:
            data = self._run(spec.sql)
        wanted_schema = schema_sync.model_schema(data.schema, spec)
        terms = partitioning.parse_all(spec.partition_by, wanted_schema)
        for key in spec.unique_key:
            if wanted_schema.find_field(key, case_sensitive=False) is None:
                raise ValueError(f"unique_key {key!r} is not a column of the model")
        if "vocabulary" not in self.memo:
            self.memo["vocabulary"] = tagging.vocabulary(self.client)
        tagging.check(self.memo["vocabulary"], spec, data.column_names)  # all checks before any write

        namespaces = self.memo.setdefault("namespaces", set())
        if spec.namespace not in namespaces:
            if not self.catalog.namespace_exists(spec.namespace):  # a namespace's owner needs no catalog-wide grant
                self.catalog.create_namespace_if_not_exists(spec.namespace)
            namespaces.add(spec.namespace)
        table = self._load(spec)
        properties = product_properties(spec, data.column_names)

        mode = spec.mode
        for attempt in range(COMMIT_ATTEMPTS):
            try:
                if table is None:
                    mode = "create"
                    table = self._create(spec, data, wanted_schema, terms, properties)
                else:
                    mode = spec.mode
                    table = self._update(table, spec, data, wanted_schema, terms, properties)
                break
            except (CommitFailedException, TableAlreadyExistsError):
                if attempt == COMMIT_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * 2 ** attempt)  # another writer won: re-plan against what it committed
                table = self._load(spec)
        snapshot = table.current_snapshot()
        return WriteResult(spec.identifier, mode, data.num_rows, snapshot.snapshot_id if snapshot else None,
                           time.perf_counter() - started), table

    def _run(self, sql: str) -> pa.Table:
        cursor = self.connection.cursor()
        try:
            return cursor.execute(sql).to_arrow_table()
        finally:
            cursor.close()

    def _load(self, spec: ProductSpec) -> Table | None:
        try:
            return self.catalog.load_table(spec.identifier)
        except NoSuchTableError:
            return None

    def _create(self, spec: ProductSpec, data: pa.Table, schema, terms, properties: dict[str, str]) -> Table:
        """Staged create plus the first rows: the product appears complete, in one commit."""
        transaction = self.catalog.create_table_transaction(
            spec.identifier, schema=schema, partition_spec=partitioning.new_spec(terms, schema), properties=properties)
        rows = schema_sync.conform(data, transaction.table_metadata.schema())
        transaction.append(rows, snapshot_properties=snapshot_properties(spec))
        return transaction.commit_transaction()

    def _update(self, table: Table, spec: ProductSpec, data: pa.Table, wanted_schema, terms,
                properties: dict[str, str]) -> Table:
        changes = schema_sync.plan(table.schema(), wanted_schema, spec.mode, spec.on_schema_change)
        transaction = table.transaction()
        schema_sync.apply(transaction, changes)
        metadata = transaction.table_metadata
        if not partitioning.matches(metadata.spec(), terms, metadata.schema()):
            partitioning.evolve(transaction, terms)
        rows = schema_sync.conform(data, transaction.table_metadata.schema())
        summary = snapshot_properties(spec)
        keys = [actual(k, rows.column_names) for k in spec.unique_key]
        if spec.mode == "replace":
            transaction.overwrite(rows, snapshot_properties=summary)
        elif spec.mode == "append":
            transaction.append(rows, snapshot_properties=summary)
        elif rows.num_rows:  # merge and delete+insert: rows whose key comes again are replaced, the rest added
            if spec.mode == "merge" and has_duplicate_rows(rows, keys):
                raise ValueError(f"the model returns several rows for one unique_key ({', '.join(keys)}): "
                                 "merge needs one row per key (or use incremental_strategy='delete+insert')")
            transaction.delete(create_match_filter(rows, keys), snapshot_properties=summary)
            transaction.append(rows, snapshot_properties=summary)
        stale = stale_properties(table.properties, properties)
        transaction.set_properties(properties)
        if stale:
            transaction.remove_properties(*stale)
        return transaction.commit_transaction()

