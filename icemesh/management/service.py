"""Governance operations behind `/management/v1` and the CLI: principals, roles, tags, grants, checks, audit.

Everything here needs ADMIN, except self-service (`whoami`, a principal's own grants, audit rows and access
checks: see `_only_own`), and tagging a resource the caller may ALTER (owners tag their own products, as dbt
does when it publishes). Inputs are validated against the catalog (a tag value must be allowed, a column must
exist) before anything is stored, so a bad request changes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pyiceberg.schema import index_by_id

from icemesh.catalog.authorizer import namespace_ref, table_ref
from icemesh.protocol import ANONYMOUS, RequestContext
from icemesh.names import Namespace, TableIdent, is_safe_name, maybe_table_arg, parse_namespace_arg, parse_table_arg
from icemesh.catalog.service import CatalogService
from icemesh.errors import BadRequest, NotFound
from icemesh.governance import declared_tags, policy_file
from icemesh.governance.changes import plan_json
from icemesh.governance.data_filters import ColumnMask, DataFilter, mask_action
from icemesh.governance.permissions import NAMESPACE_PERMISSIONS, TABLE_PERMISSIONS, Permission, parse_permissions
from icemesh.governance.policy import PRINCIPAL, ROLE, Grant, Grantee
from icemesh.governance.resources import NamespaceRef, TableRef, parse_namespace, parse_table
from icemesh.governance.tags import TagExpression, TagKey, check_token
from icemesh.governance.views import (LazyColumns, access_json, describe_resource, grant_json, namespace_tags_json,
                                     table_tags_json)
from icemesh.security import secrets
from icemesh.tables import row_filters
from icemesh.security.authenticator import ADMIN


def _bad(exc: ValueError) -> BadRequest:
    return BadRequest(str(exc))




# Governance's event types (custom operation types are `x-` prefixed in the Iceberg REST events proposal).
TAG_KEY, TAG_ASSIGNMENT, GRANT, POLICY_APPLY = "x-tag-key", "x-tag-assignment", "x-grant", "x-policy-apply"


class ManagementService:
    def __init__(self, catalog: CatalogService) -> None:
        self.catalog = catalog
        self.identities = catalog.identities
        self.policy = catalog.policy
        self.audit_log = catalog.audit

    @property
    def _wh(self) -> str:
        return self.catalog.default_warehouse

    def _admin(self, ctx: RequestContext, what: str) -> None:
        self.catalog.auth.admin(ctx, self._wh, what)

    def _event(self, ctx: RequestContext, kind: str, detail: dict[str, Any], ns: NamespaceRef | None = None,
               table: str = "", warehouse: str | None = None):
        """Governance's change as a step of its own transaction (see CatalogService.event_step)."""
        wh = self.catalog.warehouses[warehouse or self._wh]
        return self.catalog.event_step(ctx, wh, kind, Namespace(ns.levels) if ns else Namespace(()), table, detail)

    def _grant_event(self, ctx: RequestContext, grant: Grant, change: str):
        return self._event(ctx, GRANT, {"change": change, "grant": str(grant).split(": ", 1)[1],
                                        "grantee": {"type": grant.grantee.kind, "name": grant.grantee.name},
                                        "permissions": sorted(p.value for p in grant.permissions)})

    def _changed(self) -> None:
        self.catalog.auth.invalidate()
        self.catalog.authenticator.invalidate()

    # -- identity ----------------------------------------------------------------------------------

    def whoami(self, ctx: RequestContext) -> dict[str, Any]:
        """Who the caller is, its roles, and what it owns in the default warehouse (one read of the owners)."""
        evaluator = self.catalog.auth.evaluator(self._wh)
        owned = [r for r, owner in self.catalog.pointers.owners(self._wh).items() if owner == ctx.principal.name]
        return {"name": ctx.principal.name, "roles": list(ctx.principal.roles),
                "admin": evaluator.is_admin(ctx.principal.name) is not None,
                "scopes": sorted(ctx.principal.scopes),
                "owns": {"namespaces": sorted(str(r) for r in owned if isinstance(r, NamespaceRef)),
                         "tables": sorted(str(r) for r in owned if isinstance(r, TableRef))}}

    def _roles_of(self, principal: str) -> set[str]:
        return {r for p in self.identities.list_principals() if p.name == principal for r in p.roles}

    def _is_admin(self, ctx: RequestContext) -> bool:
        return self.catalog.auth.evaluator(self._wh).is_admin(ctx.principal.name) is not None

    def _only_own(self, ctx: RequestContext, principal: str | None, what: str) -> str | None:
        """Self-service: an admin may name any principal (None: everyone); anyone else gets its own rows, and
        naming another principal needs ADMIN (refused and audited)."""
        if self._is_admin(ctx):
            return principal or None
        if principal and principal != ctx.principal.name:
            self._admin(ctx, what)
        return ctx.principal.name

    def create_principal(self, ctx: RequestContext, name: str, roles: list[str],
                         create_roles: bool = False) -> dict[str, Any]:
        self._admin(ctx, "principals")
        try:
            check_token(name, "principal name")
            for role in roles:
                check_token(role, "role name")
        except ValueError as exc:
            raise _bad(exc) from None
        if name == ANONYMOUS.name:  # rejected tokens are audited under this name: its owner would read them all
            raise BadRequest(f"{name!r} is reserved for unauthenticated requests: choose another principal name")
        self._check_roles_exist(roles, create_roles, f"icemesh principals create {name}")
        secret = secrets.new_secret()
        self.identities.create_principal(name, secrets.hash_secret(secret), roles, created_by=ctx.principal.name)
        self._changed()
        return {"name": name, "client_id": name, "client_secret": secret, "roles": sorted(roles)}

    def list_principals(self, ctx: RequestContext) -> list[dict[str, Any]]:
        self._admin(ctx, "principals")
        return [{"name": p.name, "roles": list(p.roles), "created_at": p.created_at} for p in self.identities.list_principals()]

    def delete_principal(self, ctx: RequestContext, name: str) -> None:
        self._admin(ctx, "principals")
        if name == ctx.principal.name:
            raise BadRequest("You cannot delete the principal you are logged in as")
        def forget(conn) -> None:  # in the same transaction: its grants, what it tagged, what it owned
            self.policy.forget_principal(conn, name)
            self.catalog.pointers.reassign_owner(conn, name, ADMIN)

        self.identities.delete_principal(name, also=forget)
        self._changed()

    def rotate_secret(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        self._admin(ctx, "principals")
        secret = secrets.new_secret()
        self.identities.set_secret(name, secrets.hash_secret(secret))  # also revokes the principal's tokens
        self._changed()
        return {"name": name, "client_id": name, "client_secret": secret}

    def _check_roles_exist(self, roles: list[str], create_roles: bool, command: str) -> None:
        """A misspelt role would otherwise be created silently, and the principal get none of the grants meant
        for it: roles must exist unless the caller asks for them to be created."""
        unknown = sorted(set(roles) - set(self.identities.list_roles()))
        if unknown and not create_roles:
            flags = " ".join(f"--role {r}" for r in roles)
            raise BadRequest(f"Unknown role{'s' if len(unknown) > 1 else ''} {', '.join(repr(r) for r in unknown)}: "
                             f"create {'them' if len(unknown) > 1 else 'it'} with `icemesh roles create {unknown[0]}`, "
                             f"or run `{command} {flags} --create-role`")

    def set_roles(self, ctx: RequestContext, name: str, roles: list[str], create_roles: bool = False) -> dict[str, Any]:
        self._admin(ctx, "principals")
        self._check_roles_exist(roles, create_roles, f"icemesh principals set-roles {name}")
        self.identities.set_roles(name, roles)
        self._changed()
        return {"name": name, "roles": sorted(roles)}

    def create_role(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        self._admin(ctx, "roles")
        try:
            check_token(name, "role name")
        except ValueError as exc:
            raise _bad(exc) from None
        self.identities.create_role(name)
        return {"name": name, "members": []}

    def list_roles(self, ctx: RequestContext) -> list[dict[str, Any]]:
        self._admin(ctx, "roles")
        return [{"name": r, "members": m} for r, m in self.identities.list_roles().items()]

    def delete_role(self, ctx: RequestContext, name: str) -> None:
        self._admin(ctx, "roles")
        self.identities.delete_role(name)
        self._changed()

    # -- tags --------------------------------------------------------------------------------------

    def create_tag(self, ctx: RequestContext, key: str, values: list[str]) -> dict[str, Any]:
        self._admin(ctx, "tags")
        values = self._check_tag(key, values)
        self.policy.create_tag_key(key, values, also=self._event(ctx, TAG_KEY, {"key": key, "change": "add",
                                                                                 "values": values}))
        self._changed()
        return {"key": key, "values": values}

    def update_tag(self, ctx: RequestContext, key: str, values: list[str]) -> dict[str, Any]:
        self._admin(ctx, "tags")
        values = self._check_tag(key, values)
        self.policy.update_tag_key(key, values, also=self._event(ctx, TAG_KEY, {"key": key, "change": "change",
                                                                                 "values": values}))
        self._changed()
        return {"key": key, "values": values}

    @staticmethod
    def _check_tag(key: str, values: list[str]) -> list[str]:
        try:
            check_token(key, "tag key")
            cleaned = [check_token(v.strip(), "tag value") for v in values if v.strip()]
        except ValueError as exc:
            raise _bad(exc) from None
        if not cleaned:
            raise BadRequest(f"Tag {key} needs at least one allowed value: --values a,b,c")
        if len(set(cleaned)) != len(cleaned):
            raise BadRequest(f"Tag {key} lists a value twice")
        return cleaned

    def list_tags(self, ctx: RequestContext) -> list[dict[str, Any]]:
        """Open to every authenticated principal: the tag vocabulary names no data."""
        return [{"key": k.key, "values": list(k.values)} for k in self.policy.tag_keys().values()]

    def delete_tag(self, ctx: RequestContext, key: str) -> None:
        self._admin(ctx, "tags")
        self.policy.delete_tag_key(key, also=self._event(ctx, TAG_KEY, {"key": key, "change": "remove"}))
        self._changed()

    def _resolve_target(self, namespace: str | None, table: str | None, column: str | None,
                        ahead: bool = False, warehouse: str | None = None) -> tuple[NamespaceRef, str, str, int | None]:
        """Check that the resource exists (and the column is in the table's current schema, whose field id the
        tag binds to). `ahead` (lenient) accepts a column no longer in the table, to remove a stale tag."""
        wh = warehouse or self._wh
        if table:
            ident = parse_table_arg(table)
            record = self.catalog.pointers.get_table(wh, ident)
            if record is None and self._is_view(wh, ident):
                if column:
                    raise BadRequest(f"{ident} is a view: tag or grant the view itself, its columns come from its tables")
                return namespace_ref(ident.namespace), ident.name, "", None
            if record is None:
                raise self._missing_table(wh, ident)
            if column:
                entry = self.catalog.cache.get(record.metadata_location, self.catalog.warehouses[wh].read_bytes)
                ids = {name: fid for fid, name in entry.columns()}
                if column not in ids:
                    if ahead:
                        return namespace_ref(ident.namespace), ident.name, column, None
                    raise BadRequest(f"Table {ident} has no column {column!r}: its columns are {', '.join(ids)}")
                return namespace_ref(ident.namespace), ident.name, column, ids[column]
            return namespace_ref(ident.namespace), ident.name, "", None
        if column:
            raise BadRequest("--column needs --table")
        if not namespace:
            raise BadRequest("Name a resource: --namespace NS, or --table NS.TABLE [--column COL]")
        ns = parse_namespace_arg(namespace)
        if self.catalog.pointers.namespace_properties(wh, ns) is None:
            raise self._missing_namespace(ns)
        return namespace_ref(ns), "", "", None

    def _is_view(self, wh: str, ident: TableIdent) -> bool:
        views = self.catalog.backend.views
        return views is not None and views.get_view(wh, ident) is not None

    def _missing_namespace(self, ns: Namespace) -> BadRequest:
        """Tags and grants name existing resources: say how to create the namespace, owned by the domain's
        principal (`svc_<namespace>`) when there is one."""
        owner = f"svc_{ns.levels[0]}"
        command = f"icemesh namespaces create {ns}" + (f" --owner {owner}" if self.identities.principal_exists(owner) else "")
        return BadRequest(f"Namespace {ns} does not exist: create it with {command}")

    def _missing_table(self, wh: str, ident: TableIdent) -> BadRequest:
        if self.catalog.pointers.namespace_properties(wh, ident.namespace) is None:
            return self._missing_namespace(ident.namespace)
        return BadRequest(f"Table {ident} does not exist: create it first (a dbt model with materialized='iceberg' "
                          f"publishing to {ident.namespace}, or CREATE TABLE from an engine); a new table's first tags "
                          f"are declared in the commit that creates it (table property {declared_tags.PROPERTY}; dbt's "
                          "icemesh_tags do this)")

    def _authorize_tagging(self, ctx: RequestContext, namespace: str | None, table: str | None,
                           warehouse: str | None = None) -> str | None:
        """ADMIN anywhere, or ALTER on the resource itself. Checked before the resource is looked up, so a
        caller without the right learns nothing about what exists. Returns the non-admin caller's name (its
        assignments are recorded as its own), None for an admin."""
        if self.catalog.auth.evaluator(self._wh).is_admin(ctx.principal.name) is not None or not (table or namespace):
            self._admin(ctx, "tags")
            return None
        wh = warehouse or self._wh  # ownership is per warehouse, and so are an owner's tags
        if table:
            self.catalog.auth.table(ctx, wh, Permission.ALTER, parse_table_arg(table))
        else:
            self.catalog.auth.namespace(ctx, wh, Permission.ALTER, parse_namespace_arg(namespace))
        return ctx.principal.name

    def _check_not_governed(self, ctx: RequestContext, owner: str | None, warehouse: str,
                            target: tuple[NamespaceRef, str, str], key: str, value: str | None) -> None:
        """A non-admin may not override, change or remove a tag that governance (an admin) set, directly or
        inherited: that would let a data owner widen who reads its data against the stewards' decision.
        It may add tags where governance set none, re-assert the same value, and manage its own."""
        if owner is None:
            return
        found = self.policy.nearest_assignment(warehouse, *target, key)
        if found is None:
            return
        resource, current, assigned_by, _declared = found
        if value is None and resource != target:
            return  # nothing set here to remove
        if assigned_by == owner or (value is not None and current == value):
            return
        self.catalog.auth.deny(ctx, Permission.ADMIN, describe_resource(*target),
                               f"Tag {key}={current} on {describe_resource(*resource)} was set by governance: "
                               f"changing it on {describe_resource(*target)} needs ADMIN")

    def _scope(self, owner: str | None, warehouse: str | None, column: str | None) -> str:
        """Where an assignment applies: an owner's only in the warehouse where it owns the resource; an admin's
        namespace and table tags in every warehouse unless it names one; column tags bind to one table's fields."""
        if owner is not None or column or warehouse:
            return self.catalog.find_warehouse(warehouse).name
        return ""

    def assign_tag(self, ctx: RequestContext, key: str, value: str, namespace: str | None = None,
                   table: str | None = None, column: str | None = None, ahead: bool = False,
                   warehouse: str | None = None) -> dict[str, Any]:
        """`warehouse` (name or root) says where the resource lives: it decides who owns it, and where the
        assignment applies (see `_scope`); the default warehouse when not given."""
        wh = self.catalog.find_warehouse(warehouse).name
        owner = self._authorize_tagging(ctx, namespace, table, wh)
        tag = self.policy.tag_keys().get(key)
        if tag is None:
            raise BadRequest(f"Unknown tag key {key!r}: create it first with `icemesh tags create {key} --values ...`")
        try:
            tag.check(value)
        except ValueError as exc:
            raise _bad(exc) from None
        ns, tbl, col, field_id = self._resolve_target(namespace, table, column, False, wh)
        self._check_not_governed(ctx, owner, wh, (ns, tbl, col), key, value)
        self.policy.assign_tag(self._scope(owner, warehouse, col), ns, tbl, col, key, value, assigned_by=owner,
                               field_id=field_id, also=self._event(ctx, TAG_ASSIGNMENT, {
                                   "key": key, "value": value, "column": col, "change": "add"}, ns, tbl, wh))
        self._changed()
        return {"key": key, "value": value, "resource": describe_resource(ns, tbl, col)}

    def unassign_tag(self, ctx: RequestContext, key: str, namespace: str | None = None, table: str | None = None,
                     column: str | None = None, warehouse: str | None = None) -> dict[str, Any]:
        wh = self.catalog.find_warehouse(warehouse).name
        owner = self._authorize_tagging(ctx, namespace, table, wh)
        # Lenient: a tag left on a column that was since dropped can still be removed.
        ns, tbl, col, _fid = self._resolve_target(namespace, table, column, ahead=True, warehouse=wh)
        self._check_not_governed(ctx, owner, wh, (ns, tbl, col), key, None)
        removed = self.policy.unassign_tag(self._scope(owner, warehouse, col), ns, tbl, col, key, also=self._event(
            ctx, TAG_ASSIGNMENT, {"key": key, "column": col, "change": "remove"}, ns, tbl, wh))
        self._changed()
        return {"key": key, "resource": describe_resource(ns, tbl, col), "removed": removed}

    def show_tags(self, ctx: RequestContext, resource: str, warehouse: str | None = None) -> dict[str, Any]:
        """Effective tags of a table (with the columns the caller may read) or a namespace, and where each was
        inherited from. A resource the caller may not see answers as one that does not exist."""
        wh = self.catalog.find_warehouse(warehouse)
        evaluator = self.catalog.auth.evaluator(wh.name)
        ident = maybe_table_arg(resource)
        record = self.catalog.pointers.get_table(wh.name, ident) if ident else None
        if record is not None and self.catalog.may_see(ctx, wh, ident):
            ref = table_ref(ident)
            entry = self.catalog.cache.get(record.metadata_location, wh.read_bytes)
            names = [name for _i, name in entry.columns()]
            readable = self.catalog.auth.table(ctx, wh.name, Permission.SELECT, ident, names, enforce=False, audit=False)
            shown = [n for n in names if readable.allowed and n not in readable.hidden_columns]
            return table_tags_json(evaluator, ref, shown)
        ns = parse_namespace_arg(resource) if record is None else None
        if ns is None or self.catalog.pointers.namespace_properties(wh.name, ns) is None or not self.catalog.auth.namespace(
                ctx, wh.name, Permission.DESCRIBE, ns, lambda: self.catalog.pointers.tables_under(wh.name, ns),
                enforce=False, audit=False).allowed:
            raise NotFound(f"No table or namespace named {resource} that you may see")
        return namespace_tags_json(evaluator, namespace_ref(ns))

    # -- grants ------------------------------------------------------------------------------------

    def _build_grant(self, spec: dict[str, Any]) -> Grant:
        """The grant a spec names, with its data filter (--rows, --mask, --mask-tag) checked against the table."""
        grant = self._build_target_grant(spec)
        limited = self._data_filter(spec, grant)
        return replace(grant, data_filter=limited) if limited else grant

    def _data_filter(self, spec: dict[str, Any], grant: Grant) -> DataFilter | None:
        rows = spec.get("rows")
        masks = spec.get("masks") or []
        tag_masks = spec.get("mask_tags") or []
        if rows is None and not masks and not tag_masks:
            return None
        if grant.permissions - {Permission.SELECT, Permission.DESCRIBE} or Permission.SELECT not in grant.permissions:
            raise BadRequest("A row filter or mask limits SELECT: grant SELECT alone with --rows/--mask (grant other "
                             "permissions separately)")
        if grant.catalog:
            raise BadRequest("Row filters and masks apply to tables: use --table NS.TABLE, --namespace NS or --tags")
        columns = self.table_columns(grant.table) if grant.table is not None else None
        found: list[ColumnMask] = []
        try:
            if rows is not None:
                used = row_filters.columns(row_filters.parse(rows))
                unknown = sorted(used - set(columns)) if columns is not None else []
                if unknown:
                    raise ValueError(f"The row filter reads {', '.join(unknown)}, which {grant.table} does not have: "
                                     f"its columns are {', '.join(columns)}")
            for item in masks:
                column, sep, action = str(item).rpartition("=")
                if not sep or not column:
                    raise ValueError(f"Invalid --mask {item!r}: write COLUMN=ACTION, e.g. email=sha256")
                if columns is not None and column not in columns:
                    raise ValueError(f"Table {grant.table} has no column {column!r}: its columns are {', '.join(columns)}")
                found.append(ColumnMask(mask_action(action), column=column))
            keys = self.policy.tag_keys() if tag_masks else {}
            for item in tag_masks:
                condition, sep, action = str(item).rpartition(":")
                key, eq, value = condition.partition("=")
                if not sep or not eq or not key or not value:
                    raise ValueError(f"Invalid --mask-tag {item!r}: write KEY=VALUE:ACTION, e.g. pii=yes:sha256")
                if key not in keys:
                    raise ValueError(f"Unknown tag key {key!r} in --mask-tag: known keys are {', '.join(keys) or 'none'}")
                keys[key].check(value)
                found.append(ColumnMask(mask_action(action), tag_key=key, tag_value=value))
        except ValueError as exc:
            raise _bad(exc) from None
        return DataFilter(rows, tuple(sorted(set(found))))

    def _build_target_grant(self, spec: dict[str, Any]) -> Grant:
        try:
            permissions = parse_permissions(spec.get("permissions") or "")
        except ValueError as exc:
            raise _bad(exc) from None
        principal, role = spec.get("principal"), spec.get("role")
        if bool(principal) == bool(role):
            raise BadRequest("Name exactly one grantee: --to PRINCIPAL or --role ROLE")
        if principal and not self.identities.principal_exists(principal):
            raise BadRequest(f"Unknown principal {principal!r}: create it with `icemesh principals create {principal}`")
        if role and role not in self.identities.list_roles():
            raise BadRequest(f"Unknown role {role!r}: create it with `icemesh roles create {role}`")
        grantee = Grantee(PRINCIPAL, principal) if principal else Grantee(ROLE, role)
        targets = [k for k in ("catalog", "namespace", "table", "tags") if spec.get(k)]
        if len(targets) != 1:
            raise BadRequest("Name exactly one target: --catalog, --namespace NS, --table NS.TABLE [--columns a,b] or --tags key=v[,v]")
        target = targets[0]
        if spec.get("columns") and target != "table":
            raise BadRequest("--columns needs --table")
        if target == "catalog":
            return Grant(0, grantee, permissions, catalog=True)
        if Permission.ADMIN in permissions:
            raise BadRequest("ADMIN is granted on the catalog only: use --catalog")
        if target == "namespace":
            ns = parse_namespace_arg(spec["namespace"])
            if self.catalog.pointers.namespace_properties(self._wh, ns) is None:
                raise self._missing_namespace(ns)
            return Grant(0, grantee, permissions, namespace=namespace_ref(ns))
        if target == "table":
            wrong = permissions - TABLE_PERMISSIONS
            if wrong:
                raise BadRequest(f"{', '.join(sorted(p.value for p in wrong))} cannot be granted on a table; "
                                 f"table permissions are {', '.join(sorted(p.value for p in TABLE_PERMISSIONS))}")
            ident = parse_table_arg(spec["table"])
            columns = spec.get("columns")
            if columns:
                if isinstance(columns, str):
                    columns = [c.strip() for c in columns.split(",") if c.strip()]
                if permissions - {Permission.SELECT, Permission.DESCRIBE}:
                    raise BadRequest("Column grants give SELECT and DESCRIBE only")
                self._resolve_target(None, str(ident), None)
                for column in columns:
                    self._resolve_target(None, str(ident), column)
            else:
                self._resolve_target(None, str(ident), None)
            return Grant(0, grantee, permissions, table=table_ref(ident), columns=frozenset(columns) if columns else None)
        try:
            expression = TagExpression.parse(spec["tags"])
        except ValueError as exc:
            raise _bad(exc) from None
        keys = self.policy.tag_keys()
        for key, values in expression.clauses:
            tag: TagKey | None = keys.get(key)
            if tag is None:
                raise BadRequest(f"Unknown tag key {key!r} in the expression: known keys are {', '.join(keys) or 'none'}")
            for value in values:
                try:
                    tag.check(value)
                except ValueError as exc:
                    raise _bad(exc) from None
        if permissions - TABLE_PERMISSIONS - NAMESPACE_PERMISSIONS:
            raise BadRequest("Tag grants give table and namespace permissions only")
        return Grant(0, grantee, permissions, expression=expression)

    def grant(self, ctx: RequestContext, spec: dict[str, Any]) -> dict[str, Any]:
        self._admin(ctx, "grants")
        try:
            grant = self.policy.canonical_grant(self._build_grant(spec))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        grant_id = self.policy.add_grant(grant, created_by=ctx.principal.name, also=self._grant_event(ctx, grant, "add"))
        self._changed()
        return grant_json(replace(grant, id=grant_id))

    def revoke(self, ctx: RequestContext, spec: dict[str, Any]) -> dict[str, Any]:
        """Remove the named permissions from the grant with the same grantee and target (by id, or by spec)."""
        self._admin(ctx, "grants")
        grants = self.policy.grants()
        if spec.get("id") is not None:
            match = [g for g in grants if g.id == int(spec["id"])]
            if not match:
                raise NotFound(f"No grant #{spec['id']}: see `icemesh grants list`")
            self.policy.remove_grant(match[0].id, also=self._grant_event(ctx, match[0], "remove"))
            self._changed()
            return {"revoked": [grant_json(match[0])]}
        wanted = self._build_grant(spec)
        changed = []
        for g in grants:
            if (g.grantee, g.catalog, g.namespace, g.table, g.columns, g.expression) == \
                    (wanted.grantee, wanted.catalog, wanted.namespace, wanted.table, wanted.columns, wanted.expression) \
                    and wanted.data_filter in (None, g.data_filter):
                remaining = g.permissions - wanted.permissions
                if remaining == g.permissions:
                    continue
                if remaining:
                    self.policy.replace_grant_permissions(g.id, remaining, also=self._grant_event(
                        ctx, replace(g, permissions=remaining), "change"))
                else:
                    self.policy.remove_grant(g.id, also=self._grant_event(ctx, g, "remove"))
                changed.append(grant_json(g))
        if not changed:
            raise NotFound("No grant matches: see `icemesh grants list` (or revoke by --id)")
        self._changed()
        return {"revoked": changed}

    def list_grants(self, ctx: RequestContext, principal: str | None = None, role: str | None = None) -> list[dict[str, Any]]:
        """The grants that apply to `principal` (directly or through its roles) or to `role`; a non-admin sees
        only its own, and may narrow them to one of its roles."""
        principal = self._only_own(ctx, principal, "grants of other principals")
        if role and not self._is_admin(ctx) and role not in self._roles_of(ctx.principal.name):
            self._admin(ctx, "grants of roles you are not in")
        grants = self.policy.grants()
        if principal:
            roles = self._roles_of(principal)
            grants = [g for g in grants if g.grantee == Grantee(PRINCIPAL, principal) or
                      (g.grantee.kind == ROLE and g.grantee.name in roles)]
        if role:
            grants = [g for g in grants if g.grantee == Grantee(ROLE, role)]
        return [grant_json(g) for g in grants]

    # -- policy as code ----------------------------------------------------------------------------

    def apply_policy(self, ctx: RequestContext, text: str, dry_run: bool) -> dict[str, Any]:
        """Plan (and unless `dry_run`, apply in one transaction) a policy file; a bad file changes nothing."""
        self._admin(ctx, "policy")
        try:
            doc = policy_file.parse(text)
            changes = policy_file.plan(self._current_state(), doc)
        except policy_file.PolicyError as exc:
            raise BadRequest(f"Policy file: {exc}") from None
        created: dict[str, str] = {}
        if changes and not dry_run:
            created = self.policy.apply_changes(self._wh, changes, ctx.principal.name, also=self._event(
                ctx, POLICY_APPLY, {"changes": [c.describe() for c in changes]}))
            self._changed()
        return {
            "applied": bool(changes) and not dry_run,
            "changes": plan_json(changes),
            "created_principals": [{"name": n, "client_id": n, "client_secret": s} for n, s in created.items()],
        }

    def _current_state(self) -> policy_file.CurrentState:
        store = self.catalog.pointers
        namespaces = {NamespaceRef(ns.levels): owner for ns, owner in store.namespaces_with_owners(self._wh)}
        return policy_file.CurrentState(
            tags={k: tuple(v.values) for k, v in self.policy.tag_keys().items()},
            roles=set(self.identities.list_roles()),
            principals={p.name: p.roles for p in self.identities.list_principals()},
            namespaces=namespaces,
            tables=LazyColumns(self, names_in=self.table_names),
            assignments=self.policy.assignments(self._wh),
            grants=self.policy.grants(),
            projects=self.policy.project_bindings(),
            canonical=self.policy.canonical_grant,
            row_filter_columns=lambda text: row_filters.columns(row_filters.parse(text)),
        )

    def table_names(self, ns: NamespaceRef) -> set[str]:
        """The tables in one namespace (none when it does not exist)."""
        return {i.name for i in self.catalog.pointers.list_tables(self._wh, Namespace(ns.levels), None, None)}

    def table_columns(self, table: TableRef) -> list[str] | None:
        ident = TableIdent.of(list(table.namespace.levels), table.name)
        record = self.catalog.pointers.get_table(self._wh, ident)
        if record is None:
            return None
        entry = self.catalog.cache.get(record.metadata_location, self.catalog.warehouses[self._wh].read_bytes)
        return [name for _id, name in entry.columns()]

    # -- checks and audit ---

    def unsafe_names(self, ctx: RequestContext) -> list[dict[str, Any]]:
        """Namespaces, tables and columns whose names break today's identifier rule (made before it existed):
        consumers escape them, but they should be renamed."""
        self._admin(ctx, "the name check")
        found = []
        store = self.catalog.pointers
        for wh in self.catalog.warehouses.values():
            for ns, _owner in store.namespaces_with_owners(wh.name):
                if not all(is_safe_name(level) for level in ns.levels):
                    found.append({"warehouse": wh.name, "kind": "namespace", "name": str(ns)})
                for ident in store.list_tables(wh.name, ns, None, None):
                    if not is_safe_name(ident.name):
                        found.append({"warehouse": wh.name, "kind": "table", "name": str(ident)})
                    record = store.get_table(wh.name, ident)
                    try:
                        model = self.catalog.cache.get(record.metadata_location, wh.read_bytes).model if record else None
                    except Exception:  # noqa: BLE001 - an unreadable table is not this check's business
                        model = None
                    for field in (index_by_id(model.schema()).values() if model is not None else ()):
                        if not is_safe_name(field.name):
                            found.append({"warehouse": wh.name, "kind": "column", "name": f"{ident}.{field.name}"})
        return found

    def check_access(self, ctx: RequestContext, principal: str, resource: str, action: str = "SELECT") -> dict[str, Any]:
        if principal != ctx.principal.name:
            self._admin(ctx, "access checks for other principals")
        try:
            permission = Permission(action.strip().upper())
        except ValueError:
            raise BadRequest(f"Unknown action {action!r}: use one of {', '.join(p.value for p in Permission)}") from None
        if not self.identities.principal_exists(principal):
            raise BadRequest(f"Unknown principal {principal!r}")
        evaluator = self.catalog.auth.evaluator(self._wh)
        missing = NotFound(f"No table or namespace named {resource} that {principal} may see")
        ident = maybe_table_arg(resource)
        record = self.catalog.pointers.get_table(self._wh, ident) if ident else None
        admin = evaluator.is_admin(ctx.principal.name) is not None
        if record is not None:
            if not admin and not evaluator.decide_table(principal, Permission.DESCRIBE, table_ref(ident)).allowed:
                raise missing  # nothing about it (not even that it exists) to a caller who may not see it
            entry = self.catalog.cache.get(record.metadata_location, self.catalog.warehouses[self._wh].read_bytes)
            names = [n for _i, n in entry.columns()]
            decision = evaluator.decide_table(principal, permission, table_ref(ident), names)
            if permission is Permission.SELECT:
                return access_json(decision, evaluator.restrictions(principal, table_ref(ident), names))
        else:
            ns = parse_namespace_arg(resource)
            if self.catalog.pointers.namespace_properties(self._wh, ns) is None:
                raise missing
            tables = [table_ref(t) for t in self.catalog.pointers.tables_under(self._wh, ns)]
            if not admin and not evaluator.decide_namespace(principal, Permission.DESCRIBE, namespace_ref(ns), tables).allowed:
                raise missing
            decision = evaluator.decide_namespace(principal, permission, namespace_ref(ns), tables)
        return access_json(decision)

    def audit(self, ctx: RequestContext, principal: str | None = None, denied_only: bool = False,
              limit: int = 100) -> list[dict[str, Any]]:
        """Newest first; a non-admin reads only its own decisions, and of its refusals only those about what it
        may see now (see `_may_see_resource`)."""
        principal = self._only_own(ctx, principal, "audit rows of other principals")
        limit = max(1, min(limit, 10000))
        admin = self._is_admin(ctx)
        records = self.audit_log.audit_records(principal, False if denied_only else None, limit if admin else 10000)
        if not admin:
            seen: dict[str, bool] = {}
            records = [r for r in records if r.allowed or seen.setdefault(
                r.resource, self._may_see_resource(ctx.principal.name, r.resource))][:limit]
        return [{"at": r.at, "principal": r.principal, "action": r.action, "resource": r.resource,
                 "allowed": r.allowed, "reason": r.reason, "request_id": r.request_id} for r in records]

    def _may_see_resource(self, principal: str, resource: str) -> bool:
        """Whether `principal` may DESCRIBE an audit row's resource (`table ns.t`, `column ns.t.c`, `namespace ns`;
        anything else names no data). A refused load of a table it may not see answered 404 with nothing more:
        the row, which only exists for a table that does, and its reason, which names the table's tags, would
        tell more."""
        kind, _sep, name = resource.partition(" ")
        evaluator = self.catalog.auth.evaluator(self._wh)
        try:
            if kind in ("table", "column"):
                ref = parse_table(name.rsplit(".", 1)[0] if kind == "column" else name)
                return evaluator.decide_table(principal, Permission.DESCRIBE, ref).allowed
            if kind == "namespace":
                ns = parse_namespace(name)
                tables = [table_ref(t) for t in self.catalog.pointers.tables_under(self._wh, Namespace(ns.levels))]
                return evaluator.decide_namespace(principal, Permission.DESCRIBE, ns, tables).allowed
        except ValueError:
            return False
        return True


















