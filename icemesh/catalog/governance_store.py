"""Governance state in the catalog database: principals, tokens, tags, grants, owners and the audit log.

Reads produce an immutable `Policy` for the pure evaluator. Every change bumps a policy version so
each server process notices within its refresh interval and reloads. Audit records are buffered and
written in batches by a background thread, so recording every decision costs a request almost nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from icemesh.catalog.identifiers import Namespace
from icemesh.catalog.store import CatalogStore, bump_policy_version, namespaces_t, policy_version_t, schema
from icemesh.errors import AlreadyExists, BadRequest, IcemeshError
from icemesh.governance.permissions import Permission
from icemesh.governance.policy import PRINCIPAL, ROLE, Grant, Grantee, Policy
from icemesh.governance.resources import NamespaceRef, TableRef
from icemesh.governance.tags import TagExpression, TagKey
from icemesh.security import secrets

log = logging.getLogger("icemesh.governance")

principals_t = Table(
    "icemesh_principals", schema,
    Column("name", String(255), primary_key=True),
    Column("secret_hash", Text, nullable=False),
    Column("roles", Text, nullable=False, default="[]"),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(255)),
)
roles_t = Table(
    "icemesh_roles", schema,
    Column("name", String(255), primary_key=True),
    Column("created_at", Float, nullable=False),
)
tokens_t = Table(
    "icemesh_tokens", schema,
    Column("token_hash", String(64), primary_key=True),
    Column("principal", String(255), nullable=False, index=True),
    Column("expires_at", Float, nullable=False),
    Column("scopes", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False),
)
tag_keys_t = Table(
    "icemesh_tag_keys", schema,
    Column("key", String(128), primary_key=True),
    Column("allowed_values", Text, nullable=False),
)
tag_assignments_t = Table(
    "icemesh_tag_assignments", schema,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("namespace", String(4200), nullable=False),
    Column("table_name", String(255), nullable=False, default=""),
    Column("column_name", String(255), nullable=False, default=""),
    Column("key", String(128), nullable=False),
    Column("value", String(128), nullable=False),
    # Who set it when not an admin (a product's owner tagging its own product); NULL = set by governance,
    # which only an admin may change.
    Column("assigned_by", String(255), nullable=True),
    UniqueConstraint("namespace", "table_name", "column_name", "key", name="uq_icemesh_tag_per_resource"),
)
grants_t = Table(
    "icemesh_grants", schema,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("grantee_kind", String(16), nullable=False),
    Column("grantee", String(255), nullable=False),
    Column("permissions", Text, nullable=False),
    Column("target_kind", String(16), nullable=False),  # catalog | namespace | table | tags
    Column("namespace", String(4200)),
    Column("table_name", String(255)),
    Column("columns", Text),
    Column("expression", Text),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(255)),
    sqlite_autoincrement=True,  # grant ids appear in decisions and audit rows: never reuse one
)
audit_t = Table(
    "icemesh_audit", schema,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False, index=True),
    Column("principal", String(255), nullable=False, index=True),
    Column("action", String(64), nullable=False),
    Column("resource", Text, nullable=False),
    Column("allowed", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("request_id", String(64)),
)


@dataclass(frozen=True)
class PrincipalRecord:
    name: str
    roles: tuple[str, ...]
    created_at: float


@dataclass(frozen=True)
class AuditRecord:
    at: float
    principal: str
    action: str
    resource: str
    allowed: bool
    reason: str
    request_id: str | None = None


def _ns_key(ns: NamespaceRef) -> str:
    return Namespace(ns.levels).key


def _ns_ref(key: str) -> NamespaceRef:
    return NamespaceRef(Namespace.from_key(key).levels)


class GovernanceStore:
    """SQL persistence for governance; shares the catalog's engine and transactions discipline."""

    def __init__(self, catalog: CatalogStore, audit_flush_s: float | None = None) -> None:
        self.catalog = catalog
        self.audit_flush_s = audit_flush_s if audit_flush_s is not None else \
            float(os.environ.get("ICEMESH_AUDIT_FLUSH_SECONDS", "0.2"))
        self.engine = catalog.engine
        schema.create_all(self.engine)
        self._add_missing_columns()
        self._audit_buffer: list[dict[str, Any]] = []
        self._audit_lock = threading.Lock()
        self._audit_wakeup = threading.Event()
        self._audit_stop = False
        self._audit_thread = threading.Thread(target=self._audit_writer, name="icemesh-audit", daemon=True)
        self._audit_thread.start()

    def _write(self):
        return self.catalog._write()

    @staticmethod
    def _bump(conn) -> None:
        bump_policy_version(conn)

    def policy_version(self) -> int:
        with self.catalog._read() as conn:
            return conn.execute(select(policy_version_t.c.version).where(policy_version_t.c.id == 1)).scalar_one()

    # -- principals, roles, tokens -----------------------------------------------------------------

    def create_principal(self, name: str, secret_hash: str, roles: list[str], created_by: str | None) -> None:
        try:
            with self._write() as conn, conn.begin():
                for role in roles:
                    if conn.execute(select(roles_t.c.name).where(roles_t.c.name == role)).first() is None:
                        conn.execute(insert(roles_t).values(name=role, created_at=time.time()))
                conn.execute(insert(principals_t).values(name=name, secret_hash=secret_hash, roles=json.dumps(sorted(roles)),
                                                         created_at=time.time(), created_by=created_by))
                self._bump(conn)
        except IntegrityError:
            raise AlreadyExists(f"Principal {name} already exists") from None

    def principal_secret_hash(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(principals_t.c.secret_hash).where(principals_t.c.name == name)).first()
        return row[0] if row else None

    def set_secret(self, name: str, secret_hash: str) -> None:
        with self._write() as conn, conn.begin():
            result = conn.execute(update(principals_t).where(principals_t.c.name == name).values(secret_hash=secret_hash))
            if result.rowcount != 1:
                raise NotFound(f"Principal {name} does not exist")
            conn.execute(delete(tokens_t).where(tokens_t.c.principal == name))

    def set_roles(self, name: str, roles: list[str]) -> None:
        with self._write() as conn, conn.begin():
            for role in roles:
                if conn.execute(select(roles_t.c.name).where(roles_t.c.name == role)).first() is None:
                    conn.execute(insert(roles_t).values(name=role, created_at=time.time()))
            result = conn.execute(update(principals_t).where(principals_t.c.name == name).values(roles=json.dumps(sorted(roles))))
            if result.rowcount != 1:
                raise NotFound(f"Principal {name} does not exist")
            self._bump(conn)

    def list_principals(self) -> list[PrincipalRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(principals_t.c.name, principals_t.c.roles, principals_t.c.created_at)
                                .order_by(principals_t.c.name)).all()
        return [PrincipalRecord(r.name, tuple(json.loads(r.roles)), r.created_at) for r in rows]

    def delete_principal(self, name: str) -> None:
        with self._write() as conn, conn.begin():
            result = conn.execute(delete(principals_t).where(principals_t.c.name == name))
            if result.rowcount != 1:
                raise NotFound(f"Principal {name} does not exist")
            conn.execute(delete(tokens_t).where(tokens_t.c.principal == name))
            conn.execute(delete(grants_t).where(grants_t.c.grantee_kind == PRINCIPAL, grants_t.c.grantee == name))
            self._bump(conn)

    def create_role(self, name: str) -> None:
        try:
            with self._write() as conn, conn.begin():
                conn.execute(insert(roles_t).values(name=name, created_at=time.time()))
        except IntegrityError:
            raise AlreadyExists(f"Role {name} already exists") from None

    def list_roles(self) -> dict[str, list[str]]:
        roles = {}
        with self.engine.connect() as conn:
            for (name,) in conn.execute(select(roles_t.c.name).order_by(roles_t.c.name)):
                roles[name] = []
        for p in self.list_principals():
            for role in p.roles:
                roles.setdefault(role, []).append(p.name)
        return roles

    def delete_role(self, name: str) -> None:
        with self._write() as conn, conn.begin():
            if conn.execute(delete(roles_t).where(roles_t.c.name == name)).rowcount != 1:
                raise NotFound(f"Role {name} does not exist")
            for row in conn.execute(select(principals_t.c.name, principals_t.c.roles)).all():
                roles = [r for r in json.loads(row.roles) if r != name]
                conn.execute(update(principals_t).where(principals_t.c.name == row.name).values(roles=json.dumps(roles)))
            conn.execute(delete(grants_t).where(grants_t.c.grantee_kind == ROLE, grants_t.c.grantee == name))
            self._bump(conn)

    def store_token(self, token_hash: str, principal: str, expires_at: float, scopes: str) -> None:
        now = time.time()
        with self._write() as conn, conn.begin():
            conn.execute(delete(tokens_t).where(tokens_t.c.expires_at < now - 3600))
            conn.execute(insert(tokens_t).values(token_hash=token_hash, principal=principal, expires_at=expires_at,
                                                 scopes=scopes, created_at=now))

    def lookup_token(self, token_hash: str) -> tuple[str, float, str, tuple[str, ...]] | None:
        """(principal, expires_at, scopes, roles) for a stored token of an existing principal."""
        with self.catalog._read() as conn:
            row = conn.execute(
                select(tokens_t.c.principal, tokens_t.c.expires_at, tokens_t.c.scopes, principals_t.c.roles)
                .join(principals_t, principals_t.c.name == tokens_t.c.principal)
                .where(tokens_t.c.token_hash == token_hash)
            ).first()
        return None if row is None else (row.principal, row.expires_at, row.scopes, tuple(json.loads(row.roles)))

    def revoke_tokens(self, principal: str) -> int:
        with self._write() as conn, conn.begin():
            return conn.execute(delete(tokens_t).where(tokens_t.c.principal == principal)).rowcount

    # -- tags --------------------------------------------------------------------------------------

    def create_tag_key(self, key: str, values: list[str]) -> None:
        try:
            with self._write() as conn, conn.begin():
                conn.execute(insert(tag_keys_t).values(key=key, allowed_values=json.dumps(values)))
                self._bump(conn)
        except IntegrityError:
            raise AlreadyExists(f"Tag key {key} already exists; use `icemesh tags update` to change its values") from None

    def update_tag_key(self, key: str, values: list[str]) -> None:
        with self._write() as conn, conn.begin():
            used = {r.value for r in conn.execute(select(tag_assignments_t.c.value).where(tag_assignments_t.c.key == key))}
            dropped = sorted(used - set(values))
            if dropped:
                raise BadRequest(f"Tag {key} values {dropped} are still assigned; unassign them first")
            if conn.execute(update(tag_keys_t).where(tag_keys_t.c.key == key).values(allowed_values=json.dumps(values))).rowcount != 1:
                raise NotFound(f"Tag key {key} does not exist")
            self._bump(conn)

    def delete_tag_key(self, key: str) -> None:
        with self._write() as conn, conn.begin():
            if conn.execute(select(tag_assignments_t.c.id).where(tag_assignments_t.c.key == key).limit(1)).first():
                raise BadRequest(f"Tag {key} is still assigned to resources; unassign it first")
            if conn.execute(delete(tag_keys_t).where(tag_keys_t.c.key == key)).rowcount != 1:
                raise NotFound(f"Tag key {key} does not exist")
            self._bump(conn)

    def tag_keys(self) -> dict[str, TagKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(tag_keys_t).order_by(tag_keys_t.c.key)).all()
        return {r.key: TagKey(r.key, tuple(json.loads(r.allowed_values))) for r in rows}

    def _add_missing_columns(self) -> None:
        """Catalogs created by an earlier icemesh lack `assigned_by`: add it (a fixed name, no user input)."""
        from sqlalchemy import inspect, text

        columns = {c["name"] for c in inspect(self.engine).get_columns(tag_assignments_t.name)}
        if "assigned_by" not in columns:
            with self._write() as conn, conn.begin():
                conn.execute(text("ALTER TABLE icemesh_tag_assignments ADD COLUMN assigned_by VARCHAR(255)"))

    def assign_tag(self, ns: NamespaceRef, table: str, column: str, key: str, value: str,
                   assigned_by: str | None = None) -> None:
        """Set `key=value` on a namespace, table ('' column) or column; replaces an earlier value of the key.
        `assigned_by` names a non-admin assigner (None: governance)."""
        where = (tag_assignments_t.c.namespace == _ns_key(ns), tag_assignments_t.c.table_name == table,
                 tag_assignments_t.c.column_name == column, tag_assignments_t.c.key == key)
        with self._write() as conn, conn.begin():
            if conn.execute(update(tag_assignments_t).where(*where).values(value=value, assigned_by=assigned_by)).rowcount == 0:
                conn.execute(insert(tag_assignments_t).values(namespace=_ns_key(ns), table_name=table, column_name=column,
                                                              key=key, value=value, assigned_by=assigned_by))
            self._bump(conn)

    def assignment_source(self, ns: NamespaceRef, table: str, column: str, key: str) -> tuple[bool, str | None]:
        """(is the key set directly on this resource, by which non-admin principal or None for governance)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(tag_assignments_t.c.assigned_by).where(
                tag_assignments_t.c.namespace == _ns_key(ns), tag_assignments_t.c.table_name == table,
                tag_assignments_t.c.column_name == column, tag_assignments_t.c.key == key)).first()
        return (row is not None, row.assigned_by if row is not None else None)

    def unassign_tag(self, ns: NamespaceRef, table: str, column: str, key: str) -> bool:
        with self._write() as conn, conn.begin():
            removed = conn.execute(delete(tag_assignments_t).where(
                tag_assignments_t.c.namespace == _ns_key(ns), tag_assignments_t.c.table_name == table,
                tag_assignments_t.c.column_name == column, tag_assignments_t.c.key == key)).rowcount
            self._bump(conn)
        return removed > 0

    # -- grants ------------------------------------------------------------------------------------

    def add_grant(self, grant: Grant, created_by: str | None) -> int:
        """Store a grant; an identical existing grant is returned instead of duplicated (idempotent)."""
        values = _grant_row(grant)
        with self._write() as conn, conn.begin():
            for row in conn.execute(select(grants_t)).all():
                if _grant_from_row(row) == dataclasses.replace(grant, id=row.id):
                    return row.id
            result = conn.execute(insert(grants_t).values(**values, created_at=time.time(), created_by=created_by))
            self._bump(conn)
            return int(result.inserted_primary_key[0])

    def remove_grant(self, grant_id: int) -> bool:
        with self._write() as conn, conn.begin():
            removed = conn.execute(delete(grants_t).where(grants_t.c.id == grant_id)).rowcount
            self._bump(conn)
        return removed > 0

    def replace_grant_permissions(self, grant_id: int, permissions: frozenset[Permission]) -> None:
        with self._write() as conn, conn.begin():
            conn.execute(update(grants_t).where(grants_t.c.id == grant_id)
                         .values(permissions=json.dumps(sorted(p.value for p in permissions))))
            self._bump(conn)

    def grants(self) -> list[Grant]:
        with self.engine.connect() as conn:
            return [_grant_from_row(r) for r in conn.execute(select(grants_t).order_by(grants_t.c.id)).all()]

    def move_table(self, conn, source: TableRef, destination: TableRef) -> None:
        """A renamed table keeps its tags and its table grants (run inside the rename's transaction)."""
        src_ns, dst_ns = _ns_key(source.namespace), _ns_key(destination.namespace)
        conn.execute(update(tag_assignments_t)
                     .where(tag_assignments_t.c.namespace == src_ns, tag_assignments_t.c.table_name == source.name)
                     .values(namespace=dst_ns, table_name=destination.name))
        conn.execute(update(grants_t)
                     .where(grants_t.c.target_kind == "table", grants_t.c.namespace == src_ns,
                            grants_t.c.table_name == source.name)
                     .values(namespace=dst_ns, table_name=destination.name))

    # -- policy as code ----------------------------------------------------------------------------

    def assignments(self) -> dict[tuple[NamespaceRef, str, str, str], str]:
        with self.engine.connect() as conn:
            return {(_ns_ref(r.namespace), r.table_name, r.column_name, r.key): r.value
                    for r in conn.execute(select(tag_assignments_t)).all()}

    def apply_changes(self, warehouse: str, changes: list, created_by: str) -> dict[str, str]:
        """Apply a policy plan in ONE transaction: every change lands or none does.

        Returns the secrets of principals it created (shown once to the caller).
        """
        created: dict[str, str] = {}
        now = time.time()
        with self._write() as conn, conn.begin():
            for ch in changes:
                d = ch.detail
                if ch.kind == "tag":
                    if ch.op == "add":
                        conn.execute(insert(tag_keys_t).values(key=ch.name, allowed_values=json.dumps(d["values"])))
                    elif ch.op == "change":
                        conn.execute(update(tag_keys_t).where(tag_keys_t.c.key == ch.name)
                                     .values(allowed_values=json.dumps(d["values"])))
                    else:
                        conn.execute(delete(tag_keys_t).where(tag_keys_t.c.key == ch.name))
                elif ch.kind == "role":
                    if ch.op == "add":
                        conn.execute(insert(roles_t).values(name=ch.name, created_at=now))
                    else:
                        conn.execute(delete(roles_t).where(roles_t.c.name == ch.name))
                        conn.execute(delete(grants_t).where(grants_t.c.grantee_kind == ROLE, grants_t.c.grantee == ch.name))
                elif ch.kind == "principal":
                    if ch.op == "add":
                        secret = secrets.new_secret()
                        conn.execute(insert(principals_t).values(name=ch.name, secret_hash=secrets.hash_secret(secret),
                                                                 roles=json.dumps(sorted(d["roles"])), created_at=now,
                                                                 created_by=created_by))
                        created[ch.name] = secret
                    elif ch.op == "change":
                        conn.execute(update(principals_t).where(principals_t.c.name == ch.name)
                                     .values(roles=json.dumps(sorted(d["roles"]))))
                    else:
                        conn.execute(delete(principals_t).where(principals_t.c.name == ch.name))
                        conn.execute(delete(tokens_t).where(tokens_t.c.principal == ch.name))
                        conn.execute(delete(grants_t).where(grants_t.c.grantee_kind == PRINCIPAL, grants_t.c.grantee == ch.name))
                elif ch.kind == "namespace":
                    key = Namespace(tuple(d["levels"])).key
                    if ch.op == "add":
                        conn.execute(insert(namespaces_t).values(warehouse=warehouse, name=key,
                                                                 parent=Namespace(tuple(d["levels"])).parent_key,
                                                                 properties="{}", created_at=now, owner=d.get("owner")))
                    else:
                        conn.execute(update(namespaces_t).where(namespaces_t.c.warehouse == warehouse,
                                                                namespaces_t.c.name == key).values(owner=d.get("owner")))
                elif ch.kind == "assignment":
                    where = (tag_assignments_t.c.namespace == Namespace(tuple(d["namespace"])).key,
                             tag_assignments_t.c.table_name == d["table"], tag_assignments_t.c.column_name == d["column"],
                             tag_assignments_t.c.key == d["key"])
                    conn.execute(delete(tag_assignments_t).where(*where))
                    if ch.op != "remove":
                        conn.execute(insert(tag_assignments_t).values(
                            namespace=Namespace(tuple(d["namespace"])).key, table_name=d["table"],
                            column_name=d["column"], key=d["key"], value=d["value"]))
                elif ch.kind == "grant":
                    if ch.op == "add":
                        conn.execute(insert(grants_t).values(**_grant_row(d["grant"]), created_at=now, created_by=created_by))
                    else:
                        conn.execute(delete(grants_t).where(grants_t.c.id == d["id"]))
            if changes:
                self._bump(conn)
        return created

    # -- the policy snapshot -----------------------------------------------------------------------

    def load_policy(self, warehouse: str) -> Policy:
        with self.engine.connect() as conn:
            version = conn.execute(select(policy_version_t.c.version).where(policy_version_t.c.id == 1)).scalar_one()
            ns_tags: dict[NamespaceRef, dict[str, str]] = {}
            table_tags: dict[TableRef, dict[str, str]] = {}
            column_tags: dict[TableRef, dict[str, dict[str, str]]] = {}
            for r in conn.execute(select(tag_assignments_t)).all():
                ns = _ns_ref(r.namespace)
                if not r.table_name:
                    ns_tags.setdefault(ns, {})[r.key] = r.value
                elif not r.column_name:
                    table_tags.setdefault(TableRef(ns, r.table_name), {})[r.key] = r.value
                else:
                    column_tags.setdefault(TableRef(ns, r.table_name), {}).setdefault(r.column_name, {})[r.key] = r.value
            roles = {r.name: frozenset(json.loads(r.roles))
                     for r in conn.execute(select(principals_t.c.name, principals_t.c.roles)).all()}
            grants = tuple(_grant_from_row(r) for r in conn.execute(select(grants_t).order_by(grants_t.c.id)).all())
        return Policy(tag_keys=self.tag_keys(), namespace_tags=ns_tags, table_tags=table_tags, column_tags=column_tags,
                      grants=grants, roles=roles, owners=self.catalog.owners(warehouse), version=version)

    # -- audit -------------------------------------------------------------------------------------

    def audit(self, record: AuditRecord) -> None:
        with self._audit_lock:
            self._audit_buffer.append(record.__dict__)
            if len(self._audit_buffer) >= 500:
                self._audit_wakeup.set()

    def audit_login(self, client_id: str, allowed: bool, reason: str) -> None:
        self.audit(AuditRecord(time.time(), client_id[:255], "LOGIN", "the catalog", allowed, reason))

    def audit_rejected_token(self, reason: str, request_id: str | None) -> None:
        """A request without a valid token (missing, forged, expired, revoked): a denial like any other."""
        self.audit(AuditRecord(time.time(), "anonymous", "AUTHENTICATE", "the catalog", False, reason, request_id))

    def flush_audit(self) -> None:
        with self._audit_lock:
            batch, self._audit_buffer = self._audit_buffer, []
        if batch:
            try:
                with self._write() as conn, conn.begin():
                    conn.execute(insert(audit_t), batch)
            except Exception:  # never lose the batch silently
                log.exception("could not write %d audit records; will retry", len(batch))
                with self._audit_lock:
                    self._audit_buffer[:0] = batch

    def _audit_writer(self) -> None:
        while not self._audit_stop:
            self._audit_wakeup.wait(self.audit_flush_s)
            self._audit_wakeup.clear()
            self.flush_audit()

    def close(self) -> None:
        self._audit_stop = True
        self._audit_wakeup.set()
        self._audit_thread.join(timeout=5)
        self.flush_audit()

    def audit_records(self, principal: str | None = None, allowed: bool | None = None, limit: int = 100,
                      since: float | None = None) -> list[AuditRecord]:
        self.flush_audit()
        c = audit_t.c
        stmt = select(c.at, c.principal, c.action, c.resource, c.allowed, c.reason, c.request_id)
        if principal:
            stmt = stmt.where(c.principal == principal)
        if allowed is not None:
            stmt = stmt.where(c.allowed == allowed)
        if since is not None:
            stmt = stmt.where(c.at >= since)
        stmt = stmt.order_by(c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [AuditRecord(*r) for r in conn.execute(stmt).all()]

    def audit_count(self) -> int:
        self.flush_audit()
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(audit_t)).scalar_one()


class NotFound(IcemeshError):
    code = 404
    type = "NotFoundException"


def _grant_row(grant: Grant) -> dict[str, Any]:
    if grant.catalog:
        kind = "catalog"
    elif grant.namespace is not None:
        kind = "namespace"
    elif grant.table is not None:
        kind = "table"
    else:
        kind = "tags"
    return {
        "grantee_kind": grant.grantee.kind,
        "grantee": grant.grantee.name,
        "permissions": json.dumps(sorted(p.value for p in grant.permissions)),
        "target_kind": kind,
        "namespace": _ns_key(grant.namespace) if grant.namespace else (_ns_key(grant.table.namespace) if grant.table else None),
        "table_name": grant.table.name if grant.table else None,
        "columns": json.dumps(sorted(grant.columns)) if grant.columns else None,
        "expression": json.dumps(grant.expression.to_dict()) if grant.expression else None,
    }


def _grant_from_row(row) -> Grant:
    grantee = Grantee(row.grantee_kind, row.grantee)
    perms = frozenset(Permission(p) for p in json.loads(row.permissions))
    if row.target_kind == "catalog":
        return Grant(row.id, grantee, perms, catalog=True)
    if row.target_kind == "namespace":
        return Grant(row.id, grantee, perms, namespace=_ns_ref(row.namespace))
    if row.target_kind == "table":
        cols = frozenset(json.loads(row.columns)) if row.columns else None
        return Grant(row.id, grantee, perms, table=TableRef(_ns_ref(row.namespace), row.table_name), columns=cols)
    return Grant(row.id, grantee, perms, expression=TagExpression.from_dict(json.loads(row.expression)))
