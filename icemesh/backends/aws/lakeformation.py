"""Lake Formation as the policy store: LF-tags, their assignments and grants, in icemesh's model.

Everything is written to and read back from Lake Formation, so AWS engines enforce the same rules;
icemesh's own evaluator decides for REST clients (it reads this state into a `Policy`).

Principals and roles become IAM ARNs, reversibly: principal `P` is
`arn:aws:iam::<account>:user/icemesh/P` and role `R` is `arn:aws:iam::<account>:role/icemesh/R`
(names may use letters, digits and `_+=,.@-`). Grants to other identities are not icemesh's: they are
neither shown nor touched.

Grants map to Lake Formation resources by the table in icemesh.governance.permissions (LAKE_FORMATION):
permissions keep their names; `Catalog` holds only CREATE_DATABASE, icemesh's CREATE_TABLE on the catalog
(a catalog grant of anything else is refused; a Lake Formation `ALL` on it is CREATE_DATABASE and no more):
- catalog: `Catalog`;
- namespace: `Database` for CREATE_TABLE/DESCRIBE/ALTER/DROP, plus `Table` with `TableWildcard` for the
  table permissions (an icemesh namespace grant covers its tables);
- table: `Table`, or `TableWithColumns` with column names, which takes SELECT only (read back as SELECT and
  DESCRIBE of those columns; any other permission on columns is refused);
- tag expression: `LFTagPolicy` of resource type DATABASE (namespace permissions) and TABLE (table
  permissions).
Reading merges these back into one grant. A grant's id is derived from its grantee and target, so it
is the same on every read and in every process.

Lake Formation has no transactions: a policy apply stops at the first failing call and says which
change it was; applying again finishes the job (every step is idempotent).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, replace
from typing import Any, Iterable

from icemesh.backends.aws.settings import AwsError, AwsSettings, describe, error_code
from icemesh.backends.aws.glue import GlueCatalog, current_columns, database_name, is_iceberg
from icemesh.errors import AlreadyExists, BadRequest
from icemesh.governance.changes import (
    AssignmentChange,
    Change,
    GrantAdded,
    GrantRemoved,
    NamespaceChange,
    TagKeyChange,
)
from icemesh.governance.permissions import (
    LAKE_FORMATION,
    LAKE_FORMATION_IMPLIED,
    NAMESPACE_PERMISSIONS,
    TABLE_PERMISSIONS,
    Permission,
)
from icemesh.governance.policy import PRINCIPAL, ROLE, Grant, Grantee, Policy
from icemesh.governance.resources import NamespaceRef, TableRef
from icemesh.governance.tags import TagExpression, TagKey

log = logging.getLogger("icemesh.lakeformation")

PRINCIPAL_PATH = "user/icemesh/"
ROLE_PATH = "role/icemesh/"
_IAM_NAME = re.compile(r"^[A-Za-z0-9_+=,.@-]{1,64}$")
_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):(user/icemesh/|role/icemesh/)([A-Za-z0-9_+=,.@-]{1,64})$")

Assignments = dict[tuple[NamespaceRef, str, str, str], str]


def check_iam_name(name: str, what: str) -> str:
    if not _IAM_NAME.match(name or ""):
        raise BadRequest(f"Invalid {what} {name!r} for Lake Formation: it becomes an IAM name, so use 1-64 letters, "
                         "digits or _+=,.@-")
    return name


@dataclass(frozen=True)
class PrincipalMapping:
    """icemesh principals and roles <-> Lake Formation DataLakePrincipalIdentifiers (IAM ARNs)."""

    account: str

    def identifier(self, grantee: Grantee) -> str:
        path = ROLE_PATH if grantee.kind == ROLE else PRINCIPAL_PATH
        return f"arn:aws:iam::{self.account}:{path}{check_iam_name(grantee.name, grantee.kind + ' name')}"

    def grantee(self, identifier: str) -> Grantee | None:
        match = _ARN.match(identifier or "")
        if not match or match.group(1) != self.account:
            return None
        return Grantee(ROLE if match.group(2) == ROLE_PATH else PRINCIPAL, match.group(3))


def grant_id(grant: Grant) -> int:
    """Stable across reads and processes: derived from the grantee and the target (not the permissions)."""
    target = {"catalog": grant.catalog, "namespace": list(grant.namespace.levels) if grant.namespace else None,
              "table": [list(grant.table.namespace.levels), grant.table.name] if grant.table else None,
              "columns": sorted(grant.columns) if grant.columns else None,
              "tags": grant.expression.to_dict() if grant.expression else None,
              "grantee": [grant.grantee.kind, grant.grantee.name]}
    return int(hashlib.sha256(json.dumps(target, sort_keys=True).encode()).hexdigest()[:10], 16)


def _to_lf(permissions: Iterable[Permission], kind: str = "Table") -> list[str]:
    names = LAKE_FORMATION[kind]
    return sorted(names[p] for p in permissions)


def _from_lf(names: Iterable[str], kind: str) -> frozenset[Permission]:
    """Lake Formation's permission names on a resource of `kind` as icemesh permissions (one row of the table)."""
    row = LAKE_FORMATION[kind]
    by_name = {name: p for p, name in row.items()}
    found = set()
    for name in names:
        if name == "ALL":
            found |= set(row)
        elif name in by_name:
            found.add(by_name[name])
    return frozenset(found | LAKE_FORMATION_IMPLIED.get(kind, frozenset()) if found else found)


COLUMNS_TAKE_SELECT = ("Lake Formation grants columns SELECT only (which lets them be described too): grant or revoke "
                       "SELECT on the columns, and {extra} on the whole table (--table without --columns)")


def lf_entries(grant: Grant) -> list[tuple[dict, list[str]]]:
    """The (Resource, Permissions) pairs that express `grant` in Lake Formation."""
    perms = grant.permissions
    if Permission.ADMIN in perms:
        raise BadRequest("ADMIN is icemesh's own right and is not stored in Lake Formation")
    pairs: list[tuple[dict, frozenset[Permission]]]
    if grant.catalog:
        extra = sorted(p.value for p in perms - set(LAKE_FORMATION["Catalog"]))
        if extra:
            raise BadRequest(f"Lake Formation's catalog takes only CREATE_DATABASE (icemesh's catalog CREATE_TABLE), "
                             f"not {', '.join(extra)}: grant those by tags (--tags k=v) or per namespace")
        return [({"Catalog": {}}, _to_lf(perms, "Catalog"))]
    if grant.namespace is not None:
        db = database_name(grant.namespace)
        pairs = [({"Database": {"Name": db}}, perms & NAMESPACE_PERMISSIONS),
                 ({"Table": {"DatabaseName": db, "TableWildcard": {}}}, perms & TABLE_PERMISSIONS)]
    elif grant.table is not None:
        db = database_name(grant.table.namespace)
        if grant.columns:
            extra = sorted(p.value for p in perms - {Permission.SELECT, Permission.DESCRIBE})
            if Permission.SELECT not in perms or extra:
                raise BadRequest(COLUMNS_TAKE_SELECT.format(extra=", ".join(extra) or "DESCRIBE"))
            pairs = [({"TableWithColumns": {"DatabaseName": db, "Name": grant.table.name,
                                            "ColumnNames": sorted(grant.columns)}}, frozenset({Permission.SELECT}))]
        else:
            pairs = [({"Table": {"DatabaseName": db, "Name": grant.table.name}}, perms)]
    else:
        expression = [{"TagKey": k, "TagValues": sorted(v)} for k, v in grant.expression.clauses]
        pairs = [({"LFTagPolicy": {"ResourceType": "DATABASE", "Expression": expression}}, perms & NAMESPACE_PERMISSIONS),
                 ({"LFTagPolicy": {"ResourceType": "TABLE", "Expression": expression}}, perms & TABLE_PERMISSIONS)]
    return [(resource, _to_lf(p, _target(resource)[1])) for resource, p in pairs if p]


def as_lake_formation_means(grant: Grant) -> Grant:
    """`grant` as Lake Formation will hold it and read it back (a column SELECT is described too); raises
    BadRequest for what Lake Formation cannot hold."""
    if grant.data_filter:
        raise BadRequest("Data filters (--rows, --mask) are kept by the SQL catalog backend only: this deployment keeps "
                         "its grants in Lake Formation, whose data cells filters it does not manage yet")
    held = [_from_lf(names, _target(resource)[1]) for resource, names in lf_entries(grant)]
    return replace(grant, permissions=frozenset().union(*held))


def canonical_grant(grant: Grant) -> Grant:
    """`as_lake_formation_means` for a policy plan's `canonical`: ValueError for what Lake Formation cannot hold."""
    try:
        return as_lake_formation_means(grant)
    except BadRequest as exc:
        raise ValueError(exc.message) from None


def _target(resource: dict) -> tuple[dict, str] | None:
    """An LF resource as Grant target fields and the icemesh permissions that apply to it; None: not ours."""
    if "Catalog" in resource:
        return {"catalog": True}, "Catalog"
    if "Database" in resource:
        return {"namespace": NamespaceRef((resource["Database"]["Name"],))}, "Database"
    if "Table" in resource:
        table = resource["Table"]
        ns = NamespaceRef((table["DatabaseName"],))
        if "TableWildcard" in table:
            return {"namespace": ns}, "Table"
        return {"table": TableRef(ns, table["Name"])}, "Table"
    if "TableWithColumns" in resource:
        table = resource["TableWithColumns"]
        if not table.get("ColumnNames"):
            return None  # column wildcards (all but some) have no icemesh equivalent
        return ({"table": TableRef(NamespaceRef((table["DatabaseName"],)), table["Name"]),
                 "columns": frozenset(table["ColumnNames"])}, "TableWithColumns")
    if "LFTagPolicy" in resource:
        policy = resource["LFTagPolicy"]
        expression = TagExpression.from_dict({e["TagKey"]: e["TagValues"] for e in policy.get("Expression", [])})
        return {"expression": expression}, "Database" if policy.get("ResourceType") == "DATABASE" else "Table"
    return None


IAM_ALLOWED_PRINCIPALS = "IAM_ALLOWED_PRINCIPALS"  # Lake Formation's name for 'IAM decides'


class LakeFormation:
    """LF-tags, assignments and grants in Lake Formation; databases, tables and owners in Glue."""

    def __init__(self, settings: AwsSettings, glue: GlueCatalog | None = None) -> None:
        self.settings = settings
        self.glue = glue or GlueCatalog(settings)
        self.lf = settings.client("lakeformation")
        # GetResourceLFTags goes through a client that does not retry server errors (see _resource_tags).
        self._lf_reads = settings.client("lakeformation", retries=1)
        self.mapping = PrincipalMapping(settings.account_id())
        self._catalog = {"CatalogId": settings.catalog_id} if settings.catalog_id else {}

    def _call(self, operation: str, client: Any = None, **params: Any) -> dict:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(client or self.lf, operation)(**self._catalog, **params)
        except (ClientError, BotoCoreError) as exc:
            raise AwsError(f"Lake Formation {operation} failed: {describe(exc)}") from None

    # -- does Lake Formation enforce anything? ------------------------------------------------------

    def enforcement_note(self) -> str:
        """One line: whether AWS engines (Athena, EMR, Redshift) will be held to icemesh's grants. Under Lake
        Formation's account defaults (IAM_ALLOWED_PRINCIPALS gets ALL on every new database and table) IAM
        alone decides and Lake Formation enforces none of them; the line then gives the command that ends it."""
        import json

        try:
            current = self._call("get_data_lake_settings").get("DataLakeSettings", {})
        except AwsError as exc:
            return f"warning: cannot read the Lake Formation settings ({exc}); AWS engines may not enforce the grants"
        defaults = [key for key in ("CreateDatabaseDefaultPermissions", "CreateTableDefaultPermissions")
                    if any(p.get("Principal", {}).get("DataLakePrincipalIdentifier") == IAM_ALLOWED_PRINCIPALS
                           for p in current.get(key) or [])]
        if not defaults:
            return "Lake Formation enforces the grants for AWS engines (no IAM_ALLOWED_PRINCIPALS defaults)"
        tightened = {**current, "CreateDatabaseDefaultPermissions": [], "CreateTableDefaultPermissions": []}
        return ("warning: AWS engines are not held to these grants: Lake Formation's defaults give IAM_ALLOWED_PRINCIPALS "
                f"ALL ({', '.join(defaults)}); remove them with: aws lakeformation put-data-lake-settings "
                f"--data-lake-settings '{json.dumps(tightened, separators=(',', ':'))}'")

    # -- tag keys ----------------------------------------------------------------------------------

    def tag_keys(self) -> dict[str, TagKey]:
        keys, token = {}, None
        while True:
            page = self._call("list_lf_tags", **({"NextToken": token} if token else {}))
            for tag in page.get("LFTags", []):
                keys[tag["TagKey"]] = TagKey(tag["TagKey"], tuple(tag["TagValues"]))
            token = page.get("NextToken")
            if not token:
                return dict(sorted(keys.items()))

    def create_tag_key(self, key: str, values: list[str]) -> None:
        if key in self.tag_keys():
            raise AlreadyExists(f"Tag key {key} already exists; use `icemesh tags update` to change its values")
        self._call("create_lf_tag", TagKey=key, TagValues=list(values))

    def update_tag_key(self, key: str, values: list[str], assignments: Assignments | None = None) -> None:
        current = self.tag_keys().get(key)
        if current is None:
            raise BadRequest(f"Tag key {key} does not exist")
        used = {v for (_n, _t, _c, k), v in (assignments if assignments is not None else self.assignments()).items() if k == key}
        dropped = sorted(used - set(values))
        if dropped:
            raise BadRequest(f"Tag {key} values {dropped} are still assigned; unassign them first")
        add = [v for v in values if v not in current.values]
        delete = [v for v in current.values if v not in values]
        if add or delete:
            self._call("update_lf_tag", TagKey=key, **({"TagValuesToAdd": add} if add else {}),
                       **({"TagValuesToDelete": delete} if delete else {}))

    def delete_tag_key(self, key: str, assignments: Assignments | None = None) -> None:
        if key not in self.tag_keys():
            raise BadRequest(f"Tag key {key} does not exist")
        if any(k == key for (_n, _t, _c, k) in (assignments if assignments is not None else self.assignments())):
            raise BadRequest(f"Tag {key} is still assigned to resources; unassign it first")
        self._call("delete_lf_tag", TagKey=key)

    # -- assignments -------------------------------------------------------------------------------

    @staticmethod
    def _resource(ns: NamespaceRef, table: str, column: str) -> dict:
        db = database_name(ns)
        if column:
            return {"TableWithColumns": {"DatabaseName": db, "Name": table, "ColumnNames": [column]}}
        if table:
            return {"Table": {"DatabaseName": db, "Name": table}}
        return {"Database": {"Name": db}}

    def _resource_tags(self, resource: dict) -> dict:
        """GetResourceLFTags, showing only tags assigned to the resource itself (icemesh computes inheritance).

        moto answers 500 (an HTML page, no AWS error code) for a database or table that never had a tag;
        that, and only that, reads as "no tags". A real AWS error carries a code and is raised.
        """
        from botocore.exceptions import ClientError

        try:
            return self._call("get_resource_lf_tags", self._lf_reads, Resource=resource, ShowAssignedLFTags=True)
        except AwsError as exc:
            cause = exc.__context__
            if isinstance(cause, ClientError) and error_code(cause) == "500":
                return {}
            # Anything else (throttling...) gets the retrying client's patience before it counts.
            return self._call("get_resource_lf_tags", Resource=resource, ShowAssignedLFTags=True)

    @staticmethod
    def _values(tags: list[dict]) -> dict[str, str]:
        return {t["TagKey"]: t["TagValues"][0] for t in tags or [] if t.get("TagValues")}

    def _assigned(self, ns: NamespaceRef, table: str, column: str) -> dict[str, str]:
        found = self._resource_tags(self._resource(ns, table, column))
        if column:
            return next((self._values(c.get("LFTags")) for c in found.get("LFTagsOnColumns", []) if c["Name"] == column), {})
        if table:
            return self._values(found.get("LFTagsOnTable"))
        return self._values(found.get("LFTagOnDatabase"))

    def table_assignments(self, db: str, table: str, columns: list[str]) -> Assignments:
        ns = NamespaceRef((db,))
        found: Assignments = {}
        for key, value in self._values(self._resource_tags({"Table": {"DatabaseName": db, "Name": table}})
                                       .get("LFTagsOnTable")).items():
            found[(ns, table, "", key)] = value
        if columns:
            resource = {"TableWithColumns": {"DatabaseName": db, "Name": table, "ColumnNames": columns}}
            for column in self._resource_tags(resource).get("LFTagsOnColumns", []):
                for key, value in self._values(column.get("LFTags")).items():
                    found[(ns, table, column["Name"], key)] = value
        return found

    def assignments(self) -> Assignments:
        """Every tag assigned to a Glue database, Iceberg table or column. Lake Formation cannot search them
        (moto lacks SearchTablesByLFTags), so every resource is asked, several at a time."""
        from concurrent.futures import ThreadPoolExecutor

        def database_tags(db: str) -> Assignments:
            tags = self._resource_tags({"Database": {"Name": db}}).get("LFTagOnDatabase")
            return {(NamespaceRef((db,)), "", "", key): value for key, value in self._values(tags).items()}

        jobs = []
        with ThreadPoolExecutor(max_workers=8) as pool:
            for database in self.glue.databases():
                db = database["Name"]
                jobs.append(pool.submit(database_tags, db))
                for table in self.glue.tables(db):
                    if is_iceberg(table):
                        jobs.append(pool.submit(self.table_assignments, db, table["Name"], current_columns(table)))
            found: Assignments = {}
            for job in jobs:
                found.update(job.result())
        return found

    def assign(self, ns: NamespaceRef, table: str, column: str, key: str, value: str) -> None:
        """Set key=value on the resource (replacing the key's earlier value). All the resource's tags are sent:
        Lake Formation adds them, moto replaces the list, and both end with the same tags."""
        tags = self._assigned(ns, table, column)
        tags[key] = value
        result = self._call("add_lf_tags_to_resource", Resource=self._resource(ns, table, column),
                            LFTags=[{"TagKey": k, "TagValues": [v]} for k, v in sorted(tags.items())])
        if result.get("Failures"):
            error = result["Failures"][0].get("Error", {})
            raise BadRequest(f"Lake Formation refused tag {key}={value}: {error.get('ErrorMessage') or error}")

    def unassign(self, ns: NamespaceRef, table: str, column: str, key: str) -> bool:
        value = self._assigned(ns, table, column).get(key)
        if value is None:
            return False
        self._call("remove_lf_tags_from_resource", Resource=self._resource(ns, table, column),
                   LFTags=[{"TagKey": key, "TagValues": [value]}])
        return True

    # -- grants ------------------------------------------------------------------------------------

    def grants(self) -> list[Grant]:
        """icemesh's grants in Lake Formation (ListPermissions, unfiltered: filters are unreliable in moto).

        A namespace or tag grant is two LF grants (databases, tables); a permission counts only when Lake
        Formation grants all it implies there (DESCRIBE, ALTER, DROP: on both), so a half-revoked grant
        reads as revoked.
        """
        found: dict[int, tuple[Grant, dict[frozenset, frozenset[Permission]]]] = {}
        token = None
        while True:
            page = self._call("list_permissions", **({"NextToken": token} if token else {}))
            for entry in page.get("PrincipalResourcePermissions", []):
                grantee = self.mapping.grantee(entry.get("Principal", {}).get("DataLakePrincipalIdentifier", ""))
                target = _target(entry.get("Resource", {}))
                if grantee is None or target is None:
                    continue
                fields, kind = target
                permissions = _from_lf(entry.get("Permissions", []), kind)
                grant = Grant(0, grantee, frozenset(), **fields)
                gid = grant_id(grant)
                facets = found.setdefault(gid, (replace(grant, id=gid), {}))[1]
                facets[kind] = facets.get(kind, frozenset()) | permissions
            token = page.get("NextToken")
            if not token:
                break
        grants = []
        for grant, facets in found.values():
            held = frozenset().union(*facets.values())
            if grant.namespace is not None or grant.expression is not None:
                held = frozenset(p for p in held if all(p in facets.get(kind, frozenset())
                                                        for kind in ("Database", "Table") if p in LAKE_FORMATION[kind]))
            if held:
                grants.append(replace(grant, permissions=held))
        return sorted(grants, key=lambda g: (str(g.grantee), g.target(), g.id))

    def add_grant(self, grant: Grant) -> int:
        principal = {"DataLakePrincipalIdentifier": self.mapping.identifier(grant.grantee)}
        for resource, permissions in lf_entries(grant):
            self._call("grant_permissions", Principal=principal, Resource=resource, Permissions=permissions)
        return grant_id(grant)

    def revoke(self, grant: Grant, permissions: frozenset[Permission] | None = None) -> None:
        """Take `permissions` (default: all of the grant's) away from the grant's grantee on its target.

        A grant can be several Lake Formation entries (a namespace's database and its tables): each call is
        retried, and when one still fails the entries already revoked are granted back, so the grant is never
        left half in place (AWS engines would read the half that stayed)."""
        principal = {"DataLakePrincipalIdentifier": self.mapping.identifier(grant.grantee)}
        revoked: list[tuple[dict, list[str]]] = []
        for resource, names in lf_entries(replace(grant, permissions=permissions or grant.permissions)):
            try:
                self._retried("revoke_permissions", Principal=principal, Resource=resource, Permissions=names)
            except AwsError as exc:
                if "not found" in str(exc).lower() or "InvalidInput" in str(exc):
                    continue  # revoking what is not granted is already done
                for done, done_names in reversed(revoked):
                    try:
                        self._retried("grant_permissions", Principal=principal, Resource=done, Permissions=done_names)
                    except AwsError:
                        log.exception("could not grant back %s after a failed revoke of %s", done, grant)
                raise AwsError(f"Revoking {grant} failed ({exc}); nothing of it was revoked: run the revoke again") from None
            revoked.append((resource, names))

    def _retried(self, operation: str, attempts: int = 3, **params: Any) -> dict:
        for attempt in range(attempts):
            try:
                return self._call(operation, **params)
            except AwsError as exc:
                if attempt == attempts - 1 or "not found" in str(exc).lower() or "InvalidInput" in str(exc):
                    raise
                time.sleep(0.2 * 2 ** attempt)
        raise AssertionError("unreachable")

    def revoke_grantee(self, grantee: Grantee) -> None:
        for grant in self.grants():
            if grant.grantee == grantee:
                self.revoke(grant)

    def find_grant(self, grant_id_: int) -> Grant | None:
        return next((g for g in self.grants() if g.id == grant_id_), None)

    def move_table(self, source: TableRef, destination: TableRef, columns: list[str]) -> None:
        """A renamed table keeps its tags (table and columns) and its table grants."""
        for (_ns, _t, column, key), value in self.table_assignments(database_name(source.namespace), source.name,
                                                                      columns).items():
            self.assign(destination.namespace, destination.name, column, key, value)
        for grant in self.grants():
            if grant.table == source:
                self.add_grant(replace(grant, table=destination))
                self.revoke(grant)

    # -- policy files ------------------------------------------------------------------------------

    def apply(self, changes: list[Change]) -> None:
        """Apply the tag, namespace, assignment and grant changes of a policy plan, in plan order."""
        done = 0
        try:
            for ch in changes:
                self._apply_one(ch)
                done += 1
        except Exception as exc:
            message = getattr(exc, "message", None) or str(exc)
            raise AwsError(f"Applied {done} of {len(changes)} change(s); `{changes[done].describe()}` failed: {message}. "
                           "Fix the cause and apply again (applied changes are kept)") from None

    def _apply_one(self, ch: Change) -> None:
        match ch:
            case TagKeyChange(op="add", key=key, values=values):
                self._call("create_lf_tag", TagKey=key, TagValues=list(values))
            case TagKeyChange(op="change", key=key, values=values):
                self.update_tag_key(key, list(values), assignments={})
            case TagKeyChange(op="remove", key=key):
                self._call("delete_lf_tag", TagKey=key)
            case NamespaceChange(op="add", namespace=ns, owner=owner):
                self.glue.create_database(database_name(ns), {}, owner)
            case NamespaceChange(namespace=ns, owner=owner):
                self.glue.set_database_owner(database_name(ns), owner)
            case AssignmentChange(op="remove", assignment=a):
                self.unassign(a.namespace, a.table, a.column, a.key)
            case AssignmentChange(assignment=a):
                self.assign(a.namespace, a.table, a.column, a.key, a.value)
            case GrantAdded(grant=grant):
                self.add_grant(grant)
            case GrantRemoved(grant_id=grant_id):
                grant = self.find_grant(grant_id)
                if grant is not None:
                    self.revoke(grant)
            case _:
                raise BadRequest(f"{ch.kind} changes are not stored in Lake Formation")

    # -- reading it all ----------------------------------------------------------------------------

    def policy(self, owners: dict, roles: dict[str, frozenset[str]]) -> Policy:
        """A Policy for the pure evaluator from what Lake Formation and Glue hold now."""
        return self.policy_from(self.tag_keys(), self.assignments(), tuple(self.grants()), owners, roles)

    @staticmethod
    def policy_from(tag_keys: dict[str, TagKey], assignments: Assignments, grants: tuple[Grant, ...], owners: dict,
                    roles: dict[str, frozenset[str]], version: int = 0,
                    restricted: frozenset[TableRef] = frozenset()) -> Policy:
        return Policy.of(assignments, tag_keys=tag_keys, grants=grants, roles=roles, owners=owners, version=version,
                         restricted=restricted)

    def table_columns(self, table: TableRef) -> list[str] | None:
        if len(table.namespace.levels) != 1:
            return None
        found = self.glue.table(table.namespace.levels[0], table.name)
        return current_columns(found) if found is not None and is_iceberg(found) else None

