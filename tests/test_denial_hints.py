"""A denial says which permission is missing and prints the `icemesh grant` command that allows it.

The hint must be a command that runs: real CLI syntax (`--table ns.t`, `--namespace ns`, `--catalog`, tags as
`--tags k=v --tags k2=v2`), never prose such as `on table x`. Proven twice: the text of Decision.message() for
each kind of resource, and end to end, where the command is taken from a real 403, run as the admin, and the
same request then succeeds.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import uuid

import pyarrow as pa
import pytest
from pyiceberg.exceptions import ForbiddenError

from icemesh.governance.evaluator import Decision, Evaluator
from icemesh.governance.permissions import Permission as P
from icemesh.governance.policy import Policy
from icemesh.governance.resources import NamespaceRef, TableRef

M = "/management/v1"


def _evaluator(**policy) -> Evaluator:
    return Evaluator(Policy(**policy))


def test_table_hint_names_the_table_and_its_tags_as_flags():
    table = TableRef(NamespaceRef(("sales",)), "orders")
    ev = _evaluator(namespace_tags={NamespaceRef(("sales",)): {"domain": "sales"}},
                    table_tags={table: {"sensitivity": "internal"}})
    assert ev.decide_table("ana", P.SELECT, table, ["id"]).message() == (
        "ana lacks SELECT on table sales.orders; an admin can allow it with: "
        "icemesh grant SELECT --to ana --table sales.orders "
        "(or by its tags: icemesh grant SELECT --to ana --tags domain=sales --tags sensitivity=internal)")


def test_namespace_catalog_and_admin_hints():
    ev = _evaluator()
    assert ev.decide_namespace("ana", P.CREATE_TABLE, NamespaceRef(("sales", "emea"))).message() == (
        "ana lacks CREATE_TABLE on namespace sales.emea; an admin can allow it with: "
        "icemesh grant CREATE_TABLE --to ana --namespace sales.emea")
    catalog = Decision(False, "ana", P.CREATE_TABLE, "the catalog", "no grant")
    assert catalog.message().endswith("icemesh grant CREATE_TABLE --to ana --catalog")
    admin = Decision(False, "ana", P.ADMIN, "principals", "only admins", resource_tags={"domain": "x"})
    assert admin.message().endswith("icemesh grant ADMIN --to ana --catalog")  # ADMIN exists on the catalog only


def test_hint_never_uses_prose_and_quotes_names_a_shell_would_split():
    ns = NamespaceRef(("it's",))
    message = _evaluator(namespace_tags={ns: {"domain": "a b"}}).decide_namespace("ana", P.DESCRIBE, ns).message()
    assert " on namespace it's;" in message  # the reason names the resource as it is
    commands = message.split("with: ", 1)[1]
    assert " on namespace" not in commands and " on table" not in commands
    first = commands.split(" (or by its tags: ")[0]
    assert shlex.split(first) == ["icemesh", "grant", "DESCRIBE", "--to", "ana", "--namespace", "it's"]
    assert shlex.split(commands.split("(or by its tags: ")[1].rstrip(")"))[-2:] == ["--tags", "domain=a b"]


def _icemesh(server, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICEMESH_")}
    env.update(ICEMESH_CATALOG_URI=server.uri, ICEMESH_CLIENT_ID="admin", ICEMESH_CLIENT_SECRET=server.admin_secret)
    return subprocess.run([sys.executable, "-m", "icemesh.cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def _hints(message: str) -> tuple[list[str], list[str]]:
    """The named command and the tag command of a denial, as argv lists."""
    named, _sep, tagged = message.split("an admin can allow it with: ", 1)[1].partition(" (or by its tags: ")
    return shlex.split(named), shlex.split(tagged.rstrip(")")) if tagged else []


@pytest.fixture(scope="module")
def world(sqlite_server):
    sfx = uuid.uuid4().hex[:8]
    admin = sqlite_server.client()
    ns, key = f"hint_{sfx}", f"dom_{sfx}"
    admin.request("POST", f"{M}/tags", json={"key": key, "values": ["sales", "hr"]})
    catalog = admin.rest_catalog()
    catalog.create_namespace(ns)
    schema = pa.schema([("id", pa.int64())])
    for name in ("by_name", "by_tags"):
        catalog.create_table(f"{ns}.{name}", schema).append(pa.table({"id": [1]}, schema=schema))
    admin.request("POST", f"{M}/tag-assignments", json={"key": key, "value": "sales", "namespace": ns})
    readers = {}
    for who in ("named", "tagged", "creator"):
        created = admin.request("POST", f"{M}/principals", json={"name": f"svc_{who}_{sfx}"})
        readers[who] = sqlite_server.client(created["name"], created["client_secret"])
        if who != "creator":  # they may see the tables (else a load is a plain 404) but not read them
            admin.request("POST", f"{M}/grants", json={"permissions": "DESCRIBE", "principal": created["name"],
                                                       "namespace": ns})
    return ns, key, readers


@pytest.mark.parametrize("form", ["named", "tagged"])
def test_the_printed_command_runs_and_allows_the_read(sqlite_server, world, form):
    ns, key, readers = world
    table = f"{ns}.by_name" if form == "named" else f"{ns}.by_tags"
    reader = readers[form].rest_catalog()
    with pytest.raises(ForbiddenError) as denied:
        reader.load_table(table)
    named, tagged = _hints(str(denied.value))
    command = named if form == "named" else tagged
    assert command[:2] == ["icemesh", "grant"] and (f"{key}=sales" in command) == (form == "tagged")
    ran = _icemesh(sqlite_server, *command[1:])
    assert ran.returncode == 0, ran.stderr
    assert re.match(r"grant #\d+: SELECT on ", ran.stdout)
    assert reader.load_table(table).scan().to_arrow().num_rows == 1


def test_the_printed_catalog_command_runs_and_allows_the_create(sqlite_server, world):
    _ns, _key, readers = world
    creator = readers["creator"].rest_catalog()
    mine = f"made_{uuid.uuid4().hex[:8]}"
    with pytest.raises(ForbiddenError) as denied:
        creator.create_namespace(mine)
    named, tagged = _hints(str(denied.value))
    assert named[-1] == "--catalog" and tagged == []
    ran = _icemesh(sqlite_server, *named[1:])
    assert ran.returncode == 0, ran.stderr
    creator.create_namespace(mine)
