"""Self-service: any principal lists its own grants (direct and through its roles), reads its own audit rows,
checks its own access, and sees what it owns; another principal's need ADMIN.

Attacked on purpose: every parameter combination a non-admin can send (CLI flags and raw HTTP query strings)
must return only rows about itself, or be refused.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
import pyarrow as pa
import pytest
from pyiceberg.exceptions import ForbiddenError, NoSuchTableError

from tests.cli_helpers import As

M = "/management/v1"


@dataclass
class World:
    ns: str
    names: dict[str, str]      # alice, bob, their roles ra, rb
    cli: dict[str, As]         # admin, alice, bob
    secrets: dict[str, str]
    grants: dict[str, int]     # which grant is whose


@pytest.fixture(scope="module")
def world(sqlite_server) -> World:
    sfx = uuid.uuid4().hex[:8]
    names = {"alice": f"alice_{sfx}", "bob": f"bob_{sfx}", "ra": f"ra_{sfx}", "rb": f"rb_{sfx}"}
    ns = f"self_{sfx}"
    admin = sqlite_server.client()
    catalog = admin.rest_catalog()
    catalog.create_namespace(ns)
    schema = pa.schema([("id", pa.int64())])
    for table in ("open", "secret"):
        catalog.create_table(f"{ns}.{table}", schema).append(pa.table({"id": [1]}, schema=schema))
    secrets = {}
    for who, role in (("alice", "ra"), ("bob", "rb")):
        admin.request("POST", f"{M}/roles", json={"name": names[role]})
        secrets[who] = admin.request("POST", f"{M}/principals",
                                     json={"name": names[who], "roles": [names[role]]})["client_secret"]

    def grant(**spec) -> int:
        return admin.request("POST", f"{M}/grants", json=spec)["id"]

    grants = {
        "alice": grant(permissions="SELECT", principal=names["alice"], table=f"{ns}.open"),
        "ra": grant(permissions="DESCRIBE", role=names["ra"], namespace=ns),
        "bob": grant(permissions="SELECT", principal=names["bob"], table=f"{ns}.secret"),
        "rb": grant(permissions="INSERT", role=names["rb"], table=f"{ns}.secret"),
    }
    cli = {"admin": As.principal(sqlite_server)}
    for who in ("alice", "bob"):
        cli[who] = As.principal(sqlite_server, names[who], secrets[who])
    # Decisions for both in the audit log: each reads what it may, and is refused the other's table (a 403 for
    # alice, who may see it; a 404 for bob, who may not).
    for who, mine, theirs in (("alice", "open", "secret"), ("bob", "secret", "open")):
        rest = sqlite_server.client(names[who], secrets[who]).rest_catalog()
        rest.load_table(f"{ns}.{mine}")
        with pytest.raises(ForbiddenError if who == "alice" else NoSuchTableError):
            rest.load_table(f"{ns}.{theirs}")
    return World(ns, names, cli, secrets, grants)


def _ids(rows) -> set[int]:
    return {g["id"] for g in rows}


def test_a_principal_lists_its_own_grants_direct_and_through_roles(world):
    alice = world.cli["alice"]
    own = {world.grants["alice"], world.grants["ra"]}
    assert _ids(alice.json("grants", "list")) == own
    assert _ids(alice.json("grants", "list", "--principal", world.names["alice"])) == own
    assert _ids(alice.json("grants", "list", "--role", world.names["ra"])) == {world.grants["ra"]}
    text = alice.ok("grants", "list")
    assert f"SELECT on table {world.ns}.open to {world.names['alice']}" in text and world.names["bob"] not in text
    # The admin still sees everything, and anyone's.
    everyone = _ids(world.cli["admin"].json("grants", "list"))
    assert set(world.grants.values()) <= everyone
    assert _ids(world.cli["admin"].json("grants", "list", "--principal", world.names["bob"])) == \
        {world.grants["bob"], world.grants["rb"]}


@pytest.mark.parametrize("args", [
    ["--principal", "{bob}"], ["--principal", "admin"], ["--role", "{rb}"], ["--principal", "{alice}", "--role", "{rb}"],
    ["--principal", "{bob}", "--role", "{ra}"], ["--principal", "{BOB}"],
], ids=["other", "admin", "other-role", "own-and-other-role", "other-and-own-role", "case"])
def test_other_principals_grants_need_admin(world, args):
    args = [a.format(bob=world.names["bob"], rb=world.names["rb"], ra=world.names["ra"], alice=world.names["alice"],
                     BOB=world.names["bob"].upper()) for a in args]
    line = world.cli["alice"].fails("grants", "list", *args)
    assert line.startswith(f"error: {world.names['alice']} lacks ADMIN on ") and "--catalog" in line


def test_no_query_string_leaks_another_principals_grants_or_audit_rows(world, sqlite_server):
    client = sqlite_server.client(world.names["alice"], world.secrets["alice"])
    bob, rb = world.names["bob"], world.names["rb"]
    attempts = ["", "principal=", "role=", f"principal={bob}&principal={world.names['alice']}",
                f"principal={world.names['alice']}&principal={bob}", "principal=%25", f"principal={bob}%00",
                f"principal={bob}%20", f"role={rb}&role={world.names['ra']}", "principal=anonymous", "principal=*",
                f"principal={world.names['alice']}&role={rb}", "limit=10000&denied=false", "denied=true"]
    own_grants = {world.grants["alice"], world.grants["ra"]}
    with httpx.Client(base_url=sqlite_server.uri, headers=client.headers(), timeout=30) as http:
        for query in attempts:
            grants = http.get(f"{M}/grants?{query}")
            assert grants.status_code in (200, 403), (query, grants.text)
            if grants.status_code == 200:
                assert _ids(grants.json()) <= own_grants, query
            audit = http.get(f"{M}/audit?{query}")
            assert audit.status_code in (200, 403, 422), (query, audit.text)
            if audit.status_code == 200:
                assert {r["principal"] for r in audit.json()} <= {world.names["alice"]}, query


def test_a_principal_reads_its_own_audit_rows_only(world):
    alice, bob = world.cli["alice"], world.names["bob"]
    rows = alice.json("audit", "--limit", "1000")
    assert rows and {r["principal"] for r in rows} == {world.names["alice"]}
    assert any(r["decision"] == "DENY" and r["resource"] == f"table {world.ns}.secret" for r in rows)
    assert any(r["decision"] == "ALLOW" and r["resource"] == f"table {world.ns}.open" for r in rows)
    denied = alice.json("audit", "--denied", "--principal", world.names["alice"])
    assert denied and all(r["decision"] == "DENY" and r["principal"] == world.names["alice"] for r in denied)
    assert bob not in alice.ok("audit", "--limit", "1000")

    line = alice.fails("audit", "--principal", bob)
    assert line == (f"error: {world.names['alice']} lacks ADMIN on audit rows of other principals; an admin can allow "
                    f"it with: icemesh grant ADMIN --to {world.names['alice']} --catalog")
    # ...and the refusal is itself audited, as alice's, where the admin sees it.
    refusals = world.cli["admin"].json("audit", "--principal", world.names["alice"], "--denied", "--limit", "1000")
    assert any(r["action"] == "ADMIN" and r["resource"] == "audit rows of other principals" for r in refusals)
    assert {r["principal"] for r in world.cli["admin"].json("audit", "--principal", bob)} == {bob}


def test_a_principal_checks_its_own_access_and_learns_nothing_of_what_it_may_not_see(world):
    alice, me = world.cli["alice"], world.names["alice"]
    check = alice.json("access", "check", me, f"{world.ns}.open")
    assert check["decision"] == "ALLOW" and check["grants"] == [world.grants["alice"]]
    insert = alice.json("access", "check", me, f"{world.ns}.open", "--action", "INSERT")
    assert insert["decision"] == "DENY" and f"icemesh grant INSERT --to {me} --table {world.ns}.open" in insert["reason"]
    # She may see `secret` (DESCRIBE on the namespace through her role) but not read it.
    assert alice.json("access", "check", me, f"{world.ns}.secret")["decision"] == "DENY"
    assert alice.fails("access", "check", world.names["bob"], f"{world.ns}.open").startswith(
        f"error: {me} lacks ADMIN on access checks for other principals")


def test_without_a_way_to_see_it_a_resource_and_a_missing_one_look_the_same(world):
    bob = world.cli["bob"]  # bob has no DESCRIBE on the namespace: he sees `secret` only
    me = world.names["bob"]
    assert bob.json("access", "check", me, f"{world.ns}.secret")["decision"] == "ALLOW"
    hidden = bob.fails("access", "check", me, f"{world.ns}.open")
    missing = bob.fails("access", "check", me, f"{world.ns}.nothing")
    assert hidden == f"error: No table or namespace named {world.ns}.open that {me} may see"
    assert missing == hidden.replace(".open", ".nothing")


def test_whoami_shows_roles_and_what_the_principal_owns(world, sqlite_server):
    me = world.cli["alice"].json("whoami")
    assert me["name"] == world.names["alice"] and me["roles"] == [world.names["ra"]] and me["admin"] is False
    assert me["owns"] == {"namespaces": [], "tables": []}
    text = world.cli["alice"].ok("whoami")
    assert text.splitlines()[0] == f"{world.names['alice']} roles: {world.names['ra']}"
    assert "owns namespaces: -" in text


def test_the_name_rejected_tokens_are_audited_under_cannot_be_taken(world, tmp_path):
    """Else its holder would read every rejected request's audit row as its own."""
    line = world.cli["admin"].fails("principals", "create", "anonymous")
    assert line == "error: 'anonymous' is reserved for unauthenticated requests: choose another principal name"
    policy = tmp_path / "policy.yml"
    policy.write_text("principals:\n  admin: {}\n  anonymous: {}\n")
    assert world.cli["admin"].fails("policy", "apply", str(policy), "--plan").startswith(
        "error: Policy file: line 3: 'anonymous' is reserved")


def test_own_audit_rows_tell_nothing_more_than_the_refusal_did(world, sqlite_server):
    """bob is refused a table he may not see with a bare 404; his own audit rows must not then show that the
    table exists, nor the tags its refusal names. The admin still sees the row."""
    sfx = uuid.uuid4().hex[:8]
    admin = sqlite_server.client()
    hidden_ns, key = f"vault_{sfx}", f"sens_{sfx}"
    admin.request("POST", f"{M}/tags", json={"key": key, "values": ["secret", "public"]})
    admin.rest_catalog().create_namespace(hidden_ns)
    admin.rest_catalog().create_table(f"{hidden_ns}.payroll", pa.schema([("id", pa.int64())]))
    admin.request("POST", f"{M}/tag-assignments", json={"key": key, "value": "secret", "namespace": hidden_ns})
    bob = sqlite_server.client(world.names["bob"], world.secrets["bob"]).rest_catalog()
    with pytest.raises(NoSuchTableError, match=f"no table {hidden_ns}.payroll you may see$"):
        bob.load_table(f"{hidden_ns}.payroll")
    own = world.cli["bob"].ok("audit", "--limit", "1000", "--output", "json")
    assert "payroll" not in own and key not in own and hidden_ns not in own
    assert f"table {world.ns}.open" not in own  # the fixture's refusal of a table bob may not see, likewise
    assert any(r["resource"] == f"table {world.ns}.secret" for r in world.cli["bob"].json("audit"))  # his own table
    recorded = world.cli["admin"].json("audit", "--principal", world.names["bob"], "--denied", "--limit", "1000")
    assert any(r["resource"] == f"table {hidden_ns}.payroll" and f"{key}=secret" in r["reason"] for r in recorded)
    # alice's refusal on a table she may see keeps its reason, tags and all: she may see those.
    rows = world.cli["alice"].json("audit", "--denied", "--limit", "1000")
    assert any(r["resource"] == f"table {world.ns}.secret" and "icemesh grant SELECT" in r["reason"] for r in rows)
