"""The catalog service: every Iceberg REST operation, independent of HTTP.

Routes are thin translations to these methods. Each method receives the caller's RequestContext,
which is where authentication and authorization plug in. A commit is: validate the client's
requirements against the current metadata, apply its updates, write a new immutable metadata file,
then compare-and-swap the table pointer in the database. If the swap loses a race the requirements
are checked again against the winner; only when they fail is the client told 409 (retry).
"""

from __future__ import annotations

import hashlib
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from pyiceberg.table.update import TableRequirement, TableUpdate
from sqlalchemy.exc import SQLAlchemyError

from icemesh.catalog import metadata as md
from icemesh.catalog import pagination, retention
from icemesh.catalog.authorizer import Authorizer, table_ref
from icemesh.catalog.commit_permissions import required_permissions
from icemesh.catalog.context import COLUMN_LIMITS_SCOPE, RequestContext
from icemesh.catalog.identifiers import Namespace, TableIdent
from icemesh.catalog.pointer_store import PointerStore
from icemesh.catalog.store import PointerChange, PointerConflict
from icemesh.errors import (
    AlreadyExists,
    BadRequest,
    CommitFailed,
    CommitStateUnknown,
    NoSuchNamespace,
    NoSuchTable,
    NoSuchWarehouse,
    NotAuthorized,
    UnprocessableEntity,
)
from icemesh.governance.permissions import Permission
from icemesh.security.authenticator import Authenticator
from icemesh.storage.metadata_cache import CachedMetadata, MetadataCache
from icemesh.storage.warehouse import Warehouse

COMMIT_ATTEMPTS = 8

ENDPOINTS = [
    "GET /v1/{prefix}/namespaces",
    "POST /v1/{prefix}/namespaces",
    "GET /v1/{prefix}/namespaces/{namespace}",
    "HEAD /v1/{prefix}/namespaces/{namespace}",
    "DELETE /v1/{prefix}/namespaces/{namespace}",
    "POST /v1/{prefix}/namespaces/{namespace}/properties",
    "GET /v1/{prefix}/namespaces/{namespace}/tables",
    "POST /v1/{prefix}/namespaces/{namespace}/tables",
    "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/namespaces/{namespace}/register",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics",
    "POST /v1/{prefix}/tables/rename",
    "POST /v1/{prefix}/transactions/commit",
]

COLUMN_LIMITS_HEADER = "x-icemesh-column-limits"


@dataclass(frozen=True)
class LoadedTable:
    metadata_location: str | None
    metadata_json: bytes
    config: dict[str, str]
    etag: str | None = None
    labels: dict | None = None


class MetadataNotCached(Exception):
    """`cached_only` load of a table whose metadata file must first be read from storage."""


@dataclass(frozen=True)
class TableChange:
    ident: TableIdent
    requirements: list[TableRequirement]
    updates: list[TableUpdate]


@dataclass
class _Prepared:
    change: PointerChange
    entry: CachedMetadata
    warehouse: Warehouse


class CatalogService:
    def __init__(self, store: PointerStore, warehouses: list[Warehouse], default_warehouse: str,
                 authenticator: Authenticator, authorizer: Authorizer, idempotency_lifetime_s: int = 1800) -> None:
        if default_warehouse not in {w.name for w in warehouses}:
            raise ValueError(f"default warehouse {default_warehouse!r} is not among the configured warehouses")
        self.store = store
        self.authenticator = authenticator
        self.auth = authorizer
        self.warehouses = {w.name: w for w in warehouses}
        self.default_warehouse = default_warehouse
        self.idempotency_lifetime_s = idempotency_lifetime_s
        self.cache = MetadataCache()
        self._table_locks: dict[tuple[str, TableIdent], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        for wh in warehouses:
            store.upsert_warehouse(wh.name, wh.root, wh.public_properties())

    # -- who is calling ----------------------------------------------------------------------------

    def context(self, authorization: str | None, headers: dict[str, str] | None = None,
                request_id: str | None = None) -> RequestContext:
        """Resolve the caller from its bearer token; every catalog call needs one (deny by default)."""
        headers = headers or {}
        try:
            principal = self.authenticator.principal_for_header(authorization)
        except NotAuthorized as exc:
            self.auth.governance.audit_rejected_token(exc.message, request_id)
            raise
        limits = headers.get(COLUMN_LIMITS_HEADER, "").strip().lower() == "apply" or COLUMN_LIMITS_SCOPE in principal.scopes
        return RequestContext(principal=principal, access_delegation=headers.get("x-iceberg-access-delegation"),
                              request_id=request_id, applies_column_limits=limits)

    # -- configuration -----------------------------------------------------------------------------

    def warehouse(self, prefix: str) -> Warehouse:
        wh = self.warehouses.get(prefix)
        if wh is None:
            raise NoSuchWarehouse(f"Unknown warehouse {prefix!r}: known warehouses are {sorted(self.warehouses)}")
        return wh

    def find_warehouse(self, warehouse: str | None) -> Warehouse:
        """A warehouse by name or root URI, as clients name it (`?warehouse=`); the default when not named."""
        if not warehouse:
            return self.warehouses[self.default_warehouse]
        matches = [w for w in self.warehouses.values() if warehouse in (w.name, w.root, w.root + "/")]
        if not matches:
            raise NoSuchWarehouse(f"Unknown warehouse {warehouse!r}: known warehouses are {sorted(self.warehouses)}")
        return matches[0]

    def config(self, ctx: RequestContext, warehouse: str | None) -> dict[str, Any]:
        """`GET /v1/config`: the prefix tells clients which warehouse all later calls address."""
        wh = self.find_warehouse(warehouse)
        return {
            "defaults": {},
            "overrides": {"prefix": wh.name, "warehouse": wh.root},
            "endpoints": ENDPOINTS,
            "idempotency-key-lifetime": f"PT{self.idempotency_lifetime_s}S",
        }

    # -- namespaces --------------------------------------------------------------------------------

    def list_namespaces(self, ctx: RequestContext, prefix: str, parent: Namespace | None,
                        page_token: str | None, page_size: int | None) -> dict[str, Any]:
        wh = self.warehouse(prefix)
        if parent is not None and self.store.namespace_properties(wh.name, parent) is None:
            raise NoSuchNamespace(f"Namespace does not exist: {parent}")
        if parent is not None:
            self.auth.namespace(ctx, wh.name, Permission.DESCRIBE, parent, self._tables_within(wh.name, parent))
        visible, next_token = pagination.filtered_page(
            lambda after, limit: self.store.list_namespaces(wh.name, parent, after, limit),
            lambda ns: self.auth.namespace(ctx, wh.name, Permission.DESCRIBE, ns, self._tables_within(wh.name, ns),
                                           enforce=False, audit=False).allowed,
            lambda ns: ns.key, page_token, page_size)
        result: dict[str, Any] = {"namespaces": [list(ns.levels) for ns in visible]}
        if next_token:
            result["next-page-token"] = next_token
        return result

    def _tables_within(self, warehouse: str, ns: Namespace):
        """The tables in and below `ns`, read only if a namespace DESCRIBE needs them (see Authorizer.namespace)."""
        return lambda: self.store.tables_under(warehouse, ns)

    def create_namespace(self, ctx: RequestContext, prefix: str, ns: Namespace, properties: dict[str, str]) -> dict:
        wh = self.warehouse(prefix)
        if len(ns.levels) == 1:
            self.auth.catalog(ctx, wh.name, Permission.CREATE_TABLE)
        else:
            self.auth.namespace(ctx, wh.name, Permission.CREATE_TABLE, Namespace(ns.levels[:-1]))
        self.store.create_namespace(wh.name, ns, properties, owner=ctx.principal.name)
        self.auth.note_new_owner()  # the creator owns it from the next request on
        return {"namespace": list(ns.levels), "properties": properties}

    def load_namespace(self, ctx: RequestContext, prefix: str, ns: Namespace) -> dict:
        wh = self.warehouse(prefix)
        self.auth.namespace(ctx, wh.name, Permission.DESCRIBE, ns, self._tables_within(wh.name, ns))
        props = self.store.namespace_properties(wh.name, ns)
        if props is None:
            raise NoSuchNamespace(f"Namespace does not exist: {ns}")
        return {"namespace": list(ns.levels), "properties": props}

    def drop_namespace(self, ctx: RequestContext, prefix: str, ns: Namespace) -> None:
        wh = self.warehouse(prefix)
        self.auth.namespace(ctx, wh.name, Permission.DROP, ns)
        self.store.drop_namespace(wh.name, ns)
        self.auth.invalidate()

    def update_namespace_properties(self, ctx: RequestContext, prefix: str, ns: Namespace,
                                    removals: list[str], updates: dict[str, str]) -> dict:
        both = sorted(set(removals) & set(updates))
        if both:
            raise UnprocessableEntity(f"Properties both set and removed in one request: {both}; send one or the other")
        wh = self.warehouse(prefix)
        self.auth.namespace(ctx, wh.name, Permission.ALTER, ns)
        updated, removed, missing = self.store.update_namespace_properties(wh.name, ns, removals, updates)
        return {"updated": updated, "removed": removed, "missing": missing}

    # -- tables ------------------------------------------------------------------------------------

    def list_tables(self, ctx: RequestContext, prefix: str, ns: Namespace,
                    page_token: str | None, page_size: int | None) -> dict[str, Any]:
        wh = self.warehouse(prefix)
        self.auth.namespace(ctx, wh.name, Permission.DESCRIBE, ns, self._tables_within(wh.name, ns))
        if self.store.namespace_properties(wh.name, ns) is None:
            raise NoSuchNamespace(f"Namespace does not exist: {ns}")
        evaluator = self.auth.evaluator(wh.name)
        visible, next_token = pagination.filtered_page(
            lambda after, limit: self.store.list_tables(wh.name, ns, after, limit),
            lambda t: evaluator.decide_table(ctx.principal.name, Permission.DESCRIBE, table_ref(t)).allowed,
            lambda t: t.name, page_token, page_size)
        result: dict[str, Any] = {"identifiers": [t.to_json() for t in visible]}
        if next_token:
            result["next-page-token"] = next_token
        return result

    def create_table(self, ctx: RequestContext, prefix: str, ns: Namespace, request: dict[str, Any]) -> LoadedTable:
        wh = self.warehouse(prefix)
        ident = TableIdent.of(ns, request.get("name"))
        self.auth.namespace(ctx, wh.name, Permission.CREATE_TABLE, ns)
        if self.store.namespace_properties(wh.name, ns) is None:
            raise NoSuchNamespace(f"Namespace does not exist: {ns}")
        if self.store.get_table(wh.name, ident) is not None:
            raise AlreadyExists(f"Table already exists: {ident}")
        location = request.get("location")
        location = wh.require_inside(location) if location else wh.default_table_location(ns, ident.name)
        properties = {str(k): str(v) for k, v in (request.get("properties") or {}).items()}
        self._check_path_properties(wh, properties)
        metadata = md.build_new_table(request["schema"], request.get("partition-spec"), request.get("write-order"),
                                      location, properties)
        wh.prepare_table_location(location)
        raw = md.serialize(metadata)
        if request.get("stage-create"):
            return LoadedTable(None, raw, wh.client_config())
        metadata_location = wh.metadata_file_location(location, 0)
        wh.write_new_file(metadata_location, raw)
        try:
            self.store.create_table(wh.name, ident, metadata_location, location, owner=ctx.principal.name, metadata=metadata)
        except Exception:
            wh.delete_file(metadata_location)
            raise
        self.auth.note_new_owner()
        self.cache.put(CachedMetadata(metadata_location, raw, metadata))
        return LoadedTable(metadata_location, raw, wh.client_config(), self._etag(metadata_location, "all"))

    def load_table(self, ctx: RequestContext, prefix: str, ident: TableIdent, snapshots: str | None = None,
                   if_none_match: str | None = None, cached_only: bool = False) -> LoadedTable | str:
        """The table for a reader with SELECT; returns just the ETag when it matches `if_none_match`.

        `cached_only` raises MetadataNotCached instead of reading storage, so the HTTP layer can serve
        the common case on its event loop and send only storage reads to a worker thread.

        A reader that may see only some columns gets them only if it applies column limits (its request
        says so); the schema it receives then lacks the hidden columns. Plain clients are refused.
        """
        wh = self.warehouse(prefix)
        mode = snapshots or "all"
        if mode not in ("all", "refs"):
            raise BadRequest(f"Invalid snapshots={snapshots!r}: use 'all' or 'refs'")
        record = self.store.get_table(wh.name, ident)
        if record is None:
            self._refuse_unless_may_create(ctx, wh, ident)
            raise NoSuchTable(f"Table does not exist: {ident}")
        entry = self.cache.peek(record.metadata_location) if cached_only else self.cache.get(record.metadata_location, wh.read_bytes)
        if entry is None:
            raise MetadataNotCached(record.metadata_location)
        columns = entry.columns()
        decision = self.auth.table(ctx, wh.name, Permission.SELECT, ident, [name for _id, name in columns])
        hidden = set(decision.hidden_columns)
        if hidden and not ctx.applies_column_limits:
            shown = ", ".join(decision.visible_columns or ())
            self.auth.deny(ctx, Permission.SELECT, f"table {ident}",
                           f"{ctx.principal.name} may read only columns {shown} of {ident} (hidden: {', '.join(sorted(hidden))}); "
                           "this client does not apply column limits, so it is refused the table: read it through "
                           "icemesh's engine adapters or ask for a grant on the hidden columns")
        hidden_ids = {fid for fid, name in columns if name in hidden}
        labels, labels_key = self._labels(wh.name, ident, columns, hidden)
        etag = self._etag(record.metadata_location, mode, f"{sorted(hidden_ids)}|{labels_key}")
        if if_none_match and (etag in (t.strip() for t in if_none_match.split(",")) or if_none_match.strip() == "*"):
            return etag
        if hidden_ids:
            if hidden_ids & entry.partition_and_sort_sources():
                self.auth.deny(ctx, Permission.SELECT, f"table {ident}",
                               f"{ctx.principal.name} may not read every column {ident} is partitioned or sorted by; "
                               "ask for a grant on those columns")
            raw = entry.without_fields(hidden_ids, mode == "refs")
        else:
            raw = entry.raw if mode == "all" else entry.refs_only()
        return LoadedTable(record.metadata_location, raw, wh.client_config(), etag, labels)

    def _labels(self, warehouse: str, ident: TableIdent, columns: list[tuple[int, str]],
                hidden: set[str]) -> tuple[dict | None, str]:
        """Effective tags as the spec's `labels`: table `object-labels`, and each visible field's effective tags."""
        evaluator = self.auth.evaluator(warehouse)
        ref = table_ref(ident)
        table_tags = evaluator.table_tags(ref)
        per_column = evaluator.column_tags(ref, [name for _id, name in columns if name not in hidden])
        fields = [{"field-id": fid, "labels": per_column[name]} for fid, name in columns
                  if name in per_column and per_column[name]]
        if not table_tags and not fields:
            return None, ""
        labels = {"object-labels": table_tags, "field-labels": fields}
        return labels, str(evaluator.policy.version)

    def _refuse_unless_may_create(self, ctx: RequestContext, wh: Warehouse, ident: TableIdent) -> None:
        """For a missing table, a 404 tells the caller something: only those who could see or create it get it."""
        if self.auth.table(ctx, wh.name, Permission.DESCRIBE, ident, enforce=False, audit=False).allowed:
            return
        self.auth.namespace(ctx, wh.name, Permission.CREATE_TABLE, ident.namespace)

    def table_exists(self, ctx: RequestContext, prefix: str, ident: TableIdent) -> None:
        wh = self.warehouse(prefix)
        if self.store.get_table(wh.name, ident) is None:
            self._refuse_unless_may_create(ctx, wh, ident)
            raise NoSuchTable(f"Table does not exist: {ident}")
        self.auth.table(ctx, wh.name, Permission.DESCRIBE, ident)

    def drop_table(self, ctx: RequestContext, prefix: str, ident: TableIdent, purge: bool) -> None:
        wh = self.warehouse(prefix)
        self.auth.table(ctx, wh.name, Permission.DROP, ident)
        record = self.store.drop_table(wh.name, ident)
        self.auth.invalidate()
        if purge and wh.contains(record.location) and not self.store.table_location_in_use(wh.name, record.location):
            wh.purge(record.location)

    def rename_table(self, ctx: RequestContext, prefix: str, source: TableIdent, destination: TableIdent) -> None:
        wh = self.warehouse(prefix)
        self.auth.table(ctx, wh.name, Permission.ALTER, source)
        self.auth.namespace(ctx, wh.name, Permission.CREATE_TABLE, destination.namespace)
        self.store.rename_table(wh.name, source, destination,
                                also=lambda conn: self.auth.governance.move_table(conn, table_ref(source), table_ref(destination)))
        self.auth.invalidate()

    def register_table(self, ctx: RequestContext, prefix: str, ns: Namespace, name: str,
                       metadata_location: str, overwrite: bool = False) -> LoadedTable:
        wh = self.warehouse(prefix)
        ident = TableIdent.of(ns, name)
        self.auth.namespace(ctx, wh.name, Permission.CREATE_TABLE, ns)
        if overwrite and self.store.get_table(wh.name, ident) is not None:
            self.auth.table(ctx, wh.name, Permission.ALTER, ident)
        metadata_location = wh.require_inside(metadata_location, "metadata-location")
        try:
            entry = self.cache.get(metadata_location, wh.read_bytes)
            metadata = entry.model
        except FileNotFoundError:
            raise BadRequest(f"Cannot register {ident}: no metadata file at {metadata_location}") from None
        except Exception as exc:  # unreadable or not Iceberg metadata
            raise BadRequest(f"Cannot register {ident}: {metadata_location} is not readable table metadata ({exc})") from None
        location = wh.require_inside(metadata.location)
        current = self.store.get_table(wh.name, ident)
        if current is not None and not overwrite:
            raise AlreadyExists(f"Table already exists: {ident}; pass overwrite=true to re-point it")
        if current is None:
            self.store.create_table(wh.name, ident, metadata_location, location, owner=ctx.principal.name, metadata=metadata)
            self.auth.note_new_owner()
        else:
            try:
                self.store.swap_pointers(wh.name, [PointerChange(ident, current.metadata_location, metadata_location, location,
                                                                 metadata=metadata)])
            except PointerConflict:
                raise CommitFailed(f"Table {ident} changed while registering; retry") from None
        return LoadedTable(metadata_location, entry.raw, wh.client_config(), self._etag(metadata_location, "all"))

    def report_metrics(self, ctx: RequestContext, prefix: str, ident: TableIdent, report: dict) -> None:
        """Accepted and dropped: scan/commit reports are advisory in the spec."""
        self.table_exists(ctx, prefix, ident)

    # -- commits -----------------------------------------------------------------------------------

    def commit_table(self, ctx: RequestContext, prefix: str, change: TableChange) -> tuple[str, bytes]:
        wh = self.warehouse(prefix)
        self._authorize_change(ctx, wh, change)
        prepared = self._commit(wh, [change], ctx.principal.name)
        entry = prepared[0].entry
        return entry.location, entry.raw

    def commit_transaction(self, ctx: RequestContext, prefix: str, changes: list[TableChange]) -> None:
        wh = self.warehouse(prefix)
        if not changes:
            raise BadRequest("A transaction needs at least one table change")
        idents = [c.ident for c in changes]
        if len(set(idents)) != len(idents):
            raise BadRequest("A transaction may change each table only once: merge its updates into one change")
        for change in changes:  # every table is checked before anything is written
            self._authorize_change(ctx, wh, change)
        self._commit(wh, changes, ctx.principal.name)

    def _authorize_change(self, ctx: RequestContext, wh: Warehouse, change: TableChange) -> None:
        if md.is_create(change.requirements):
            self.auth.namespace(ctx, wh.name, Permission.CREATE_TABLE, change.ident.namespace)
            return
        needed = required_permissions(change.updates) or {Permission.DESCRIBE}
        for permission in sorted(needed, key=lambda p: p.value):
            self.auth.table(ctx, wh.name, permission, change.ident)

    def _commit(self, wh: Warehouse, changes: list[TableChange], owner: str | None = None) -> list[_Prepared]:
        with ExitStack() as stack:
            for ident in sorted(c.ident for c in changes):  # fixed order: no lock-order deadlocks
                stack.enter_context(self._lock_for(wh.name, ident))
            for _attempt in range(COMMIT_ATTEMPTS):
                prepared: list[_Prepared] = []
                try:
                    for change in changes:
                        prepared.append(self._prepare(wh, change, owner))
                    real = [p for p in prepared if p.change.new != p.change.expected]
                    if real:
                        self.store.swap_pointers(wh.name, [p.change for p in real])
                except PointerConflict:
                    self._discard(prepared)
                    continue  # another process committed first: re-check requirements against it
                except CommitStateUnknown:
                    raise  # the pointer may have moved: keep the new metadata files
                except SQLAlchemyError as exc:
                    raise CommitStateUnknown(f"Catalog database failed during commit; reload the table before retrying ({exc.__class__.__name__})") from None
                except Exception:
                    self._discard(prepared)
                    raise
                for p in prepared:
                    self.cache.put(p.entry)
                    if p.change.expected and p.change.new != p.change.expected:
                        # The old version is history now: keeping every version (and its parsed form) until the
                        # byte bound evicts it is what made memory grow under a stream of commits.
                        self.cache.discard(p.change.expected)
                if any(p.change.expected is None for p in prepared):
                    self.auth.note_new_owner()  # a table was created: its creator owns it
                return prepared
        raise CommitFailed("Too many concurrent commits to the same table; refresh and retry")

    def _prepare(self, wh: Warehouse, change: TableChange, owner: str | None) -> _Prepared:
        record = self.store.get_table(wh.name, change.ident)
        creating = md.is_create(change.requirements)
        if record is None and not creating:
            raise NoSuchTable(f"Table does not exist: {change.ident}")
        base_entry = self.cache.get(record.metadata_location, wh.read_bytes) if record else None
        base = base_entry.model if base_entry else None
        md.check_requirements(change.requirements, base)
        if record is None and self.store.namespace_properties(wh.name, change.ident.namespace) is None:
            raise NoSuchNamespace(f"Namespace does not exist: {change.ident.namespace}")
        if record is not None and not change.updates:
            return _Prepared(PointerChange(change.ident, record.metadata_location, record.metadata_location, record.location),
                             base_entry, wh)
        new = md.apply_updates(base, change.updates, record.metadata_location if record else None)
        if md.sets_properties(change.updates):
            retention.check_properties(new.properties)
        if md.adds_snapshot(change.updates):  # the table's own retention settings, applied in this commit
            expired = retention.expired_snapshots(new, int(time.time() * 1000))
            if expired:
                new = md.remove_snapshots(new, expired)
        if not new.location:
            new = new.model_copy(update={"location": wh.default_table_location(change.ident.namespace, change.ident.name)})
        location = wh.require_inside(new.location)
        self._check_path_properties(wh, new.properties)
        md.check_consistent(new, change.updates)
        for what, file_location in md.file_locations(change.updates):
            wh.require_inside(file_location, what)
        if record is None:
            wh.prepare_table_location(location)
        metadata_location = wh.metadata_file_location(new.location, md.next_version(record and record.metadata_location, new))
        raw = md.serialize(new)
        try:
            wh.write_new_file(metadata_location, raw)
        except Exception as exc:
            raise CommitStateUnknown(f"Could not write table metadata to {metadata_location}: {exc}") from None
        return _Prepared(
            PointerChange(change.ident, record.metadata_location if record else None, metadata_location, location,
                          owner if record is None else None, new),
            CachedMetadata(metadata_location, raw, new),
            wh,
        )

    @staticmethod
    def _discard(prepared: list[_Prepared]) -> None:
        for p in prepared:
            if p.change.new != p.change.expected:
                p.warehouse.delete_file(p.change.new)

    def _lock_for(self, warehouse: str, ident: TableIdent) -> threading.Lock:
        with self._locks_guard:
            return self._table_locks.setdefault((warehouse, ident), threading.Lock())

    @staticmethod
    def _check_path_properties(wh: Warehouse, properties: dict[str, str]) -> None:
        for key in md.PATH_PROPERTIES:
            if key in properties:
                wh.require_inside(properties[key], f"property {key}")

    @staticmethod
    def _etag(metadata_location: str, mode: str, view: str = "") -> str:
        return '"' + hashlib.sha256(f"{mode}|{metadata_location}|{view}".encode()).hexdigest()[:40] + '"'
