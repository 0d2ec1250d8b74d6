"""Governance as code: a YAML file of tags, roles, principals, namespaces, dbt projects, tag assignments and grants.

Pure: `parse` reads the document (keeping line numbers for error messages), `plan` compares it with
the current state and lists the changes. Each section present in the file is authoritative (what it
does not list is removed), except `assignments`, which manages only the resources it names (tags that
dbt models set on their own tables stay), and `projects`, which binds the projects it names (a binding made
by a project's first publish stays until a file names that project); a section left out is not managed. `admin` and its ADMIN
grant are never touched. Applying the plan is the caller's job, all or nothing.

    tags:        {sensitivity: [public, internal, confidential]}
    roles:       [analysts]
    principals:  {svc_sales: {roles: [analysts]}}
    namespaces:  {sales: {owner: svc_sales}}
    projects:    {sales: {namespace: sales, owner: svc_sales}}   # which domain publishes dbt project `sales`
    assignments: [{namespace: sales, tags: {sensitivity: internal}},
                  {table: sales.customers, column: email, tags: {sensitivity: confidential}}]
    grants:      [{to: svc_finance, permissions: [SELECT, DESCRIBE],
                   tags: {domain: [sales], sensitivity: [public, internal]}},
                  {role: eu_analysts, permissions: [SELECT], tags: {domain: sales},   # a data filter:
                   rows: "region = 'EU'", masks: {email: sha256}, mask_tags: {pii=yes: null}}]
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import yaml

from icemesh.governance.changes import (
    Assignment,
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
from icemesh.governance.data_filters import ColumnMask, DataFilter, mask_action
from icemesh.governance.permissions import Permission, parse_permissions
from icemesh.governance.policy import PRINCIPAL, ROLE, Grant, Grantee
from icemesh.governance.resources import NamespaceRef, TableRef, parse_namespace, parse_table
from icemesh.governance.tags import TagExpression, check_token

PROTECTED_PRINCIPAL = "admin"
RESERVED_PRINCIPAL = "anonymous"  # the audit log's name for requests without a valid token
SECTIONS = ("tags", "roles", "principals", "namespaces", "projects", "assignments", "grants")


class PolicyError(ValueError):
    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """Records the line of every mapping as `__line__`, and of each of its keys in `__keys__`, so errors can
    point at the offending key. On libyaml when PyYAML has it: the pure-Python parser takes ~15 s for a
    policy of 10,000 grants and 10,000 assignments."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    mapping["__keys__"] = {str(k.value): k.start_mark.line + 1 for k, _v in node.value if isinstance(k, yaml.ScalarNode)}
    return mapping


META = ("__line__", "__keys__")
ALLOWED_KEYS = {
    "principal": ("roles",),
    "namespace": ("owner",),
    "project": ("namespace", "owner"),
    "assignment": ("namespace", "table", "column", "tags"),
    "grant": ("to", "role", "permissions", "catalog", "namespace", "table", "columns", "tags", "rows", "masks",
              "mask_tags"),
}


def _entries(mapping: dict):
    """The mapping's own entries, without the line bookkeeping."""
    return [(k, v) for k, v in mapping.items() if k not in META]


def _at(mapping: Any, key: Any = None) -> int | None:
    """The line of `key` in `mapping` (of the mapping itself without a key, or when the key has no line)."""
    if not isinstance(mapping, dict):
        return None
    if key is not None and str(key) in mapping.get("__keys__", {}):
        return mapping["__keys__"][str(key)]
    return mapping.get("__line__")


def did_you_mean(word: Any, candidates) -> str:
    """` (did you mean 'x'?)` for the closest candidate, or nothing."""
    near = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" (did you mean {near[0]!r}?)" if near else ""


def _check_keys(item: dict, kind: str, line: int | None) -> None:
    """An unknown key (a typo such as `permision:` or `ownr:`) is an error, never silently ignored."""
    allowed = ALLOWED_KEYS[kind]
    for key, _value in _entries(item):
        if key not in allowed:
            raise PolicyError(_at(item, key) or line, f"{kind}: unknown key {key!r}{did_you_mean(key, allowed)}; "
                                                      f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} takes {', '.join(allowed)}")


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass
class PolicyDocument:
    sections: set[str] = field(default_factory=set)
    tags: dict[str, tuple[str, ...]] = field(default_factory=dict)
    roles: set[str] = field(default_factory=set)
    principals: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> roles
    namespaces: dict[NamespaceRef, str | None] = field(default_factory=dict)  # ns -> owner
    projects: dict[str, tuple[NamespaceRef, str | None]] = field(default_factory=dict)  # dbt project -> (ns, owner)
    assignments: dict[tuple[NamespaceRef, str, str, str], tuple[str, int]] = field(default_factory=dict)
    grants: list[tuple[Grant, int]] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)
    grant_lines: list[dict[str, int]] = field(default_factory=list)  # per grant: its keys' lines (tags.<key> too)


@dataclass
class CurrentState:
    """What the catalog holds now; built by the caller from its storage."""

    tags: dict[str, tuple[str, ...]]
    roles: set[str]
    principals: dict[str, tuple[str, ...]]
    namespaces: dict[NamespaceRef, str | None]
    tables: dict[TableRef, list[str]]  # existing tables and their columns
    assignments: dict[tuple[NamespaceRef, str, str, str], str]
    grants: list[Grant]
    projects: dict[str, tuple[NamespaceRef, str]] = field(default_factory=dict)  # dbt project -> (ns, owner)
    # A grant as the store will hold it (Lake Formation: a column SELECT is described too); ValueError if it cannot.
    canonical: Callable[[Grant], Grant] = field(default=lambda grant: grant)
    # The columns a row filter reads; ValueError with a one-line reason when it is not an Iceberg expression.
    row_filter_columns: Callable[[str], set[str]] = field(default=lambda text: set())


def parse(text: str) -> PolicyDocument:
    """The document; a policy written as JSON (YAML's subset, as exported by machines) is read by the json
    module, ~50x faster than YAML at 10,000 grants, and read again as YAML only to give an error its line."""
    raw = _as_json(text)
    if raw is not None:
        try:
            return _parse(raw)
        except PolicyError:
            pass  # the same error again, with its line
    try:
        raw = yaml.load(text, Loader=_LineLoader) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise PolicyError(mark.line + 1 if mark else None, f"not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return _parse(raw)


def _as_json(text: str) -> dict | None:
    """A JSON object document, or None (YAML, or JSON that YAML would read differently: left to YAML)."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        raw = json.loads(text, object_pairs_hook=_json_object)
    except (ValueError, RecursionError):
        return None
    return raw if isinstance(raw, dict) else None


def _json_object(pairs: list[tuple[str, Any]]) -> dict:
    if any(k in META for k, _v in pairs):
        raise ValueError("a reserved key")  # left to the YAML path, which keeps its own
    return dict(pairs)


def _parse(raw: Any) -> PolicyDocument:
    if not isinstance(raw, dict):
        raise PolicyError(1, "the policy file must be a mapping with sections " + ", ".join(SECTIONS))
    doc = PolicyDocument()
    for key, _value in _entries(raw):
        if key not in SECTIONS:
            raise PolicyError(_at(raw, key), f"unknown section {key!r}{did_you_mean(key, SECTIONS)}; "
                                             f"the sections are {', '.join(SECTIONS)}")
        doc.sections.add(key)

    tags = raw.get("tags") or {}
    if not isinstance(tags, dict):
        raise PolicyError(_at(raw, "tags"), "tags: map each tag key to its list of allowed values")
    for key, values in _entries(tags):
        _token(key, "tag key", _at(tags, key))
        if not isinstance(values, list) or not values:
            raise PolicyError(_at(tags, key), f"tag {key}: give a non-empty list of allowed values")
        doc.tags[key] = tuple(_token(str(v), "tag value", _at(tags, key)) for v in values)

    roles = raw.get("roles") or []
    if not isinstance(roles, list):
        raise PolicyError(_at(raw, "roles"), "roles: give a list of role names")
    doc.roles = {_token(str(r), "role name", _at(raw, "roles")) for r in roles}

    principals = raw.get("principals") or {}
    if not isinstance(principals, dict):
        raise PolicyError(_at(raw, "principals"), "principals: map each principal to {roles: [...]}")
    for name, spec in _entries(principals):
        spec = spec or {}
        p_line = _at(principals, name)
        _token(name, "principal name", p_line)
        if name == RESERVED_PRINCIPAL:
            raise PolicyError(p_line, f"{name!r} is reserved for unauthenticated requests: choose another principal name")
        if not isinstance(spec, dict):
            raise PolicyError(p_line, f"principal {name}: give {{roles: [...]}} or {{}}")
        _check_keys(spec, "principal", p_line)
        doc.principals[name] = tuple(sorted(str(r) for r in (spec.get("roles") or [])))
        doc.lines[f"principal {name}"] = _at(spec, "roles") if "roles" in spec else p_line

    namespaces = raw.get("namespaces") or {}
    if not isinstance(namespaces, dict):
        raise PolicyError(_at(raw, "namespaces"), "namespaces: map each namespace to {owner: PRINCIPAL}")
    for name, spec in _entries(namespaces):
        n_line = _at(namespaces, name)
        ns = _namespace(str(name), n_line)
        if isinstance(spec, dict):
            _check_keys(spec, "namespace", n_line)
        elif spec is not None:
            raise PolicyError(n_line, f"namespace {ns}: give {{owner: PRINCIPAL}} or {{}}")
        doc.namespaces[ns] = (spec or {}).get("owner")
        doc.lines[f"namespace {ns}"] = _at(spec, "owner") if spec and "owner" in spec else n_line

    projects = raw.get("projects") or {}
    if not isinstance(projects, dict):
        raise PolicyError(_at(raw, "projects"), "projects: map each dbt project to {namespace: NS, owner: PRINCIPAL}")
    for name, spec in _entries(projects):
        j_line = _at(projects, name)
        _token(str(name), "dbt project name", j_line)
        if isinstance(spec, dict):
            _check_keys(spec, "project", j_line)
        elif spec is not None:
            raise PolicyError(j_line, f"project {name}: give {{namespace: NS, owner: PRINCIPAL}} or {{}}")
        spec = spec or {}
        ns = _namespace(str(spec.get("namespace") or name), _at(spec, "namespace") if "namespace" in spec else j_line)
        doc.projects[str(name)] = (ns, spec.get("owner"))
        doc.lines[f"project {name}"] = j_line
        doc.lines[f"project {name} owner"] = _at(spec, "owner") if "owner" in spec else j_line
        doc.lines[f"project {name} namespace"] = _at(spec, "namespace") if "namespace" in spec else j_line

    for item in raw.get("assignments") or []:
        a_line = _at(item) if isinstance(item, dict) else _at(raw, "assignments")
        if not isinstance(item, dict) or not isinstance(item.get("tags"), dict):
            if isinstance(item, dict):
                _check_keys(item, "assignment", a_line)
            raise PolicyError(a_line, "an assignment needs namespace: or table: (and column:), and tags: {key: value}")
        _check_keys(item, "assignment", a_line)
        if item.get("table"):
            table = _table(str(item["table"]), _at(item, "table"))
            ns, tbl, col = table.namespace, table.name, str(item.get("column") or "")
            where = _at(item, "column") if col else _at(item, "table")
        elif item.get("namespace"):
            if item.get("column"):
                raise PolicyError(_at(item, "column"), "column: needs table:")
            ns, tbl, col = _namespace(str(item["namespace"]), _at(item, "namespace")), "", ""
            where = _at(item, "namespace")
        else:
            raise PolicyError(a_line, "an assignment needs namespace: or table:")
        doc.lines[f"resource {Assignment(ns, tbl, col, '', '').resource()}"] = where
        for key, value in _entries(item["tags"]):
            slot = (ns, tbl, col, key)
            if slot in doc.assignments:
                raise PolicyError(_at(item["tags"], key), f"{Assignment(ns, tbl, col, key, '').resource()} gets tag {key} twice")
            doc.assignments[slot] = (str(value), _at(item["tags"], key))

    for item in raw.get("grants") or []:
        g_line = _at(item) if isinstance(item, dict) else _at(raw, "grants")
        if not isinstance(item, dict):
            raise PolicyError(g_line, "a grant is a mapping: {to: P | role: R, permissions: [...], <target>}")
        _check_keys(item, "grant", g_line)
        doc.grants.append((_grant(item, g_line), g_line))
        lines = {key: _at(item, key) for key, _v in _entries(item)}
        if isinstance(item.get("tags"), dict):
            lines.update({f"tags.{k}": _at(item["tags"], k) for k, _v in _entries(item["tags"])})
        doc.grant_lines.append(lines)
    return doc


def _token(value: str, what: str, line: int | None) -> str:
    try:
        return check_token(value, what)
    except ValueError as exc:
        raise PolicyError(line, str(exc)) from None


def _namespace(text: str, line: int | None) -> NamespaceRef:
    try:
        return parse_namespace(text)
    except ValueError as exc:
        raise PolicyError(line, str(exc)) from None


def _table(text: str, line: int | None) -> TableRef:
    try:
        return parse_table(text)
    except ValueError as exc:
        raise PolicyError(line, str(exc)) from None


def _grant(item: dict, line: int | None) -> Grant:
    grant = _target_grant(item, line)
    limited = _data_filter(item, line)
    if limited is None:
        return grant
    if grant.permissions - {Permission.SELECT, Permission.DESCRIBE} or Permission.SELECT not in grant.permissions:
        raise PolicyError(_at(item, "permissions") or line, "rows: and masks: limit SELECT: give this grant "
                          "permissions [SELECT] or [SELECT, DESCRIBE] and grant the others separately")
    if grant.catalog:
        raise PolicyError(line, "rows: and masks: apply to tables: use table:, namespace: or tags:")
    return replace(grant, data_filter=limited)


def _data_filter(item: dict, line: int | None) -> DataFilter | None:
    """A grant's `rows:` (an Iceberg expression), `masks: {column: action}` and `mask_tags: {key=value: action}`."""
    rows, masks, tag_masks = item.get("rows"), item.get("masks") or {}, item.get("mask_tags") or {}
    if rows is None and not masks and not tag_masks:
        return None
    if rows is not None and (not isinstance(rows, str) or not rows.strip()):
        raise PolicyError(_at(item, "rows") or line, "rows: an Iceberg expression in quotes, e.g. \"region = 'EU'\"")
    found = []
    for key, kind in (("masks", "column"), ("mask_tags", "tag")):
        mapping = item.get(key) or {}
        at = _at(item, key) or line
        if not isinstance(mapping, dict):
            example = "{email: sha256}" if kind == "column" else "{pii=yes: null}"
            raise PolicyError(at, f"{key}: map each {kind} to a mask, e.g. {example}")
        for target, action in _entries(mapping):
            try:
                spec_action = mask_action(str(action))
            except ValueError as exc:
                raise PolicyError(at, str(exc)) from None
            if kind == "column":
                found.append(ColumnMask(spec_action, column=str(target)))
                continue
            tag_key, eq, value = str(target).partition("=")
            if not eq or not tag_key or not value:
                raise PolicyError(at, f"mask_tags: {target!r} is not KEY=VALUE, e.g. pii=yes")
            found.append(ColumnMask(spec_action, tag_key=tag_key, tag_value=value))
    return DataFilter(rows, tuple(sorted(set(found))))


def _target_grant(item: dict, line: int | None) -> Grant:
    to, role = item.get("to"), item.get("role")
    if bool(to) == bool(role):
        raise PolicyError(line, "a grant needs exactly one of to: PRINCIPAL or role: ROLE")
    grantee = Grantee(PRINCIPAL, str(to)) if to else Grantee(ROLE, str(role))
    try:
        permissions = parse_permissions(item.get("permissions") or [])
    except ValueError as exc:
        raise PolicyError(_at(item, "permissions") or line, str(exc)) from None
    targets = [k for k in ("catalog", "namespace", "table", "tags") if item.get(k)]
    if len(targets) != 1:
        raise PolicyError(line, "a grant needs exactly one target: catalog: true, namespace:, table: or tags:")
    target = targets[0]
    if target == "catalog":
        return Grant(0, grantee, permissions, catalog=True)
    if Permission.ADMIN in permissions:
        raise PolicyError(line, "ADMIN is granted on the catalog only")
    if target == "namespace":
        return Grant(0, grantee, permissions, namespace=_namespace(str(item["namespace"]), line))
    if target == "table":
        columns = item.get("columns")
        return Grant(0, grantee, permissions, table=_table(str(item["table"]), line),
                     columns=frozenset(str(c) for c in columns) if columns else None)
    tags = item["tags"]
    if not isinstance(tags, dict):
        raise PolicyError(line, "tags: map each key to a value or list of values")
    clauses = {k: [str(v) for v in (vals if isinstance(vals, list) else [vals])] for k, vals in _entries(tags)}
    return Grant(0, grantee, permissions, expression=TagExpression.from_dict(clauses))


def _check_data_filter(grant: Grant, current: CurrentState, tags: dict[str, tuple[str, ...]], lines: dict[str, int],
                       line: int | None) -> None:
    """The row filter parses and reads only the table's columns, masked columns exist, mask tags are declared."""
    limited = grant.data_filter
    columns = current.tables[grant.table] if grant.table is not None else None
    if limited.rows is not None:
        try:
            used = current.row_filter_columns(limited.rows)
        except ValueError as exc:
            raise PolicyError(lines.get("rows", line), str(exc)) from None
        unknown = sorted(used - set(columns)) if columns is not None else []
        if unknown:
            raise PolicyError(lines.get("rows", line), f"the row filter reads {', '.join(unknown)}, which "
                              f"{grant.table} does not have: its columns are {', '.join(columns)}")
    for mask in limited.masks:
        if mask.column is not None and columns is not None and mask.column not in columns:
            raise PolicyError(lines.get("masks", line), f"table {grant.table} has no column {mask.column!r}: its "
                              f"columns are {', '.join(columns)}")
        if mask.tag_key is not None:
            _check_tag(mask.tag_key, [mask.tag_value], tags, lines.get("mask_tags", line), "mask_tags: ")


def _check_tag(key: str, values, tags: dict[str, tuple[str, ...]], line: int | None, context: str) -> None:
    if key not in tags:
        raise PolicyError(line, f"{context}unknown tag key {key!r}{did_you_mean(key, tags)}; declare it under tags:")
    for value in values:
        if value not in tags[key]:
            raise PolicyError(line, f"{context}tag {key} has no value {value!r}{did_you_mean(value, tags[key])}; "
                                    f"allowed values are {', '.join(tags[key])}")


def _missing_namespace(ns: NamespaceRef, namespaces, principals) -> str:
    owner = f"svc_{ns.levels[0]}"
    example = f"{{owner: {owner}}}" if owner in principals else "{owner: PRINCIPAL}"
    return (f"namespace {ns} does not exist{did_you_mean(ns, namespaces)}; declare it under namespaces: "
            f"({ns}: {example}) or create it with icemesh namespaces create {ns}")


def _missing_table(table: TableRef) -> str:
    return (f"table {table} does not exist; publish it first (a dbt model with materialized='iceberg', or CREATE "
            "TABLE from an engine), then apply again")


def _grant_key(grant: Grant) -> tuple:
    return (grant.grantee, grant.permissions, grant.catalog, grant.namespace, grant.table, grant.columns, grant.expression,
            grant.data_filter)


def plan(current: CurrentState, doc: PolicyDocument) -> list[Change]:
    """The changes that make the catalog match the document; raises PolicyError (with a line) when it cannot."""
    tags = doc.tags if "tags" in doc.sections else current.tags
    roles = doc.roles if "roles" in doc.sections else current.roles
    principals = dict(doc.principals) if "principals" in doc.sections else dict(current.principals)
    principals.setdefault(PROTECTED_PRINCIPAL, current.principals.get(PROTECTED_PRINCIPAL, ()))
    namespaces = set(current.namespaces) | set(doc.namespaces)

    for name, p_roles in doc.principals.items():
        for role in p_roles:
            if role not in roles:
                raise PolicyError(doc.lines.get(f"principal {name}"), f"principal {name}: unknown role {role!r}"
                                  f"{did_you_mean(role, roles)}; declare it under roles:")
    for ns, owner in doc.namespaces.items():
        if owner and owner not in principals:
            raise PolicyError(doc.lines.get(f"namespace {ns}"), f"namespace {ns}: unknown owner {owner!r}"
                              f"{did_you_mean(owner, principals)}; declare it under principals:")
    owners = {ns: (doc.namespaces.get(ns) or current.namespaces.get(ns)) for ns in namespaces}
    bindings: dict[str, tuple[NamespaceRef, str]] = {}
    for name, (ns, owner) in doc.projects.items():
        if ns not in namespaces:
            raise PolicyError(doc.lines.get(f"project {name} namespace"), f"project {name}: "
                              + _missing_namespace(ns, namespaces, principals))
        owner = owner or owners.get(ns)
        if not owner:
            raise PolicyError(doc.lines.get(f"project {name}"), f"project {name}: namespace {ns} has no owner; "
                              "name the principal that publishes it with owner:")
        if owner not in principals:
            raise PolicyError(doc.lines.get(f"project {name} owner"), f"project {name}: unknown owner {owner!r}"
                              f"{did_you_mean(owner, principals)}; declare it under principals:")
        bindings[name] = (ns, owner)
    for (ns, tbl, col, key), (value, line) in doc.assignments.items():
        resource = Assignment(ns, tbl, col, key, value).resource()
        where = doc.lines.get(f"resource {Assignment(ns, tbl, col, '', '').resource()}", line)
        _check_tag(key, [value], tags, line, f"{resource}: ")
        if ns not in namespaces:
            raise PolicyError(where, _missing_namespace(ns, namespaces, principals))
        if tbl:
            table = TableRef(ns, tbl)
            if table not in current.tables:
                raise PolicyError(where, _missing_table(table))
            if col and col not in current.tables[table]:
                raise PolicyError(where, f"table {table} has no column {col!r}{did_you_mean(col, current.tables[table])}")
    for index, (grant, line) in enumerate(doc.grants):
        lines = doc.grant_lines[index] if index < len(doc.grant_lines) else {}
        if grant.grantee.kind == PRINCIPAL and grant.grantee.name not in principals:
            raise PolicyError(lines.get("to", line), f"unknown principal {grant.grantee.name!r}"
                              f"{did_you_mean(grant.grantee.name, principals)}; declare it under principals:")
        if grant.grantee.kind == ROLE and grant.grantee.name not in roles:
            raise PolicyError(lines.get("role", line), f"unknown role {grant.grantee.name!r}"
                              f"{did_you_mean(grant.grantee.name, roles)}; declare it under roles:")
        if grant.expression is not None:
            for key, values in grant.expression.clauses:
                _check_tag(key, values, tags, lines.get(f"tags.{key}", lines.get("tags", line)), "grant: ")
        if grant.namespace is not None and grant.namespace not in namespaces:
            raise PolicyError(lines.get("namespace", line), _missing_namespace(grant.namespace, namespaces, principals))
        if grant.table is not None and grant.table not in current.tables:
            raise PolicyError(lines.get("table", line), _missing_table(grant.table))
        if grant.data_filter is not None:
            _check_data_filter(grant, current, tags, lines, line)

    changes: list[Change] = []
    if "tags" in doc.sections:
        for key, values in doc.tags.items():
            if key not in current.tags:
                changes.append(TagKeyChange("add", key, tuple(values)))
            elif set(current.tags[key]) != set(values):  # value order carries no meaning (Lake Formation keeps none)
                changes.append(TagKeyChange("change", key, tuple(values)))
        used = {key for (_n, _t, _c, key) in (doc.assignments if "assignments" in doc.sections else current.assignments)}
        for key in current.tags:
            if key not in doc.tags:
                if key in used:
                    raise PolicyError(None, f"tag {key} is still assigned but not declared under tags:")
                changes.append(TagKeyChange("remove", key))
    if "roles" in doc.sections:
        changes += [RoleChange("add", r) for r in sorted(doc.roles - current.roles)]
    if "principals" in doc.sections:
        for name, p_roles in doc.principals.items():
            if name not in current.principals:
                changes.append(PrincipalChange("add", name, tuple(p_roles)))
            elif tuple(sorted(current.principals[name])) != tuple(sorted(p_roles)):
                changes.append(PrincipalChange("change", name, tuple(p_roles)))
        for name in sorted(current.principals):
            if name not in doc.principals and name != PROTECTED_PRINCIPAL:
                changes.append(PrincipalChange("remove", name))
    for ns, owner in doc.namespaces.items():
        if ns not in current.namespaces:
            changes.append(NamespaceChange("add", ns, owner))
        elif owner and current.namespaces[ns] != owner:
            changes.append(NamespaceChange("change", ns, owner))
    if "projects" in doc.sections:
        for name, (ns, owner) in sorted(bindings.items()):
            if current.projects.get(name) != (ns, owner):
                op = "change" if name in current.projects else "add"
                changes.append(ProjectBinding(op, name, ns, owner))
    if "assignments" in doc.sections:
        for (ns, tbl, col, key), (value, _line) in doc.assignments.items():
            if current.assignments.get((ns, tbl, col, key)) != value:
                op = "change" if (ns, tbl, col, key) in current.assignments else "add"
                changes.append(AssignmentChange(op, Assignment(ns, tbl, col, key, value)))
        # Only resources the file names are managed: tags set elsewhere (e.g. by dbt models) stay.
        managed = {(ns, tbl, col) for (ns, tbl, col, _key) in doc.assignments}
        for (ns, tbl, col, key), value in sorted(current.assignments.items(), key=lambda kv: str(kv[0])):
            if (ns, tbl, col) in managed and (ns, tbl, col, key) not in doc.assignments:
                changes.append(AssignmentChange("remove", Assignment(ns, tbl, col, key, value)))
    if "roles" in doc.sections:
        changes += [RoleChange("remove", r) for r in sorted(current.roles - doc.roles)]
    if "grants" in doc.sections:
        held: list[Grant] = []
        for index, (grant, line) in enumerate(doc.grants):
            try:
                held.append(current.canonical(grant))
            except ValueError as exc:
                lines = doc.grant_lines[index] if index < len(doc.grant_lines) else {}
                raise PolicyError(lines.get("permissions", line), f"grant: {exc}") from None
        wanted = {_grant_key(g) for g in held}
        have = {_grant_key(g): g for g in current.grants}
        for key, grant in have.items():  # removals first: they name grants by id
            protected = grant.catalog and grant.grantee == Grantee(PRINCIPAL, PROTECTED_PRINCIPAL) and \
                Permission.ADMIN in grant.permissions
            if key not in wanted and not protected:
                changes.append(GrantRemoved(grant))
        for grant in held:
            if _grant_key(grant) not in have:
                changes.append(GrantAdded(grant))
    return changes
