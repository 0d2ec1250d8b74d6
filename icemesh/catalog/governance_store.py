"""Governance state in the catalog database: principals, tokens, tags, grants, owners and the audit log.

Reads produce an immutable `Policy` for the pure evaluator. Every change bumps a policy version so
each server process notices within its refresh interval and reloads. Audit records are buffered and
written in batches by a background thread, so recording every decision costs a request almost nothing.
"""

from __future__ import annotations

import dataclasses
import json
from contextlib import contextmanager
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
from icemesh.errors import AlreadyExists, BadRequest, Forbidden, IcemeshError
from icemesh.governance.permissions import Permission
from icemesh.governance.policy import PRINCIPAL, ROLE, Grant, Grantee, Policy
from icemesh.governance.resources import NamespaceRef, TableRef
from icemesh.governance.tags import TagExpression, TagKey
from icemesh.security import secrets

log = logging.getLogger("icemesh.governance")
ADMIN_PRINCIPAL = "admin"  # created at first start; takes over what a deleted principal owned

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
    # Where it applies: '' = in every warehouse (governance's namespace and table tags); a warehouse name =
    # there only (an owner's tags apply where it owns the resource; column tags bind to that table's field ids).
    Column("warehouse", String(255), nullable=False, default=""),
    Column("namespace", String(4200), nullable=False),
    Column("table_name", String(255), nullable=False, default=""),
    Column("column_name", String(255), nullable=False, default=""),
    # The Iceberg field id the column tag protects: renames follow it, a dropped column's tags go with it.
    # NULL until the next commit binds it (tags from an older catalog, still matched by name).
    Column("field_id", Integer, nullable=True),
    Column("key", String(128), nullable=False),
    Column("value", String(128), nullable=False),
    # Who set it when not an admin (a product's owner tagging its own product); NULL = set by governance,
    # which only an admin may change.
    Column("assigned_by", String(255), nullable=True),
    # Declared in the table's own `icemesh.tags` property (kept equal to it at every commit), not assigned by hand.
    Column("declared", Boolean, nullable=False, default=False),
    UniqueConstraint("warehouse", "namespace", "table_name", "column_name", "key", name="uq_icemesh_tag_assignment"),
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
projects_t = Table(
    "icemesh_projects", schema,
    # A dbt project name belongs to one domain: the namespace its products live in and the principal that
    # publishes them, bound when it first publishes (into the namespace of its own name) or by an admin.
    Column("project", String(255), primary_key=True),
    Column("namespace", String(4200), nullable=False),
    Column("owner", String(255), nullable=False),
    Column("bound_by", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
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
        self._migrate_tag_assignments()
        schema.create_all(self.engine)
        self._audit_buffer: list[dict[str, Any]] = []
        self._audit_lock = threading.Lock()
        self._audit_wakeup = threading.Event()
        self._audit_stop = False
        self._audit_thread = threading.Thread(target=self._audit_writer, name="icemesh-audit", daemon=True)
        self._audit_thread.start()

    def _write(self):
        return self.catalog._write()

    @contextmanager
    def _in(self, conn):
        """The caller's transaction when it has one (the catalog's pointer swap), else a new one."""
        if conn is not None:
            yield conn
            return
        with self._write() as own, own.begin():
            yield own

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
        """Its tokens, grants and ownership end with it: what it owned becomes the admin's, so a new principal
        of the same name inherits nothing."""
        with self._write() as conn, conn.begin():
            result = conn.execute(delete(principals_t).where(principals_t.c.name == name))
            if result.rowcount != 1:
                raise NotFound(f"Principal {name} does not exist")
            self._forget_principal(conn, name)
            self._bump(conn)

    def _forget_principal(self, conn, name: str) -> None:
        conn.execute(delete(tokens_t).where(tokens_t.c.principal == name))
        conn.execute(delete(grants_t).where(grants_t.c.grantee_kind == PRINCIPAL, grants_t.c.grantee == name))
        conn.execute(update(tag_assignments_t).where(tag_assignments_t.c.assigned_by == name).values(assigned_by=None))
        self.catalog.reassign_owner(conn, name, ADMIN_PRINCIPAL)

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

    def _migrate_tag_assignments(self) -> None:
        """Catalogs created by an earlier icemesh keep tag assignments without a warehouse or field id: move them
        to the current table (fixed names only, no user input). Column tags and owners' tags applied in every
        warehouse then: they are copied to each known warehouse; field ids are bound at the next commit."""
        from sqlalchemy import inspect, text

        inspector = inspect(self.engine)
        if tag_assignments_t.name not in inspector.get_table_names():
            return
        columns = {c["name"] for c in inspector.get_columns(tag_assignments_t.name)}
        if "warehouse" in columns:
            return
        old = "icemesh_tag_assignments_v1"
        with self._write() as conn, conn.begin():
            conn.execute(text(f"ALTER TABLE {tag_assignments_t.name} RENAME TO {old}"))
            if self.engine.dialect.name == "postgresql":  # index and sequence names are per schema there
                conn.execute(text(f"ALTER INDEX {tag_assignments_t.name}_pkey RENAME TO {old}_pkey"))
                conn.execute(text(f"ALTER SEQUENCE {tag_assignments_t.name}_id_seq RENAME TO {old}_id_seq"))
        schema.create_all(self.engine, tables=[tag_assignments_t])
        with self._write() as conn, conn.begin():
            warehouses = [r[0] for r in conn.execute(text("SELECT name FROM icemesh_warehouses"))] or [""]
            by = "assigned_by" if "assigned_by" in columns else "NULL"
            rows = conn.execute(text(f"SELECT namespace, table_name, column_name, key, value, {by} AS assigned_by "
                                     f"FROM {old}")).all()
            for r in rows:
                scopes = warehouses if (r.column_name or r.assigned_by) else [""]
                for wh in scopes:
                    conn.execute(insert(tag_assignments_t).values(
                        warehouse=wh, namespace=r.namespace, table_name=r.table_name, column_name=r.column_name,
                        field_id=None, key=r.key, value=r.value, assigned_by=r.assigned_by, declared=False))
            conn.execute(text(f"DROP TABLE {old}"))

    @staticmethod
    def _slot(warehouse: str, ns: NamespaceRef, table: str, column: str, key: str):
        c = tag_assignments_t.c
        return (c.warehouse == warehouse, c.namespace == _ns_key(ns), c.table_name == table, c.column_name == column,
                c.key == key)

    def assign_tag(self, warehouse: str, ns: NamespaceRef, table: str, column: str, key: str, value: str,
                   assigned_by: str | None = None, field_id: int | None = None) -> None:
        """Set `key=value` on a namespace, table ('' column) or column, in one warehouse ('' = every warehouse);
        replaces an earlier value of the key there. `assigned_by` names a non-admin assigner (None: governance)."""
        where = self._slot(warehouse, ns, table, column, key)
        values = dict(value=value, assigned_by=assigned_by, field_id=field_id, declared=False)
        with self._write() as conn, conn.begin():
            if conn.execute(update(tag_assignments_t).where(*where).values(**values)).rowcount == 0:
                conn.execute(insert(tag_assignments_t).values(warehouse=warehouse, namespace=_ns_key(ns), table_name=table,
                                                              column_name=column, key=key, **values))
            self._bump(conn)

    def assignment_source(self, warehouse: str, ns: NamespaceRef, table: str, column: str,
                          key: str) -> tuple[bool, str | None]:
        """(is the key set directly on this resource where `warehouse` sees it, by which non-admin principal or
        None for governance). Governance's own assignment ('' = every warehouse) wins over a local one."""
        c = tag_assignments_t.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(c.warehouse, c.assigned_by).where(
                c.warehouse.in_(("", warehouse)), c.namespace == _ns_key(ns), c.table_name == table,
                c.column_name == column, c.key == key)).all()
        if not rows:
            return False, None
        row = min(rows, key=lambda r: r.warehouse != "")
        return True, row.assigned_by

    def nearest_assignment(self, warehouse: str, ns: NamespaceRef, table: str, column: str,
                           key: str) -> tuple[tuple[NamespaceRef, str, str], str, str | None, bool] | None:
        """The assignment that gives a resource its value of `key` where `warehouse` sees it (the nearest: column,
        table, then namespaces up): (resource, value, assigned_by, declared), or None."""
        chain = ([(ns, table, column)] if column else []) + ([(ns, table, "")] if table else [])
        chain += [(level, "", "") for level in reversed(list(ns.ancestors_and_self()))]
        c = tag_assignments_t.c
        keys = {_ns_key(level) for level in ns.ancestors_and_self()}
        with self.engine.connect() as conn:
            rows = conn.execute(select(tag_assignments_t).where(
                c.warehouse.in_(("", warehouse)), c.key == key, c.namespace.in_(keys))).all()
        found = {}
        for r in sorted(rows, key=lambda r: r.warehouse == ""):  # governance's ('') wins
            found[(_ns_key(_ns_ref(r.namespace)), r.table_name, r.column_name)] = r
        for level, tbl, col in chain:
            row = found.get((_ns_key(level), tbl, col))
            if row is not None:
                return (level, tbl, col), row.value, row.assigned_by, bool(row.declared)
        return None

    def unassign_tag(self, warehouse: str, ns: NamespaceRef, table: str, column: str, key: str) -> bool:
        """Remove the key from the resource as `warehouse` sees it (its own assignment, else governance's)."""
        with self._write() as conn, conn.begin():
            removed = conn.execute(delete(tag_assignments_t).where(*self._slot(warehouse, ns, table, column, key))).rowcount
            if not removed and warehouse:
                removed = conn.execute(delete(tag_assignments_t).where(*self._slot("", ns, table, column, key))).rowcount
            self._bump(conn)
        return removed > 0

    # -- governance that follows a table's life (run inside the catalog's own transactions) ---------

    def follow_schema(self, conn, warehouse: str, table: TableRef, before: list[tuple[int, str]],
                      after: list[tuple[int, str]]) -> None:
        """Column tags follow the Iceberg field id: a renamed column keeps its tags, a dropped one loses them,
        and a new column of an old name starts untagged. Unbound tags (from an older catalog) bind by name first."""
        with self._in(conn) as conn:
            self._follow_schema(conn, warehouse, table, before, after)

    def _follow_schema(self, conn, warehouse: str, table: TableRef, before: list[tuple[int, str]],
                       after: list[tuple[int, str]]) -> None:
        c = tag_assignments_t.c
        by_name = {name: fid for fid, name in before}
        names = dict(after)
        rows = conn.execute(select(c.id, c.column_name, c.field_id).where(
            c.warehouse == warehouse, c.namespace == _ns_key(table.namespace), c.table_name == table.name,
            c.column_name != "")).all()
        changed = False
        for row in rows:
            fid = row.field_id if row.field_id is not None else by_name.get(row.column_name)
            if fid is None or fid not in names:
                conn.execute(delete(tag_assignments_t).where(c.id == row.id))
                changed = True
            elif names[fid] != row.column_name or row.field_id is None:
                conn.execute(update(tag_assignments_t).where(c.id == row.id)
                             .values(column_name=names[fid], field_id=fid))
                changed = True
        if changed:
            self._bump(conn)

    def declare_tags(self, conn, warehouse: str, table: TableRef, principal: str | None,
                     declared: dict[tuple[str, str], tuple[str, int | None]]) -> None:
        """Make the table's declared tags ({(column or '', key): (value, field id)}) exactly its `icemesh.tags`:
        declared rows not listed go, listed ones are set. Tags assigned by hand or by governance are untouched."""
        with self._in(conn) as conn:
            self._declare_tags(conn, warehouse, table, principal, declared)

    def declared_tags(self, warehouse: str, table: TableRef) -> dict[tuple[str, str], str]:
        c = tag_assignments_t.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(c.column_name, c.key, c.value).where(
                c.warehouse == warehouse, c.namespace == _ns_key(table.namespace), c.table_name == table.name,
                c.declared.is_(True))).all()
        return {(r.column_name, r.key): r.value for r in rows}

    def _declare_tags(self, conn, warehouse: str, table: TableRef, principal: str | None,
                      declared: dict[tuple[str, str], tuple[str, int | None]]) -> None:
        c = tag_assignments_t.c
        where = (c.warehouse == warehouse, c.namespace == _ns_key(table.namespace), c.table_name == table.name)
        rows = conn.execute(select(c.id, c.column_name, c.key, c.value, c.declared).where(*where)).all()
        current = {(r.column_name, r.key): r for r in rows}
        for (column, key), row in current.items():
            if row.declared and (column, key) not in declared:
                conn.execute(delete(tag_assignments_t).where(c.id == row.id))
        for (column, key), (value, field_id) in declared.items():
            values = dict(value=value, field_id=field_id, assigned_by=principal, declared=True)
            if (column, key) in current:
                conn.execute(update(tag_assignments_t).where(c.id == current[(column, key)].id).values(**values))
            else:
                conn.execute(insert(tag_assignments_t).values(warehouse=warehouse, namespace=_ns_key(table.namespace),
                                                              table_name=table.name, column_name=column, key=key, **values))
        self._bump(conn)

    def forget_table(self, conn, warehouse: str, table: TableRef, last_of_its_name: bool) -> None:
        """A dropped table takes its tags with it, and, once no warehouse has a table of that name, the
        governance tags and the grants that named it: a new table of the same name inherits nothing."""
        with self._in(conn) as conn:
            self._forget_table(conn, warehouse, table, last_of_its_name)

    def _forget_table(self, conn, warehouse: str, table: TableRef, last_of_its_name: bool) -> None:
        c = tag_assignments_t.c
        at = (c.namespace == _ns_key(table.namespace), c.table_name == table.name)
        scopes = ("", warehouse) if last_of_its_name else (warehouse,)
        conn.execute(delete(tag_assignments_t).where(*at, c.warehouse.in_(scopes)))
        if last_of_its_name:
            g = grants_t.c
            conn.execute(delete(grants_t).where(g.target_kind == "table", g.namespace == _ns_key(table.namespace),
                                                g.table_name == table.name))
        self._bump(conn)

    def forget_namespace(self, conn, warehouse: str, ns: NamespaceRef, last_of_its_name: bool) -> None:
        with self._in(conn) as conn:
            self._forget_namespace(conn, warehouse, ns, last_of_its_name)

    def _forget_namespace(self, conn, warehouse: str, ns: NamespaceRef, last_of_its_name: bool) -> None:
        c = tag_assignments_t.c
        scopes = ("", warehouse) if last_of_its_name else (warehouse,)
        conn.execute(delete(tag_assignments_t).where(c.namespace == _ns_key(ns), c.table_name == "",
                                                     c.warehouse.in_(scopes)))
        if last_of_its_name:
            g = grants_t.c
            conn.execute(delete(grants_t).where(g.target_kind == "namespace", g.namespace == _ns_key(ns)))
        self._bump(conn)

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

    def move_table(self, conn, warehouse: str, source: TableRef, destination: TableRef,
                   source_elsewhere: bool = False) -> None:
        """A renamed table keeps its tags and its table grants (run inside the rename's transaction). When a
        table of the old name remains in another warehouse, governance's tags and the grants stay with it and
        the renamed table gets its own copies."""
        src_ns, dst_ns = _ns_key(source.namespace), _ns_key(destination.namespace)
        c = tag_assignments_t.c
        at_source = (c.namespace == src_ns, c.table_name == source.name)
        conn.execute(update(tag_assignments_t).where(*at_source, c.warehouse == warehouse)
                     .values(namespace=dst_ns, table_name=destination.name))
        g = grants_t.c
        grants_at_source = (g.target_kind == "table", g.namespace == src_ns, g.table_name == source.name)
        if not source_elsewhere:
            conn.execute(update(tag_assignments_t).where(*at_source, c.warehouse == "")
                         .values(namespace=dst_ns, table_name=destination.name))
            conn.execute(update(grants_t).where(*grants_at_source).values(namespace=dst_ns, table_name=destination.name))
        else:
            for row in conn.execute(select(tag_assignments_t).where(*at_source, c.warehouse == "")).all():
                conn.execute(insert(tag_assignments_t).values(
                    warehouse=warehouse, namespace=dst_ns, table_name=destination.name, column_name=row.column_name,
                    field_id=row.field_id, key=row.key, value=row.value, assigned_by=row.assigned_by, declared=row.declared))
            for row in conn.execute(select(grants_t).where(*grants_at_source)).all():
                values = {k: v for k, v in row._mapping.items() if k != "id"}
                conn.execute(insert(grants_t).values(**{**values, "table_name": destination.name, "namespace": dst_ns}))

    # -- dbt projects ------------------------------------------------------------------------------

    def project_binding(self, project: str) -> tuple[NamespaceRef, str] | None:
        """(namespace, owner) a dbt project publishes into, or None while it is unbound."""
        with self.engine.connect() as conn:
            row = conn.execute(select(projects_t.c.namespace, projects_t.c.owner)
                               .where(projects_t.c.project == project)).first()
        return None if row is None else (_ns_ref(row.namespace), row.owner)

    def project_bindings(self) -> dict[str, tuple[NamespaceRef, str]]:
        with self.engine.connect() as conn:
            return {r.project: (_ns_ref(r.namespace), r.owner) for r in conn.execute(select(projects_t)).all()}

    def claim_project(self, conn, project: str, ns: NamespaceRef, owner: str) -> None:
        """A project's first publish binds it; a concurrent first publish elsewhere fails its commit."""
        with self._in(conn) as conn:
            row = conn.execute(select(projects_t.c.namespace, projects_t.c.owner)
                               .where(projects_t.c.project == project)).first()
            if row is None:
                conn.execute(insert(projects_t).values(project=project, namespace=_ns_key(ns), owner=owner,
                                                       bound_by=owner, created_at=time.time()))
            elif (row.namespace, row.owner) != (_ns_key(ns), owner):
                raise Forbidden(f"dbt project {project!r} was just bound to namespace {_ns_ref(row.namespace)}")

    def bind_project(self, conn, project: str, ns: NamespaceRef, owner: str, bound_by: str) -> None:
        """Record (or, by an admin, move) a project's binding; in the caller's transaction when given."""
        with self._in(conn) as conn:
            conn.execute(delete(projects_t).where(projects_t.c.project == project))
            conn.execute(insert(projects_t).values(project=project, namespace=_ns_key(ns), owner=owner,
                                                   bound_by=bound_by, created_at=time.time()))

    # -- policy as code ----------------------------------------------------------------------------

    def assignments(self, warehouse: str) -> dict[tuple[NamespaceRef, str, str, str], str]:
        """Every tag as `warehouse` sees it: its own assignments, and governance's everywhere ('' wins)."""
        with self.engine.connect() as conn:
            return _effective(conn.execute(select(tag_assignments_t).where(
                tag_assignments_t.c.warehouse.in_(("", warehouse)))).all())

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
                        self._forget_principal(conn, ch.name)
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
                    # Governance's tags: namespaces and tables in every warehouse, columns in this one (by field id).
                    scope = warehouse if d["column"] else ""
                    where = (tag_assignments_t.c.namespace == Namespace(tuple(d["namespace"])).key,
                             tag_assignments_t.c.table_name == d["table"], tag_assignments_t.c.column_name == d["column"],
                             tag_assignments_t.c.key == d["key"], tag_assignments_t.c.warehouse.in_(("", warehouse)))
                    conn.execute(delete(tag_assignments_t).where(*where))
                    if ch.op != "remove":
                        conn.execute(insert(tag_assignments_t).values(
                            warehouse=scope, namespace=Namespace(tuple(d["namespace"])).key, table_name=d["table"],
                            column_name=d["column"], field_id=d.get("field_id"), key=d["key"], value=d["value"]))
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
            rows = conn.execute(select(tag_assignments_t).where(tag_assignments_t.c.warehouse.in_(("", warehouse)))).all()
            for (ns, table, column, key), value in _effective(rows).items():
                if not table:
                    ns_tags.setdefault(ns, {})[key] = value
                elif not column:
                    table_tags.setdefault(TableRef(ns, table), {})[key] = value
                else:
                    column_tags.setdefault(TableRef(ns, table), {}).setdefault(column, {})[key] = value
            roles = {r.name: frozenset(json.loads(r.roles))
                     for r in conn.execute(select(principals_t.c.name, principals_t.c.roles)).all()}
            grants = tuple(_grant_from_row(r) for r in conn.execute(select(grants_t).order_by(grants_t.c.id)).all())
        return Policy(tag_keys=self.tag_keys(), namespace_tags=ns_tags, table_tags=table_tags, column_tags=column_tags,
                      grants=grants, roles=roles, owners=self.catalog.owners(warehouse), version=version,
                      restricted=frozenset(self.catalog.restricted(warehouse)))

    # -- audit -------------------------------------------------------------------------------------

    def audit(self, record: AuditRecord) -> None:
        with self._audit_lock:
            self._audit_buffer.append(record.__dict__)
            if len(self._audit_buffer) >= 500:
                self._audit_wakeup.set()

    def audit_login(self, principal: str, address: str, how: str) -> None:
        """A successful login, in the name of the principal it authenticated."""
        self.audit(AuditRecord(time.time(), principal, "LOGIN", "the catalog", True, f"{how} from {address}"))

    def audit_failed_login(self, client_id: str, address: str, reason: str) -> None:
        """A failed login names the id it tried, but is never recorded as that principal's (anyone can type it)."""
        shown = "".join(ch for ch in client_id if ch.isprintable())[:64]
        self.audit(AuditRecord(time.time(), "anonymous", "LOGIN", "the catalog", False,
                               f"failed login as {shown!r} from {address}: {reason}"))

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


def _effective(rows) -> dict[tuple[NamespaceRef, str, str, str], str]:
    """Assignment rows of one warehouse and of every warehouse ('') merged: governance's ('') win."""
    found: dict[tuple[NamespaceRef, str, str, str], str] = {}
    for r in sorted(rows, key=lambda r: r.warehouse == ""):  # local first, so '' overrides
        found[(_ns_ref(r.namespace), r.table_name, r.column_name, r.key)] = r.value
    return found


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
