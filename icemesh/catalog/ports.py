"""What the catalog services need from the systems that hold the mesh's state, and the values they speak.

The services (catalog, management, products) depend only on these protocols; `icemesh/backends/` implements
them (SQL, AWS Glue + Lake Formation). A new backend, or an external authorizer, is an addition there,
never an edit here. A `conn` argument is the backend's own transaction handle when it has one (the SQL
backend passes its connection so governance moves with a pointer in one transaction; Glue passes None).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

from icemesh.errors import AlreadyExists, NoSuchNamespace
from icemesh.governance.changes import Change
from icemesh.governance.permissions import Permission
from icemesh.governance.policy import Grant, Policy
from icemesh.governance.resources import NamespaceRef, TableRef
from icemesh.governance.tags import TagKey
from icemesh.names import Namespace, TableIdent
from icemesh.security.identities import IdentityStore, PrincipalRecord  # noqa: F401  (a port of the services too)

# -- values ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableRecord:
    metadata_location: str
    location: str


@dataclass(frozen=True)
class ViewRecord:
    metadata_location: str
    location: str
    owner: str | None = None


@dataclass(frozen=True)
class PointerChange:
    """Move `ident` from `expected` (None: the table must not exist yet) to `new`."""

    ident: TableIdent
    expected: str | None
    new: str
    location: str
    owner: str | None = None  # for creates: who will own the new table
    metadata: Any = field(default=None, compare=False)  # the new TableMetadata (Glue copies columns and properties)
    claims_location: bool = False  # the table takes `location` (a create, a re-pointing register): checked for overlap
    # Governance that moves with this pointer (tags declared in the commit, tags following renamed columns):
    # run inside the swap's transaction with its connection, so both land or neither does.
    also: Callable[[Any], None] | None = field(default=None, compare=False)


class PointerConflict(Exception):
    """Some table's pointer was not what the commit expected: another commit got there first."""


@dataclass(frozen=True)
class AuditRecord:
    at: float
    principal: str
    action: str
    resource: str
    allowed: bool
    reason: str
    request_id: str | None = None


@dataclass(frozen=True)
class CatalogEvent:
    """One change to the catalog, recorded in the change's own transaction (see EventLog). `type` follows the
    Iceberg REST events proposal's operation types (create-table, update-table, ...)."""

    type: str
    principal: str
    warehouse: str
    namespace: tuple[str, ...]
    name: str = ""  # the table's; '' for a namespace's event
    snapshot_id: int | None = None  # a commit's new current snapshot
    detail: dict[str, Any] = field(default_factory=dict, compare=False)  # summary, table-uuid, a rename's destination
    at: float = 0.0  # set by the log when recorded
    id: int = 0  # the cursor: set by the log, increasing in commit order


@dataclass(frozen=True)
class IndexedProduct:
    """One row of the product index: what a table's (or view's) current metadata says about it."""

    ident: TableIdent
    kind: str  # table | view
    metadata_location: str
    summary: dict[str, Any] | None  # tables/product_summary.py; None: unreadable (error), or still in `raw`
    error: str | None = None  # why the metadata could not be read
    raw: str | bytes | None = field(default=None, repr=False)  # the summary's JSON, when not decoded yet


@dataclass(frozen=True)
class ProductQuery:
    """What a listing asks the index for; every field narrows it (None or empty: any). `text` is a superset
    match (the service re-checks it against what the caller may see)."""

    namespace: Namespace | None = None
    projects: tuple[str, ...] = ()
    owner: str | None = None
    text: str | None = None
    products_only: bool = True
    refs: tuple[tuple[str, str], ...] = ()  # (dbt project, dbt model) pairs, any version


@dataclass(frozen=True)
class VendedCredentials:
    """Short-lived storage keys for one table, as a CredentialVendor made them. Never logged or stored: the
    repr hides the secret and the token."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expires_at_ms: int  # when the keys stop working (STS's Expiration), epoch milliseconds
    write: bool = False  # the keys may also write and delete the table's files


# Governance that follows a table: (column or "" for the table, key) -> (value, field id)
DeclaredTags = dict[tuple[str, str], tuple[str, "int | None"]]


# A step run in a store's write transaction (conn; None where the store has none): the change's event.
Step = Callable[[Any], None] | None

# -- ports -----------------------------------------------------------------------------------------


class PointerStore(Protocol):
    """Namespaces, table pointers, owners and table locations (the system of record)."""

    def upsert_warehouse(self, name: str, root: str, properties: dict[str, str]) -> None: ...
    def create_namespace(self, warehouse: str, ns: Namespace, properties: dict[str, str], owner: str | None = None,
                         also: Callable[[Any], None] | None = None) -> None: ...
    def namespace_properties(self, warehouse: str, ns: Namespace) -> dict[str, str] | None: ...
    def list_namespaces(self, warehouse: str, parent: Namespace | None, after: str | None, limit: int | None) -> list[Namespace]: ...
    def namespaces_with_owners(self, warehouse: str) -> list[tuple[Namespace, str | None]]: ...
    def update_namespace_properties(self, warehouse: str, ns: Namespace, removals: Iterable[str],
                                    updates: dict[str, str]) -> tuple[list[str], list[str], list[str]]: ...
    def drop_namespace(self, warehouse: str, ns: Namespace, also: Callable[[Any], None] | None = None) -> None: ...

    def get_table(self, warehouse: str, ident: TableIdent) -> TableRecord | None: ...
    def list_tables(self, warehouse: str, ns: Namespace, after: str | None, limit: int | None) -> list[TableIdent]: ...
    def tables_under(self, warehouse: str, ns: Namespace) -> list[TableIdent]: ...
    def swap_pointers(self, warehouse: str, changes: list[PointerChange]) -> None: ...
    def create_table(self, warehouse: str, ident: TableIdent, metadata_location: str, location: str,
                     owner: str | None = None, metadata: Any = None, also: Callable[[Any], None] | None = None) -> None: ...
    def drop_table(self, warehouse: str, ident: TableIdent, also: Callable[[Any], None] | None = None) -> TableRecord: ...
    def rename_table(self, warehouse: str, source: TableIdent, destination: TableIdent,
                     also: Callable[[Any], None] | None = None) -> None: ...

    def owners(self, warehouse: str) -> dict[NamespaceRef | TableRef, str]: ...
    def restricted(self, warehouse: str) -> list[TableRef]: ...
    def reassign_owner(self, conn: Any, old: str, new: str) -> None: ...

    def tables_overlapping(self, location: str) -> list[tuple[str, TableIdent, str]]: ...
    def retire_location(self, warehouse: str, ident: TableIdent, location: str) -> None: ...
    def retired_locations_overlapping(self, location: str) -> list[str]: ...
    def release_location(self, location: str) -> None: ...


class PolicyStore(Protocol):
    """Tag keys and assignments, grants, dbt project bindings, and the policy snapshot the evaluator decides from."""

    def policy_version(self) -> int: ...
    def load_policy(self, warehouse: str) -> Policy: ...
    def tag_keys(self) -> dict[str, TagKey]: ...
    def create_tag_key(self, key: str, values: list[str], also: Step = None) -> None: ...
    def update_tag_key(self, key: str, values: list[str], also: Step = None) -> None: ...
    def delete_tag_key(self, key: str, also: Step = None) -> None: ...
    def assign_tag(self, warehouse: str, ns: NamespaceRef, table: str, column: str, key: str, value: str,
                   assigned_by: str | None = None, field_id: int | None = None, also: Step = None) -> None: ...
    def assignment_source(self, warehouse: str, ns: NamespaceRef, table: str, column: str, key: str) -> tuple[bool, str | None]: ...
    def nearest_assignment(self, warehouse: str, ns: NamespaceRef, table: str, column: str, key: str): ...
    def unassign_tag(self, warehouse: str, ns: NamespaceRef, table: str, column: str, key: str,
                     also: Step = None) -> bool: ...
    def assignments(self, warehouse: str) -> dict[tuple[NamespaceRef, str, str, str], str]: ...
    def grants(self) -> list[Grant]: ...
    def canonical_grant(self, grant: Grant) -> Grant: ...  # as the store will read it back; ValueError if it cannot hold it
    def add_grant(self, grant: Grant, created_by: str | None, also: Step = None) -> int: ...
    def remove_grant(self, grant_id: int, also: Step = None) -> bool: ...
    def replace_grant_permissions(self, grant_id: int, permissions: frozenset[Permission], also: Step = None) -> None: ...
    def apply_changes(self, warehouse: str, changes: list[Change], created_by: str, also: Step = None) -> dict[str, str]: ...

    def follow_schema(self, conn: Any, warehouse: str, table: TableRef, before: list[tuple[int, str]],
                      after: list[tuple[int, str]]) -> None: ...
    def declare_tags(self, conn: Any, warehouse: str, table: TableRef, principal: str | None, declared: DeclaredTags) -> None: ...
    def forget_table(self, conn: Any, warehouse: str, table: TableRef, last_of_its_name: bool) -> None: ...
    def forget_namespace(self, conn: Any, warehouse: str, ns: NamespaceRef, last_of_its_name: bool) -> None: ...
    def forget_principal(self, conn: Any, name: str) -> None: ...
    def move_table(self, conn: Any, warehouse: str, source: TableRef, destination: TableRef,
                   source_elsewhere: bool = False) -> None: ...

    def project_binding(self, project: str) -> tuple[NamespaceRef, str] | None: ...
    def project_bindings(self) -> dict[str, tuple[NamespaceRef, str]]: ...
    def claim_project(self, conn: Any, project: str, ns: NamespaceRef, owner: str) -> None: ...


class ViewStore(Protocol):
    """Iceberg view pointers (a view's name is unique among its namespace's tables and views)."""

    def get_view(self, warehouse: str, ident: TableIdent) -> ViewRecord | None: ...
    def list_views(self, warehouse: str, ns: Namespace, after: str | None, limit: int | None) -> list[TableIdent]: ...
    def views_under(self, warehouse: str, ns: Namespace) -> list[TableIdent]: ...
    def locations_overlapping(self, location: str) -> list[str]: ...
    def create_view(self, warehouse: str, ident: TableIdent, metadata_location: str, location: str, owner: str,
                    metadata: dict[str, Any] | None = None) -> None: ...
    def swap_view(self, warehouse: str, ident: TableIdent, expected: str, new: str,
                  metadata: dict[str, Any] | None = None) -> None: ...
    def drop_view(self, warehouse: str, ident: TableIdent, also: Callable[[Any], None] | None = None) -> ViewRecord: ...
    def rename_view(self, warehouse: str, source: TableIdent, destination: TableIdent,
                    also: Callable[[Any], None] | None = None) -> None: ...


class ProductIndex(Protocol):
    """The product index, kept by the pointer and view stores in each change's own transaction; `fill`
    records (ident, kind, metadata location, summary, error) read from files for an older catalog. Rows come in (namespace key, name) order; `after` is the last
    (namespace key, name) of the previous page."""

    def find(self, warehouse: str, query: ProductQuery, after: tuple[str, str] | None,
             limit: int) -> list[IndexedProduct]: ...  # summaries in `raw`, decoded by the caller
    def get(self, warehouse: str, ident: TableIdent) -> IndexedProduct | None: ...
    def downstream(self, warehouse: str, names: Iterable[str]) -> dict[str, list[str]]: ...
    def unindexed(self, warehouse: str, since: float | None = None) -> list[tuple[TableIdent, str, str]]: ...
    # (ident, kind, metadata location) of pointers moved after `since` that the index does not reflect
    def duplicate_claims(self, warehouse: str) -> list[tuple[str, str, str, Namespace]]: ...
    def fill(self, warehouse: str,
             entries: list[tuple[TableIdent, str, str, dict[str, Any] | None, str | None]]) -> None: ...


class EventLog(Protocol):
    """The catalog's change feed. `record` writes in the caller's transaction (`conn`; None: its own), so a
    change and its event land together or not at all; ids increase in commit order (a reader never skips one)."""

    def record(self, conn: Any, event: CatalogEvent) -> None: ...
    def read(self, after: int, limit: int, types: frozenset[str] | None = None) -> list[CatalogEvent]: ...
    def latest(self) -> int: ...
    def wait(self, after: int, timeout: float) -> None: ...
    def prune(self, older_than: float) -> int: ...


class AuditLog(Protocol):
    def audit(self, record: AuditRecord) -> None: ...
    def audit_login(self, principal: str, address: str, how: str) -> None: ...
    def audit_failed_login(self, client_id: str, address: str, reason: str) -> None: ...
    def audit_rejected_token(self, reason: str, request_id: str | None) -> None: ...
    def audit_records(self, principal: str | None = None, allowed: bool | None = None, limit: int = 100,
                      since: float | None = None) -> list[AuditRecord]: ...
    def flush_audit(self) -> None: ...
    def close(self) -> None: ...


class CredentialVendor(Protocol):
    """Makes storage credentials scoped to one table location (read-only, or read-write). Who gets which is the
    catalog service's decision; the vendor only mints them (icemesh.backends.aws.sts: STS AssumeRole)."""

    def vend(self, location: str, write: bool, principal: str) -> VendedCredentials: ...


class IdempotencyStore(Protocol):
    def claim_idempotency_key(self, key: str, fingerprint: str, lifetime_s: float,
                              lease_s: float = ...) -> tuple[str, int | None, bytes | None]: ...
    def finish_idempotency_key(self, key: str, status: int | None, body: bytes | None) -> None: ...


def create_by_swap(store, warehouse: str, ident: TableIdent, metadata_location: str, location: str,
                   owner: str | None, metadata: Any, also: Callable[[Any], None] | None = None) -> None:
    """Create = swap a pointer from nothing: a lost race is 'already exists' (or 'no namespace' if it went).
    Shared by every pointer store, so both backends answer a create the same way."""
    if store.namespace_properties(warehouse, ident.namespace) is None:
        raise NoSuchNamespace(f"Namespace does not exist: {ident.namespace}")
    try:
        store.swap_pointers(warehouse, [PointerChange(ident, None, metadata_location, location, owner, metadata,
                                                      claims_location=True, also=also)])
    except PointerConflict:
        if store.namespace_properties(warehouse, ident.namespace) is None:
            raise NoSuchNamespace(f"Namespace does not exist: {ident.namespace}") from None
        raise AlreadyExists(f"Table already exists: {ident}") from None



@dataclass
class Backend:
    """Everything a catalog server's services run on, from one backend (see icemesh.backends.open_backend)."""

    pointers: PointerStore
    identities: IdentityStore
    policy: PolicyStore
    audit: AuditLog
    idempotency: IdempotencyStore
    close: Callable[[], None] = lambda: None
    views: ViewStore | None = None  # None: the backend keeps no views (their routes answer 406)
    notes: Callable[[], list[str]] = lambda: []  # what `icemesh serve` says about the backend at start
    events: EventLog | None = None  # None: no change feed (its route answers 406)
    products: ProductIndex | None = None  # None: products are listed from the tables' metadata files (Glue)
