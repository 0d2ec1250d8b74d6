"""Property tests for the governance evaluator against a brute-force reference written from the semantics.

The reference below is deliberately naive and independent of icemesh/governance/evaluator.py: it recomputes
effective tags by walking every namespace level from the root, enumerates every grant for every
(permission, column) pair, and never caches or short-circuits. Hypothesis generates random policies
(tag vocabulary, namespace tree, tables and columns, tags at every level, grants of every target kind to
principals or roles, role memberships, owners, an occasional ADMIN) and every decision the evaluator
makes is compared with the reference.

Semantics checked (evaluator.py's docstring plus PRODUCT.md "Governance semantics"):
- deny by default; namespace tags apply to nested namespaces and tables, table tags to columns; lower wins;
- grant targets: catalog (everything; but CREATE_TABLE there only creates top-level namespaces: it gives
  neither CREATE_TABLE nor DESCRIBE in any namespace), namespace (itself, nested namespaces, all their tables), table
  (optionally only some columns: column grants give only SELECT/DESCRIBE), tag expression;
- tag grants: SELECT covers exactly the columns whose effective column tags match; any other table action
  needs the table's effective tags to match; namespace actions need the namespace's effective tags to match;
- owners hold everything on what they own; a namespace owner holds everything on its nested namespaces and
  on all tables in it or below; a catalog grant with ADMIN holds everything;
- any table permission implies DESCRIBE on the table; any namespace permission implies DESCRIBE on the
  namespace; namespace DESCRIBE is also allowed when any table in `tables_within` may be described;
- SELECT is allowed iff at least one column is visible; visible columns keep the table's column order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from icemesh.governance.evaluator import Evaluator
from icemesh.governance.permissions import Permission
from icemesh.governance.policy import PRINCIPAL, ROLE, Grant, Grantee, Policy
from icemesh.governance.resources import NamespaceRef, TableRef
from icemesh.governance.tags import TagExpression, TagKey

P = Permission
# Written out here rather than imported, so the reference does not share the evaluator's constants.
TABLE_ACTIONS = (P.DESCRIBE, P.SELECT, P.INSERT, P.DELETE, P.ALTER, P.DROP)
NAMESPACE_ACTIONS = (P.CREATE_TABLE, P.DESCRIBE, P.ALTER, P.DROP)
COLUMN_GRANT_ACTIONS = (P.SELECT, P.DESCRIBE)
GRANTABLE = (P.SELECT, P.DESCRIBE, P.INSERT, P.DELETE, P.ALTER, P.DROP, P.CREATE_TABLE)

PRINCIPALS = ("alice", "bob", "carol")
ROLE_NAMES = ("analyst", "eng", "bob")  # a role named like a principal: grantee kinds must not mix
VOCABULARY = (
    ("domain", ("sales", "finance", "hr")),
    ("sensitivity", ("public", "internal", "confidential")),
    ("tier", ("gold", "silver", "bronze")),
)
COLUMN_NAMES = ("c1", "c2", "c3", "c4")


# ---------------------------------------------------------------------------------------------------
# The generated world: a policy plus the tables (with their columns in order) and namespaces that exist.
# ---------------------------------------------------------------------------------------------------

@dataclass
class World:
    policy: Policy
    namespaces: list[NamespaceRef]
    tables: dict[TableRef, tuple[str, ...]]

    def tables_under(self, ns: NamespaceRef) -> list[TableRef]:
        """Tables in `ns` or in any namespace nested in it."""
        n = len(ns.levels)
        return [t for t in self.tables if t.namespace.levels[:n] == ns.levels]

    def describe(self) -> str:
        p = self.policy
        lines = ["tag keys: " + "; ".join(f"{k}={','.join(v.values)}" for k, v in p.tag_keys.items())]
        for ns in self.namespaces:
            lines.append(f"namespace {ns} tags={p.namespace_tags.get(ns, {})} owner={p.owners.get(ns)}")
        for t, cols in self.tables.items():
            col_tags = {c: p.column_tags.get(t, {}).get(c) for c in cols if p.column_tags.get(t, {}).get(c)}
            lines.append(f"table {t} columns={list(cols)} tags={p.table_tags.get(t, {})} "
                         f"column_tags={col_tags} owner={p.owners.get(t)}")
        lines.append(f"roles: {dict((k, sorted(v)) for k, v in p.roles.items())}")
        lines += [str(g) for g in p.grants]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# Brute-force reference.
# ---------------------------------------------------------------------------------------------------

class Reference:
    def __init__(self, world: World) -> None:
        self.world = world
        self.policy = world.policy

    # who
    def grants_of(self, principal: str) -> list[Grant]:
        roles = self.policy.roles.get(principal, frozenset())
        mine = []
        for g in self.policy.grants:
            if g.grantee.kind == PRINCIPAL and g.grantee.name == principal:
                mine.append(g)
            elif g.grantee.kind == ROLE and g.grantee.name in roles:
                mine.append(g)
        return mine

    def is_admin(self, principal: str) -> bool:
        return any(g.catalog and P.ADMIN in g.permissions for g in self.grants_of(principal))

    def owns_namespace(self, principal: str, levels: tuple[str, ...]) -> bool:
        for depth in range(1, len(levels) + 1):
            if self.policy.owners.get(NamespaceRef(levels[:depth])) == principal:
                return True
        return False

    def owns_table(self, principal: str, table: TableRef) -> bool:
        return self.policy.owners.get(table) == principal or self.owns_namespace(principal, table.namespace.levels)

    # tags: walk from the root, each level overriding the one above
    def namespace_tags(self, levels: tuple[str, ...]) -> dict[str, str]:
        tags: dict[str, str] = {}
        for depth in range(1, len(levels) + 1):
            for key, value in self.policy.namespace_tags.get(NamespaceRef(levels[:depth]), {}).items():
                tags[key] = value
        return tags

    def table_tags(self, table: TableRef) -> dict[str, str]:
        tags = self.namespace_tags(table.namespace.levels)
        for key, value in self.policy.table_tags.get(table, {}).items():
            tags[key] = value
        return tags

    def column_tags(self, table: TableRef, column: str) -> dict[str, str]:
        tags = self.table_tags(table)
        for key, value in self.policy.column_tags.get(table, {}).get(column, {}).items():
            tags[key] = value
        return tags

    @staticmethod
    def expression_matches(expression: TagExpression, tags: dict[str, str]) -> bool:
        for key, values in expression.to_dict().items():
            if key not in tags:
                return False
            if tags[key] not in values:
                return False
        return True

    @staticmethod
    def namespace_within(outer: tuple[str, ...], inner: tuple[str, ...]) -> bool:
        """True when `inner` is `outer` or nested in it."""
        return len(inner) >= len(outer) and all(inner[i] == outer[i] for i in range(len(outer)))

    # tables
    def grant_gives_on_table(self, g: Grant, perm: Permission, table: TableRef, column: str | None) -> bool:
        """Does grant `g` give `perm` (a table permission listed in g) on `table`?
        For SELECT `column` names the column being read; for other permissions it is None."""
        if g.catalog:
            return True
        if g.namespace is not None:
            return self.namespace_within(g.namespace.levels, table.namespace.levels)
        if g.table is not None:
            if g.table != table:
                return False
            if g.columns is None or len(g.columns) == 0:
                return True
            if perm not in COLUMN_GRANT_ACTIONS:
                return False
            if perm == P.SELECT:
                return column in g.columns
            return True  # DESCRIBE through a column grant
        if g.expression is not None:
            if perm == P.SELECT:
                return self.expression_matches(g.expression, self.column_tags(table, column))
            return self.expression_matches(g.expression, self.table_tags(table))
        return False

    def table_rights(self, principal: str, table: TableRef) -> tuple[set[Permission], list[str]]:
        """(table permissions held, readable columns in table order)."""
        columns = self.world.tables[table]
        if self.is_admin(principal) or self.owns_table(principal, table):
            return set(TABLE_ACTIONS), list(columns)
        held: set[Permission] = set()
        readable: list[str] = []
        grants = self.grants_of(principal)
        for column in columns:
            for g in grants:
                if P.SELECT in g.permissions and self.grant_gives_on_table(g, P.SELECT, table, column):
                    if column not in readable:
                        readable.append(column)
        if readable:
            held.add(P.SELECT)
        for perm in TABLE_ACTIONS:
            if perm == P.SELECT:
                continue
            for g in grants:
                if perm in g.permissions and self.grant_gives_on_table(g, perm, table, None):
                    held.add(perm)
        if held:
            held.add(P.DESCRIBE)  # any table permission lets its holder see the table
        return held, readable

    # namespaces
    def namespace_rights(self, principal: str, ns: NamespaceRef, tables_within: list[TableRef]) -> set[Permission]:
        if self.is_admin(principal) or self.owns_namespace(principal, ns.levels):
            return set(NAMESPACE_ACTIONS)
        held: set[Permission] = set()
        for g in self.grants_of(principal):
            for perm in g.permissions:
                if perm not in NAMESPACE_ACTIONS:
                    continue
                if g.catalog:
                    if perm is not P.CREATE_TABLE:  # on the catalog it creates top-level namespaces, nothing inside
                        held.add(perm)
                elif g.namespace is not None and self.namespace_within(g.namespace.levels, ns.levels):
                    held.add(perm)
                elif g.expression is not None and self.expression_matches(g.expression, self.namespace_tags(ns.levels)):
                    held.add(perm)
        if held:
            held.add(P.DESCRIBE)
        for table in tables_within:
            if P.DESCRIBE in self.table_rights(principal, table)[0]:
                held.add(P.DESCRIBE)
        return held


# ---------------------------------------------------------------------------------------------------
# Strategies.
# ---------------------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _pick(values: tuple) -> st.SearchStrategy:
    """Strategies are cached: building them on every draw dominated the run time."""
    return st.sampled_from(values)


@lru_cache(maxsize=None)
def _subset(values: tuple, min_size: int = 0, max_size: int | None = None) -> st.SearchStrategy:
    return st.frozensets(_pick(values), min_size=min_size, max_size=max_size)


@lru_cache(maxsize=None)
def _ints(low: int, high: int) -> st.SearchStrategy:
    return st.integers(low, high)


_BOOLS = st.booleans()
_COLUMN_ORDERS = st.permutations(COLUMN_NAMES)


def _maybe(draw, values, nones: int = 1):
    """None (shrinks to it) or one of `values`; `nones` weights None."""
    return draw(_pick((None,) * nones + tuple(values)))


ALL_KINDS = ("tags", "table", "columns", "namespace", "catalog")


@st.composite
def worlds(draw, kinds: tuple[str, ...] = ALL_KINDS) -> World:
    """A random policy; `kinds` limits the grant targets (so one kind's disagreement cannot mask another's)."""
    n_keys = draw(_ints(2, 3))
    tag_keys: dict[str, TagKey] = {}
    for key, values in VOCABULARY[:n_keys]:
        tag_keys[key] = TagKey(key, values[: draw(_ints(2, 3))])

    # every possible tag assignment (at most one value per key), the empty one first so shrinking goes there;
    # one draw per resource keeps generation (and so shrinking) fast
    assignments: list[tuple[tuple[str, str], ...]] = [()]
    for key, tk in tag_keys.items():
        assignments = [a + extra for a in assignments for extra in [()] + [((key, v),) for v in tk.values]]
    assignment_choice = _pick(tuple(assignments))
    column_choice = _pick((None,) + tuple(assignments))  # None: the column has no entry of its own

    def tag_dict() -> dict[str, str]:
        return dict(draw(assignment_choice))

    # namespace tree, depth up to 3; the same short names recur at every level
    namespaces: list[NamespaceRef] = []

    def grow(prefix: tuple[str, ...], depth: int) -> None:
        names = draw(_subset(("a", "b"), 1 if depth == 0 else 0, 2 if depth < 2 else 1))
        for name in sorted(names):
            levels = prefix + (name,)
            namespaces.append(NamespaceRef(levels))
            if depth < 2:
                grow(levels, depth + 1)

    grow((), 0)

    tables: dict[TableRef, tuple[str, ...]] = {}
    for ns in namespaces:
        for name in sorted(draw(_subset(("t", "u"), 0, 2))):
            order = draw(_COLUMN_ORDERS)
            tables[TableRef(ns, name)] = tuple(order[: draw(_ints(1, 4))])
    table_list = tuple(sorted(tables))

    namespace_tags = {}
    for ns in namespaces:
        tags = tag_dict()
        if tags:
            namespace_tags[ns] = tags
    table_tags = {}
    column_tags: dict[TableRef, dict[str, dict[str, str]]] = {}
    for t, cols in tables.items():
        tags = tag_dict()
        if tags:
            table_tags[t] = tags
        per_column = {}
        for c in cols:
            own = draw(column_choice)
            if own is not None:
                per_column[c] = dict(own)
        if per_column:
            column_tags[t] = per_column

    roles = {}
    for principal in PRINCIPALS:
        mine = draw(_subset(ROLE_NAMES, 0, 2))
        if mine:
            roles[principal] = mine

    owners: dict[NamespaceRef | TableRef, str] = {}
    for resource in [*namespaces, *tables]:
        owner = _maybe(draw, PRINCIPALS, nones=12)
        if owner is not None:
            owners[resource] = owner

    if not tables:
        kinds = tuple(k for k in kinds if k not in ("table", "columns")) or ("tags",)
    grants = []
    for gid in range(1, draw(_ints(0, 8)) + 1):
        if draw(_BOOLS):
            grantee = Grantee(ROLE, draw(_pick(ROLE_NAMES)))
        else:
            grantee = Grantee(PRINCIPAL, draw(_pick(PRINCIPALS)))
        perms = set(draw(_subset(GRANTABLE, 1, 3)))
        if draw(_ints(0, 7)) == 7:  # occasionally; shrinks towards no ADMIN
            perms.add(P.ADMIN)
        kind = draw(_pick(kinds))
        kw: dict = {}
        if kind == "catalog":
            kw["catalog"] = True
        elif kind == "namespace":
            kw["namespace"] = draw(_pick(tuple(namespaces)))
        elif kind == "table":
            kw["table"] = draw(_pick(table_list))
        elif kind == "columns":
            table = draw(_pick(table_list))
            kw["table"] = table
            kw["columns"] = draw(_subset(tables[table], 1))
        else:
            keys = draw(_subset(tuple(tag_keys), 1))
            kw["expression"] = TagExpression.from_dict(
                {k: sorted(draw(_subset(tag_keys[k].values, 1))) for k in sorted(keys)})
        grants.append(Grant(gid, grantee, frozenset(perms), **kw))

    policy = Policy(tag_keys=tag_keys, namespace_tags=namespace_tags, table_tags=table_tags,
                    column_tags=column_tags, grants=tuple(grants), roles=roles, owners=owners)
    return World(policy, namespaces, tables)


# Every property runs twice: with grants of every target kind, and with tag-expression grants only, so a
# disagreement about column grants (found quickly) cannot hide a rarer one about tag grants.
GRANT_MIXES = {"all-kinds": worlds(), "tags-only": worlds(("tags",))}
mixes = pytest.mark.parametrize("mix", sorted(GRANT_MIXES))

# No example database, and no "explain" phase: failures are reported with the shrunk policy spelled out.
PROPERTY_SETTINGS = settings(max_examples=250, deadline=None, database=None,
                             phases=[Phase.explicit, Phase.generate, Phase.shrink],
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _check(world: World, mismatches: list[str]) -> None:
    assert not mismatches, f"{len(mismatches)} disagreement(s), first: {mismatches[0]}\n{world.describe()}"


# ---------------------------------------------------------------------------------------------------
# Properties.
# ---------------------------------------------------------------------------------------------------

@PROPERTY_SETTINGS
@mixes
@given(data=st.data())
def test_select_matches_reference(mix: str, data: st.DataObject) -> None:
    world = data.draw(GRANT_MIXES[mix], label="world")
    ev, ref = Evaluator(world.policy), Reference(world)
    mismatches = []
    for principal in PRINCIPALS:
        for table, cols in world.tables.items():
            d = ev.decide_table(principal, P.SELECT, table, cols)
            _held, readable = ref.table_rights(principal, table)
            expected_hidden = [c for c in cols if c not in readable]
            got_visible = list(d.visible_columns or ())
            if d.allowed != bool(readable) or got_visible != readable or \
                    (d.allowed and list(d.hidden_columns) != expected_hidden):
                mismatches.append(f"{principal} SELECT {table}: evaluator allowed={d.allowed} visible={got_visible} "
                                  f"hidden={list(d.hidden_columns)}; reference visible={readable}")
    _check(world, mismatches)


@PROPERTY_SETTINGS
@mixes
@given(data=st.data())
def test_other_table_actions_match_reference(mix: str, data: st.DataObject) -> None:
    """INSERT, DELETE, ALTER, DROP."""
    world = data.draw(GRANT_MIXES[mix], label="world")
    ev, ref = Evaluator(world.policy), Reference(world)
    mismatches = []
    for principal in PRINCIPALS:
        for table, cols in world.tables.items():
            held, _ = ref.table_rights(principal, table)
            for action in (P.INSERT, P.DELETE, P.ALTER, P.DROP):
                d = ev.decide_table(principal, action, table, cols)
                if d.allowed != (action in held):
                    mismatches.append(f"{principal} {action} {table}: evaluator {d.allowed}, reference {action in held}")
    _check(world, mismatches)


@PROPERTY_SETTINGS
@mixes
@given(data=st.data())
def test_table_describe_matches_reference(mix: str, data: st.DataObject) -> None:
    """DESCRIBE on a table, asked with the table's columns."""
    world = data.draw(GRANT_MIXES[mix], label="world")
    ev, ref = Evaluator(world.policy), Reference(world)
    mismatches = []
    for principal in PRINCIPALS:
        for table, cols in world.tables.items():
            expected = P.DESCRIBE in ref.table_rights(principal, table)[0]
            got = ev.decide_table(principal, P.DESCRIBE, table, cols).allowed
            if got != expected:
                mismatches.append(f"{principal} DESCRIBE {table}: evaluator {got}, reference {expected}")
    _check(world, mismatches)


@PROPERTY_SETTINGS
@mixes
@given(data=st.data())
def test_namespace_actions_match_reference(mix: str, data: st.DataObject) -> None:
    """CREATE_TABLE, ALTER, DROP on every namespace."""
    world = data.draw(GRANT_MIXES[mix], label="world")
    ev, ref = Evaluator(world.policy), Reference(world)
    mismatches = []
    for principal in PRINCIPALS:
        for ns in world.namespaces:
            within = world.tables_under(ns)
            held = ref.namespace_rights(principal, ns, within)
            for action in (P.CREATE_TABLE, P.ALTER, P.DROP):
                got = ev.decide_namespace(principal, action, ns, within).allowed
                if got != (action in held):
                    mismatches.append(f"{principal} {action} namespace {ns}: evaluator {got}, reference {action in held}")
    _check(world, mismatches)


@PROPERTY_SETTINGS
@mixes
@given(data=st.data())
def test_namespace_describe_matches_reference(mix: str, data: st.DataObject) -> None:
    """DESCRIBE on every namespace, with no tables_within and with every table at or below it."""
    world = data.draw(GRANT_MIXES[mix], label="world")
    ev, ref = Evaluator(world.policy), Reference(world)
    mismatches = []
    for principal in PRINCIPALS:
        for ns in world.namespaces:
            within = world.tables_under(ns)
            # a mapping table -> columns: iterating it gives the TableRefs the current signature expects
            for tables in ({}, {t: list(world.tables[t]) for t in within}):
                expected = P.DESCRIBE in ref.namespace_rights(principal, ns, tables)
                got = ev.decide_namespace(principal, P.DESCRIBE, ns, tables).allowed
                if got != expected:
                    mismatches.append(f"{principal} DESCRIBE namespace {ns} tables_within={[str(t) for t in tables]}: "
                                      f"evaluator {got}, reference {expected}")
    _check(world, mismatches)


@PROPERTY_SETTINGS
@mixes
@given(data=st.data())
def test_effective_permissions_agree_with_decide_table(mix: str, data: st.DataObject) -> None:
    world = data.draw(GRANT_MIXES[mix], label="world")
    ev = Evaluator(world.policy)
    mismatches = []
    for principal in PRINCIPALS:
        effective = ev.effective_permissions(principal, {t: list(c) for t, c in world.tables.items()})
        for table, cols in world.tables.items():
            one_by_one = {a for a in TABLE_ACTIONS if ev.decide_table(principal, a, table, cols).allowed}
            got = set(effective.get(table, frozenset()))
            if got != one_by_one or (table in effective and not effective[table]):
                mismatches.append(f"{principal} {table}: effective_permissions {sorted(got)}, "
                                  f"decide_table one by one {sorted(one_by_one)}")
        if set(effective) - set(world.tables):
            mismatches.append(f"{principal}: effective_permissions names unknown tables {set(effective) - set(world.tables)}")
    _check(world, mismatches)


@PROPERTY_SETTINGS
@mixes
@given(data=st.data())
def test_effective_permissions_match_reference(mix: str, data: st.DataObject) -> None:
    world = data.draw(GRANT_MIXES[mix], label="world")
    ev, ref = Evaluator(world.policy), Reference(world)
    mismatches = []
    for principal in PRINCIPALS:
        effective = ev.effective_permissions(principal, {t: list(c) for t, c in world.tables.items()})
        for table in world.tables:
            expected = ref.table_rights(principal, table)[0]
            got = set(effective.get(table, frozenset()))
            if got != expected:
                mismatches.append(f"{principal} {table}: effective_permissions {sorted(got)}, reference {sorted(expected)}")
    _check(world, mismatches)


# ---------------------------------------------------------------------------------------------------
# Examples from PRODUCT.md.
# ---------------------------------------------------------------------------------------------------

TAG_KEYS = {
    "domain": TagKey("domain", ("sales", "finance", "hr")),
    "sensitivity": TagKey("sensitivity", ("public", "internal", "confidential")),
}


def ns(text: str) -> NamespaceRef:
    return NamespaceRef(tuple(text.split(".")))


def tbl(text: str) -> TableRef:
    *levels, name = text.split(".")
    return TableRef(NamespaceRef(tuple(levels)), name)


def test_example_domain_or_and_sensitivity_expression() -> None:
    expr = TagExpression.parse("domain=sales,finance AND sensitivity=public")
    policy = Policy(
        tag_keys=TAG_KEYS,
        namespace_tags={ns("sales"): {"domain": "sales"}, ns("finance"): {"domain": "finance"},
                        ns("hr"): {"domain": "hr"}},
        table_tags={tbl("sales.orders"): {"sensitivity": "public"}, tbl("sales.leads"): {"sensitivity": "confidential"},
                    tbl("finance.ledger"): {"sensitivity": "public"}, tbl("hr.people"): {"sensitivity": "public"}},
        grants=(Grant(1, Grantee(ROLE, "analyst"), frozenset({P.SELECT}), expression=expr),),
        roles={"ana": frozenset({"analyst"})},
    )
    ev = Evaluator(policy)
    expected = {"sales.orders": True, "finance.ledger": True, "sales.leads": False, "hr.people": False,
                "sales.untagged": False}
    for name, allowed in expected.items():
        d = ev.decide_table("ana", P.SELECT, tbl(name), ["id", "amount"])
        assert d.allowed is allowed, name
        assert d.visible_columns == (("id", "amount") if allowed else ())
        # nobody else holds the role
        assert not ev.decide_table("bob", P.SELECT, tbl(name), ["id", "amount"]).allowed
    assert not ev.decide_table("ana", P.INSERT, tbl("sales.orders"), ["id"]).allowed


def test_example_confidential_column_hidden() -> None:
    table = tbl("sales.customers")
    policy = Policy(
        tag_keys=TAG_KEYS,
        namespace_tags={ns("sales"): {"domain": "sales", "sensitivity": "internal"}},
        column_tags={table: {"ssn": {"sensitivity": "confidential"}, "email": {"sensitivity": "public"}}},
        grants=(Grant(1, Grantee(PRINCIPAL, "ana"), frozenset({P.SELECT}),
                      expression=TagExpression.parse(["domain=sales", "sensitivity=public,internal"])),),
    )
    ev = Evaluator(policy)
    d = ev.decide_table("ana", P.SELECT, table, ["id", "ssn", "email", "name"])
    assert d.allowed
    assert d.visible_columns == ("id", "email", "name")
    assert d.hidden_columns == ("ssn",)
    assert not d.all_columns
    perms = ev.effective_permissions("ana", {table: ["id", "ssn", "email", "name"]})
    assert perms == {table: frozenset({P.SELECT, P.DESCRIBE})}
    # only the confidential column: nothing to read
    only_ssn = ev.decide_table("ana", P.SELECT, table, ["ssn"])
    assert not only_ssn.allowed and only_ssn.hidden_columns == ("ssn",)


def test_example_table_tag_overrides_namespace_tag() -> None:
    summary, orders, emea_orders = tbl("sales.summary"), tbl("sales.orders"), tbl("sales.emea.orders")
    policy = Policy(
        tag_keys=TAG_KEYS,
        namespace_tags={ns("sales"): {"domain": "sales", "sensitivity": "confidential"},
                        ns("sales.emea"): {"sensitivity": "public"}},
        table_tags={summary: {"sensitivity": "public"}},
        column_tags={summary: {"margin": {"sensitivity": "confidential"}}},
        grants=(Grant(1, Grantee(PRINCIPAL, "ana"), frozenset({P.SELECT}),
                      expression=TagExpression.parse("domain=sales AND sensitivity=public")),),
    )
    ev = Evaluator(policy)
    d = ev.decide_table("ana", P.SELECT, summary, ["region", "margin", "total"])
    assert d.allowed and d.visible_columns == ("region", "total") and d.hidden_columns == ("margin",)
    assert not ev.decide_table("ana", P.SELECT, orders, ["id"]).allowed  # inherits confidential
    # nested namespace overrides its parent, and still inherits domain=sales
    assert ev.decide_table("ana", P.SELECT, emea_orders, ["id"]).visible_columns == ("id",)
    assert ev.namespace_tags(ns("sales.emea")) == {"domain": "sales", "sensitivity": "public"}


def test_example_deny_by_default() -> None:
    tables = {tbl("sales.orders"): ["id", "amount"], tbl("hr.people"): ["id"]}
    policy = Policy(tag_keys=TAG_KEYS, namespace_tags={ns("sales"): {"domain": "sales"}},
                    roles={"ana": frozenset({"analyst"})})
    ev = Evaluator(policy)
    for table, cols in tables.items():
        for action in TABLE_ACTIONS:
            d = ev.decide_table("ana", action, table, cols)
            assert not d.allowed
        assert ev.decide_table("ana", P.SELECT, table, cols).visible_columns in ((), None)
    for namespace in (ns("sales"), ns("hr")):
        for action in NAMESPACE_ACTIONS:
            assert not ev.decide_namespace("ana", action, namespace, list(tables)).allowed
    assert ev.effective_permissions("ana", tables) == {}
    assert not ev.may_administer("ana").allowed


def test_example_owner_and_admin() -> None:
    nested = tbl("sales.emea.orders")
    policy = Policy(tag_keys=TAG_KEYS, owners={ns("sales"): "olga", tbl("hr.people"): "hank"},
                    grants=(Grant(7, Grantee(PRINCIPAL, "root"), frozenset({P.ADMIN}), catalog=True),))
    ev = Evaluator(policy)
    for who in ("olga", "root"):
        for action in TABLE_ACTIONS:
            assert ev.decide_table(who, action, nested, ["id"]).allowed
        assert ev.decide_namespace(who, P.CREATE_TABLE, ns("sales.emea")).allowed
    assert not ev.decide_table("olga", P.SELECT, tbl("hr.people"), ["id"]).allowed
    assert ev.decide_table("hank", P.DROP, tbl("hr.people"), ["id"]).allowed
    assert not ev.decide_namespace("hank", P.CREATE_TABLE, ns("hr")).allowed
    assert ev.decide_namespace("hank", P.DESCRIBE, ns("hr"), [tbl("hr.people")]).allowed


def test_example_denial_message_names_missing_permission() -> None:
    table = tbl("sales.orders")
    policy = Policy(tag_keys=TAG_KEYS, namespace_tags={ns("sales"): {"domain": "sales"}},
                    grants=(Grant(1, Grantee(PRINCIPAL, "ana"), frozenset({P.SELECT}), table=table),))
    ev = Evaluator(policy)
    d = ev.decide_table("ana", P.INSERT, table, ["id"])
    assert not d.allowed
    msg = d.message()
    assert "lacks INSERT" in msg and "sales.orders" in msg and "ana" in msg
    assert "domain=sales" in msg  # says what a tag grant would have to match
    n = ev.decide_namespace("ana", P.CREATE_TABLE, ns("hr"))
    assert not n.allowed and "lacks CREATE_TABLE" in n.message() and "hr" in n.message()
    ok = ev.decide_table("ana", P.SELECT, table, ["id"])
    assert ok.allowed and "may SELECT" in ok.message()


def test_restrictions_are_kept_per_principal_table_and_columns() -> None:
    """A snapshot's evaluator keeps each (principal, table, columns) answer, as it keeps decisions: a listing
    asks again for every product it shows. Other columns, tables or principals get their own answer."""
    from icemesh.governance.data_filters import ColumnMask, DataFilter

    customers, orders = tbl("sales.customers"), tbl("sales.orders")
    masked = DataFilter("region = 'EU'", (ColumnMask("hash-sha256", column="email"),))
    policy = Policy(tag_keys=TAG_KEYS, namespace_tags={ns("sales"): {"domain": "sales"}},
                    grants=(Grant(1, Grantee(PRINCIPAL, "ana"), frozenset({P.SELECT}), table=customers,
                                  data_filter=masked),
                            Grant(2, Grantee(PRINCIPAL, "ana"), frozenset({P.SELECT}), table=orders)))
    ev = Evaluator(policy)
    first = ev.restrictions("ana", customers, ["id", "email"])
    assert first.rows == ("region = 'EU'",) and first.masks == {"email": "hash-sha256"}
    assert ev.restrictions("ana", customers, iter(["id", "email"])) is first
    only_id = ev.restrictions("ana", customers, ["id"])
    assert only_id.rows == ("region = 'EU'",) and only_id.masks == {}
    assert not ev.restrictions("ana", orders, ["id", "email"])
    assert not ev.restrictions("bob", customers, ["id", "email"]).masks
