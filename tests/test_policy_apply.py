"""`icemesh policy apply`: plan output, idempotence, all-or-nothing, errors that name the line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid

import pytest

from icemesh.governance import policy_file


def cli(server, *args, secret=None, client_id="admin"):
    env = {**os.environ, "ICEMESH_CATALOG_URI": server.uri, "ICEMESH_CLIENT_ID": client_id,
           "ICEMESH_CLIENT_SECRET": secret or server.admin_secret}
    return subprocess.run([sys.executable, "-m", "icemesh.cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def policy_text(suffix: str, sensitivity: str = "internal", consumer: str | None = None) -> str:
    consumer = consumer or f"svc_consumer_{suffix}"
    return textwrap.dedent(f"""\
        tags:
          domain_{suffix}: [sales, finance]
          sens_{suffix}: [public, internal, confidential]
        roles: [analysts_{suffix}]
        principals:
          svc_producer_{suffix}: {{}}
          svc_consumer_{suffix}: {{roles: [analysts_{suffix}]}}
        namespaces:
          sales_{suffix}: {{owner: svc_producer_{suffix}}}
        assignments:
          - namespace: sales_{suffix}
            tags: {{domain_{suffix}: sales, sens_{suffix}: {sensitivity}}}
        grants:
          - to: {consumer}
            permissions: [SELECT, DESCRIBE]
            tags: {{domain_{suffix}: [sales], sens_{suffix}: [public, internal]}}
        """)


@pytest.fixture
def policy_server(sqlite_server):
    return sqlite_server


def state(server) -> dict:
    admin = server.client()
    return {
        "tags": admin.request("GET", "/management/v1/tags"),
        "principals": [p["name"] for p in admin.request("GET", "/management/v1/principals")],
        "grants": [g["description"] for g in admin.request("GET", "/management/v1/grants")],
        "roles": admin.request("GET", "/management/v1/roles"),
    }


def test_plan_apply_idempotent_and_effective(policy_server, tmp_path):
    suffix = uuid.uuid4().hex[:6]
    path = tmp_path / "policies.yml"
    path.write_text(policy_text(suffix))
    before = state(policy_server)

    planned = cli(policy_server, "policy", "apply", str(path), "--plan", "--output", "json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["applied"] is False and plan["created_principals"] == []
    kinds = sorted((c["op"], c["kind"]) for c in plan["changes"])
    assert kinds.count(("add", "tag")) == 2 and ("add", "namespace") in kinds and ("add", "grant") in kinds
    assert state(policy_server) == before  # --plan changes nothing

    applied = json.loads(cli(policy_server, "policy", "apply", str(path), "--output", "json").stdout)
    assert applied["applied"] and len(applied["changes"]) == len(plan["changes"])
    secrets = {p["name"]: p["client_secret"] for p in applied["created_principals"]}
    assert set(secrets) == {f"svc_producer_{suffix}", f"svc_consumer_{suffix}"}

    again = cli(policy_server, "policy", "apply", str(path))
    assert again.returncode == 0 and "no changes" in again.stdout

    # The policy is in force: the producer owns its namespace and creates a table the consumer may read.
    producer = policy_server.client(f"svc_producer_{suffix}", secrets[f"svc_producer_{suffix}"])
    consumer = policy_server.client(f"svc_consumer_{suffix}", secrets[f"svc_consumer_{suffix}"])
    import pyarrow as pa

    table = producer.rest_catalog().create_table(f"sales_{suffix}.orders", schema=pa.schema([("id", pa.int64())]))
    table.append(pa.table({"id": [1, 2]}))
    assert consumer.rest_catalog().load_table(f"sales_{suffix}.orders").scan().to_arrow().num_rows == 2


def test_changed_file_removes_what_it_no_longer_lists(policy_server, tmp_path):
    suffix = uuid.uuid4().hex[:6]
    path = tmp_path / "policies.yml"
    path.write_text(policy_text(suffix))
    assert cli(policy_server, "policy", "apply", str(path)).returncode == 0
    # Confidential namespace: the consumer's grant no longer matches it; the grant moves to the producer.
    path.write_text(policy_text(suffix, sensitivity="confidential", consumer=f"svc_producer_{suffix}"))
    plan = json.loads(cli(policy_server, "policy", "apply", str(path), "--plan", "--output", "json").stdout)
    ops = sorted((c["op"], c["kind"]) for c in plan["changes"])
    assert ops == [("add", "grant"), ("change", "assignment"), ("remove", "grant")]
    assert cli(policy_server, "policy", "apply", str(path)).returncode == 0
    grants = state(policy_server)["grants"]
    assert any(f"to svc_producer_{suffix}" in g for g in grants)
    assert not any(f"to svc_consumer_{suffix}" in g for g in grants)
    assert any(g.startswith("grant #1: ADMIN on the catalog to admin") for g in grants)  # never removed


@pytest.mark.parametrize("breakage, expected", [
    (lambda t: t.replace("sens_{s}: internal}", "sens_{s}: secret}"),
     "line 12: namespace sales_{s}: tag sens_{s} has no value 'secret'"),
    (lambda t: t.replace("- to: svc_consumer_{s}", "- to: svc_ghost"), "line 14: unknown principal 'svc_ghost'"),
    (lambda t: t + "nonsense: 1\n", "unknown section 'nonsense'"),
    (lambda t: t.replace("roles: [analysts_{s}]\n", "roles: [analysts_{s}\n"), "not valid YAML"),
])
def test_bad_file_changes_nothing_and_names_the_line(policy_server, tmp_path, breakage, expected):
    suffix = uuid.uuid4().hex[:6]
    path = tmp_path / "policies.yml"
    path.write_text(breakage(policy_text(suffix).replace(suffix, "{s}")).replace("{s}", suffix))
    before = state(policy_server)
    result = cli(policy_server, "policy", "apply", str(path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected.replace("{s}", suffix) in lines[0], result.stderr
    assert state(policy_server) == before


def test_non_admin_cannot_apply(policy_server, tmp_path):
    suffix = uuid.uuid4().hex[:6]
    admin = policy_server.client()
    created = admin.request("POST", "/management/v1/principals", json={"name": f"svc_plain_{suffix}"})
    path = tmp_path / "policies.yml"
    path.write_text(policy_text(suffix))
    result = cli(policy_server, "policy", "apply", str(path), client_id=created["name"], secret=created["client_secret"])
    assert result.returncode == 1 and "ADMIN" in result.stderr


def test_planner_is_pure_and_deterministic():
    doc = policy_file.parse(policy_text("x"))
    empty = policy_file.CurrentState({}, set(), {"admin": ()}, {}, {}, {}, [])
    first = policy_file.plan(empty, doc)
    assert [c.describe() for c in first] == [c.describe() for c in policy_file.plan(empty, doc)]
    with pytest.raises(policy_file.PolicyError, match="line 2"):
        policy_file.parse("tags:\n  k: notalist\n")


def test_renamed_table_keeps_its_tags_and_grants(policy_server):
    import pyarrow as pa

    suffix = uuid.uuid4().hex[:6]
    admin = policy_server.client()
    catalog = admin.rest_catalog()
    catalog.create_namespace(f"ren_{suffix}")
    catalog.create_table(f"ren_{suffix}.a", schema=pa.schema([("id", pa.int64()), ("email", pa.string())]))
    admin.request("POST", "/management/v1/tags", json={"key": f"s_{suffix}", "values": ["public", "secret"]})
    admin.request("POST", "/management/v1/tag-assignments",
                  json={"key": f"s_{suffix}", "value": "secret", "table": f"ren_{suffix}.a", "column": "email"})
    reader = admin.request("POST", "/management/v1/principals", json={"name": f"svc_r_{suffix}"})
    admin.request("POST", "/management/v1/grants", json={"permissions": "SELECT", "principal": reader["name"],
                                                          "table": f"ren_{suffix}.a"})
    catalog.rename_table(f"ren_{suffix}.a", f"ren_{suffix}.b")
    shown = admin.request("GET", "/management/v1/effective-tags", params={"resource": f"ren_{suffix}.b"})
    assert shown["columns"]["email"][f"s_{suffix}"]["value"] == "secret"
    check = admin.request("GET", "/management/v1/access", params={"principal": reader["name"], "resource": f"ren_{suffix}.b"})
    assert check["decision"] == "ALLOW"
    # A new table under the old name inherits neither.
    catalog.create_table(f"ren_{suffix}.a", schema=pa.schema([("id", pa.int64()), ("email", pa.string())]))
    shown = admin.request("GET", "/management/v1/effective-tags", params={"resource": f"ren_{suffix}.a"})
    assert f"s_{suffix}" not in shown["columns"]["email"]
    check = admin.request("GET", "/management/v1/access", params={"principal": reader["name"], "resource": f"ren_{suffix}.a"})
    assert check["decision"] == "DENY"


DOMAIN = """\
tags:
  domain: [sales, finance]
roles: [analysts]
principals:
  svc_sales: {}
  svc_finance: {roles: [analysts]}
namespaces:
  sales: {owner: svc_sales}
assignments:
  - namespace: sales
    tags: {domain: sales}
grants:
  - to: svc_finance
    permissions: [SELECT]
    tags: {domain: [sales]}
"""


@pytest.mark.parametrize("old, new, expected", [
    ("grants:", "grant:", "line 12: unknown section 'grant' (did you mean 'grants'?); the sections are tags, roles"),
    ("  - to: svc_finance", "  - to: svc_finace",
     "line 13: unknown principal 'svc_finace' (did you mean 'svc_finance'?); declare it under principals:"),
    ("    permissions: [SELECT]", "    permision: [SELECT]",
     "line 14: grant: unknown key 'permision' (did you mean 'permissions'?); a grant takes to, role, permissions"),
    ("    tags: {domain: [sales]}", "    tags: {domian: [sales]}",
     "line 15: grant: unknown tag key 'domian' (did you mean 'domain'?); declare it under tags:"),
    ("    tags: {domain: [sales]}", "    tags: {domain: [slaes]}",
     "line 15: grant: tag domain has no value 'slaes' (did you mean 'sales'?); allowed values are sales, finance"),
    ("{roles: [analysts]}", "{role: [analysts]}",
     "line 6: principal: unknown key 'role' (did you mean 'roles'?); a principal takes roles"),
    ("{roles: [analysts]}", "{roles: [analyst]}",
     "line 6: principal svc_finance: unknown role 'analyst' (did you mean 'analysts'?); declare it under roles:"),
    ("{owner: svc_sales}", "{ownr: svc_sales}",
     "line 8: namespace: unknown key 'ownr' (did you mean 'owner'?); a namespace takes owner"),
    ("{owner: svc_sales}", "{owner: svc_sale}",
     "line 8: namespace sales: unknown owner 'svc_sale' (did you mean 'svc_sales'?); declare it under principals:"),
    ("  - namespace: sales\n", "  - namespace: sals\n",
     "line 10: namespace sals does not exist (did you mean 'sales'?); declare it under namespaces:"),
    ("    tags: {domain: sales}", "    tag: {domain: sales}",
     "line 11: assignment: unknown key 'tag' (did you mean 'tags'?); an assignment takes namespace, table, column, tags"),
    ("namespaces:\n  sales: {owner: svc_sales}\n", "",
     "line 8: namespace sales does not exist; declare it under namespaces: (sales: {owner: svc_sales}) or create it "
     "with icemesh namespaces create sales"),
], ids=["section", "principal", "grant-key", "tag-key", "tag-value", "principal-key", "role", "namespace-key",
        "owner", "namespace", "assignment-key", "how-to-create"])
def test_misspellings_name_the_line_of_the_key_and_what_was_meant(old, new, expected):
    assert old in DOMAIN
    empty = policy_file.CurrentState({}, set(), {"admin": ()}, {}, {}, {}, [])
    with pytest.raises(policy_file.PolicyError) as error:
        policy_file.plan(empty, policy_file.parse(DOMAIN.replace(old, new)))
    assert str(error.value).startswith(expected), str(error.value)
    assert policy_file.plan(empty, policy_file.parse(DOMAIN))  # the file itself is right


def test_one_policy_file_says_eu_analysts_see_eu_rows_with_emails_hashed(policy_server, tmp_path):
    """Issue 21's sentence as a policy file: analysts see the EU rows of `domain=sales` products, emails
    hashed and every pii=yes column nulled; re-applying changes nothing; bad filters name their line."""
    import hashlib

    import pyarrow as pa

    import icemesh

    suffix = uuid.uuid4().hex[:6]
    text = policy_text(suffix).replace(
        f"  sens_{suffix}: [public, internal, confidential]\n",
        f"  sens_{suffix}: [public, internal, confidential]\n  pii_{suffix}: ['yes', 'no']\n",
    ) + textwrap.indent(textwrap.dedent(f"""\
        rows: "region = 'EU'"
        masks: {{email: sha256}}
        mask_tags: {{pii_{suffix}=yes: "null"}}
        """), "    ")
    path = tmp_path / "policies.yml"
    path.write_text(text)
    applied = cli(policy_server, "policy", "apply", str(path), "--output", "json")
    assert applied.returncode == 0, applied.stderr
    secrets = {p["name"]: p["client_secret"] for p in json.loads(applied.stdout)["created_principals"]}
    again = cli(policy_server, "policy", "apply", str(path))
    assert "no changes" in again.stdout, again.stdout + again.stderr

    admin = policy_server.client()
    schema = pa.schema([("id", pa.int64()), ("region", pa.string()), ("email", pa.string()), ("phone", pa.string())])
    rows = [{"id": i, "region": ["EU", "US"][i % 2], "email": f"u{i}@x.org", "phone": f"+33 {i}"} for i in range(6)]
    table = admin.rest_catalog().create_table(f"sales_{suffix}.people", schema=schema)
    table.append(pa.Table.from_pylist(rows, schema=schema))
    admin.request("POST", "/management/v1/tag-assignments", json={"key": f"pii_{suffix}", "value": "yes",
                                                                  "table": f"sales_{suffix}.people", "column": "phone"})
    consumer = f"svc_consumer_{suffix}"
    expected = sorted((r["id"], r["region"], hashlib.sha256(r["email"].encode()).hexdigest(), None)
                      for r in rows if r["region"] == "EU")
    with icemesh.connect(policy_server.uri, client_id=consumer, client_secret=secrets[consumer]) as mesh:
        for engine in ("duckdb", "polars"):
            got = mesh.sql(f"SELECT id, region, email, phone FROM sales_{suffix}.people", engine=engine)
            assert sorted(tuple(r.values()) for r in got.to_pylist()) == expected, engine
    check = json.loads(cli(policy_server, "access", "check", consumer, f"sales_{suffix}.people", "--output", "json").stdout)
    assert check["row_filter"] == "region = 'EU'" and check["masks"] == {"email": "sha256", "phone": "null"}

    before = state(policy_server)
    bad = [("rows: \"region = 'EU'\"", "rows: \"region = \"", "Invalid row filter"),
           ("masks: {email: sha256}", "masks: {email: scramble}", "Unknown mask 'scramble'"),
           ("permissions: [SELECT, DESCRIBE]", "permissions: [SELECT, INSERT]", "limit SELECT")]
    for old, new, message in bad:
        path.write_text(text.replace(old, new))
        refused = cli(policy_server, "policy", "apply", str(path))
        assert refused.returncode == 1 and message in refused.stderr and "line " in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and state(policy_server) == before


def test_a_json_policy_plans_as_its_yaml_and_its_errors_name_the_line():
    """JSON is YAML's subset (machines export it) and is read by the json module: the same plan, and an error
    still names the line, as in the YAML file."""
    import yaml

    doc = yaml.safe_load(policy_text("x"))
    as_json = json.dumps(doc, indent=1)
    empty = policy_file.CurrentState({}, set(), {"admin": ()}, {}, {}, {}, [])
    assert [c.describe() for c in policy_file.plan(empty, policy_file.parse(as_json))] == \
        [c.describe() for c in policy_file.plan(empty, policy_file.parse(policy_text("x")))]
    broken = json.dumps({**doc, "tags": {**doc["tags"], "pii": "yes"}}, indent=1)
    line = next(i for i, text in enumerate(broken.splitlines(), 1) if '"pii"' in text)
    with pytest.raises(policy_file.PolicyError, match=f"line {line}: tag pii"):
        policy_file.parse(broken)
