"""The catalog service: every Iceberg REST operation, independent of HTTP.

Routes are thin translations to these methods. Each method receives the caller's RequestContext,
which is where authentication and authorization plug in. A commit is: validate the client's
requirements against the current metadata, apply its updates, write a new immutable metadata file,
then compare-and-swap the table pointer in the database. If the swap loses a race the requirements
are checked again against the winner; only when they fail is the client told 409 (retry).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Callable, NoReturn

from pyiceberg.table.update import TableRequirement, TableUpdate

from icemesh.tables import metadata as md
from icemesh.catalog import pagination
from icemesh.tables import rebase, retention
from icemesh.catalog.authorizer import Authorizer, namespace_ref, table_ref
from icemesh.catalog.load_cache import KeptLoad, LoadCache
from icemesh.tables.effects import file_effects, inspect, metadata_effects
from icemesh.protocol import (ACCESS_DELEGATION_HEADER, COLUMN_LIMITS_APPLY, COLUMN_LIMITS_HEADER, COLUMN_LIMITS_SCOPE,
                              READ_RESTRICTIONS_HEADER, READ_RESTRICTIONS_SCOPE, RequestContext)
from icemesh.catalog import read_restrictions
from icemesh.catalog.vending import VENDED_CREDENTIALS, CredentialVending
from icemesh.governance.data_filters import NONE as NO_RESTRICTIONS, Restrictions
from icemesh.tables import row_filters
from icemesh.names import Namespace, TableIdent
from icemesh.tables.locations import LocationInUse, TableFiles, refuse_overlap
from icemesh.catalog.ports import (AuditLog, AuditRecord, Backend, CatalogEvent, CredentialVendor, IdempotencyStore,
                                   IdentityStore, PointerChange, PointerConflict, PointerStore, PolicyStore, TableRecord)
from icemesh.errors import (
    AlreadyExists,
    BadRequest,
    CommitFailed,
    CommitStateUnknown,
    Forbidden,
    NoSuchNamespace,
    NoSuchTable,
    NoSuchWarehouse,
    NotAuthorized,
    UnprocessableEntity,
    Unsupported,
)
from icemesh.governance import commit_rules, declared_tags, product_claims
from icemesh.governance.commit_rules import Effect
from icemesh.governance.evaluator import Decision
from icemesh.governance.permissions import Permission
from icemesh.security.authenticator import Authenticator
from icemesh.security.login_guard import LoginGuard
from icemesh.storage.metadata_cache import CachedMetadata, MetadataCache
from icemesh.storage.warehouse import MetadataTooLarge, Warehouse

COMMIT_ATTEMPTS = 8
NEAR_NAMES_SCANNED = 2000  # a missing table's "did you mean" looks at this many names of its namespace

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
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/plan",
    "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}/plan/{plan-id}",
    "DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}/plan/{plan-id}",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/tasks",
    "POST /v1/{prefix}/tables/rename",
    "POST /v1/{prefix}/transactions/commit",
]
VIEW_ENDPOINTS = [
    "GET /v1/{prefix}/namespaces/{namespace}/views",
    "POST /v1/{prefix}/namespaces/{namespace}/views",
    "GET /v1/{prefix}/namespaces/{namespace}/views/{view}",
    "HEAD /v1/{prefix}/namespaces/{namespace}/views/{view}",
    "POST /v1/{prefix}/namespaces/{namespace}/views/{view}",
    "DELETE /v1/{prefix}/namespaces/{namespace}/views/{view}",
    "POST /v1/{prefix}/views/rename",
]
# Listed only when the server vends storage credentials (`serve --vend-credentials-role`).
CREDENTIALS_ENDPOINT = "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}/credentials"



@dataclass(frozen=True)
class LoadedTable:
    metadata_location: str | None
    metadata_json: bytes
    config: dict[str, str]
    etag: str | None = None
    labels: dict | None = None
    read_restrictions: dict | None = None  # the REST spec's row filter and column masks this reader must apply
    storage_credentials: list[dict] | None = None  # vended keys for the table's prefix (the spec's list of {prefix, config})
    # the HTTP layer's encoding of this answer, made once: a kept answer (load_cache.py) is served many times
    encoded: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)


def _etag_matches(etag: str | None, if_none_match: str | None) -> bool:
    """Whether a conditional load's `If-None-Match` names this answer (a list of ETags, or `*`)."""
    if not if_none_match or etag is None:
        return False
    return if_none_match.strip() == "*" or etag in (t.strip() for t in if_none_match.split(","))


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
    moves_governance: bool = False  # tags move with this commit: cached decisions must be dropped
    written: tuple[str, ...] = ()  # other files this commit wrote (a rebased manifest list): gone if it fails


def _then(*steps: Callable[[Any], None] | None) -> Callable[[Any], None] | None:
    """Steps that run one after another in one transaction (None: nothing to run)."""
    present = [s for s in steps if s is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]

    def run(conn) -> None:
        for step in present:
            step(conn)
    return run


class CatalogService:
    def __init__(self, backend: Backend, warehouses: list[Warehouse], default_warehouse: str,
                 authenticator: Authenticator, authorizer: Authorizer, idempotency_lifetime_s: int = 1800) -> None:
        if default_warehouse not in {w.name for w in warehouses}:
            raise ValueError(f"default warehouse {default_warehouse!r} is not among the configured warehouses")
        self.backend = backend
        self.pointers: PointerStore = backend.pointers
        self.identities: IdentityStore = backend.identities
        self.policy: PolicyStore = backend.policy
        self.audit: AuditLog = backend.audit
        self.idempotency: IdempotencyStore = backend.idempotency
        self.authenticator = authenticator
        self.auth = authorizer
        self.warehouses = {w.name: w for w in warehouses}
        self.default_warehouse = default_warehouse
        self.idempotency_lifetime_s = idempotency_lifetime_s
        self.scan_planning_mode = "client"  # told to clients in /v1/config (`serve --scan-planning`)
        self.vendor = None  # vends table-scoped storage keys (`serve --vend-credentials-role`)
        self.cache = MetadataCache()
        self.loads = LoadCache()  # loadTable answers per reader, table version and policy snapshot
        self.login_guard = LoginGuard()
        self._table_locks: dict[tuple[str, TableIdent], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        for wh in warehouses:
            self.pointers.upsert_warehouse(wh.name, wh.root, wh.public_properties())

    @property
    def vendor(self) -> CredentialVendor | None:
        return self._vendor

    @vendor.setter
    def vendor(self, vendor: CredentialVendor | None) -> None:
        self._vendor = vendor
        self._vending = CredentialVending(vendor, self.auth, self.audit) if vendor is not None else None

    # -- who is calling ----------------------------------------------------------------------------

    def context(self, authorization: str | None, headers: dict[str, str] | None = None,
                request_id: str | None = None) -> RequestContext:
        """Resolve the caller from its bearer token; every catalog call needs one (deny by default)."""
        headers = headers or {}
        try:
            principal = self.authenticator.principal_for_header(authorization)
        except NotAuthorized as exc:
            self.audit.audit_rejected_token(exc.message, request_id)
            raise
        limits = headers.get(COLUMN_LIMITS_HEADER.lower(), "").strip().lower() == COLUMN_LIMITS_APPLY or \
            COLUMN_LIMITS_SCOPE in principal.scopes
        restricts = headers.get(READ_RESTRICTIONS_HEADER.lower(), "").strip().lower() == COLUMN_LIMITS_APPLY or \
            READ_RESTRICTIONS_SCOPE in principal.scopes
        return RequestContext(principal=principal, access_delegation=headers.get(ACCESS_DELEGATION_HEADER.lower()),
                              request_id=request_id, applies_column_limits=limits, applies_read_restrictions=restricts)

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
        # scan-planning-mode only when the server asks for server-side planning (an override: pyiceberg 0.12 then
        # plans every scan through /plan); unsaid, clients plan themselves and may opt in (the endpoints are listed)
        planning = {"scan-planning-mode": "server"} if self.scan_planning_mode == "server" else {}
        return {
            "defaults": {},
            # namespace-separator: how clients join nested namespace levels in a URL (the unit separator, encoded)
            "overrides": {"prefix": wh.name, "warehouse": wh.root, "namespace-separator": "%1F", **planning},
            "endpoints": ENDPOINTS + (VIEW_ENDPOINTS if self.backend.views is not None else [])
            + ([CREDENTIALS_ENDPOINT] if self.vendor is not None else []),
            "idempotency-key-lifetime": f"PT{self.idempotency_lifetime_s}S",
        }

    # -- namespaces --------------------------------------------------------------------------------

    def list_namespaces(self, ctx: RequestContext, prefix: str, parent: Namespace | None,
                        page_token: str | None, page_size: int | None) -> dict[str, Any]:
        wh = self.warehouse(prefix)
        if parent is not None:
            self.require_namespace_permission(ctx, wh, parent, Permission.DESCRIBE)
        visible, next_token = pagination.filtered_page(
            lambda after, limit: self.pointers.list_namespaces(wh.name, parent, after, limit),
            lambda ns: self.auth.namespace(ctx, wh.name, Permission.DESCRIBE, ns, self._tables_within(wh.name, ns),
                                           enforce=False, audit=False).allowed,
            lambda ns: ns.key, page_token, page_size)
        result: dict[str, Any] = {"namespaces": [list(ns.levels) for ns in visible]}
        if next_token:
            result["next-page-token"] = next_token
        return result

    def _tables_within(self, warehouse: str, ns: Namespace):
        """The tables (and views) in and below `ns`, read only if a namespace DESCRIBE needs them (see
        Authorizer.namespace): a grant on one of them lets its grantee see the namespace."""
        views = self.backend.views
        return lambda: self.pointers.tables_under(warehouse, ns) + (views.views_under(warehouse, ns) if views else [])

    def create_namespace(self, ctx: RequestContext, prefix: str, ns: Namespace, properties: dict[str, str]) -> dict:
        wh = self.warehouse(prefix)
        if len(ns.levels) == 1:
            self.auth.catalog(ctx, wh.name, Permission.CREATE_TABLE)
        else:
            self.require_namespace_permission(ctx, wh, Namespace(ns.levels[:-1]), Permission.CREATE_TABLE)
        if self.pointers.namespace_properties(wh.name, ns) is not None and not self.auth.namespace(
                ctx, wh.name, Permission.DESCRIBE, ns, self._tables_within(wh.name, ns), enforce=False, audit=False).allowed:
            raise Forbidden(f"Namespace {ns} cannot be created: the name is taken; choose another")
        self.pointers.create_namespace(wh.name, ns, properties, owner=ctx.principal.name,
                                       also=self.event_step(ctx, wh, "create-namespace", ns))
        self.auth.note_new_owner()  # the creator owns it from the next request on
        return {"namespace": list(ns.levels), "properties": properties}

    def load_namespace(self, ctx: RequestContext, prefix: str, ns: Namespace) -> dict:
        wh = self.warehouse(prefix)
        self.require_namespace_permission(ctx, wh, ns, Permission.DESCRIBE)
        props = self.pointers.namespace_properties(wh.name, ns)
        if props is None:
            raise NoSuchNamespace(f"Namespace does not exist: {ns}")
        return {"namespace": list(ns.levels), "properties": props}

    def drop_namespace(self, ctx: RequestContext, prefix: str, ns: Namespace) -> None:
        wh = self.warehouse(prefix)
        self.require_namespace_permission(ctx, wh, ns, Permission.DROP)
        last = not self._name_elsewhere(wh, lambda other: self.pointers.namespace_properties(other, ns) is not None)
        self.pointers.drop_namespace(wh.name, ns, also=_then(lambda conn: self.policy.forget_namespace(
            conn, wh.name, namespace_ref(ns), last), self.event_step(ctx, wh, "drop-namespace", ns)))
        self.auth.invalidate()

    def update_namespace_properties(self, ctx: RequestContext, prefix: str, ns: Namespace,
                                    removals: list[str], updates: dict[str, str]) -> dict:
        both = sorted(set(removals) & set(updates))
        if both:
            raise UnprocessableEntity(f"Properties both set and removed in one request: {both}; send one or the other")
        wh = self.warehouse(prefix)
        self.require_namespace_permission(ctx, wh, ns, Permission.ALTER)
        updated, removed, missing = self.pointers.update_namespace_properties(wh.name, ns, removals, updates)
        return {"updated": updated, "removed": removed, "missing": missing}

    # -- tables ------------------------------------------------------------------------------------

    def list_tables(self, ctx: RequestContext, prefix: str, ns: Namespace,
                    page_token: str | None, page_size: int | None) -> dict[str, Any]:
        wh = self.warehouse(prefix)
        self.require_namespace_permission(ctx, wh, ns, Permission.DESCRIBE)
        evaluator = self.auth.evaluator(wh.name)
        visible, next_token = pagination.filtered_page(
            lambda after, limit: self.pointers.list_tables(wh.name, ns, after, limit),
            lambda t: evaluator.decide_table(ctx.principal.name, Permission.DESCRIBE, table_ref(t)).allowed,
            lambda t: t.name, page_token, page_size)
        result: dict[str, Any] = {"identifiers": [t.to_json() for t in visible]}
        if next_token:
            result["next-page-token"] = next_token
        return result

    def create_table(self, ctx: RequestContext, prefix: str, ns: Namespace, request: dict[str, Any]) -> LoadedTable:
        wh = self.warehouse(prefix)
        ident = TableIdent.of(ns, request.get("name"))
        self.require_namespace_permission(ctx, wh, ns, Permission.CREATE_TABLE)
        if self.pointers.get_table(wh.name, ident) is not None:
            raise AlreadyExists(f"Table already exists: {ident}")
        self._refuse_view_name(wh, ident)
        location = request.get("location")
        location = wh.require_inside(location) if location else wh.default_table_location(ns, ident.name)
        self._refuse_taken(ctx, wh, ident, location)
        properties = {str(k): str(v) for k, v in (request.get("properties") or {}).items()}
        self._check_path_properties(TableFiles(location, wh.canonical), properties)
        metadata = md.build_new_table(request["schema"], request.get("partition-spec"), request.get("write-order"),
                                      location, properties)
        governance = self._governance_moves(ctx, wh, ident, None, metadata)  # declared tags, the project claim
        wh.prepare_table_location(location)
        raw = md.serialize(metadata)
        if request.get("stage-create"):
            staged = LoadedTable(None, raw, wh.client_config())
            if request.get("location"):
                # A staged table claims no location until its commit: keys for a prefix the client chose could
                # cover tables created under it meanwhile. Only the server's fresh, unguessable location gets keys.
                return staged
            return self._delegated(ctx, wh, ident, location, staged, write=True)  # the creator will own it
        metadata_location = wh.metadata_file_location(location, 0)
        wh.write_new_file(metadata_location, raw)
        try:
            self.pointers.create_table(wh.name, ident, metadata_location, location, owner=ctx.principal.name, metadata=metadata,
                                    also=_then(governance, self._table_event(ctx, wh, "create-table", ident, metadata)))
        except Exception:
            wh.delete_file(metadata_location)
            raise
        if governance is not None:
            self.auth.invalidate()
        self.auth.note_new_owner()
        self.cache.put(CachedMetadata(metadata_location, raw, metadata))
        return self._delegated(ctx, wh, ident, location, LoadedTable(metadata_location, raw, wh.client_config(),
                                                                     self._etag(metadata_location, "all")), write=True)

    def load_table(self, ctx: RequestContext, prefix: str, ident: TableIdent, snapshots: str | None = None,
                   if_none_match: str | None = None, cached_only: bool = False) -> LoadedTable | str:
        """The table for a reader with SELECT; returns just the ETag when it matches `if_none_match`.

        `cached_only` raises MetadataNotCached instead of reading storage, so the HTTP layer can serve
        the common case on its event loop and send only storage reads to a worker thread. An answer
        already decided for this reader, table version and policy snapshot is reused (load_cache.py).
        """
        wh = self.warehouse(prefix)
        mode = snapshots or "all"
        if mode not in ("all", "refs"):
            raise BadRequest(f"Invalid snapshots={snapshots!r}: use 'all' or 'refs'")
        record = self.pointers.get_table(wh.name, ident)
        if record is None:
            raise self._no_table(ctx, wh, ident)
        vends = self._vends(ctx, wh)
        keep = None
        if not vends:  # vended keys are minted per load: never kept
            snapshot = self.auth.evaluator(wh.name)
            key = (wh.name, ident, ctx.principal.name, ctx.applies_column_limits, ctx.applies_read_restrictions, mode)
            kept = self.loads.get(key, record.metadata_location, snapshot)
            if kept is not None:
                self.auth.record(ctx, kept.decision)
                return kept.loaded.etag if _etag_matches(kept.loaded.etag, if_none_match) else kept.loaded
            keep = (key, snapshot)
        if cached_only and vends:
            raise MetadataNotCached(record.metadata_location)  # STS is a network call: off the event loop
        entry = self.cache.peek(record.metadata_location) if cached_only else self.cache.get(record.metadata_location, wh.read_bytes)
        if entry is None:
            raise MetadataNotCached(record.metadata_location)
        loaded = self._view(ctx, wh, ident, entry, mode, if_none_match, VENDED_CREDENTIALS if vends else "", keep)
        if isinstance(loaded, str) or not vends:
            return loaded
        return self._delegated(ctx, wh, ident, record.location, loaded)

    def _view(self, ctx: RequestContext, wh: Warehouse, ident: TableIdent, entry: CachedMetadata, mode: str = "all",
              if_none_match: str | None = None, delegation: str = "",
              keep: tuple[tuple, object] | None = None) -> LoadedTable | str:
        """The table as this caller may receive it: the one rule for loads and commit responses alike.

        A reader that may see only some columns gets them only if it applies column limits (its request
        says so); the schema it receives then lacks the hidden columns. Plain clients are refused.
        `keep` (key, policy snapshot): remember the answer for the next load of this version.
        """
        columns = entry.columns()
        hidden, hidden_ids, restrictions, decision = self._readable(ctx, wh, ident, entry)
        labels, labels_key = self._labels(wh.name, ident, columns, hidden)
        etag = self._etag(entry.location, mode, f"{sorted(hidden_ids)}|{labels_key}|{restrictions.key()}"
                          + (f"|{delegation}" if delegation else ""))
        if keep is None and _etag_matches(etag, if_none_match):
            return etag
        if hidden_ids:
            raw = entry.without_fields(hidden_ids, mode == "refs")
        else:
            raw = entry.raw if mode == "all" else entry.refs_only()
        # scan-planning-mode is said in /v1/config only: DuckDB reads any loadTable `config` as vended storage
        # credentials (and then asks for an S3 region for a local table)
        loaded = LoadedTable(entry.location, raw, wh.client_config(), etag, labels,
                             read_restrictions.served(restrictions, entry.fields()))
        if keep is not None:
            self.loads.put(keep[0], KeptLoad(entry.location, keep[1], decision, loaded))
        return etag if _etag_matches(etag, if_none_match) else loaded

    def _readable(self, ctx: RequestContext, wh: Warehouse, ident: TableIdent,
                  entry: CachedMetadata) -> tuple[set[str], set[int], Restrictions, Decision]:
        """The columns hidden from this reader (names, field ids), after refusing what it may not read at all: no
        SELECT; hidden columns for a client that does not apply column limits; a hidden partition or sort source
        (its values are in every file's partition tuple and in the file layout)."""
        columns = entry.columns()
        decision = self.auth.table(ctx, wh.name, Permission.SELECT, ident, [name for _id, name in columns], enforce=False)
        if not decision.allowed:
            self._refuse(ctx, wh, ident, decision.message())
        hidden = set(decision.hidden_columns)
        if hidden and not ctx.applies_column_limits:
            shown = ", ".join(decision.visible_columns or ())
            self.auth.deny(ctx, Permission.SELECT, f"table {ident}",
                           f"{ctx.principal.name} may read only columns {shown} of {ident} ({len(hidden)} more hidden by "
                           "policy); this client does not apply column limits, so it is refused the table: read it "
                           "through icemesh's engine adapters or ask for a grant on the hidden columns")
        hidden_ids = {fid for fid, name in columns if name in hidden}
        if hidden_ids and hidden_ids & entry.partition_and_sort_sources():
            self.auth.deny(ctx, Permission.SELECT, f"table {ident}",
                           f"{ctx.principal.name} may not read every column {ident} is partitioned or sorted by; "
                           "ask for a grant on those columns")
        restrictions = self._restrictions(ctx, wh, ident, entry, columns, hidden)
        return hidden, hidden_ids, restrictions, decision

    def _restrictions(self, ctx: RequestContext, wh: Warehouse, ident: TableIdent, entry: CachedMetadata,
                      columns: list[tuple[int, str]], hidden: set[str]) -> Restrictions:
        """The row filter and masks this reader is held to, after refusing what would let it walk around them: a
        client that does not apply read restrictions; a masked partition or sort source (its values are in every
        file's partition tuple); a row filter on a column the reader may not see (it cannot evaluate it), or that the
        table no longer has."""
        visible = [name for _id, name in columns if name not in hidden]
        restrictions = self.auth.evaluator(wh.name).restrictions(ctx.principal.name, table_ref(ident), visible)
        if not restrictions:
            return NO_RESTRICTIONS
        if not ctx.applies_read_restrictions:
            self.auth.deny(ctx, Permission.SELECT, f"table {ident}",
                           f"{ctx.principal.name} may read {ident} only filtered or masked "
                           f"({'; '.join(self._restriction_words(restrictions))}); this client does not apply read "
                           "restrictions, so it is refused the table: read it through icemesh's engines "
                           "(icemesh query, icemesh.connect()) or ask for an unfiltered grant")
        masked_ids = {fid for fid, name in columns if name in restrictions.masks}
        if masked_ids & entry.partition_and_sort_sources():
            self.auth.deny(ctx, Permission.SELECT, f"table {ident}",
                           f"{ctx.principal.name} may read only masked values of a column {ident} is partitioned or "
                           "sorted by (every file's partition holds them unmasked); ask for an unmasked grant on it")
        names = {name for _id, name in columns}
        for text in restrictions.rows or ():
            read = row_filters.columns(row_filters.parse(text))
            missing = sorted(n for n in read if n not in names and n.split(".")[0] not in names)
            if missing:  # a dropped or renamed column: no engine could apply the filter, so nobody reads past it
                self.auth.deny(ctx, Permission.SELECT, f"table {ident}",
                               f"the row filter of {ctx.principal.name}'s grant on {ident} reads {', '.join(missing)}, "
                               f"which {ident} no longer has; an admin can change the grant's filter (icemesh filters "
                               "list shows it)")
            unseen = sorted(read & hidden)
            if unseen:
                self.auth.deny(ctx, Permission.SELECT, f"table {ident}",
                               f"the row filter of {ctx.principal.name}'s grant on {ident} reads {', '.join(unseen)}, "
                               "which it may not see; an admin can grant those columns or filter on visible ones")
        return restrictions

    @staticmethod
    def _restriction_words(restrictions: Restrictions) -> list[str]:
        words = [f"rows where {restrictions.row_filter}"] if restrictions.row_filter else []
        if restrictions.masks:
            words.append("masked " + ", ".join(sorted(restrictions.masks)))
        return words

    def readable_table(self, ctx: RequestContext, prefix: str,
                       ident: TableIdent) -> tuple[Warehouse, CachedMetadata, set[int], Restrictions]:
        """A table to plan a scan of, under the same rules as loading it: (warehouse, metadata, hidden field ids,
        the row filter and masks the reader is held to)."""
        wh = self.warehouse(prefix)
        record = self.pointers.get_table(wh.name, ident)
        if record is None:
            raise self._no_table(ctx, wh, ident)
        entry = self.cache.get(record.metadata_location, wh.read_bytes)
        _hidden, hidden_ids, restrictions, _decision = self._readable(ctx, wh, ident, entry)
        return wh, entry, hidden_ids, restrictions

    def _labels(self, warehouse: str, ident: TableIdent, columns: list[tuple[int, str]],
                hidden: set[str]) -> tuple[dict | None, str]:
        """Effective tags as the REST spec's `labels`: the table's `object-labels`, and each visible field's
        effective tags by field id."""
        evaluator = self.auth.evaluator(warehouse)
        ref = table_ref(ident)
        table_tags = evaluator.table_tags(ref)
        per_column = evaluator.column_tags(ref, [name for _id, name in columns if name not in hidden])
        fields = [{"field-id": fid, "labels": per_column[name]} for fid, name in columns
                  if name in per_column and per_column[name]]
        if not table_tags and not fields:
            return None, ""
        # `fields` is the merged spec's name (apache/iceberg#15750); `field-labels`, what icemesh sent before it,
        # stays for the clients that read it.
        labels = {"object-labels": table_tags, "fields": fields, "field-labels": fields}
        return labels, str(evaluator.policy.version)

    # -- vended storage credentials ---------------------------------------------------------------

    def _vends(self, ctx: RequestContext, wh: Warehouse) -> bool:
        """Whether this load hands out vended keys: the server vends and the client asked for them (S3 only)."""
        return self._vending is not None and self._vending.asked(ctx, wh)

    def _delegated(self, ctx: RequestContext, wh: Warehouse, ident: TableIdent, location: str, loaded: LoadedTable,
                   write: bool | None = None) -> LoadedTable:
        """`loaded` with vended keys in place of any shared ones, when this load vends (else unchanged). The
        caller has already been allowed to read the table (or is creating it: `write=True`)."""
        if not self._vends(ctx, wh):
            return loaded
        config, credentials = self._vending.mint(ctx, wh, ident, location, write)
        return dataclasses.replace(loaded, config=config, storage_credentials=credentials)

    def load_credentials(self, ctx: RequestContext, prefix: str, ident: TableIdent) -> dict[str, Any]:
        """`GET .../tables/{t}/credentials`: fresh keys, under the same rules as loadTable, checked again on every
        call (a revoked grant gets a 403, not new keys). A table outside S3 needs none: an empty list."""
        wh = self.warehouse(prefix)
        if self.vendor is None:
            raise Unsupported("This catalog does not vend storage credentials: start icemesh serve with "
                              "--vend-credentials-role ARN, or give clients their own storage keys")
        record = self.pointers.get_table(wh.name, ident)
        if record is None:
            raise self._no_table(ctx, wh, ident)
        self._readable(ctx, wh, ident, self.cache.get(record.metadata_location, wh.read_bytes))
        if wh.is_local:
            return {"storage-credentials": []}
        _config, credentials = self._vending.mint(ctx, wh, ident, record.location, fresh=True)
        return {"storage-credentials": credentials}

    # -- what a caller may learn -------------------------------------------------------------------

    def may_see(self, ctx: RequestContext, wh: Warehouse, ident: TableIdent) -> bool:
        return self.auth.table(ctx, wh.name, Permission.DESCRIBE, ident, enforce=False, audit=False).allowed

    def _no_table(self, ctx: RequestContext, wh: Warehouse, ident: TableIdent) -> NoSuchTable:
        """The same answer for a table that does not exist and one the caller may not see, with the nearest
        names among those it may see."""
        names = []
        if self.pointers.namespace_properties(wh.name, ident.namespace) is not None:
            evaluator = self.auth.evaluator(wh.name)
            names = [t.name for t in self.pointers.list_tables(wh.name, ident.namespace, None, NEAR_NAMES_SCANNED)
                     if evaluator.decide_table(ctx.principal.name, Permission.DESCRIBE, table_ref(t)).allowed]
        near = difflib.get_close_matches(ident.name, names, n=1, cutoff=0.75)
        hint = f"; did you mean {TableIdent(ident.namespace, near[0])}?" if near else ""
        return NoSuchTable(f"no table {ident} you may see{hint}")

    def _refuse(self, ctx: RequestContext, wh: Warehouse, ident: TableIdent, message: str) -> NoReturn:
        """A denial on a table: a 403 naming the missing grant when the caller may see the table, else the
        same 404 as for a table that does not exist (nothing about it leaks)."""
        if self.may_see(ctx, wh, ident):
            raise Forbidden(message)
        raise self._no_table(ctx, wh, ident)

    def _table_permission(self, ctx: RequestContext, wh: Warehouse, ident: TableIdent, permission: Permission) -> None:
        decision = self.auth.table(ctx, wh.name, permission, ident, enforce=False)
        if not decision.allowed:
            self._refuse(ctx, wh, ident, decision.message())

    def require_namespace_permission(self, ctx: RequestContext, wh: Warehouse, ns: Namespace, permission: Permission) -> None:
        """A namespace check that answers 404 for a namespace that does not exist or that the caller may not see."""
        exists = self.pointers.namespace_properties(wh.name, ns) is not None
        decision = self.auth.namespace(ctx, wh.name, permission, ns, self._tables_within(wh.name, ns), enforce=False)
        if exists and decision.allowed:
            return
        visible = exists and permission is not Permission.DESCRIBE and self.auth.namespace(
            ctx, wh.name, Permission.DESCRIBE, ns, self._tables_within(wh.name, ns), enforce=False, audit=False).allowed
        if visible:
            raise Forbidden(decision.message())
        raise NoSuchNamespace(f"no namespace {ns} you may see")

    def table_exists(self, ctx: RequestContext, prefix: str, ident: TableIdent) -> None:
        wh = self.warehouse(prefix)
        if self.pointers.get_table(wh.name, ident) is None:
            raise self._no_table(ctx, wh, ident)
        self._table_permission(ctx, wh, ident, Permission.DESCRIBE)

    def drop_table(self, ctx: RequestContext, prefix: str, ident: TableIdent, purge: bool) -> None:
        wh = self.warehouse(prefix)
        if self.pointers.get_table(wh.name, ident) is None:
            raise self._no_table(ctx, wh, ident)
        self._table_permission(ctx, wh, ident, Permission.DROP)
        last = not self._name_elsewhere(wh, lambda other: self.pointers.get_table(other, ident) is not None)
        record = self.pointers.drop_table(wh.name, ident, also=_then(lambda conn: self.policy.forget_table(
            conn, wh.name, table_ref(ident), last), self.event_step(ctx, wh, "drop-table", ident.namespace, ident.name,
                                                               {"purge": purge})))
        self.auth.invalidate()
        self.cache.discard(record.metadata_location)
        if not wh.contains(record.location):
            return  # a location outside the warehouse (a catalog from before confinement): never purged
        if purge:
            nested = [loc for _w, _t, loc in self.pointers.tables_overlapping(record.location)]
            wh.purge(record.location, keep=tuple(nested))
        else:
            self.pointers.retire_location(wh.name, ident, record.location)

    def rename_table(self, ctx: RequestContext, prefix: str, source: TableIdent, destination: TableIdent) -> None:
        wh = self.warehouse(prefix)
        if self.pointers.get_table(wh.name, source) is None:
            raise self._no_table(ctx, wh, source)
        self._table_permission(ctx, wh, source, Permission.ALTER)
        self.require_namespace_permission(ctx, wh, destination.namespace, Permission.CREATE_TABLE)
        self._refuse_view_name(wh, destination)
        elsewhere = self._name_elsewhere(wh, lambda other: self.pointers.get_table(other, source) is not None)
        moved = self.event_step(ctx, wh, "rename-table", source.namespace, source.name,
                            {"destination": {"namespace": list(destination.namespace.levels), "name": destination.name}})
        self.pointers.rename_table(wh.name, source, destination, also=_then(lambda conn: self.policy.move_table(
            conn, wh.name, table_ref(source), table_ref(destination), elsewhere), moved))
        self.auth.invalidate()

    def _refuse_view_name(self, wh: Warehouse, ident: TableIdent) -> None:
        """Tables and views share a namespace's names (a reader's `FROM ns.x` must mean one thing)."""
        views = self.backend.views
        if views is not None and views.get_view(wh.name, ident) is not None:
            raise AlreadyExists(f"A view named {ident} exists: a table cannot take its name")

    def _name_elsewhere(self, wh: Warehouse, exists: Callable[[str], bool]) -> bool:
        """Whether another warehouse has a resource of the same name (governance's tags and grants name it too)."""
        return any(exists(other) for other in self.warehouses if other != wh.name)

    def register_table(self, ctx: RequestContext, prefix: str, ns: Namespace, name: str,
                       metadata_location: str, overwrite: bool = False) -> LoadedTable:
        """Adopt an existing metadata file. Its table location must be free (no other table's, now or
        before a drop, unless an admin adopts it), and every file it names must lie under that location."""
        wh = self.warehouse(prefix)
        ident = TableIdent.of(ns, name)
        self.require_namespace_permission(ctx, wh, ns, Permission.CREATE_TABLE)
        current = self.pointers.get_table(wh.name, ident)
        if current is not None and not overwrite:
            if not self.may_see(ctx, wh, ident):
                raise Forbidden(f"{ident} cannot be registered: the name is taken; choose another")
            raise AlreadyExists(f"Table already exists: {ident}; pass overwrite=true to re-point it")
        if current is not None:
            self._table_permission(ctx, wh, ident, Permission.ALTER)
        metadata_location = wh.require_inside(metadata_location, "metadata-location")
        try:
            entry = self.cache.get(metadata_location, wh.read_bytes)
            metadata = entry.model
        except FileNotFoundError:
            raise BadRequest(f"Cannot register {ident}: no metadata file at {metadata_location}") from None
        except MetadataTooLarge as exc:
            raise BadRequest(f"Cannot register {ident}: {exc.message}") from None
        except Exception as exc:  # unreadable or not Iceberg metadata: never echo what the file holds
            raise BadRequest(f"Cannot register {ident}: {metadata_location} is not readable table metadata "
                             f"({exc.__class__.__name__})") from None
        location = wh.require_inside(metadata.location)
        files = TableFiles(location, wh.canonical)
        files.require(metadata_location, "metadata file")
        self._check_path_properties(files, metadata.properties)
        self._refuse_taken(ctx, wh, ident, location)
        inspect(None, metadata, files, wh.io)  # every file it names is under its location
        governance = self._governance_moves(ctx, wh, ident, current and self.cache.get(current.metadata_location, wh.read_bytes),
                                            metadata)
        claims = current is None or current.location != location
        registered = self._table_event(ctx, wh, "register-table", ident, metadata)
        if current is None:
            self.pointers.create_table(wh.name, ident, metadata_location, location, owner=ctx.principal.name, metadata=metadata,
                                    also=_then(governance, registered))
            self.auth.note_new_owner()
        else:
            try:
                self.pointers.swap_pointers(wh.name, [PointerChange(ident, current.metadata_location, metadata_location, location,
                                                                 metadata=metadata, claims_location=claims,
                                                                 also=_then(governance, registered))])
            except PointerConflict:
                raise CommitFailed(f"Table {ident} changed while registering; retry") from None
        self.pointers.release_location(location)
        self.auth.invalidate()
        loaded = LoadedTable(metadata_location, entry.raw, wh.client_config(), self._etag(metadata_location, "all"))
        if not self._vends(ctx, wh):
            return loaded
        self._readable(ctx, wh, ident, entry)  # an admin re-pointing a table it may not read gets no keys to it
        return self._delegated(ctx, wh, ident, location, loaded)

    def _refuse_taken(self, ctx: RequestContext, wh: Warehouse, ident: TableIdent, location: str) -> None:
        """A new location must not overlap another table's, nor (unless an admin adopts it) the location of a
        table dropped without purge: its files are still there and belong to no one."""
        if any((w, t) != (wh.name, ident) for w, t, _l in self.pointers.tables_overlapping(location)):
            raise refuse_overlap(location)
        views = self.backend.views
        if views is not None and views.locations_overlapping(location):
            raise LocationInUse(f"Table location {location} overlaps a view's location (its metadata files live "
                                "there); omit the location to get a fresh one")
        if self.pointers.retired_locations_overlapping(location) and \
                self.auth.evaluator(wh.name).is_admin(ctx.principal.name) is None:
            raise LocationInUse(f"Table location {location} holds the files of a dropped table: only an admin may "
                                "adopt them; omit the location to get a fresh one")

    def report_metrics(self, ctx: RequestContext, prefix: str, ident: TableIdent, report: dict) -> None:
        """Accepted and dropped: scan/commit reports are advisory in the spec."""
        self.table_exists(ctx, prefix, ident)

    # -- commits -----------------------------------------------------------------------------------

    def commit_table(self, ctx: RequestContext, prefix: str, change: TableChange) -> LoadedTable:
        """One table's commit; the answer is the new metadata exactly as `load_table` would give it to this
        caller, so a caller that may not read the table (or not all of it) cannot commit to learn it."""
        wh = self.warehouse(prefix)
        record = self._check_change(ctx, wh, change)
        if record is not None:  # the pointer as the check read it; _prepare reads it again under the table's lock
            self._view(ctx, wh, change.ident, self.cache.get(record.metadata_location, wh.read_bytes))
        prepared = self._commit(ctx, wh, [change], may_rebase=True)
        view = self._view(ctx, wh, change.ident, prepared[0].entry)
        assert isinstance(view, LoadedTable)
        return view

    def commit_transaction(self, ctx: RequestContext, prefix: str, changes: list[TableChange]) -> None:
        wh = self.warehouse(prefix)
        if not changes:
            raise BadRequest("A transaction needs at least one table change")
        idents = [c.ident for c in changes]
        if len(set(idents)) != len(idents):
            raise BadRequest("A transaction may change each table only once: merge its updates into one change")
        for change in changes:  # every table is checked before anything is written
            self._check_change(ctx, wh, change)
        self._commit(ctx, wh, changes)

    def _check_change(self, ctx: RequestContext, wh: Warehouse, change: TableChange) -> TableRecord | None:
        """Before any file is read: a create needs CREATE_TABLE, any other change a table the caller may see.
        What the change needs beyond that is decided from its effects, in `_prepare`. Returns the table's
        pointer (None for a create), so the caller need not look it up again."""
        if md.is_create(change.requirements):
            self.require_namespace_permission(ctx, wh, change.ident.namespace, Permission.CREATE_TABLE)
            return None
        record = self.pointers.get_table(wh.name, change.ident)
        if record is None:
            raise self._no_table(ctx, wh, change.ident)
        self._table_permission(ctx, wh, change.ident, Permission.DESCRIBE)
        return record

    def _may_write(self, ctx: RequestContext, wh: Warehouse, ident: TableIdent) -> bool:
        """Whether the caller holds any write permission on the table (else its commit costs no file reads)."""
        return any(self.auth.table(ctx, wh.name, p, ident, enforce=False, audit=False).allowed
                   for p in (Permission.INSERT, Permission.DELETE, Permission.ALTER))

    def _authorize_effects(self, ctx: RequestContext, wh: Warehouse, ident: TableIdent, effects: set[Effect]) -> None:
        """Every permission the commit's effects need; a refusal names all that are missing and why."""
        missing = []
        for permission, why in commit_rules.required(effects).items():
            decision = self.auth.table(ctx, wh.name, permission, ident, enforce=False)
            if not decision.allowed:
                missing.append((decision, why))
        if missing:
            first = missing[0][0]
            actions = " and ".join(str(d.action) for d, _w in missing)
            reasons = ", ".join(e.value for _d, why in missing for e in why)
            message = first.message().replace(f"lacks {first.action} ", f"lacks {actions} ", 1)
            raise Forbidden(f"{message} (the commit {reasons})")

    def _commit(self, ctx: RequestContext, wh: Warehouse, changes: list[TableChange],
                may_rebase: bool = False) -> list[_Prepared]:
        """`may_rebase`: a stale plain append may be moved onto its branch's head (one table's commit only: a
        multi-table transaction's requirements say how its tables stand together)."""
        with ExitStack() as stack:
            for ident in sorted(c.ident for c in changes):  # fixed order: no lock-order deadlocks
                stack.enter_context(self._lock_for(wh.name, ident))
            for _attempt in range(COMMIT_ATTEMPTS):
                prepared: list[_Prepared] = []
                try:
                    for change in changes:
                        prepared.append(self._prepare(ctx, wh, change, may_rebase))
                    real = [p for p in prepared if p.change.new != p.change.expected]
                    if real:
                        self.pointers.swap_pointers(wh.name, [p.change for p in real])
                except PointerConflict:
                    self._discard(prepared)
                    continue  # another process committed first: re-check requirements against it
                except CommitStateUnknown:
                    raise  # the pointer may have moved: keep the new metadata files
                except Exception:
                    self._discard(prepared)
                    raise
                for p in prepared:
                    self.cache.put(p.entry)
                    if p.change.expected and p.change.new != p.change.expected:
                        # The old version is history now: keeping every version (and its parsed form) until the
                        # byte bound evicts it is what made memory grow under a stream of commits.
                        self.cache.discard(p.change.expected)
                if any(p.moves_governance for p in prepared):
                    self.auth.invalidate()  # tags moved with the commit: the next decision sees them
                elif any(p.change.expected is None for p in prepared):
                    self.auth.note_new_owner()  # a table was created: its creator owns it
                return prepared
        raise CommitFailed("Too many concurrent commits to the same table; refresh and retry")

    def _prepare(self, ctx: RequestContext, wh: Warehouse, change: TableChange, may_rebase: bool = False) -> _Prepared:
        """Check the requirements against the current metadata, apply the updates, inspect what they do, ask
        for the permissions that needs, and write the new metadata file (not yet current)."""
        record = self.pointers.get_table(wh.name, change.ident)
        creating = md.is_create(change.requirements)
        if record is None and not creating:
            raise self._no_table(ctx, wh, change.ident)
        base_entry = self.cache.get(record.metadata_location, wh.read_bytes) if record else None
        base = base_entry.model if base_entry else None
        try:
            md.check_requirements(change.requirements, base)
        except CommitFailed:
            rebased = self._rebased(ctx, wh, change, base) if may_rebase else None
            if rebased is None:
                raise
            try:
                prepared = self._prepare_checked(ctx, wh, TableChange(change.ident, rebased.requirements, rebased.updates),
                                                 record, base_entry)
            except BaseException:
                wh.delete_file(rebased.manifest_list)
                raise
            if prepared.change.new == prepared.change.expected:  # (an append always changes the table)
                wh.delete_file(rebased.manifest_list)
            else:
                prepared.written = (rebased.manifest_list,)
            return prepared
        return self._prepare_checked(ctx, wh, change, record, base_entry)

    def _rebased(self, ctx: RequestContext, wh: Warehouse, change: TableChange, base) -> rebase.Rebased | None:
        """A stale append moved onto its branch's head (tables with icemesh.commit.rebase-appends, rebase.py);
        only for a caller that may write at all, so nobody else makes the catalog read the table's files."""
        if not rebase.enabled(base) or not self._may_write(ctx, wh, change.ident):
            return None
        return rebase.rebase_append(base, change.requirements, change.updates, wh.io,
                                    TableFiles(wh.require_inside(base.location), wh.canonical))

    def _prepare_checked(self, ctx: RequestContext, wh: Warehouse, change: TableChange, record,
                         base_entry: CachedMetadata | None) -> _Prepared:
        """_prepare after the requirements hold."""
        base = base_entry.model if base_entry else None
        if record is None and self.pointers.namespace_properties(wh.name, change.ident.namespace) is None:
            raise NoSuchNamespace(f"Namespace does not exist: {change.ident.namespace}")
        unchanged = _Prepared(PointerChange(change.ident, record.metadata_location, record.metadata_location,
                                            record.location), base_entry, wh) if record else None
        if unchanged is not None and not change.updates:
            return unchanged
        md.check_new_schemas(change.updates)
        new = md.apply_updates(base, change.updates, record.metadata_location if record else None)
        if md.sets_properties(change.updates):
            retention.check_properties(new.properties)
        if not new.location:
            new = new.model_copy(update={"location": wh.default_table_location(change.ident.namespace, change.ident.name)})
        location = wh.require_inside(new.location)
        if record is not None and location != record.location and wh.canonical(record.location) != location:
            raise BadRequest(f"Cannot move {change.ident} to {new.location}: a table keeps the location it was created "
                             "with (its files live there); create a new table instead")
        files = TableFiles(location, wh.canonical)
        self._check_path_properties(files, new.properties)
        md.check_consistent(new, change.updates)
        if record is None:
            self._refuse_taken(ctx, wh, change.ident, location)
            inspect(None, new, files, wh.io)  # the creator owns it: only its files are checked
        else:
            if md.changes_nothing(base, new):
                return unchanged  # a commit that changes nothing writes nothing
            effects = metadata_effects(base, new, files).effects
            if not self._may_write(ctx, wh, change.ident):
                self._authorize_effects(ctx, wh, change.ident, effects)  # refused before any manifest is read
            self._authorize_effects(ctx, wh, change.ident, effects | file_effects(base, new, files, wh.io).effects)
        governance = self._governance_moves(ctx, wh, change.ident, base_entry, new)
        if md.adds_snapshot(change.updates):  # the table's own retention settings, applied in this commit
            expired = retention.expired_snapshots(new, int(time.time() * 1000))
            if expired:
                new = md.remove_snapshots(new, expired)
        if record is None:
            wh.prepare_table_location(location)
        metadata_location = wh.metadata_file_location(new.location, md.next_version(record and record.metadata_location, new))
        raw = md.serialize(new)
        try:
            wh.write_new_file(metadata_location, raw)
        except Exception as exc:
            raise CommitStateUnknown(f"Could not write table metadata to {metadata_location}: {exc}") from None
        event = self._table_event(ctx, wh, "create-table" if record is None else "update-table", change.ident, new,
                                  base)
        return _Prepared(
            PointerChange(change.ident, record.metadata_location if record else None, metadata_location, location,
                          ctx.principal.name if record is None else None, new, claims_location=record is None,
                          also=_then(governance, event)),
            CachedMetadata(metadata_location, raw, new),
            wh,
            moves_governance=governance is not None,
        )

    # -- the change feed ---------------------------------------------------------------------------

    def event_step(self, ctx: RequestContext, wh: Warehouse, kind: str, ns: Namespace, name: str = "",
               detail: dict[str, Any] | None = None, snapshot_id: int | None = None) -> Callable[[Any], None] | None:
        """A step that records the change's event in the change's own transaction (see EventLog); the management
        service records governance's changes with it too."""
        events = self.backend.events
        if events is None:
            return None
        event = CatalogEvent(kind, ctx.principal.name, wh.name, tuple(ns.levels), name, snapshot_id, detail or {})
        return lambda conn: events.record(conn, event)

    def _table_event(self, ctx: RequestContext, wh: Warehouse, kind: str, ident: TableIdent, new,
                     base=None) -> Callable[[Any], None] | None:
        """A table's event: its uuid, and for a commit that moves the current snapshot, that snapshot and summary."""
        detail: dict[str, Any] = {"table-uuid": str(new.table_uuid)}
        snapshot = new.current_snapshot()
        before = base.current_snapshot_id if base is not None else None
        snapshot_id = None
        if snapshot is not None and snapshot.snapshot_id != before:
            snapshot_id = snapshot.snapshot_id
            summary = snapshot.summary
            if summary is not None:
                detail["summary"] = {"operation": str(summary.operation.value), **summary.additional_properties}
        return self.event_step(ctx, wh, kind, ident.namespace, ident.name, detail, snapshot_id)

    def _governance_moves(self, ctx: RequestContext, wh: Warehouse, ident: TableIdent, base_entry: CachedMetadata | None,
                          new) -> Callable[[Any], None] | None:
        """What governance must do in the commit's own transaction: column tags follow field ids across a
        schema change, and the tags the table declares (`icemesh.tags`) become its declared assignments."""
        gov, ref = self.policy, table_ref(ident)
        before = base_entry.columns() if base_entry is not None else []
        after = [(f.field_id, f.name) for f in new.schema().fields]
        steps: list[Callable[[Any], None]] = []
        if base_entry is not None and before != after:
            steps.append(lambda conn: gov.follow_schema(conn, wh.name, ref, before, after))
        raw = new.properties.get(declared_tags.PROPERTY)
        old = base_entry.model.properties.get(declared_tags.PROPERTY) if base_entry is not None else None
        if raw is not None and (raw != old or before != after):
            declared = declared_tags.parse(raw, gov.tag_keys(), after)
            if self.auth.evaluator(wh.name).is_admin(ctx.principal.name) is None:
                declared_tags.check_not_governed(
                    declared, lambda column, key: gov.nearest_assignment(wh.name, ref.namespace, ref.name, column, key),
                    ctx.principal.name, str(ident))
            steps.append(lambda conn: gov.declare_tags(conn, wh.name, ref, ctx.principal.name, declared))
        elif raw is None and old is not None:
            steps.append(lambda conn: gov.declare_tags(conn, wh.name, ref, ctx.principal.name, {}))
        bind = self._product_claim(ctx, wh, ident, base_entry.model if base_entry is not None else None, new)
        if bind is not None:
            steps.append(bind)
        if not steps:
            return None

        def run(conn) -> None:
            for step in steps:
                step(conn)
        return run

    def _product_claim(self, ctx: RequestContext, wh: Warehouse, ident: TableIdent, base, new) -> Callable[[Any], None] | None:
        """A table that says it is dbt model `project.model` must be its project's (see product_claims); a
        project's first publish binds it to this namespace and principal, in the commit's transaction."""
        claim = product_claims.claim_of(new.properties)
        if claim is None or (base is not None and product_claims.claim_of(base.properties) == claim):
            return None  # unchanged claims were checked when made
        gov = self.policy
        admin = self.auth.evaluator(wh.name).is_admin(ctx.principal.name) is not None
        ns = namespace_ref(ident.namespace)
        binds = product_claims.check(claim, str(ident), ns, ctx.principal.name, admin, gov.project_binding(claim.project))
        for other in self.pointers.list_tables(wh.name, ident.namespace, None, None):
            record = self.pointers.get_table(wh.name, other) if other != ident else None
            if record is not None:
                try:
                    theirs = product_claims.claim_of(self.cache.get(record.metadata_location, wh.read_bytes).model.properties)
                except Exception:  # noqa: BLE001 - an unreadable neighbour claims nothing
                    theirs = None
                if theirs == claim:
                    raise product_claims.refuse_duplicate(claim, str(ident), str(other))
        if not binds:
            return None
        return lambda conn: gov.claim_project(conn, claim.project, ns, ctx.principal.name)

    @staticmethod
    def _discard(prepared: list[_Prepared]) -> None:
        for p in prepared:
            if p.change.new != p.change.expected:
                p.warehouse.delete_file(p.change.new)
            for location in p.written:
                p.warehouse.delete_file(location)

    def _lock_for(self, warehouse: str, ident: TableIdent) -> threading.Lock:
        with self._locks_guard:
            return self._table_locks.setdefault((warehouse, ident), threading.Lock())

    @staticmethod
    def _check_path_properties(files: TableFiles, properties: dict[str, str]) -> None:
        """Properties that steer where engines write must point under the table's own location."""
        for key in md.PATH_PROPERTIES:
            if key in properties:
                files.require(properties[key], f"property {key}")

    @staticmethod
    def _etag(metadata_location: str, mode: str, view: str = "") -> str:
        return '"' + hashlib.sha256(f"{mode}|{metadata_location}|{view}".encode()).hexdigest()[:40] + '"'
