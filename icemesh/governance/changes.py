"""Policy changes as typed values: what a policy plan asks a backend to do, one class per kind of change.

A plan (`policy_file.plan`) is a list of these; each backend applies them with one `match` on the
class, so a new kind of change is a new class the type checker and the backends' `case _` see, never
a new string to spell right in two places. `op` and `describe()` give the plan's wire form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from icemesh.governance.policy import Grant
from icemesh.governance.resources import NamespaceRef, TableRef

Op = Literal["add", "change", "remove"]
_SIGNS = {"add": "+", "change": "~", "remove": "-"}


@dataclass(frozen=True)
class Assignment:
    """One tag on a namespace (table ''), a table (column '') or a column."""

    namespace: NamespaceRef
    table: str  # '' for a namespace
    column: str  # '' unless a column
    key: str
    value: str

    def resource(self) -> str:
        if self.column:
            return f"column {TableRef(self.namespace, self.table)}.{self.column}"
        if self.table:
            return f"table {TableRef(self.namespace, self.table)}"
        return f"namespace {self.namespace}"


class Change:
    """Base of every policy change: `kind` names the class on the wire, `name` what it is about."""

    kind: ClassVar[str]
    op: Op

    @property
    def name(self) -> str:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{_SIGNS[self.op]} {self.kind} {self.name}"

    def as_json(self) -> dict[str, str]:
        return {"op": self.op, "kind": self.kind, "name": self.name, "line": self.describe()}


@dataclass(frozen=True)
class TagKeyChange(Change):
    kind: ClassVar[str] = "tag"
    op: Op
    key: str
    values: tuple[str, ...] = ()  # the allowed values (none for a removal)

    @property
    def name(self) -> str:
        return self.key


@dataclass(frozen=True)
class RoleChange(Change):
    kind: ClassVar[str] = "role"
    op: Op  # add | remove (a removal takes the role's grants with it)
    role: str

    @property
    def name(self) -> str:
        return self.role


@dataclass(frozen=True)
class PrincipalChange(Change):
    kind: ClassVar[str] = "principal"
    op: Op
    principal: str
    roles: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.principal


@dataclass(frozen=True)
class NamespaceChange(Change):
    kind: ClassVar[str] = "namespace"
    op: Op  # add | change (the owner); namespaces are never dropped by a policy file
    namespace: NamespaceRef
    owner: str | None = None

    @property
    def name(self) -> str:
        return str(self.namespace)


@dataclass(frozen=True)
class ProjectBinding(Change):
    """Which namespace (and owner) publishes a dbt project."""

    kind: ClassVar[str] = "project"
    op: Op  # add | change
    project: str
    namespace: NamespaceRef
    owner: str

    @property
    def name(self) -> str:
        return self.project


@dataclass(frozen=True)
class AssignmentChange(Change):
    """A tag set on (add, change) or taken off (remove; `assignment.value` is the old value) a resource."""

    kind: ClassVar[str] = "assignment"
    op: Op
    assignment: Assignment

    @property
    def name(self) -> str:
        a = self.assignment
        return f"{a.key}={a.value} on {a.resource()}"


@dataclass(frozen=True)
class GrantAdded(Change):
    kind: ClassVar[str] = "grant"
    op: ClassVar[Op] = "add"
    grant: Grant

    @property
    def name(self) -> str:
        return _grant_name(self.grant)


@dataclass(frozen=True)
class GrantRemoved(Change):
    """Names the grant by its id (the backend's); `grant` is what is removed, for the plan's line."""

    kind: ClassVar[str] = "grant"
    op: ClassVar[Op] = "remove"
    grant: Grant

    @property
    def grant_id(self) -> int:
        return self.grant.id

    @property
    def name(self) -> str:
        return _grant_name(self.grant)


def _grant_name(grant: Grant) -> str:
    return str(grant).split(": ", 1)[1]  # without the id: a planned grant has none yet


def plan_json(changes: list[Change]) -> list[dict[str, str]]:
    return [c.as_json() for c in changes]
