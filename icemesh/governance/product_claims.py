"""A dbt project name belongs to one domain: who may publish a table that says it is `project.model`.

`icemesh.dbt.project` / `icemesh.dbt.model` are ordinary table properties, so without a rule any producer
could claim another project's `ref()`. The rule: a project is bound to one namespace and one principal
(when it first publishes, into the namespace of its own name, or by an admin); a table may carry
`icemesh.dbt.project=P` only in P's namespace, written by P's principal (or an admin); and no two tables
claim the same (project, model, version). The registry applies the same rule to what older catalogs hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from icemesh.errors import AlreadyExists, Forbidden
from icemesh.governance.resources import NamespaceRef

PROJECT = "icemesh.dbt.project"
MODEL = "icemesh.dbt.model"
VERSION = "icemesh.dbt.version"


@dataclass(frozen=True)
class Claim:
    project: str
    model: str
    version: str

    def __str__(self) -> str:
        return f"{self.project}.{self.model}" + (f" v{self.version}" if self.version else "")


def claim_of(properties: dict[str, str]) -> Claim | None:
    project = properties.get(PROJECT)
    if not project:
        return None
    return Claim(project, properties.get(MODEL, ""), properties.get(VERSION, ""))


def check(claim: Claim, table: str, namespace: NamespaceRef, principal: str, admin: bool,
          binding: tuple[NamespaceRef, str] | None) -> bool:
    """Raise Forbidden when `principal` may not publish `table` (in `namespace`) as `claim`; True when the
    project is unbound and this commit binds it."""
    if binding is None:
        if namespace.levels != (claim.project,) and not admin:
            raise Forbidden(f"{table} cannot claim dbt project {claim.project!r}: a project's products live in the "
                            f"namespace of its name ({claim.project}) unless an admin binds it elsewhere")
        return True
    bound_ns, owner = binding
    if bound_ns != namespace:
        raise Forbidden(f"{table} cannot claim dbt project {claim.project!r}: its products live in namespace {bound_ns}")
    if owner != principal and not admin:
        raise Forbidden(f"{table} cannot claim dbt project {claim.project!r}: only its own principal publishes it")
    return False


def refuse_duplicate(claim: Claim, table: str, other: str) -> AlreadyExists:
    return AlreadyExists(f"{table} cannot be dbt model {claim}: {other} already is; drop or rename one of them")


def registry_refusal(claim: Claim, namespace: NamespaceRef, binding: tuple[NamespaceRef, str] | None) -> str | None:
    """Why the registry refuses a product an older catalog holds (None: accepted)."""
    if binding is None and namespace.levels != (claim.project,):
        return f"claims dbt project {claim.project!r} outside the namespace of that name"
    if binding is not None and binding[0] != namespace:
        return f"claims dbt project {claim.project!r}, whose products live in namespace {binding[0]}"
    return None
