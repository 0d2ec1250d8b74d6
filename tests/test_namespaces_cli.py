"""`icemesh namespaces create | list | show | drop` against a real server, as the admin and as a domain principal.

A namespace created for a domain is owned by the domain's principal from the first moment (one write, ADMIN
needed); created without --owner it is the caller's, exactly as the REST create (CREATE_TABLE on the
catalog). A caller learns nothing about a namespace it may not see: `show` and `drop` answer as for a missing
one. Grants and tags naming a missing namespace or table say how to create it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pyarrow as pa
import pytest

from tests.cli_helpers import As

M = "/management/v1"
SCHEMA = pa.schema([("id", pa.int64())])


@dataclass
class World:
    sfx: str
    domain: str        # the namespace's name, and `svc_<domain>` its principal
    admin: As
    owner: As
    outsider: As
    creator: As        # may create top-level namespaces (CREATE_TABLE on the catalog), owns nothing yet
    names: dict[str, str]


@pytest.fixture(scope="module")
def world(sqlite_server) -> World:
    sfx = uuid.uuid4().hex[:8]
    admin = As.principal(sqlite_server)
    names, secrets = {}, {}
    for who in ("owner", "outsider", "creator"):
        name = f"svc_shop{sfx}" if who == "owner" else f"svc_{who}_{sfx}"
        created = admin.json("principals", "create", name)
        names[who], secrets[who] = name, created["client_secret"]
    admin.ok("grant", "CREATE_TABLE", "--to", names["creator"], "--catalog")
    admin.ok("tags", "create", f"dom_{sfx}", "--values", "shop,other")
    return World(sfx, f"shop{sfx}", admin, *(As.principal(sqlite_server, names[w], secrets[w])
                                             for w in ("owner", "outsider", "creator")), names)


def test_admin_creates_a_namespace_owned_by_the_domain_principal(world, sqlite_server):
    created = world.admin.json("namespaces", "create", world.domain, "--owner", world.names["owner"],
                               "--property", "comment=the shop domain", "--property", "team=shop")
    assert created == {"namespace": world.domain, "owner": world.names["owner"],
                       "properties": {"comment": "the shop domain", "team": "shop"}, "warehouse": "default"}
    # The owner holds every permission at once, with no grant: it creates a table and tags it.
    catalog = sqlite_server.client(world.names["owner"], world.owner.env["ICEMESH_CLIENT_SECRET"]).rest_catalog()
    catalog.create_table(f"{world.domain}.orders", SCHEMA).append(pa.table({"id": [1]}, schema=SCHEMA))
    world.owner.ok("tags", "assign", f"dom_{world.sfx}=shop", "--namespace", world.domain)
    me = world.owner.json("whoami")
    assert me["owns"] == {"namespaces": [world.domain], "tables": [f"{world.domain}.orders"]}
    assert f"owns namespaces: {world.domain}" in world.owner.ok("whoami")

    for who in (world.admin, world.owner):
        shown = who.json("namespaces", "show", world.domain)
        assert shown["owner"] == world.names["owner"] and shown["tables"] == ["orders"]
        assert shown["properties"] == {"comment": "the shop domain", "team": "shop"}
        assert shown["tags"] == {f"dom_{world.sfx}": {"value": "shop", "from": f"namespace {world.domain}"}}
    text = world.owner.ok("namespaces", "show", world.domain)
    assert f"owner: {world.names['owner']}" in text and "tables: orders" in text and "property team=shop" in text

    listed = {row["namespace"]: row for row in world.admin.json("namespaces", "list")}
    assert listed[world.domain] == {"namespace": world.domain, "owner": world.names["owner"],
                                    "tags": {f"dom_{world.sfx}": "shop"}}
    assert world.domain in world.owner.ok("namespaces", "list")


def test_a_caller_learns_nothing_about_a_namespace_it_may_not_see(world):
    world.admin.run("namespaces", "create", world.domain, "--owner", world.names["owner"])  # may already exist
    assert world.domain not in {r["namespace"] for r in world.outsider.json("namespaces", "list")}
    missing = f"nothere{world.sfx}"
    for verb in ("show", "drop"):
        hidden = world.outsider.fails("namespaces", verb, world.domain)
        absent = world.outsider.fails("namespaces", verb, missing)
        assert hidden == f"error: no namespace {world.domain} you may see"
        assert absent == hidden.replace(world.domain, missing)  # the same answer: existence does not leak
    assert world.admin.json("namespaces", "show", world.domain)["owner"] == world.names["owner"]  # still there


def test_domain_principal_creates_its_own_and_cannot_give_one_away(world):
    mine = f"own{world.sfx}"
    created = world.creator.json("namespaces", "create", mine)
    assert created["owner"] == world.names["creator"]
    assert world.creator.json("namespaces", "create", f"{mine}.emea", "--owner", world.names["creator"])["owner"] \
        == world.names["creator"]  # naming oneself is the plain create (nested: CREATE_TABLE on the parent, owned)
    assert world.creator.json("whoami")["owns"]["namespaces"] == [mine, f"{mine}.emea"]

    gift = f"gift{world.sfx}"
    line = world.creator.fails("namespaces", "create", gift, "--owner", world.names["outsider"])
    assert line == (f"error: {world.names['creator']} lacks ADMIN on namespaces owned by another principal; an admin "
                    f"can allow it with: icemesh grant ADMIN --to {world.names['creator']} --catalog")
    assert world.admin.fails("namespaces", "show", gift) == f"error: no namespace {gift} you may see"

    line = world.outsider.fails("namespaces", "create", f"nope{world.sfx}")
    assert line.endswith(f"icemesh grant CREATE_TABLE --to {world.names['outsider']} --catalog")

    nobody = f"nobody_{world.sfx}"
    assert world.admin.fails("namespaces", "create", gift, "--owner", nobody) == (
        f"error: Unknown principal '{nobody}': create it first with `icemesh principals create {nobody}`")
    assert world.admin.fails("namespaces", "create", gift, "--property", "novalue", code=2).startswith(
        "error: Write a property as KEY=VALUE")


def test_drop_as_owner_refused_while_not_empty(world, sqlite_server):
    ns = f"drop{world.sfx}"
    world.admin.ok("namespaces", "create", ns, "--owner", world.names["owner"])
    catalog = sqlite_server.client(world.names["owner"], world.owner.env["ICEMESH_CLIENT_SECRET"]).rest_catalog()
    catalog.create_table(f"{ns}.t", SCHEMA)
    line = world.owner.fails("namespaces", "drop", ns)
    assert line == f"error: Namespace {ns} is not empty: it contains table t; drop its tables first"
    catalog.drop_table(f"{ns}.t")
    assert world.owner.json("namespaces", "drop", ns) == {"dropped": ns}
    assert ns not in world.owner.json("whoami")["owns"]["namespaces"]
    assert world.admin.fails("namespaces", "show", ns) == f"error: no namespace {ns} you may see"


def test_grants_and_tags_on_missing_resources_say_how_to_create_them(world):
    missing, key = f"shop{world.sfx}x", f"dom_{world.sfx}"
    fin = world.names["outsider"]
    cases = [
        (["grant", "SELECT", "--to", fin, "--namespace", missing],
         f"Namespace {missing} does not exist: create it with icemesh namespaces create {missing}"),
        (["tags", "assign", f"{key}=shop", "--namespace", missing],
         f"Namespace {missing} does not exist: create it with icemesh namespaces create {missing}"),
        (["grant", "SELECT", "--to", fin, "--table", f"{missing}.orders"],
         f"Namespace {missing} does not exist: create it with icemesh namespaces create {missing}"),
        (["grant", "SELECT", "--to", fin, "--table", f"{world.domain}.nosuch"],
         f"Table {world.domain}.nosuch does not exist: create it first (a dbt model with materialized='iceberg' "
         f"publishing to {world.domain}, or CREATE TABLE from an engine); a new table's first tags are declared in "
         "the commit that creates it (table property icemesh.tags; dbt's icemesh_tags do this)"),
    ]
    world.admin.run("namespaces", "create", world.domain, "--owner", world.names["owner"])
    for args, expected in cases:
        assert world.admin.fails(*args) == f"error: {expected}", args
    # The domain's own principal (svc_<namespace>) is named as the owner to create it with.
    absent = f"{world.domain}.sub"
    assert world.admin.fails("grant", "SELECT", "--to", fin, "--namespace", absent) == (
        f"error: Namespace {absent} does not exist: create it with icemesh namespaces create {absent} "
        f"--owner {world.names['owner']}")
