"""Errors a user meets, each one line that says what to do, asserted by its text.

- `principals create --role nosuchrole` is refused unless `--create-role` (a typo would silently make a role);
- with ICEMESH_CATALOG_URI unset, every client error names the URI it tried;
- a producer's `dbt build` (or a consumer's `dbt parse`) that cannot reach or log in to the catalog fails with one
  dbt Runtime Error line and no Python traceback.
(`icemesh serve` on a port in use: tests/test_serve_cli.py; policy files: tests/test_policy_apply.py; denial
hints: tests/test_denial_hints.py.)
"""

from __future__ import annotations

import os
import uuid

import pytest

from icemesh import client as client_module
from icemesh.client import CatalogClient, ClientError
from icemesh.server.process import free_port
from tests.cli_helpers import As
from tests.dbt_helpers import dbt_project

M = "/management/v1"


def test_an_unknown_role_is_refused_unless_asked_to_create_it(sqlite_server):
    admin = As.principal(sqlite_server)
    sfx = uuid.uuid4().hex[:8]
    name, role = f"svc_roles_{sfx}", f"analysts_{sfx}"
    line = admin.fails("principals", "create", name, "--role", role)
    assert line == (f"error: Unknown role '{role}': create it with `icemesh roles create {role}`, or run "
                    f"`icemesh principals create {name} --role {role} --create-role`")
    assert name not in {p["name"] for p in admin.json("principals", "list")}  # nothing was created
    assert role not in {r["name"] for r in admin.json("roles", "list")}

    created = admin.json("principals", "create", name, "--role", role, "--create-role")
    assert created["roles"] == [role] and {"name": role, "members": [name]} in admin.json("roles", "list")
    other = f"other_{sfx}"
    assert admin.fails("principals", "set-roles", name, "--role", role, "--role", other) == (
        f"error: Unknown role '{other}': create it with `icemesh roles create {other}`, or run "
        f"`icemesh principals set-roles {name} --role {role} --role {other} --create-role`")
    admin.ok("roles", "create", other)
    assert admin.json("principals", "set-roles", name, "--role", role, "--role", other)["roles"] == sorted([role, other])


def test_with_the_uri_unset_every_cli_error_names_the_uri_it_tried(sqlite_server):
    """Whatever listens on the default address (nothing, or someone's catalog refusing these credentials), the
    line names it and says why that address was used."""
    env = As.principal(sqlite_server, "nobody", "wrong").env
    del env["ICEMESH_CATALOG_URI"]
    unset = As(env)
    for args in (["whoami"], ["grants", "list"], ["namespaces", "list", "--output", "json"],
                 ["query", "select * from nowhere.nothing"]):
        line = unset.fails(*args)
        assert "http://127.0.0.1:8181" in line and "ICEMESH_CATALOG_URI is unset" in line, (args, line)
    chosen = As({**env, "ICEMESH_CATALOG_URI": sqlite_server.uri}).fails("whoami")
    assert chosen == (f"error: Login as nobody at {sqlite_server.uri} failed: Unknown client_id or wrong client_secret; "
                      "check ICEMESH_CLIENT_ID and ICEMESH_CLIENT_SECRET")  # a URI the user chose: no note
    gone = f"http://127.0.0.1:{free_port()}"
    assert As({**env, "ICEMESH_CATALOG_URI": gone}).fails("whoami") == (
        f"error: Cannot reach the catalog at {gone} (ConnectError): is `icemesh serve` running there?")


def test_with_the_uri_unset_a_servers_refusal_names_it_too(sqlite_server, monkeypatch):
    """The server's own messages (here a 403) get the note as well; the default address is pointed at the test
    server so that the refusal really comes from a catalog."""
    monkeypatch.setattr(client_module, "DEFAULT_URI", sqlite_server.uri)
    created = sqlite_server.client().request("POST", f"{M}/principals", json={"name": f"svc_plain_{uuid.uuid4().hex[:8]}"})
    plain = CatalogClient(None, client_id=created["name"], client_secret=created["client_secret"])
    with pytest.raises(ClientError) as refused:
        plain.request("GET", f"{M}/principals")
    assert str(refused.value).endswith(f"(catalog {sqlite_server.uri}: ICEMESH_CATALOG_URI is unset)")
    assert refused.value.code == 403 and "lacks ADMIN" in str(refused.value)


def _runtime_error(done) -> list[str]:
    """The lines of dbt's failure: no traceback anywhere, and the icemesh reason on one line."""
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Traceback" not in output and 'File "' not in output, output[-3000:]
    return [line.strip() for line in output.splitlines() if "icemesh:" in line]


@pytest.fixture(scope="module")
def producer(sqlite_server, tmp_path_factory):
    admin = sqlite_server.client()
    name = f"svc_unreach_{uuid.uuid4().hex[:6]}"
    secret = admin.request("POST", f"{M}/principals", json={"name": name})["client_secret"]
    return dbt_project("sales", tmp_path_factory.mktemp("unreachable"), sqlite_server, name, secret)


def test_dbt_build_that_cannot_reach_the_catalog_is_one_runtime_error(producer):
    gone = f"http://127.0.0.1:{free_port()}"
    producer.env["ICEMESH_CATALOG_URI"] = gone
    lines = _runtime_error(producer("build", "--select", "orders", check=False))
    assert lines == [f"icemesh: Cannot reach the catalog at {gone} (ConnectError): is `icemesh serve` running there?"]


def test_dbt_build_that_cannot_log_in_is_one_runtime_error(producer, sqlite_server):
    producer.env.update(ICEMESH_CATALOG_URI=sqlite_server.uri, ICEMESH_CLIENT_SECRET="not-the-secret")
    lines = _runtime_error(producer("build", "--select", "orders", check=False))
    assert lines == [f"icemesh: Login as {producer.env['ICEMESH_CLIENT_ID']} at {sqlite_server.uri} failed: Unknown "
                     "client_id or wrong client_secret; check ICEMESH_CLIENT_ID and ICEMESH_CLIENT_SECRET"]


def test_dbt_parse_of_a_consumer_that_cannot_reach_the_catalog_is_one_runtime_error(sqlite_server, tmp_path):
    consumer = dbt_project(os.path.join("mesh", "orders"), tmp_path, sqlite_server, "nobody", "x")
    consumer.env.pop("ICEMESH_CATALOG_URI")
    done = consumer("parse", check=False)
    [line] = _runtime_error(done)
    assert line.startswith("icemesh: cannot read the products of inventory from the catalog: ")
    assert "http://127.0.0.1:8181" in line and "ICEMESH_CATALOG_URI is unset" in line
    assert "no parse cache at" in line  # a parse-only command with no earlier parse: nothing to fall back on
