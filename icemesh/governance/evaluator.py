"""The one place that decides: may principal P do action A on resource R, and why.

Semantics (Lake Formation's LF-TBAC, see PRODUCT.md): deny by default; tags on a namespace apply to
its tables and nested namespaces, tags on a table to its columns, a value set lower overrides; a tag
grant covers exactly the resources (for SELECT: the columns) whose effective tags match; owners hold
every permission on what they own, including the tables of a namespace they own; ADMIN holds all.
Any permission on a table lets its holder see it (DESCRIBE). A restricted table (a dbt model that is not
public) is read, written and dropped only by its owner, ADMIN and grants that name it; other grants let
their holders see it exists (DESCRIBE), as dbt lets a project see another's protected model to refuse the ref.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from icemesh.governance.data_filters import NONE as NO_RESTRICTIONS, Restrictions, combine
from icemesh.governance.permissions import NAMESPACE_PERMISSIONS, TABLE_PERMISSIONS, Permission
from icemesh.governance.policy import PRINCIPAL, ROLE, Grant, Grantee, Policy

# CREATE_TABLE granted on the catalog creates top-level namespaces (Lake Formation's CREATE_DATABASE): it gives
# no right inside any namespace, not even to see it, so a domain allowed to make its own namespace cannot
# create tables in (or list) another's.
CATALOG_NAMESPACE_PERMISSIONS = NAMESPACE_PERMISSIONS - {Permission.CREATE_TABLE}
from icemesh.governance.resources import NamespaceRef, TableRef


@dataclass(frozen=True)
class Decision:
    allowed: bool
    principal: str
    action: Permission
    resource: str
    reason: str
    grant_ids: tuple[int, ...] = ()
    visible_columns: tuple[str, ...] | None = None  # SELECT on a table: exactly what may be read
    hidden_columns: tuple[str, ...] = ()
    resource_tags: dict[str, str] = field(default_factory=dict)

    @property
    def all_columns(self) -> bool:
        return self.allowed and not self.hidden_columns

    def message(self) -> str:
        """One line for a 403 or the CLI: which permission is missing, and the `icemesh grant` command (real CLI
        syntax, ready to paste) an admin would run to allow it, by name and, when the resource has tags, by tags."""
        if self.allowed:
            return f"{self.principal} may {self.action} on {self.resource}: {self.reason}"
        import shlex

        grant = f"icemesh grant {self.action} --to {shlex.quote(self.principal)}"
        kind, _sep, name = self.resource.partition(" ")
        if self.action is Permission.ADMIN or self.resource == "the catalog" or kind not in ("table", "namespace"):
            target = "--catalog"  # ADMIN and catalog-wide permissions are granted on the catalog only
        else:
            target = f"--{kind} {shlex.quote(name)}"
        hint = f"{grant} {target}"
        if self.resource_tags and target != "--catalog":
            tags = " ".join(f"--tags {shlex.quote(f'{k}={v}')}" for k, v in sorted(self.resource_tags.items()))
            hint += f" (or by its tags: {grant} {tags})"
        return f"{self.principal} lacks {self.action} on {self.resource}; an admin can allow it with: {hint}"


class Evaluator:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._by_grantee: dict[Grantee, list[Grant]] = {}
        for grant in policy.grants:
            self._by_grantee.setdefault(grant.grantee, []).append(grant)
        self._ns_tag_cache: dict[NamespaceRef, dict[str, tuple[str, str]]] = {}
        # The policy is immutable, so answers can be memoized for the evaluator's lifetime (bounded).
        self._grants_cache: dict[str, list[Grant]] = {}
        self._decisions: dict[tuple, Decision] = {}
        self._column_tag_cache: dict[tuple, dict[str, dict[str, str]]] = {}
        self._restrictions: dict[tuple, Restrictions] = {}  # as decisions: a listing asks for each product it shows

    # -- who ---------------------------------------------------------------------------------------

    def grants_for(self, principal: str) -> list[Grant]:
        found = self._grants_cache.get(principal)
        if found is None:
            found = list(self._by_grantee.get(Grantee(PRINCIPAL, principal), ()))
            for role in sorted(self.policy.roles.get(principal, ())):
                found += self._by_grantee.get(Grantee(ROLE, role), ())
            if len(self._grants_cache) > 10000:
                self._grants_cache.clear()
            self._grants_cache[principal] = found
        return found

    def is_admin(self, principal: str) -> Grant | None:
        for grant in self.grants_for(principal):
            if grant.catalog and Permission.ADMIN in grant.permissions:
                return grant
        return None

    def _owner_of(self, principal: str, resource: NamespaceRef | TableRef) -> str | None:
        owners = self.policy.owners
        if isinstance(resource, TableRef):
            if owners.get(resource) == principal:
                return str(resource)
            resource = resource.namespace
        for ns in reversed(resource.ancestors_and_self()):
            if owners.get(ns) == principal:
                return str(ns)
        return None

    # -- tags --------------------------------------------------------------------------------------

    def namespace_tags_with_source(self, ns: NamespaceRef) -> dict[str, tuple[str, str]]:
        cached = self._ns_tag_cache.get(ns)
        if cached is None:
            cached = {}
            for level in ns.ancestors_and_self():
                for key, value in self.policy.namespace_tags.get(level, {}).items():
                    cached[key] = (value, f"namespace {level}")
            self._ns_tag_cache[ns] = cached
        return cached

    def table_tags_with_source(self, table: TableRef) -> dict[str, tuple[str, str]]:
        tags = dict(self.namespace_tags_with_source(table.namespace))
        for key, value in self.policy.table_tags.get(table, {}).items():
            tags[key] = (value, f"table {table}")
        return tags

    def column_tags_with_source(self, table: TableRef, column: str) -> dict[str, tuple[str, str]]:
        tags = self.table_tags_with_source(table)
        for key, value in self.policy.column_tags.get(table, {}).get(column, {}).items():
            tags[key] = (value, f"column {table}.{column}")
        return tags

    def namespace_tags(self, ns: NamespaceRef) -> dict[str, str]:
        return {k: v for k, (v, _s) in self.namespace_tags_with_source(ns).items()}

    def table_tags(self, table: TableRef) -> dict[str, str]:
        tags = self.namespace_tags(table.namespace)
        tags.update(self.policy.table_tags.get(table, {}))
        return tags

    def column_tags(self, table: TableRef, columns: Iterable[str]) -> dict[str, dict[str, str]]:
        columns = tuple(columns)
        key = (table, columns)
        found = self._column_tag_cache.get(key)
        if found is None:
            base = self.table_tags(table)
            overrides = self.policy.column_tags.get(table, {})
            found = {c: ({**base, **overrides[c]} if c in overrides else base) for c in columns}
            if len(self._column_tag_cache) > 50000:
                self._column_tag_cache.clear()
            self._column_tag_cache[key] = found
        return found

    # -- decisions ---------------------------------------------------------------------------------

    def decide_table(self, principal: str, action: Permission, table: TableRef,
                     columns: Iterable[str] = ()) -> Decision:
        """Tables: for SELECT the decision carries the visible columns (allowed when at least one is)."""
        columns = tuple(columns)
        key = (principal, action, table, columns)
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._decide_table(principal, action, table, list(columns))
            if len(self._decisions) > 200000:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision

    def _decide_table(self, principal: str, action: Permission, table: TableRef, columns: list[str]) -> Decision:
        resource = f"table {table}"
        admin = self.is_admin(principal)
        if admin is not None:
            return Decision(True, principal, action, resource, "ADMIN", (admin.id,), tuple(columns) if action is Permission.SELECT else None)
        owned = self._owner_of(principal, table)
        if owned is not None:
            return Decision(True, principal, action, resource, f"owner of {owned}", (),
                            tuple(columns) if action is Permission.SELECT else None)
        table_tags = self.table_tags(table)
        visible: set[str] = set()
        deciding: list[int] = []
        restricted = table in self.policy.restricted
        for grant in self.grants_for(principal):
            if restricted and grant.table != table and action is not Permission.DESCRIBE:
                continue  # not a product: only a grant naming the table reads or changes it
            held, readable = self._grant_on_table(grant, table, columns, table_tags)
            if action is Permission.SELECT:
                covered = readable
            elif action is Permission.DESCRIBE:
                covered = {"*"} if (held or readable) else set()
            else:
                covered = {"*"} if action in held else set()
            if covered:
                visible |= covered
                deciding.append(grant.id)
                if action is not Permission.SELECT:
                    break
        if action is not Permission.SELECT:
            if deciding:
                grant = next(g for g in self.policy.grants if g.id == deciding[0])
                return Decision(True, principal, action, resource, str(grant), tuple(deciding))
            return Decision(False, principal, action, resource, f"no grant gives {action} on {resource}",
                            resource_tags=table_tags)
        if not visible:
            return Decision(False, principal, action, resource, f"no grant gives {action} on {resource}",
                            visible_columns=(), hidden_columns=tuple(columns), resource_tags=table_tags)
        shown = tuple(c for c in columns if c in visible) if columns else None
        hidden = tuple(c for c in columns if c not in visible)
        reason = "; ".join(str(g) for g in self.policy.grants if g.id in deciding)
        return Decision(True, principal, action, resource, reason, tuple(deciding), shown, hidden, table_tags)

    def restrictions(self, principal: str, table: TableRef, columns: Iterable[str]) -> Restrictions:
        """The row filter and masks `principal` must read `table` under (see data_filters.combine): none for ADMIN
        and owners, and none when some grant shows the rows and columns it covers unfiltered."""
        columns = tuple(columns)
        key = (principal, table, columns)
        found = self._restrictions.get(key)
        if found is None:
            found = self._restrictions_of(principal, table, list(columns))
            if len(self._restrictions) > 50000:
                self._restrictions.clear()
            self._restrictions[key] = found
        return found

    def _restrictions_of(self, principal: str, table: TableRef, columns: list[str]) -> Restrictions:
        if self.is_admin(principal) is not None or self._owner_of(principal, table) is not None:
            return NO_RESTRICTIONS
        table_tags = self.table_tags(table)
        restricted = table in self.policy.restricted
        readers = []
        for grant in self.grants_for(principal):
            if restricted and grant.table != table:
                continue
            _held, readable = self._grant_on_table(grant, table, columns, table_tags)
            if readable:
                readers.append((grant.id, grant.data_filter, readable))
        return combine(readers, self.column_tags(table, columns))

    def decide_namespace(self, principal: str, action: Permission, ns: NamespaceRef,
                         tables_within: Iterable[TableRef] = ()) -> Decision:
        """Namespaces; DESCRIBE is also allowed when the principal may see any table inside."""
        resource = f"namespace {ns}"
        admin = self.is_admin(principal)
        if admin is not None:
            return Decision(True, principal, action, resource, "ADMIN", (admin.id,))
        owned = self._owner_of(principal, ns)
        if owned is not None:
            return Decision(True, principal, action, resource, f"owner of {owned}")
        tags = self.namespace_tags(ns)
        for grant in self.grants_for(principal):
            applicable = CATALOG_NAMESPACE_PERMISSIONS if grant.catalog else NAMESPACE_PERMISSIONS
            if not self._grants_action(grant, action, applicable):
                continue
            if grant.catalog or (grant.namespace is not None and grant.namespace.contains(ns)) or \
                    (grant.expression is not None and grant.expression.matches(tags)):
                return Decision(True, principal, action, resource, str(grant), (grant.id,))
        if action is Permission.DESCRIBE:
            for table in tables_within:
                columns = tables_within[table] if isinstance(tables_within, dict) else ()
                seen = self.decide_table(principal, Permission.DESCRIBE, table, columns)
                if seen.allowed:
                    return Decision(True, principal, action, resource, f"may see table {table}", seen.grant_ids)
        return Decision(False, principal, action, resource, f"no grant gives {action} on {resource}", resource_tags=tags)

    def may_administer(self, principal: str) -> Decision:
        admin = self.is_admin(principal)
        if admin is not None:
            return Decision(True, principal, Permission.ADMIN, "the catalog", str(admin), (admin.id,))
        return Decision(False, principal, Permission.ADMIN, "the catalog", "only principals with ADMIN manage principals, tags and grants")

    def effective_permissions(self, principal: str, tables: dict[TableRef, list[str]]) -> dict[TableRef, frozenset[Permission]]:
        """Every table the principal may do anything on, with the permissions (SELECT if any column).

        Same rules as `decide_table`, organised for many tables at once: grants are indexed by target,
        namespace-wide results are computed once per namespace, and tag-grant results once per distinct
        tag signature (most tables inherit their tags unchanged, so there are few signatures).
        """
        if self.is_admin(principal) is not None:
            return {table: TABLE_PERMISSIONS for table in tables}
        broad: list[tuple[NamespaceRef | None, frozenset[Permission]]] = []
        by_table: dict[TableRef, set[Permission]] = {}
        tag_grants: list[tuple] = []
        for grant in self.grants_for(principal):
            granted = grant.permissions & TABLE_PERMISSIONS
            if not granted:
                continue
            if grant.catalog:
                broad.append((None, granted))
            elif grant.namespace is not None:
                broad.append((grant.namespace, granted))
            elif grant.table is not None:
                by_table.setdefault(grant.table, set()).update(
                    granted & {Permission.SELECT, Permission.DESCRIBE} if grant.columns else granted)
            elif grant.expression is not None:
                tag_grants.append((grant.expression, granted))
        owners = self.policy.owners
        table_overrides = self.policy.table_tags
        column_overrides = self.policy.column_tags
        per_namespace: dict[NamespaceRef, tuple[bool, frozenset[Permission]]] = {}
        per_signature: dict[tuple, frozenset[Permission]] = {}
        result: dict[TableRef, frozenset[Permission]] = {}
        for table, columns in tables.items():
            ns = table.namespace
            ns_result = per_namespace.get(ns)
            if ns_result is None:
                owned = self._owner_of(principal, ns) is not None
                held: set[Permission] = set()
                for scope, granted in broad:
                    if scope is None or scope.contains(ns):
                        held |= granted
                ns_result = (owned, frozenset(held))
                per_namespace[ns] = ns_result
            if ns_result[0] or owners.get(table) == principal:
                result[table] = TABLE_PERMISSIONS
                continue
            restricted = table in self.policy.restricted
            perms = set(ns_result[1])
            perms.update(by_table.get(table, ()))
            if tag_grants:
                t_over = table_overrides.get(table)
                c_over = column_overrides.get(table)
                if not t_over and not c_over:
                    signature = (ns, (), (), bool(columns))  # the common case: tags inherited unchanged
                else:
                    c_over = c_over or {}
                    signature = (
                        ns,
                        tuple(sorted(t_over.items())) if t_over else (),
                        tuple(sorted((c, tuple(sorted(c_over[c].items()))) for c in columns if c in c_over)),
                        any(c not in c_over for c in columns),
                    )
                tag_perms = per_signature.get(signature)
                if tag_perms is None:
                    table_tags = self.table_tags(table)
                    column_tags = list(self.column_tags(table, columns).values())
                    found: set[Permission] = set()
                    for expression, granted in tag_grants:
                        if expression.matches(table_tags):
                            found |= granted - {Permission.SELECT}
                        if Permission.SELECT in granted and any(expression.matches(t) for t in column_tags):
                            found.add(Permission.SELECT)
                    tag_perms = frozenset(found)
                    per_signature[signature] = tag_perms
                perms |= tag_perms
            if restricted:  # other grants only let their holder see it (see _decide_table)
                named = set(by_table.get(table, ()))
                perms = named | ({Permission.DESCRIBE} if perms else set())
            if perms:
                perms.add(Permission.DESCRIBE)
                result[table] = frozenset(perms)
        return result

    def _grant_on_table(self, grant: Grant, table: TableRef, columns: list[str],
                        table_tags: dict[str, str]) -> tuple[set[Permission], set[str]]:
        """What one grant gives on a table: (table permissions other than SELECT, columns it lets SELECT).
        Without `columns` SELECT is decided for an unnamed column carrying the table's tags ("*")."""
        granted = grant.permissions & TABLE_PERMISSIONS
        cols = set(columns) if columns else {"*"}
        if grant.catalog or (grant.namespace is not None and grant.namespace.contains(table.namespace)):
            held, readable = set(granted), cols
        elif grant.table is not None and grant.table == table:
            if grant.columns:
                held = granted & {Permission.DESCRIBE}
                readable = (set(grant.columns) & cols if columns else set(grant.columns)) if Permission.SELECT in granted else set()
                return held, readable
            held, readable = set(granted), cols
        elif grant.expression is not None:
            held = set(granted) if grant.expression.matches(table_tags) else set()
            readable = set()
            if Permission.SELECT in granted:
                if columns:
                    col_tags = self.column_tags(table, columns)
                    readable = {c for c in columns if grant.expression.matches(col_tags[c])}
                elif grant.expression.matches(table_tags):
                    readable = {"*"}
        else:
            return set(), set()
        if Permission.SELECT not in granted:
            readable = set()
        held.discard(Permission.SELECT)
        return held, readable

    @staticmethod
    def _grants_action(grant: Grant, action: Permission, applicable: frozenset[Permission]) -> bool:
        if action in grant.permissions and action in applicable:
            return True
        # Any permission on a resource lets the holder see it.
        return action is Permission.DESCRIBE and bool(grant.permissions & applicable)
