"""The governance read side's shapes: how grants, effective tags and access decisions are shown, the same
through the catalog's management API and through the direct Lake Formation tooling (pure: no I/O)."""

from __future__ import annotations

from typing import Any, Callable

from icemesh.governance.data_filters import Restrictions
from icemesh.governance.evaluator import Decision, Evaluator
from icemesh.governance.policy import Grant
from icemesh.governance.resources import NamespaceRef, TableRef


def grant_json(grant: Grant) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": grant.id,
        "grantee": {"type": grant.grantee.kind, "name": grant.grantee.name},
        "permissions": sorted(p.value for p in grant.permissions),
    }
    if grant.catalog:
        out["catalog"] = True
    if grant.namespace is not None:
        out["namespace"] = str(grant.namespace)
    if grant.table is not None:
        out["table"] = str(grant.table)
    if grant.columns:
        out["columns"] = sorted(grant.columns)
    if grant.expression is not None:
        out["tags"] = grant.expression.to_dict()
    if grant.data_filter:
        out["data_filter"] = grant.data_filter.to_dict()
    out["description"] = str(grant)
    return out


def table_tags_json(evaluator: Evaluator, ref: TableRef, columns: list[str]) -> dict[str, Any]:
    return {"resource": str(ref), "type": "table", "tags": _with_source(evaluator.table_tags_with_source(ref)),
            "columns": {name: _with_source(evaluator.column_tags_with_source(ref, name)) for name in columns}}


def namespace_tags_json(evaluator: Evaluator, ns: NamespaceRef) -> dict[str, Any]:
    return {"resource": str(ns), "type": "namespace", "tags": _with_source(evaluator.namespace_tags_with_source(ns))}


def access_json(decision: Decision, restrictions: Restrictions | None = None) -> dict[str, Any]:
    """A decision as the CLI and API show it; for SELECT, the row filter and masks the reader is held to."""
    out = {
        "principal": decision.principal, "action": decision.action.value, "resource": decision.resource,
        "decision": "ALLOW" if decision.allowed else "DENY",
        "reason": decision.reason if decision.allowed else decision.message(),
        "grants": list(decision.grant_ids),
        "visible_columns": list(decision.visible_columns) if decision.visible_columns is not None else None,
        "hidden_columns": list(decision.hidden_columns),
        "tags": decision.resource_tags,
    }
    if restrictions is not None and decision.allowed:
        out.update(restrictions.to_dict())
    return out


def _with_source(tags: dict[str, tuple[str, str]]) -> dict[str, dict[str, str]]:
    return {k: {"value": v, "from": source} for k, (v, source) in sorted(tags.items())}


def describe_resource(ns: NamespaceRef, table: str, column: str) -> str:
    if column:
        return f"column {TableRef(ns, table)}.{column}"
    if table:
        return f"table {TableRef(ns, table)}"
    return f"namespace {ns}"


class LazyColumns(dict):
    """Existing tables and their columns, read from the catalog only for the tables a policy names. With
    `names_in` (a namespace's table names, one query), whether a table exists is known without reading its
    metadata: a policy naming 10,000 tables reads ~100 namespaces, not 10,000 metadata files."""

    def __init__(self, management, names_in: Callable[[NamespaceRef], set[str]] | None = None) -> None:
        super().__init__()
        self._source = management
        self._names_in = names_in
        self._names: dict[NamespaceRef, set[str]] = {}

    def _load(self, table: TableRef) -> list[str] | None:
        if not dict.__contains__(self, table):
            dict.__setitem__(self, table, self._source.table_columns(table))
        return dict.__getitem__(self, table)

    def __contains__(self, table: object) -> bool:
        if not isinstance(table, TableRef):
            return False
        if self._names_in is None:
            return self._load(table) is not None
        if table.namespace not in self._names:
            self._names[table.namespace] = self._names_in(table.namespace)
        return table.name in self._names[table.namespace]

    def __getitem__(self, table: TableRef) -> list[str]:
        columns = self._load(table)
        if columns is None:
            raise KeyError(table)
        return columns

