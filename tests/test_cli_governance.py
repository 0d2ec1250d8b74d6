"""The governance CLI as a user runs it: `python -m icemesh.cli.main ...` against a real server.

Each command is run the way PRODUCT.md writes it, once as text and once with `--output json` (which must
parse), and checked against what the catalog then enforces. Failures must exit non-zero with exactly one
stderr line `error: ...` and change nothing. Names carry a random suffix: the server is shared.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass

import pyarrow as pa
import pytest
from pyiceberg.exceptions import ForbiddenError, NoSuchTableError

from icemesh.client import CatalogClient


@dataclass
class Cli:
    env: dict[str, str]
    uri: str

    def run(self, *args: str, expect: int = 0, as_principal: tuple[str, str] | None = None) -> subprocess.CompletedProcess:
        env = dict(self.env)
        if as_principal:
            env["ICEMESH_CLIENT_ID"], env["ICEMESH_CLIENT_SECRET"] = as_principal
        proc = subprocess.run([sys.executable, "-m", "icemesh.cli.main", *args], env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == expect, (
            f"icemesh {' '.join(args)}: exit {proc.returncode}, wanted {expect}\nstdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def json(self, *args: str, **kwargs):
        out = self.run(*args, "--output", "json", **kwargs).stdout
        return json.loads(out)

    def fails(self, *args: str) -> str:
        """A refused command: non-zero, nothing on stdout, one stderr line starting `error: `; returns it."""
        proc = subprocess.run([sys.executable, "-m", "icemesh.cli.main", *args], env=self.env, capture_output=True,
                              text=True, timeout=120)
        lines = proc.stderr.splitlines()
        assert proc.returncode == 1, f"icemesh {' '.join(args)}: exit {proc.returncode}\n{proc.stderr}"
        assert len(lines) == 1 and lines[0].startswith("error: "), f"icemesh {' '.join(args)}: stderr {proc.stderr!r}"
        assert proc.stdout == ""
        return lines[0]


@dataclass
class World:
    ns: str
    domain: str
    sensitivity: str
    fin: str
    hr: str


@pytest.fixture(scope="module")
def cli(sqlite_server) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICEMESH_")}
    env.update(ICEMESH_CATALOG_URI=sqlite_server.uri, ICEMESH_CLIENT_ID="admin",
               ICEMESH_CLIENT_SECRET=sqlite_server.admin_secret)
    return Cli(env, sqlite_server.uri)


@pytest.fixture(scope="module")
def world(sqlite_server) -> World:
    """Namespace <ns> with orders(id, amount) and customers(id, name, email), created by the admin."""
    sfx = uuid.uuid4().hex[:8]
    w = World(f"cli_{sfx}", f"domain_{sfx}", f"sensitivity_{sfx}", f"svc_finance_{sfx}", f"svc_hr_{sfx}")
    rest = sqlite_server.client().rest_catalog()
    rest.create_namespace(w.ns)
    orders = pa.schema([("id", pa.int64()), ("amount", pa.float64())])
    customers = pa.schema([("id", pa.int64()), ("name", pa.string()), ("email", pa.string())])
    rest.create_table(f"{w.ns}.orders", orders).append(pa.Table.from_pylist([{"id": 1, "amount": 2.5}], schema=orders))
    rest.create_table(f"{w.ns}.customers", customers).append(
        pa.Table.from_pylist([{"id": 1, "name": "ann", "email": "ann@example.com"}], schema=customers))
    return w


@pytest.fixture(scope="module")
def people(cli, world) -> dict[str, dict]:
    """`principals create`, once with --output json and once as text (the secret is shown once)."""
    fin = cli.json("principals", "create", world.fin)
    text = cli.run("principals", "create", world.hr).stdout
    secret = re.search(r"client_secret:\s+(\S+)", text)
    assert secret, text
    return {"fin": fin, "hr": {"name": world.hr, "client_id": world.hr, "client_secret": secret.group(1)},
            "hr_text": text}


@pytest.fixture(scope="module")
def tagged(cli, world) -> dict[str, object]:
    """Tag keys and assignments: <ns> domain=sales, sensitivity=internal; orders sensitivity=public
    (overrides the namespace); customers.email sensitivity=confidential."""
    ns, d, s = world.ns, world.domain, world.sensitivity
    out = {
        "create_json": cli.json("tags", "create", d, "--values", "sales,finance,hr"),
        "create_text": cli.run("tags", "create", s, "--values", "public, internal, confidential").stdout,
        "assign_ns_json": cli.json("tags", "assign", f"{d}=sales", "--namespace", ns),
        "assign_ns_text": cli.run("tags", "assign", f"{s}=internal", "--namespace", ns).stdout,
        "assign_table": cli.json("tags", "assign", f"{s}=public", "--table", f"{ns}.orders"),
        "assign_column": cli.json("tags", "assign", f"{s}=confidential", "--table", f"{ns}.customers", "--column", "email"),
    }
    return out


@pytest.fixture(scope="module")
def tag_grant(cli, world, people, tagged) -> dict:
    return cli.json("grant", "SELECT,DESCRIBE", "--to", world.fin, "--tags", f"{world.domain}=sales",
                    "--tags", f"{world.sensitivity}=public,internal")


def test_principals_create_and_list(cli, world, people):
    fin = people["fin"]
    assert {"name", "client_id", "client_secret"} <= set(fin)
    assert fin["name"] == fin["client_id"] == world.fin and len(fin["client_secret"]) >= 16
    assert "shown once" in people["hr_text"] and f"client_id:     {world.hr}" in people["hr_text"]
    # The secrets log in.
    for who in ("fin", "hr"):
        me = cli.json("whoami", as_principal=(people[who]["client_id"], people[who]["client_secret"]))
        assert me["name"] == people[who]["name"] and me["admin"] is False
    assert cli.run("whoami").stdout.strip().startswith("admin (admin)")
    listed = {p["name"] for p in cli.json("principals", "list")}
    assert {world.fin, world.hr, "admin"} <= listed
    text = cli.run("principals", "list").stdout
    assert world.fin in text and world.hr in text and "client_secret" not in text.lower()


def test_tags_create_assign_and_show_inheritance(cli, world, tagged):
    ns, d, s = world.ns, world.domain, world.sensitivity
    assert tagged["create_json"] == {"key": d, "values": ["sales", "finance", "hr"]}
    assert tagged["create_text"].strip() == f"created tag {s}: public, internal, confidential"
    assert tagged["assign_ns_json"] == {"key": d, "value": "sales", "resource": f"namespace {ns}"}
    assert tagged["assign_ns_text"].strip() == f"namespace {ns}: {s}=internal"
    assert tagged["assign_table"]["resource"] == f"table {ns}.orders"
    assert tagged["assign_column"]["resource"] == f"column {ns}.customers.email"

    listed = {t["key"]: t["values"] for t in cli.json("tags", "list")}
    assert listed[d] == ["sales", "finance", "hr"] and listed[s] == ["public", "internal", "confidential"]
    assert d in cli.run("tags", "list").stdout

    shown = cli.json("tags", "show", f"{ns}.customers")
    assert shown["type"] == "table" and shown["resource"] == f"{ns}.customers"
    from_ns = f"namespace {ns}"
    assert shown["tags"] == {d: {"value": "sales", "from": from_ns}, s: {"value": "internal", "from": from_ns}}
    assert shown["columns"]["email"] == {d: {"value": "sales", "from": from_ns},
                                         s: {"value": "confidential", "from": f"column {ns}.customers.email"}}
    assert shown["columns"]["name"] == shown["tags"] and shown["columns"]["id"] == shown["tags"]

    orders = cli.json("tags", "show", f"{ns}.orders")
    assert orders["tags"][s] == {"value": "public", "from": f"table {ns}.orders"}  # set lower, overrides
    assert orders["tags"][d] == {"value": "sales", "from": from_ns}
    assert orders["columns"]["amount"][s] == {"value": "public", "from": f"table {ns}.orders"}

    namespace = cli.json("tags", "show", ns)
    assert namespace["type"] == "namespace" and namespace["tags"][s] == {"value": "internal", "from": from_ns}

    text = cli.run("tags", "show", f"{ns}.customers").stdout
    assert f"table {ns}.customers" in text
    assert f"{d}=sales  (from {from_ns})" in text
    email_line = next(line for line in text.splitlines() if line.strip().startswith("column email:"))
    assert f"{s}=confidential" in email_line and f"{d}=sales (inherited)" in email_line


def test_grant_by_tags_and_access_check(cli, world, people, tag_grant, sqlite_server):
    ns, d, s = world.ns, world.domain, world.sensitivity
    assert tag_grant["grantee"] == {"type": "principal", "name": world.fin}
    assert tag_grant["permissions"] == ["DESCRIBE", "SELECT"]
    assert tag_grant["tags"] == {d: ["sales"], s: ["internal", "public"]}
    assert isinstance(tag_grant["id"], int)

    check = cli.json("access", "check", world.fin, f"{ns}.customers")
    assert check["decision"] == "ALLOW" and check["action"] == "SELECT" and check["principal"] == world.fin
    assert check["resource"] == f"table {ns}.customers"
    assert check["visible_columns"] == ["id", "name"] and check["hidden_columns"] == ["email"]
    assert check["grants"] == [tag_grant["id"]]
    assert set(check) >= {"reason", "tags"}

    text = cli.run("access", "check", world.fin, f"{ns}.orders").stdout
    assert text.startswith(f"ALLOW: {world.fin} SELECT on table {ns}.orders")
    assert "visible columns: id, amount" in text

    denied = cli.json("access", "check", world.fin, f"{ns}.customers", "--action", "INSERT")
    assert denied["decision"] == "DENY" and denied["action"] == "INSERT" and denied["grants"] == []
    assert f"{world.fin} lacks INSERT on table {ns}.customers" in denied["reason"]

    text = cli.run("access", "check", world.hr, f"{ns}.orders").stdout
    assert text.startswith(f"DENY: {world.hr} SELECT on table {ns}.orders") and "lacks SELECT" in text

    # What the CLI says is what the catalog enforces.
    fin = CatalogClient(sqlite_server.uri, client_id=world.fin, client_secret=people["fin"]["client_secret"])
    limited = fin.rest_catalog(**{"header.X-Icemesh-Column-Limits": "apply"}).load_table(f"{ns}.customers")
    assert [f.name for f in limited.schema().fields] == check["visible_columns"]
    with pytest.raises(ForbiddenError, match="lacks INSERT"):
        fin.rest_catalog().load_table(f"{ns}.orders").append(
            pa.Table.from_pylist([{"id": 9, "amount": 1.0}], schema=pa.schema([("id", pa.int64()), ("amount", pa.float64())])))


def test_grant_by_table_list_and_revoke(cli, world, people):
    ns, hr = world.ns, world.hr
    text = cli.run("grant", "SELECT", "--to", hr, "--table", f"{ns}.orders").stdout
    assert re.match(rf"grant #\d+: SELECT on table {re.escape(ns)}\.orders to {hr}", text.strip()), text
    listed = cli.json("grants", "list", "--principal", hr)
    assert len(listed) == 1
    grant = listed[0]
    assert grant["table"] == f"{ns}.orders" and grant["permissions"] == ["SELECT"]
    assert grant["grantee"] == {"type": "principal", "name": hr}
    assert grant["description"] in cli.run("grants", "list", "--principal", hr).stdout
    assert cli.json("access", "check", hr, f"{ns}.orders")["decision"] == "ALLOW"

    columns = cli.json("grant", "SELECT", "--to", hr, "--table", f"{ns}.customers", "--columns", "id,name")
    assert columns["columns"] == ["id", "name"] and columns["table"] == f"{ns}.customers"
    check = cli.json("access", "check", hr, f"{ns}.customers")
    assert check["decision"] == "ALLOW" and check["visible_columns"] == ["id", "name"]
    assert {g["id"] for g in cli.json("grants", "list", "--principal", hr)} == {grant["id"], columns["id"]}

    revoked = cli.json("revoke", "SELECT", "--to", hr, "--table", f"{ns}.orders")
    assert [g["id"] for g in revoked["revoked"]] == [grant["id"]]
    text = cli.run("revoke", "--id", str(columns["id"])).stdout
    assert text.strip().startswith(f"revoked from grant #{columns['id']}")
    assert cli.json("grants", "list", "--principal", hr) == []
    assert cli.run("grants", "list", "--principal", hr).stdout.strip() == "(none)"
    assert cli.json("access", "check", hr, f"{ns}.orders")["decision"] == "DENY"
    assert cli.json("access", "check", hr, f"{ns}.customers")["decision"] == "DENY"


def test_audit_shows_denials(cli, world, people, tag_grant, sqlite_server):
    ns = world.ns
    fin = CatalogClient(sqlite_server.uri, client_id=world.fin, client_secret=people["fin"]["client_secret"]).rest_catalog()
    with pytest.raises(ForbiddenError, match="column limits"):
        fin.load_table(f"{ns}.customers")
    hr = CatalogClient(sqlite_server.uri, client_id=world.hr, client_secret=people["hr"]["client_secret"]).rest_catalog()
    with pytest.raises(NoSuchTableError, match="you may see"):  # invisible to hr: as if it did not exist
        hr.load_table(f"{ns}.orders")

    rows = cli.json("audit", "--principal", world.fin, "--denied", "--limit", "1000")
    assert rows and all(r["principal"] == world.fin and r["decision"] == "DENY" and r["allowed"] is False for r in rows)
    row = next(r for r in rows if r["resource"] == f"table {ns}.customers")
    assert row["action"] == "SELECT" and "column limits" in row["reason"]
    assert set(row) >= {"when", "at", "principal", "decision", "action", "resource", "reason"}
    everything = cli.json("audit", "--principal", world.fin, "--limit", "1000")
    assert any(r["decision"] == "ALLOW" for r in everything)

    text = cli.run("audit", "--principal", world.hr, "--denied").stdout
    header, *lines = text.splitlines()
    assert header.split()[:6] == ["WHEN", "PRINCIPAL", "DECISION", "ACTION", "RESOURCE", "REASON"]
    assert any(world.hr in line and "DENY" in line and f"table {ns}.orders" in line for line in lines)


def _state(admin: CatalogClient, world: World) -> dict:
    """Everything a refused command might have touched, read over HTTP as the admin."""
    def show(resource: str) -> dict:
        return admin.request("GET", "/management/v1/effective-tags", params={"resource": resource})

    return {
        "tags": admin.request("GET", "/management/v1/tags"),
        "orders": show(f"{world.ns}.orders"),
        "customers": show(f"{world.ns}.customers"),
        "namespace": show(world.ns),
        "grants": admin.request("GET", "/management/v1/grants"),
        "principals": [p["name"] for p in admin.request("GET", "/management/v1/principals")],
    }


def test_bad_input_is_one_error_line_and_changes_nothing(cli, world, people, tag_grant, sqlite_server):
    ns, d, s = world.ns, world.domain, world.sensitivity
    missing_key, nobody = f"nokey_{uuid.uuid4().hex[:6]}", f"nobody_{uuid.uuid4().hex[:6]}"
    admin = sqlite_server.client()
    before = _state(admin, world)
    cases = [
        # unknown tag value
        (["tags", "assign", f"{s}=secret", "--table", f"{ns}.orders"], "secret"),
        (["tags", "assign", f"{s}=secret", "--table", f"{ns}.orders", "--output", "json"], "secret"),
        (["grant", "SELECT", "--to", world.hr, "--tags", f"{d}=nowhere"], "nowhere"),
        # unknown principal
        (["grant", "SELECT", "--to", nobody, "--table", f"{ns}.orders"], nobody),
        (["grant", "SELECT", "--to", nobody, "--table", f"{ns}.orders", "--output", "json"], nobody),
        (["access", "check", nobody, f"{ns}.orders"], nobody),
        # tag key that does not exist
        (["tags", "assign", f"{missing_key}=x", "--namespace", ns], missing_key),
        (["grant", "SELECT", "--to", world.hr, "--tags", f"{missing_key}=x"], missing_key),
        (["grant", "SELECT", "--to", world.hr, "--tags", f"{d}=sales", "--tags", f"{missing_key}=x"], missing_key),
        # and a few more ways to get it wrong
        (["tags", "assign", f"{s}=public", "--table", f"{ns}.customers", "--column", "no_such_column"], "no_such_column"),
        (["tags", "assign", f"{s}=public", "--table", f"{ns}.no_such_table"], "no_such_table"),
        (["tags", "create", d, "--values", "a,b"], d),
        (["principals", "create", world.fin, "--output", "json"], world.fin),
        (["grant", "SELEKT", "--to", world.hr, "--table", f"{ns}.orders"], "SELEKT"),
        (["revoke", "SELECT", "--to", world.hr, "--table", f"{ns}.customers"], "No grant"),
        (["tags", "show", f"{ns}.nothing_here"], "nothing_here"),
    ]
    for args, mentions in cases:
        line = cli.fails(*args)
        assert mentions in line, (args, line)
    assert _state(admin, world) == before


@pytest.mark.parametrize("args", [
    ["tags", "assign", "sensitivity", "--table", "x.y"],
    ["revoke", "--to", "someone"],
    ["grant", "SELECT", "--to", "someone", "--bogus"],
], ids=["malformed-assignment", "revoke-without-permissions", "unknown-option"])
def test_usage_errors_are_one_error_line(cli, args):
    proc = subprocess.run([sys.executable, "-m", "icemesh.cli.main", *args], env=cli.env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
