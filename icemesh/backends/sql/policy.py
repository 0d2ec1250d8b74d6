"""Governance state in SQL: tag keys and assignments, grants, dbt project bindings, and the policy snapshot.

Reads produce an immutable `Policy` for the pure evaluator (owners and restricted tables come from the pointer
store). Every change bumps a policy version so each server process notices within its refresh interval and
reloads. Changes that move with a table (tags following its columns, declared tags, tags and grants ending
with it) run inside the catalog's own transaction when it hands one in.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from contextlib import contextmanager
from typing import Any, Callable

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from icemesh.backends.sql.database import Database
from icemesh.backends.sql.owners import LazyOwners
from icemesh.backends.sql.schema import (
    bump_policy_version,
    grants_t,
    namespaces_t,
    policy_version_t,
    principals_t,
    projects_t,
    roles_t,
    tag_assignments_t,
    tag_keys_t,
    tokens_t,
)
from icemesh.catalog.ports import PointerStore
from icemesh.errors import AlreadyExists, BadRequest, Forbidden, NotFound
from icemesh.governance.changes import (
    AssignmentChange,
    Change,
    GrantAdded,
    GrantRemoved,
    NamespaceChange,
    PrincipalChange,
    ProjectBinding,
    RoleChange,
    TagKeyChange,
)
from icemesh.governance.data_filters import DataFilter
from icemesh.governance.permissions import Permission
from icemesh.governance.policy import PRINCIPAL, ROLE, Grant, Grantee, Policy
from icemesh.governance.resources import NamespaceRef, TableRef
from icemesh.governance.tags import TagExpression, TagKey
from icemesh.names import Namespace
from icemesh.security import secrets

ADMIN_PRINCIPAL = "admin"  # created at first start; takes over what a deleted principal owned


def _ns_key(ns: NamespaceRef) -> str:
    return Namespace(ns.levels).key


@functools.lru_cache(maxsize=4096)
def _ns_ref(key: str) -> NamespaceRef:
    """Memoized: a policy load turns ~10,000 assignment rows of ~100 namespaces into refs."""
    return NamespaceRef(Namespace.from_key(key).levels)


_VERSION = select(policy_version_t.c.version).where(policy_version_t.c.id == bindparam("id"))


class SqlPolicy:
    def __init__(self, database: Database, pointers: PointerStore) -> None:
        self.db = database
        self.pointers = pointers  # owners and restricted tables, for the policy snapshot

    def roles_of_principals(self) -> dict[str, frozenset[str]]:
        """Who is in which roles (identities are the identity store's; the policy snapshot needs the membership)."""
        with self.db.connect() as conn:
            return {r.name: frozenset(json.loads(r.roles))
                    for r in conn.execute(select(principals_t.c.name, principals_t.c.roles)).all()}

    def forget_principal(self, conn, name: str) -> None:
        """A deleted principal's grants end with it, and what it tagged becomes governance's."""
        conn.execute(delete(grants_t).where(grants_t.c.grantee_kind == PRINCIPAL, grants_t.c.grantee == name))
        conn.execute(update(tag_assignments_t).where(tag_assignments_t.c.assigned_by == name).values(assigned_by=None))
        bump_policy_version(conn)

    @contextmanager
    def _in(self, conn):
        """The caller's transaction when it has one (the catalog's pointer swap), else a new one."""
        if conn is not None:
            yield conn
            return
        with self.db.write() as own, own.begin():
            yield own

    def policy_version(self) -> int:
        """Asked before denials and at each listing: one row, read as loadTable reads its pointer."""
        return self.db.lookup(_VERSION, {"id": 1})[0]

    def create_tag_key(self, key: str, values: list[str], also: Also = None) -> None:
        """`also(conn)`, here and in every governance write below: runs in the write's transaction (its event)."""
        try:
            with self.db.write() as conn, conn.begin():
                conn.execute(insert(tag_keys_t).values(key=key, allowed_values=json.dumps(values)))
                bump_policy_version(conn)
                run_also(also, conn)
        except IntegrityError:
            raise AlreadyExists(f"Tag key {key} already exists; use `icemesh tags update` to change its values") from None

    def update_tag_key(self, key: str, values: list[str], also: Also = None) -> None:
        with self.db.write() as conn, conn.begin():
            used = {r.value for r in conn.execute(select(tag_assignments_t.c.value).where(tag_assignments_t.c.key == key))}
            dropped = sorted(used - set(values))
            if dropped:
                raise BadRequest(f"Tag {key} values {dropped} are still assigned; unassign them first")
            if conn.execute(update(tag_keys_t).where(tag_keys_t.c.key == key).values(allowed_values=json.dumps(values))).rowcount != 1:
                raise NotFound(f"Tag key {key} does not exist")
            bump_policy_version(conn)
            run_also(also, conn)

    def delete_tag_key(self, key: str, also: Also = None) -> None:
        with self.db.write() as conn, conn.begin():
            if conn.execute(select(tag_assignments_t.c.id).where(tag_assignments_t.c.key == key).limit(1)).first():
                raise BadRequest(f"Tag {key} is still assigned to resources; unassign it first")
            if conn.execute(delete(tag_keys_t).where(tag_keys_t.c.key == key)).rowcount != 1:
                raise NotFound(f"Tag key {key} does not exist")
            bump_policy_version(conn)
            run_also(also, conn)

    def tag_keys(self) -> dict[str, TagKey]:
        with self.db.connect() as conn:
            rows = conn.execute(select(tag_keys_t).order_by(tag_keys_t.c.key)).all()
        return {r.key: TagKey(r.key, tuple(json.loads(r.allowed_values))) for r in rows}

    @staticmethod
    def _slot(warehouse: str, ns: NamespaceRef, table: str, column: str, key: str):
        c = tag_assignments_t.c
        return (c.warehouse == warehouse, c.namespace == _ns_key(ns), c.table_name == table, c.column_name == column,
                c.key == key)

    def assign_tag(self, warehouse: str, ns: NamespaceRef, table: str, column: str, key: str, value: str,
                   assigned_by: str | None = None, field_id: int | None = None, also: Also = None) -> None:
        """Set `key=value` on a namespace, table ('' column) or column, in one warehouse ('' = every warehouse);
        replaces an earlier value of the key there. `assigned_by` names a non-admin assigner (None: governance)."""
        where = self._slot(warehouse, ns, table, column, key)
        values = dict(value=value, assigned_by=assigned_by, field_id=field_id, declared=False)
        with self.db.write() as conn, conn.begin():
            if conn.execute(update(tag_assignments_t).where(*where).values(**values)).rowcount == 0:
                conn.execute(insert(tag_assignments_t).values(warehouse=warehouse, namespace=_ns_key(ns), table_name=table,
                                                              column_name=column, key=key, **values))
            bump_policy_version(conn)
            run_also(also, conn)

    def assignment_source(self, warehouse: str, ns: NamespaceRef, table: str, column: str,
                          key: str) -> tuple[bool, str | None]:
        """(is the key set directly on this resource where `warehouse` sees it, by which non-admin principal or
        None for governance). Governance's own assignment ('' = every warehouse) wins over a local one."""
        c = tag_assignments_t.c
        with self.db.connect() as conn:
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
        with self.db.connect() as conn:
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

    def unassign_tag(self, warehouse: str, ns: NamespaceRef, table: str, column: str, key: str,
                     also: Also = None) -> bool:
        """Remove the key from the resource as `warehouse` sees it (its own assignment, else governance's)."""
        with self.db.write() as conn, conn.begin():
            removed = conn.execute(delete(tag_assignments_t).where(*self._slot(warehouse, ns, table, column, key))).rowcount
            if not removed and warehouse:
                removed = conn.execute(delete(tag_assignments_t).where(*self._slot("", ns, table, column, key))).rowcount
            bump_policy_version(conn)
            if removed:
                run_also(also, conn)
        return removed > 0

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
            bump_policy_version(conn)

    def declare_tags(self, conn, warehouse: str, table: TableRef, principal: str | None,
                     declared: dict[tuple[str, str], tuple[str, int | None]]) -> None:
        """Make the table's declared tags ({(column or '', key): (value, field id)}) exactly its `icemesh.tags`:
        declared rows not listed go, listed ones are set. Tags assigned by hand or by governance are untouched."""
        with self._in(conn) as conn:
            self._declare_tags(conn, warehouse, table, principal, declared)

    def declared_tags(self, warehouse: str, table: TableRef) -> dict[tuple[str, str], str]:
        c = tag_assignments_t.c
        with self.db.connect() as conn:
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
        bump_policy_version(conn)

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
        bump_policy_version(conn)

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
        bump_policy_version(conn)

    def canonical_grant(self, grant: Grant) -> Grant:
        """Grants are kept as given."""
        return grant

    def add_grant(self, grant: Grant, created_by: str | None, also: Also = None) -> int:
        """Store a grant; an identical existing grant is returned instead of duplicated (idempotent)."""
        values = _grant_row(grant)
        with self.db.write() as conn, conn.begin():
            for row in conn.execute(select(*GRANT_COLUMNS)).all():
                if _grant_from_row(row) == dataclasses.replace(grant, id=row.id):
                    return row.id
            result = conn.execute(insert(grants_t).values(**values, created_at=time.time(), created_by=created_by))
            bump_policy_version(conn)
            run_also(also, conn)
            return int(result.inserted_primary_key[0])

    def remove_grant(self, grant_id: int, also: Also = None) -> bool:
        with self.db.write() as conn, conn.begin():
            removed = conn.execute(delete(grants_t).where(grants_t.c.id == grant_id)).rowcount
            bump_policy_version(conn)
            if removed:
                run_also(also, conn)
        return removed > 0

    def replace_grant_permissions(self, grant_id: int, permissions: frozenset[Permission], also: Also = None) -> None:
        with self.db.write() as conn, conn.begin():
            conn.execute(update(grants_t).where(grants_t.c.id == grant_id)
                         .values(permissions=json.dumps(sorted(p.value for p in permissions))))
            bump_policy_version(conn)
            run_also(also, conn)

    def grants(self) -> list[Grant]:
        with self.db.connect() as conn:
            return [_grant_from_row(r) for r in conn.execute(select(*GRANT_COLUMNS).order_by(grants_t.c.id)).all()]

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

    def project_binding(self, project: str) -> tuple[NamespaceRef, str] | None:
        """(namespace, owner) a dbt project publishes into, or None while it is unbound."""
        with self.db.connect() as conn:
            row = conn.execute(select(projects_t.c.namespace, projects_t.c.owner)
                               .where(projects_t.c.project == project)).first()
        return None if row is None else (_ns_ref(row.namespace), row.owner)

    def project_bindings(self) -> dict[str, tuple[NamespaceRef, str]]:
        with self.db.connect() as conn:
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

    def assignments(self, warehouse: str) -> dict[tuple[NamespaceRef, str, str, str], str]:
        """Every tag as `warehouse` sees it: its own assignments, and governance's everywhere ('' wins)."""
        with self.db.connect() as conn:
            return _effective(conn.execute(select(*ASSIGNMENT_COLUMNS).where(
                tag_assignments_t.c.warehouse.in_(("", warehouse)))).all())

    def apply_changes(self, warehouse: str, changes: list[Change], created_by: str, also: Also = None) -> dict[str, str]:
        """Apply a policy plan in ONE transaction: every change lands or none does.

        Returns the secrets of principals it created (shown once to the caller).
        """
        created: dict[str, str] = {}
        now = time.time()
        with self.db.write() as conn, conn.begin():
            for ch in changes:
                match ch:
                    case TagKeyChange(op="add", key=key, values=values):
                        conn.execute(insert(tag_keys_t).values(key=key, allowed_values=json.dumps(list(values))))
                    case TagKeyChange(op="change", key=key, values=values):
                        conn.execute(update(tag_keys_t).where(tag_keys_t.c.key == key)
                                     .values(allowed_values=json.dumps(list(values))))
                    case TagKeyChange(op="remove", key=key):
                        conn.execute(delete(tag_keys_t).where(tag_keys_t.c.key == key))
                    case RoleChange(op="add", role=role):
                        conn.execute(insert(roles_t).values(name=role, created_at=now))
                    case RoleChange(op="remove", role=role):
                        conn.execute(delete(roles_t).where(roles_t.c.name == role))
                        conn.execute(delete(grants_t).where(grants_t.c.grantee_kind == ROLE, grants_t.c.grantee == role))
                    case PrincipalChange(op="add", principal=name, roles=roles):
                        secret = secrets.new_secret()
                        conn.execute(insert(principals_t).values(name=name, secret_hash=secrets.hash_secret(secret),
                                                                 roles=json.dumps(sorted(roles)), created_at=now,
                                                                 created_by=created_by))
                        created[name] = secret
                    case PrincipalChange(op="change", principal=name, roles=roles):
                        conn.execute(update(principals_t).where(principals_t.c.name == name)
                                     .values(roles=json.dumps(sorted(roles))))
                    case PrincipalChange(op="remove", principal=name):
                        conn.execute(delete(principals_t).where(principals_t.c.name == name))
                        conn.execute(delete(tokens_t).where(tokens_t.c.principal == name))
                        self.forget_principal(conn, name)
                        self.pointers.reassign_owner(conn, name, ADMIN_PRINCIPAL)
                    case NamespaceChange(op="add", namespace=ns, owner=owner):
                        key = Namespace(ns.levels)
                        conn.execute(insert(namespaces_t).values(warehouse=warehouse, name=key.key, parent=key.parent_key,
                                                                 properties="{}", created_at=now, owner=owner))
                    case NamespaceChange(op="change", namespace=ns, owner=owner):
                        conn.execute(update(namespaces_t).where(namespaces_t.c.warehouse == warehouse,
                                                                namespaces_t.c.name == Namespace(ns.levels).key)
                                     .values(owner=owner))
                    case ProjectBinding(project=project, namespace=ns, owner=owner):
                        self.bind_project(conn, project, ns, owner, created_by)
                    case AssignmentChange(op=op, assignment=a):
                        # Governance's tags: namespaces and tables in every warehouse, columns in this one (by field id).
                        ns_key = Namespace(a.namespace.levels).key
                        conn.execute(delete(tag_assignments_t).where(
                            tag_assignments_t.c.namespace == ns_key, tag_assignments_t.c.table_name == a.table,
                            tag_assignments_t.c.column_name == a.column, tag_assignments_t.c.key == a.key,
                            tag_assignments_t.c.warehouse.in_(("", warehouse))))
                        if op != "remove":
                            conn.execute(insert(tag_assignments_t).values(
                                warehouse=warehouse if a.column else "", namespace=ns_key, table_name=a.table,
                                column_name=a.column, field_id=None, key=a.key, value=a.value))
                    case GrantAdded(grant=grant):
                        conn.execute(insert(grants_t).values(**_grant_row(grant), created_at=now, created_by=created_by))
                    case GrantRemoved(grant_id=grant_id):
                        conn.execute(delete(grants_t).where(grants_t.c.id == grant_id))
                    case _:
                        raise TypeError(f"no SQL for policy change {ch!r}")
            if changes:
                bump_policy_version(conn)
                run_also(also, conn)
        return created

    def load_policy(self, warehouse: str) -> Policy:
        with self.db.connect() as conn:
            version = conn.execute(select(policy_version_t.c.version).where(policy_version_t.c.id == 1)).scalar_one()
            rows = conn.execute(select(*ASSIGNMENT_COLUMNS).where(tag_assignments_t.c.warehouse.in_(("", warehouse)))).all()
            roles = {name: _roles(text) for name, text in conn.execute(select(principals_t.c.name, principals_t.c.roles))}
            grants = tuple(map(_grant_from_row, conn.execute(select(*GRANT_COLUMNS).order_by(grants_t.c.id)).all()))
        return Policy.of(_effective(rows), tag_keys=self.tag_keys(), grants=grants, roles=roles,
                         owners=LazyOwners(self.db, warehouse), version=version,
                         restricted=frozenset(self.pointers.restricted(warehouse)))


Also = Callable[[Any], None] | None  # a step run in the write's own transaction (the change's event)


def run_also(also: Also, conn) -> None:
    if also is not None:
        also(conn)


# What a policy snapshot reads of an assignment and of a grant, unpacked by position (a Row's attributes
# cost ~5 us each: at 10,000 grants that was most of a snapshot's load). A grant's columns lead grants_t too.
ASSIGNMENT_COLUMNS = tuple(tag_assignments_t.c[n] for n in ("warehouse", "namespace", "table_name", "column_name", "key",
                                                             "value"))
GRANT_COLUMNS = tuple(grants_t.c[n] for n in ("id", "grantee_kind", "grantee", "permissions", "target_kind", "namespace",
                                              "table_name", "columns", "expression", "data_filter"))


def _effective(rows) -> dict[tuple[NamespaceRef, str, str, str], str]:
    """Assignment rows (ASSIGNMENT_COLUMNS) of one warehouse and of every warehouse ('') merged: governance's
    ('') win."""
    found: dict[tuple[NamespaceRef, str, str, str], str] = {}
    for warehouse, namespace, table, column, key, value in sorted(rows, key=lambda r: r[0] == ""):  # local first
        found[(_ns_ref(namespace), table, column, key)] = value
    return found


@functools.lru_cache(maxsize=1024)
def _roles(text: str) -> frozenset[str]:
    return frozenset(json.loads(text))


@functools.lru_cache(maxsize=4096)
def _grantee(kind: str, name: str) -> Grantee:
    """Shared: 10,000 grants name ~1,000 grantees."""
    return Grantee(kind, name)


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
        "data_filter": json.dumps(grant.data_filter.to_dict()) if grant.data_filter else None,
    }


@functools.lru_cache(maxsize=4096)
def _permissions(text: str) -> frozenset[Permission]:
    """Memoized, as `_expression`: 10,000 grants repeat a few permission sets and tag expressions."""
    return frozenset(Permission(p) for p in json.loads(text))


@functools.lru_cache(maxsize=16384)
def _expression(text: str) -> TagExpression:
    return TagExpression.from_dict(json.loads(text))


def _grant_from_row(row) -> Grant:
    """A row that starts with GRANT_COLUMNS (a select of them, or of the whole grants_t)."""
    gid, kind, name, permissions, target, namespace, table, columns, expression, data_filter = row[:10]
    grantee = _grantee(kind, name)
    perms = _permissions(permissions)
    limited = DataFilter.from_dict(json.loads(data_filter)) if data_filter else None
    if target == "catalog":
        return Grant(gid, grantee, perms, catalog=True, data_filter=limited)
    if target == "namespace":
        return Grant(gid, grantee, perms, namespace=_ns_ref(namespace), data_filter=limited)
    if target == "table":
        cols = frozenset(json.loads(columns)) if columns else None
        return Grant(gid, grantee, perms, table=TableRef(_ns_ref(namespace), table), columns=cols, data_filter=limited)
    return Grant(gid, grantee, perms, expression=_expression(expression), data_filter=limited)

