"""Governance for `icemesh serve --backend glue`: data permissions in Lake Formation, identities local.

Tag keys, tag assignments and grants are written to and read from Lake Formation (see
icemesh.backends.aws.lakeformation); owners are Glue parameters. Principals, their secrets and roles,
tokens, the audit log and the ADMIN grant (icemesh's own right to manage all this) stay in the local
SQL database, like in the SQL backend.

The policy snapshot is reloaded when this server changes anything, and at least every `refresh_s`
seconds (ICEMESH_LAKEFORMATION_REFRESH_SECONDS, default 4, so a revocation made there holds within 5 s) to pick up changes made in Lake Formation
by others.
"""

from __future__ import annotations

import os
import threading
import time

from sqlalchemy import Column, Integer, Table, insert, select, update

from icemesh.backends.aws.glue import GlueCatalogStore
from icemesh.backends.aws.lakeformation import LakeFormation, canonical_grant, check_iam_name
from icemesh.backends.sql import open_database
from icemesh.backends.sql.audit import SqlAudit
from icemesh.backends.sql.database import Database
from icemesh.backends.sql.events import SqlEventLog
from icemesh.backends.sql.identities import SqlIdentities
from icemesh.backends.sql.idempotency import SqlIdempotency
from icemesh.backends.sql.pointers import SqlPointerStore
from icemesh.backends.sql.policy import Also, SqlPolicy, run_also
from icemesh.backends.sql.schema import bump_policy_version, schema
from icemesh.catalog.ports import Backend
from icemesh.errors import NotFound
from icemesh.governance.changes import Change, GrantAdded, GrantRemoved, PrincipalChange, ProjectBinding, RoleChange
from icemesh.governance.permissions import Permission
from icemesh.governance.policy import PRINCIPAL, ROLE, Grant, Grantee, Policy
from icemesh.governance.resources import NamespaceRef, TableRef
from icemesh.governance.tags import TagKey


# Bumped by every change this deployment makes in Lake Formation: the Lake Formation part of the policy
# (the costly part to read) is reloaded only when it, or the time slot, moves.
lakeformation_version_t = Table(
    "icemesh_lakeformation_version", schema,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)


def _is_local(grant: Grant) -> bool:
    return Permission.ADMIN in grant.permissions


class _LakeFormationVersion:
    """Bumped by every change this deployment makes in Lake Formation: the Lake Formation part of the policy (the
    costly part to read) is reloaded only when it, or the time slot, moves."""

    def __init__(self, database: Database, refresh_s: float) -> None:
        self.db = database
        self.refresh_s = refresh_s
        schema.create_all(database.engine, tables=[lakeformation_version_t])
        with database.write() as conn, conn.begin():
            if conn.execute(select(lakeformation_version_t.c.id)).first() is None:
                conn.execute(insert(lakeformation_version_t).values(id=1, version=1))

    def changed(self) -> None:
        """Lake Formation changed through this server: every process reloads it before its next decision."""
        with self.db.write() as conn, conn.begin():
            bump_policy_version(conn)
            conn.execute(update(lakeformation_version_t).values(version=lakeformation_version_t.c.version + 1))

    def key(self) -> tuple:
        with self.db.read() as conn:
            version = conn.execute(select(lakeformation_version_t.c.version)).scalar_one()
        return version, int(time.time() // self.refresh_s)


class LakeFormationIdentities(SqlIdentities):
    """Identities stay local, but their names become IAM names, and their Lake Formation grants end with them."""

    def __init__(self, database: Database, lakeformation: LakeFormation, version: _LakeFormationVersion) -> None:
        super().__init__(database)
        self.lf = lakeformation
        self.version = version

    def create_principal(self, name: str, secret_hash: str, roles: list[str], created_by: str | None) -> None:
        check_iam_name(name, "principal name")
        for role in roles:
            check_iam_name(role, "role name")
        super().create_principal(name, secret_hash, roles, created_by)

    def set_roles(self, name: str, roles: list[str]) -> None:
        for role in roles:
            check_iam_name(role, "role name")
        super().set_roles(name, roles)

    def create_role(self, name: str) -> None:
        check_iam_name(name, "role name")
        super().create_role(name)

    def delete_principal(self, name: str, also=None) -> None:
        super().delete_principal(name, also)
        self.lf.revoke_grantee(Grantee(PRINCIPAL, name))
        self.version.changed()

    def delete_role(self, name: str) -> None:
        super().delete_role(name)
        self.lf.revoke_grantee(Grantee(ROLE, name))
        self.version.changed()


class LakeFormationPolicy(SqlPolicy):
    def __init__(self, database: Database, pointers: GlueCatalogStore, lakeformation: LakeFormation,
                 version: _LakeFormationVersion) -> None:
        super().__init__(database, pointers)
        self.lf = lakeformation
        self.version = version
        self.refresh_s = version.refresh_s
        self._cached: tuple[tuple, tuple] | None = None  # (key, (tag keys, assignments, grants))
        self._cache_lock = threading.Lock()

    def _changed(self) -> None:
        self.version.changed()

    def _lakeformation_key(self) -> tuple:
        return self.version.key()

    def policy_version(self) -> int:
        """The local version (bumped by every change made here) and a time slot (changes made elsewhere)."""
        return super().policy_version() * 1_000_000 + int(time.time() // self.refresh_s) % 1_000_000

    # -- tags --------------------------------------------------------------------------------------

    def tag_keys(self) -> dict[str, TagKey]:
        return self.lf.tag_keys()

    # Lake Formation has no transaction: `also` (the change's event) runs right after the change landed there.

    def create_tag_key(self, key: str, values: list[str], also: Also = None) -> None:
        self.lf.create_tag_key(key, values)
        self._changed()
        run_also(also, None)

    def update_tag_key(self, key: str, values: list[str], also: Also = None) -> None:
        if key not in self.lf.tag_keys():
            raise NotFound(f"Tag key {key} does not exist")
        self.lf.update_tag_key(key, values)
        self._changed()
        run_also(also, None)

    def delete_tag_key(self, key: str, also: Also = None) -> None:
        if key not in self.lf.tag_keys():
            raise NotFound(f"Tag key {key} does not exist")
        self.lf.delete_tag_key(key)
        self._changed()
        run_also(also, None)

    def assign_tag(self, warehouse: str, ns: NamespaceRef, table: str, column: str, key: str, value: str,
                   assigned_by: str | None = None, field_id: int | None = None, also: Also = None) -> None:
        self.lf.assign(ns, table, column, key, value)
        # Lake Formation keeps no record of who tagged: an owner's own tags are remembered locally.
        if assigned_by is not None:
            super().assign_tag(warehouse, ns, table, column, key, value, assigned_by, field_id, also=also)
        else:
            super().unassign_tag(warehouse, ns, table, column, key)
            run_also(also, None)
        self._changed()

    def assignment_source(self, warehouse: str, ns: NamespaceRef, table: str, column: str,
                          key: str) -> tuple[bool, str | None]:
        """A tag counts as an owner's only while Lake Formation still holds the value that owner set."""
        value = self.assignments(warehouse).get((ns, table, column, key))
        if value is None:
            return False, None
        _exists, assigned_by = super().assignment_source(warehouse, ns, table, column, key)
        local = SqlPolicy.assignments(self, warehouse).get((ns, table, column, key))
        return True, assigned_by if local == value else None

    def nearest_assignment(self, warehouse: str, ns: NamespaceRef, table: str, column: str, key: str):
        """As Lake Formation holds the values; who set them as remembered locally (see assignment_source)."""
        chain = ([(ns, table, column)] if column else []) + ([(ns, table, "")] if table else [])
        chain += [(level, "", "") for level in reversed(list(ns.ancestors_and_self()))]
        held = self.assignments(warehouse)
        for resource in chain:
            if (*resource, key) in held:
                local = super().nearest_assignment(warehouse, *resource, key)
                mine = local is not None and local[0] == resource and local[1] == held[(*resource, key)]
                return resource, held[(*resource, key)], local[2] if mine else None, bool(mine and local[3])
        return None

    def unassign_tag(self, warehouse: str, ns: NamespaceRef, table: str, column: str, key: str,
                     also: Also = None) -> bool:
        removed = self.lf.unassign(ns, table, column, key)
        super().unassign_tag(warehouse, ns, table, column, key)
        self._changed()
        if removed:
            run_also(also, None)
        return removed

    def assignments(self, warehouse: str):
        return self.lf.assignments()

    # -- governance that follows a table (Glue has no transaction: conn is None) ---------------------

    def follow_schema(self, conn, warehouse: str, table: TableRef, before: list[tuple[int, str]],
                      after: list[tuple[int, str]]) -> None:
        """Lake Formation tags columns by name: move a renamed column's tags, drop a dropped column's."""
        names = dict(after)
        held = self.lf.assignments()
        moved = False
        for fid, name in before:
            tags = {k: v for (n, t, c, k), v in held.items() if n == table.namespace and t == table.name and c == name}
            if not tags or names.get(fid) == name:
                continue
            for key, value in tags.items():
                self.lf.unassign(table.namespace, table.name, name, key)
                if fid in names:
                    self.lf.assign(table.namespace, table.name, names[fid], key, value)
            moved = True
        super().follow_schema(conn, warehouse, table, before, after)
        if moved:
            self._changed()

    def declare_tags(self, conn, warehouse: str, table: TableRef, principal: str | None,
                     declared: dict[tuple[str, str], tuple[str, int | None]]) -> None:
        before = self.declared_tags(warehouse, table)
        for (column, key) in set(before) - set(declared):
            self.lf.unassign(table.namespace, table.name, column, key)
        for (column, key), (value, _fid) in declared.items():
            self.lf.assign(table.namespace, table.name, column, key, value)
        super().declare_tags(conn, warehouse, table, principal, declared)
        self._changed()

    def forget_table(self, conn, warehouse: str, table: TableRef, last_of_its_name: bool) -> None:
        for (ns, tbl, column, key) in list(self.lf.assignments()):
            if ns == table.namespace and tbl == table.name:
                self.lf.unassign(ns, tbl, column, key)
        for grant in self.lf.grants():
            if grant.table == table:
                self.lf.revoke(grant)
        super().forget_table(conn, warehouse, table, last_of_its_name)
        self._changed()

    def forget_namespace(self, conn, warehouse: str, ns: NamespaceRef, last_of_its_name: bool) -> None:
        for (level, tbl, column, key) in list(self.lf.assignments()):
            if level == ns and not tbl:
                self.lf.unassign(level, tbl, column, key)
        for grant in self.lf.grants():
            if grant.namespace == ns:
                self.lf.revoke(grant)
        super().forget_namespace(conn, warehouse, ns, last_of_its_name)
        self._changed()

    # -- grants ------------------------------------------------------------------------------------

    def grants(self) -> list[Grant]:
        return [g for g in super().grants() if _is_local(g)] + self.lf.grants()

    def canonical_grant(self, grant: Grant) -> Grant:
        """As Lake Formation holds it (a column SELECT is described too); ValueError for what it cannot hold."""
        return grant if _is_local(grant) else canonical_grant(grant)

    def add_grant(self, grant: Grant, created_by: str | None, also: Also = None) -> int:
        if _is_local(grant):
            return super().add_grant(grant, created_by, also=also)
        grant_id = self.lf.add_grant(grant)
        self._changed()
        run_also(also, None)
        return grant_id

    def _find(self, grant_id: int) -> Grant | None:
        return next((g for g in self.grants() if g.id == grant_id), None)

    def remove_grant(self, grant_id: int, also: Also = None) -> bool:
        grant = self._find(grant_id)
        if grant is None:
            return False
        if _is_local(grant):
            return super().remove_grant(grant_id, also=also)
        self.lf.revoke(grant)
        self._changed()
        run_also(also, None)
        return True

    def replace_grant_permissions(self, grant_id: int, permissions: frozenset[Permission], also: Also = None) -> None:
        grant = self._find(grant_id)
        if grant is None:
            return
        if _is_local(grant):
            super().replace_grant_permissions(grant_id, permissions, also=also)
            return
        self.lf.revoke(grant, grant.permissions - permissions)
        self._changed()
        run_also(also, None)

    def move_table(self, conn, warehouse: str, source: TableRef, destination: TableRef,
                   source_elsewhere: bool = False) -> None:
        """Called by the Glue store's rename (conn is None): tags and table grants follow the table."""
        self.lf.move_table(source, destination, self.lf.table_columns(destination) or [])
        self._changed()

    # -- policy as code ----------------------------------------------------------------------------

    def apply_changes(self, warehouse: str, changes: list[Change], created_by: str, also: Also = None) -> dict[str, str]:
        """Identities (and ADMIN grants) locally in one transaction, then the rest in Lake Formation and Glue."""
        local_ids = {g.id for g in super().grants()}
        local, remote = [], []
        for ch in changes:
            match ch:
                case PrincipalChange() | RoleChange() | ProjectBinding():
                    is_local = True  # kept in the catalog's database, not in Lake Formation
                case GrantAdded(grant=grant):
                    is_local = _is_local(grant)
                case GrantRemoved(grant_id=grant_id):
                    is_local = grant_id in local_ids
                case _:
                    is_local = False
            (local if is_local else remote).append(ch)
        for ch in changes:
            match ch:
                case PrincipalChange(op="add" | "change", principal=name):
                    check_iam_name(name, "principal name")
                case RoleChange(op="add", role=name):
                    check_iam_name(name, "role name")
                case GrantAdded(grant=grant):
                    check_iam_name(grant.grantee.name, f"{grant.grantee.kind} name")
        created = super().apply_changes(warehouse, local, created_by)
        for ch in local:
            match ch:
                case PrincipalChange(op="remove", principal=name):
                    self.lf.revoke_grantee(Grantee(PRINCIPAL, name))
                case RoleChange(op="remove", role=name):
                    self.lf.revoke_grantee(Grantee(ROLE, name))
        try:
            self.lf.apply(remote)
        finally:
            self._changed()
        run_also(also, None)
        return created

    # -- the policy snapshot -----------------------------------------------------------------------

    def load_policy(self, warehouse: str) -> Policy:
        """Identities and owners are read every time; Lake Formation's part only when it may have changed."""
        version = self.policy_version()
        roles = self.roles_of_principals()
        local = tuple(g for g in super().grants() if _is_local(g))
        key = self._lakeformation_key()
        with self._cache_lock:
            if self._cached is None or self._cached[0] != key:
                self._cached = (key, (self.lf.tag_keys(), self.lf.assignments(), tuple(self.lf.grants())))
            tag_keys, assignments, grants = self._cached[1]
        return self.lf.policy_from(tag_keys, assignments, local + grants, self.pointers.owners(warehouse), roles, version,
                                   frozenset(self.pointers.restricted(warehouse)))

def open_glue(aws, db_url: str) -> Backend:
    """`icemesh serve --backend glue`: Glue for pointers, Lake Formation for governance, `db_url` for the rest."""
    from icemesh.backends.aws.glue import GlueCatalog
    from icemesh.backends.aws.owners import OwnerLedger

    database = open_database(db_url)
    glue = GlueCatalog(aws, OwnerLedger(database))
    glue.ledger.adopt({k: v for k, v in glue.owner_labels().items() if v})  # once: owners kept before the ledger
    pointers = GlueCatalogStore(glue, SqlPointerStore(database), database)
    lakeformation = LakeFormation(aws, glue)
    version = _LakeFormationVersion(database, float(os.environ.get("ICEMESH_LAKEFORMATION_REFRESH_SECONDS", "4")))
    audit = SqlAudit(database)

    def close() -> None:
        audit.close()
        database.close()

    return Backend(pointers=pointers, identities=LakeFormationIdentities(database, lakeformation, version),
                   policy=LakeFormationPolicy(database, pointers, lakeformation, version), audit=audit,
                   idempotency=SqlIdempotency(database), close=close,
                   notes=lambda: [lakeformation.enforcement_note()],
                   events=SqlEventLog(database))  # written right after each Glue change (Glue has no transaction)
