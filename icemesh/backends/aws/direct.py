"""The policy tooling straight against AWS Glue and Lake Formation, with no icemesh server (`--lakeformation`).

For teams that keep their tables in Glue and want only the policy file, the tag views and the access
checks. What a server would answer, this answers from Glue and Lake Formation, in the same shapes.
Principals and roles are IAM identities here (see icemesh.backends.aws.lakeformation for the ARNs): a
policy file's `principals` and `roles` sections only declare names; who belongs to a role is IAM's
business. Owners are the catalog server's (recorded in its database): the Glue parameter `icemesh.owner`,
which any Glue writer can change, is never read here, so an access check counts a principal's own grants
only and says so, and a policy file's namespace owners are set by applying it through the server.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from icemesh.backends.aws.settings import AwsSettings
from icemesh.backends.aws.lakeformation import LakeFormation, canonical_grant, check_iam_name
from icemesh.governance.views import LazyColumns, access_json, grant_json, namespace_tags_json, table_tags_json
from icemesh.errors import BadRequest
from icemesh.governance import policy_file
from icemesh.governance.changes import NamespaceChange, plan_json
from icemesh.governance.evaluator import Evaluator
from icemesh.governance.permissions import Permission
from icemesh.governance.policy import PRINCIPAL, ROLE, Grantee
from icemesh.governance.resources import NamespaceRef, TableRef, parse_namespace, parse_table


OWNERS_NOTE = ("namespace owners are recorded by the catalog server, not in Glue: apply this file through the "
               "server (without --lakeformation) to set them")
ACCESS_NOTE = ("owner rights are not counted here (the catalog server records owners): run the check through the "
               "server (without --lakeformation) to include them")


class DirectLakeFormation:
    def __init__(self, aws: AwsSettings) -> None:
        self.lf = LakeFormation(aws)

    def evaluator(self) -> Evaluator:
        return Evaluator(self.lf.policy({}, roles={}))

    def table_columns(self, table: TableRef) -> list[str] | None:
        return self.lf.table_columns(table)

    def apply_policy(self, text: str, dry_run: bool) -> dict[str, Any]:
        try:
            doc = policy_file.parse(text)
            if "projects" in doc.sections:
                raise BadRequest("Policy file: projects: bindings live in the catalog server's database; apply this "
                                 "file through the server (icemesh policy apply without --lakeformation)")
            changes = policy_file.plan(self._current_state(doc), doc)
        except policy_file.PolicyError as exc:
            raise BadRequest(f"Policy file: {exc}") from None
        for grant, _line in doc.grants:
            check_iam_name(grant.grantee.name, f"{grant.grantee.kind} name")
        # New databases get no owner label: the server would ignore (and report) one it did not record.
        changes = [replace(c, owner=None) if isinstance(c, NamespaceChange) else c for c in changes]
        if changes and not dry_run:
            self.lf.apply(changes)
        notes = [OWNERS_NOTE] if any(doc.namespaces.values()) else []
        return {"applied": bool(changes) and not dry_run, "changes": plan_json(changes), "created_principals": [],
                "notes": notes}

    def _current_state(self, doc: policy_file.PolicyDocument) -> policy_file.CurrentState:
        """Lake Formation and Glue as they are; the identities the file declares or names count as existing."""
        principals = dict(doc.principals)
        roles = set(doc.roles)
        for grant, _line in doc.grants:
            if grant.grantee.kind == PRINCIPAL:
                principals.setdefault(grant.grantee.name, ())
            else:
                roles.add(grant.grantee.name)
        principals.update({owner: principals.get(owner, ()) for owner in doc.namespaces.values() if owner})
        databases = self.lf.glue.databases()
        return policy_file.CurrentState(
            tags={k: tuple(v.values) for k, v in self.lf.tag_keys().items()},
            roles=roles,
            principals=principals,
            # Owners are not managed here (see OWNERS_NOTE): an existing namespace's owner counts as the file's.
            namespaces={NamespaceRef((d["Name"],)): doc.namespaces.get(NamespaceRef((d["Name"],))) for d in databases},
            tables=LazyColumns(self),
            assignments=self.lf.assignments(),
            grants=self.lf.grants(),
            canonical=canonical_grant,
        )

    def list_tags(self) -> list[dict[str, Any]]:
        return [{"key": k.key, "values": list(k.values)} for k in self.lf.tag_keys().values()]

    def show_tags(self, resource: str) -> dict[str, Any]:
        evaluator = self.evaluator()
        table = _maybe_table(resource)
        columns = self.table_columns(table) if table else None
        if columns is not None:
            return table_tags_json(evaluator, table, columns)
        ns = _namespace(resource)
        if len(ns.levels) != 1 or self.lf.glue.database(ns.levels[0]) is None:
            raise BadRequest(f"No table or namespace named {resource}")
        return namespace_tags_json(evaluator, ns)

    def list_grants(self, principal: str | None, role: str | None) -> list[dict[str, Any]]:
        grants = self.lf.grants()
        if principal:
            grants = [g for g in grants if g.grantee == Grantee(PRINCIPAL, principal)]
        if role:
            grants = [g for g in grants if g.grantee == Grantee(ROLE, role)]
        return [grant_json(g) for g in grants]

    def check_access(self, principal: str, resource: str, action: str) -> dict[str, Any]:
        check_iam_name(principal, "principal name")
        try:
            permission = Permission(action.strip().upper())
        except ValueError:
            raise BadRequest(f"Unknown action {action!r}: use one of {', '.join(p.value for p in Permission)}") from None
        evaluator = self.evaluator()
        table = _maybe_table(resource)
        columns = self.table_columns(table) if table else None
        if columns is not None:
            return {**access_json(evaluator.decide_table(principal, permission, table, columns)), "notes": [ACCESS_NOTE]}
        ns = _namespace(resource)
        if len(ns.levels) != 1 or self.lf.glue.database(ns.levels[0]) is None:
            raise BadRequest(f"No table or namespace named {resource}")
        tables = [TableRef(ns, t["Name"]) for t in self.lf.glue.tables(ns.levels[0])]
        return {**access_json(evaluator.decide_namespace(principal, permission, ns, tables)), "notes": [ACCESS_NOTE]}


def _maybe_table(text: str) -> TableRef | None:
    try:
        return parse_table(text)
    except ValueError:
        return None


def _namespace(text: str) -> NamespaceRef:
    try:
        return parse_namespace(text)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
