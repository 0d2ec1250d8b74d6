"""A snapshot of everything governance decides from: tag keys, tag assignments, grants, roles, owners.

Built by whoever holds the data (the catalog database, Lake Formation, a policy file) and handed to
the Evaluator; it is immutable so one request sees one consistent policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from icemesh.governance.data_filters import DataFilter
from icemesh.governance.permissions import Permission
from icemesh.governance.resources import NamespaceRef, TableRef
from icemesh.governance.tags import TagExpression, TagKey

PRINCIPAL = "principal"
ROLE = "role"


@dataclass(frozen=True, order=True)
class Grantee:
    kind: str  # PRINCIPAL or ROLE
    name: str

    def __str__(self) -> str:
        return f"role {self.name}" if self.kind == ROLE else self.name


@dataclass(frozen=True)
class Grant:
    """Permissions for a grantee on exactly one target: the catalog, a namespace (and everything in it),
    a table (optionally only some columns), or every resource whose effective tags match an expression."""

    id: int
    grantee: Grantee
    permissions: frozenset[Permission]
    catalog: bool = False
    namespace: NamespaceRef | None = None
    table: TableRef | None = None
    columns: frozenset[str] | None = None
    expression: TagExpression | None = None
    data_filter: DataFilter | None = None  # SELECT only: the rows and masked columns this grant shows

    def target(self) -> str:
        if self.catalog:
            return "the catalog"
        if self.namespace is not None:
            return f"namespace {self.namespace}"
        if self.table is not None:
            cols = f" columns {','.join(sorted(self.columns))}" if self.columns else ""
            return f"table {self.table}{cols}"
        return f"tags {self.expression}"

    def __str__(self) -> str:
        perms = ",".join(sorted(p.value for p in self.permissions))
        limited = f" ({self.data_filter})" if self.data_filter else ""
        return f"grant #{self.id}: {perms} on {self.target()}{limited} to {self.grantee}"


@dataclass(frozen=True)
class Policy:
    tag_keys: dict[str, TagKey] = field(default_factory=dict)
    namespace_tags: dict[NamespaceRef, dict[str, str]] = field(default_factory=dict)
    table_tags: dict[TableRef, dict[str, str]] = field(default_factory=dict)
    column_tags: dict[TableRef, dict[str, dict[str, str]]] = field(default_factory=dict)
    grants: tuple[Grant, ...] = ()
    roles: dict[str, frozenset[str]] = field(default_factory=dict)  # principal -> its roles
    owners: dict[NamespaceRef | TableRef, str] = field(default_factory=dict)
    version: int = 0
    # Tables that are not products (dbt models with access protected or private): readable by their owner,
    # ADMIN and grants naming the table only, never through namespace, catalog or tag grants.
    restricted: frozenset[TableRef] = frozenset()

    @classmethod
    def of(cls, assignments: dict[tuple[NamespaceRef, str, str, str], str], **rest) -> "Policy":
        """A Policy from effective tag assignments keyed (namespace, table, column, key), as both backends
        read them ('' for no table or column)."""
        ns_tags: dict[NamespaceRef, dict[str, str]] = {}
        table_tags: dict[TableRef, dict[str, str]] = {}
        column_tags: dict[TableRef, dict[str, dict[str, str]]] = {}
        for (ns, table, column, key), value in assignments.items():
            if not table:
                ns_tags.setdefault(ns, {})[key] = value
            elif not column:
                table_tags.setdefault(TableRef(ns, table), {})[key] = value
            else:
                column_tags.setdefault(TableRef(ns, table), {}).setdefault(column, {})[key] = value
        return cls(namespace_tags=ns_tags, table_tags=table_tags, column_tags=column_tags, **rest)
