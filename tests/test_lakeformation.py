"""Lake Formation as the policy store, against moto over HTTP.

- The governance access matrix (tests/test_governance_http.py) runs unchanged on the Glue backend: its
  tests are imported here and `catalog_server` is the Glue-backed server.
- The demo policy file applied through a Glue-backed server lands in Lake Formation (LF-tags, resource
  tags, LFTagPolicy grants to IAM ARNs) and reads back identically: a second plan is empty, through the
  server and through the CLI talking to Lake Formation directly.
- What an AWS admin grants in Lake Formation to an icemesh identity counts; grants to others are left alone.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from icemesh.backends.aws.lakeformation import PrincipalMapping
from icemesh.governance.policy import PRINCIPAL, ROLE, Grantee
from icemesh.server.process import free_port
from tests.aws import FAKE_AWS_ENV, REGION, boto_client, start_moto
from tests.conftest import start_glue_catalog
from tests.test_governance_http import *  # noqa: F401,F403  (the access matrix, run here on Glue + Lake Formation)

POLICY = Path(__file__).resolve().parent / "policies" / "lakeformation.yml"
ACCOUNT = "123456789012"  # moto's


@pytest.fixture(scope="module")
def catalog_server(glue_server):
    """The access matrix's server: Glue + Lake Formation instead of SQL."""
    return glue_server


@pytest.fixture(scope="module")
def short_ttl_server(glue_server, tmp_path_factory):
    """A second Glue-backed server on the same local database (principals, tokens), issuing 1 s tokens."""
    db = glue_server.args[glue_server.args.index("--db") + 1]
    server = start_glue_catalog(tmp_path_factory, glue_server.moto, "short-ttl", db=db,
                                extra_args=("--token-ttl", "1"), admin_secret=glue_server.admin_secret)
    yield server
    server.stop()


# -- a world of its own for the policy file (its sections are authoritative) ---------------------------------

@pytest.fixture(scope="module")
def policy_moto(tmp_path_factory):
    port = free_port()
    proc = start_moto(tmp_path_factory.mktemp("moto-policy"), port)
    url = f"http://127.0.0.1:{port}"
    boto_client("s3", url).create_bucket(Bucket="icemesh-glue")
    yield url
    proc.kill()
    proc.wait(10)


@pytest.fixture(scope="module")
def policy_server(tmp_path_factory, policy_moto):
    server = start_glue_catalog(tmp_path_factory, policy_moto, "policy")
    yield server
    server.stop()


def icemesh(*args: str, server=None) -> dict | list:
    """The `icemesh` CLI, in process (click's runner): the same commands a team runs, without the start-up cost."""
    from click.testing import CliRunner

    from icemesh.cli.main import cli

    env = dict(FAKE_AWS_ENV)
    if server is not None:
        env.update(ICEMESH_CATALOG_URI=server.uri, ICEMESH_CLIENT_ID="admin", ICEMESH_CLIENT_SECRET=server.admin_secret)
    done = CliRunner().invoke(cli, [*args, "--output", "json"], env=env, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def direct(moto: str) -> list[str]:
    return ["--lakeformation", "--region", REGION, "--endpoint", moto]


def arn(kind: str, name: str) -> str:
    return PrincipalMapping(ACCOUNT).identifier(Grantee(kind, name))


def test_policy_file_lands_in_lake_formation_and_reads_back_identically(policy_server, policy_moto):
    applied = icemesh("policy", "apply", str(POLICY), server=policy_server)
    assert applied["applied"] and applied["changes"]
    assert icemesh("policy", "apply", str(POLICY), "--plan", server=policy_server)["changes"] == []
    # The CLI reading Lake Formation and Glue directly, without the server, finds nothing to do either.
    assert icemesh("policy", "apply", str(POLICY), "--plan", *direct(policy_moto))["changes"] == []

    lf, glue = boto_client("lakeformation", policy_moto), boto_client("glue", policy_moto)
    assert {t["TagKey"]: t["TagValues"] for t in lf.list_lf_tags()["LFTags"]} == {
        "domain": ["supply_chain", "manufacturing", "product_360"],
        "sensitivity": ["public", "internal", "confidential"], "pii": ["yes", "no"]}
    for db in ("supply_chain", "manufacturing", "product_360"):
        assert glue.get_database(Name=db)["Database"]["Parameters"]["icemesh.owner"] == f"svc_{db}"
        tags = lf.get_resource_lf_tags(Resource={"Database": {"Name": db}})["LFTagOnDatabase"]
        assert {t["TagKey"]: t["TagValues"] for t in tags} == {"domain": [db], "sensitivity": ["internal"], "pii": ["no"]}
    permissions = {(p["Principal"]["DataLakePrincipalIdentifier"], json.dumps(p["Resource"], sort_keys=True)):
                   sorted(p["Permissions"]) for p in lf.list_permissions()["PrincipalResourcePermissions"]}
    tag_table = {"LFTagPolicy": {"ResourceType": "TABLE", "Expression": [
        {"TagKey": "domain", "TagValues": ["supply_chain"]}, {"TagKey": "sensitivity", "TagValues": ["internal", "public"]}]}}
    assert permissions[(arn(PRINCIPAL, "svc_manufacturing"), json.dumps(tag_table, sort_keys=True))] == ["DESCRIBE", "SELECT"]
    assert permissions[(arn(ROLE, "analysts"), json.dumps({"Database": {"Name": "product_360"}}, sort_keys=True))] == ["DESCRIBE"]

    # The tools read it back the same way through the server and directly.
    for how in ({"server": policy_server}, {"args": direct(policy_moto)}):
        extra = how.get("args", [])
        server = how.get("server")
        assert {t["key"] for t in icemesh("tags", "list", *extra, server=server)} == {"domain", "sensitivity", "pii"}
        listed = icemesh("grants", "list", *extra, server=server)
        assert {g["description"].split(": ", 1)[1] for g in listed if "ADMIN" not in g["permissions"]} == {
            "DESCRIBE,SELECT on tags domain=supply_chain AND sensitivity=internal,public to svc_manufacturing",
            "DESCRIBE,SELECT on tags domain=manufacturing,supply_chain AND sensitivity=internal,public to svc_product_360",
            "DESCRIBE on namespace product_360 to role analysts"}
        shown = icemesh("tags", "show", "manufacturing", *extra, server=server)
        assert shown["tags"]["domain"] == {"value": "manufacturing", "from": "namespace manufacturing"}


def test_direct_apply_repairs_drift_made_in_lake_formation(policy_server, policy_moto):
    icemesh("policy", "apply", str(POLICY), *direct(policy_moto))
    lf = boto_client("lakeformation", policy_moto)
    # Someone revokes a grant and re-tags a namespace in the AWS console.
    lf.revoke_permissions(Principal={"DataLakePrincipalIdentifier": arn(ROLE, "analysts")},
                          Resource={"Database": {"Name": "product_360"}}, Permissions=["DESCRIBE"])
    lf.add_lf_tags_to_resource(Resource={"Database": {"Name": "manufacturing"}}, LFTags=[
        {"TagKey": "domain", "TagValues": ["manufacturing"]}, {"TagKey": "sensitivity", "TagValues": ["confidential"]},
        {"TagKey": "pii", "TagValues": ["no"]}])
    plan = icemesh("policy", "apply", str(POLICY), "--plan", *direct(policy_moto))
    assert sorted(c["line"] for c in plan["changes"]) == [
        "+ grant DESCRIBE on namespace product_360 to role analysts",
        "~ assignment sensitivity=internal on namespace manufacturing"]
    icemesh("policy", "apply", str(POLICY), *direct(policy_moto))
    assert icemesh("policy", "apply", str(POLICY), "--plan", *direct(policy_moto))["changes"] == []
    assert icemesh("policy", "apply", str(POLICY), "--plan", server=policy_server)["changes"] == []


def test_grants_made_in_lake_formation_count_and_foreign_ones_are_left_alone(policy_server, policy_moto):
    icemesh("policy", "apply", str(POLICY), server=policy_server)  # the server also needs the principals
    rest = policy_server.client().rest_catalog()
    import pyarrow as pa

    rest.create_table(("manufacturing", "batches"), schema=pa.schema([("id", pa.int64()), ("lot", pa.string())]))
    denied = icemesh("access", "check", "svc_marketing", "manufacturing.batches", *direct(policy_moto))
    assert denied["decision"] == "DENY"

    lf = boto_client("lakeformation", policy_moto)
    lf.grant_permissions(Principal={"DataLakePrincipalIdentifier": arn(PRINCIPAL, "svc_marketing")},
                         Resource={"TableWithColumns": {"DatabaseName": "manufacturing", "Name": "batches",
                                                        "ColumnNames": ["id"]}}, Permissions=["SELECT"])
    foreign = "arn:aws:iam::123456789012:role/athena-analysts"
    lf.grant_permissions(Principal={"DataLakePrincipalIdentifier": foreign},
                         Resource={"Database": {"Name": "manufacturing"}}, Permissions=["DESCRIBE"])
    for extra, server in ((direct(policy_moto), None), ([], policy_server)):
        # The server sees a change made in the console within its refresh interval (5 s for these servers).
        deadline = time.monotonic() + 12
        while True:
            allowed = icemesh("access", "check", "svc_marketing", "manufacturing.batches", *extra, server=server)
            if allowed["decision"] == "ALLOW" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert allowed["decision"] == "ALLOW" and allowed["visible_columns"] == ["id"], allowed
        assert allowed["hidden_columns"] == ["lot"]

    # The policy file's grants section is authoritative for icemesh identities only: it removes the
    # console grant to svc_marketing and keeps the grant to the foreign role.
    plan = icemesh("policy", "apply", str(POLICY), *direct(policy_moto))
    # (Lake Formation's column SELECT reads as SELECT and DESCRIBE of those columns: it lets them be described.)
    assert [c["line"] for c in plan["changes"]] == [
        "- grant DESCRIBE,SELECT on table manufacturing.batches columns id to svc_marketing"]
    remaining = [p["Principal"]["DataLakePrincipalIdentifier"] for p in lf.list_permissions()["PrincipalResourcePermissions"]]
    assert foreign in remaining and arn(PRINCIPAL, "svc_marketing") not in remaining


def test_principal_names_must_be_iam_names(policy_server):
    from icemesh.client import ClientError

    with pytest.raises(ClientError, match="IAM name"):
        policy_server.client().request("POST", "/management/v1/principals", json={"name": "svc sales"})


def test_principal_mapping_is_reversible():
    mapping = PrincipalMapping(ACCOUNT)
    for grantee in (Grantee(PRINCIPAL, "svc_sales"), Grantee(ROLE, "analysts"), Grantee(PRINCIPAL, "a.b@c-d")):
        assert mapping.grantee(mapping.identifier(grantee)) == grantee
    assert mapping.identifier(Grantee(PRINCIPAL, "svc_sales")) == "arn:aws:iam::123456789012:user/icemesh/svc_sales"
    assert mapping.identifier(Grantee(ROLE, "analysts")) == "arn:aws:iam::123456789012:role/icemesh/analysts"
    for foreign in ("arn:aws:iam::123456789012:role/analysts", "arn:aws:iam::999999999999:user/icemesh/svc_sales",
                    "IAM_ALLOWED_PRINCIPALS", "arn:aws:iam::123456789012:user/other/svc_sales"):
        assert mapping.grantee(foreign) is None


def test_serve_says_whether_aws_engines_are_held_to_the_grants(policy_server, policy_moto, tmp_path_factory):
    """Under Lake Formation's account defaults (IAM_ALLOWED_PRINCIPALS on new databases and tables) AWS engines
    are held to no grant: `icemesh serve` says so in one line, with the command that ends it, and that command
    (its settings, through boto3 here) makes the next start say the grants are enforced."""
    lf = boto_client("lakeformation", policy_moto)
    before = lf.get_data_lake_settings()["DataLakeSettings"]
    line = next(row for row in open(policy_server.log_path, encoding="utf-8").read().splitlines()
                if "Lake Formation" in row and "grants" in row and "tables in AWS Glue" not in row)
    assert "AWS engines are not held to these grants" in line and "CreateTableDefaultPermissions" in line, line
    printed = json.loads(line.split("--data-lake-settings '", 1)[1].rstrip("'"))
    assert printed["CreateTableDefaultPermissions"] == [] and printed.get("DataLakeAdmins") == before.get("DataLakeAdmins")
    lf.put_data_lake_settings(DataLakeSettings=printed)
    try:
        tightened = start_glue_catalog(tmp_path_factory, policy_moto, "tightened")
        try:
            assert "Lake Formation enforces the grants for AWS engines" in open(tightened.log_path, encoding="utf-8").read()
        finally:
            tightened.stop()
    finally:
        lf.put_data_lake_settings(DataLakeSettings=before)


def test_lake_formation_permissions_map_both_ways_as_lake_formation_means_them():
    """One table (icemesh.governance.permissions.LAKE_FORMATION), read and written the same way: `Catalog` holds
    CREATE_DATABASE only, which is icemesh's catalog CREATE_TABLE (create top-level namespaces); `ALL` means
    its resource's row and nothing more; icemesh never writes a catalog grant Lake Formation would not take."""
    from icemesh.backends.aws.lakeformation import _from_lf, lf_entries
    from icemesh.errors import BadRequest
    from icemesh.backends.aws.lakeformation import as_lake_formation_means
    from icemesh.governance.permissions import (LAKE_FORMATION, LAKE_FORMATION_IMPLIED, NAMESPACE_PERMISSIONS,
                                                TABLE_PERMISSIONS, Permission)
    from icemesh.governance.policy import Grant
    from icemesh.governance.resources import NamespaceRef, TableRef

    P = Permission
    assert _from_lf(["ALL"], "Catalog") == {P.CREATE_TABLE}
    assert _from_lf(["CREATE_DATABASE", "SELECT", "DESCRIBE"], "Catalog") == {P.CREATE_TABLE}  # data rights: none
    assert _from_lf(["ALL"], "Database") == NAMESPACE_PERMISSIONS and _from_lf(["ALL"], "Table") == TABLE_PERMISSIONS
    for kind, row in LAKE_FORMATION.items():  # both ways, every permission of every row
        for permission, name in row.items():
            assert _from_lf([name], kind) == {permission} | LAKE_FORMATION_IMPLIED.get(kind, set())
    grantee = Grantee(PRINCIPAL, "svc_sales")
    assert lf_entries(Grant(0, grantee, frozenset({P.CREATE_TABLE}), catalog=True)) == [({"Catalog": {}}, ["CREATE_DATABASE"])]
    for data in ({P.SELECT}, {P.DESCRIBE}, {P.CREATE_TABLE, P.ALTER}):
        with pytest.raises(BadRequest, match="takes only CREATE_DATABASE"):
            lf_entries(Grant(0, grantee, frozenset(data), catalog=True))
    entries = lf_entries(Grant(0, grantee, frozenset({P.CREATE_TABLE, P.SELECT}), namespace=NamespaceRef(("sales",))))
    assert entries == [({"Database": {"Name": "sales"}}, ["CREATE_TABLE"]),
                       ({"Table": {"DatabaseName": "sales", "TableWildcard": {}}}, ["SELECT"])]
    # Columns take SELECT only; DESCRIBE of them comes with it, anything else is refused (never written).
    table, columns = TableRef(NamespaceRef(("sales",)), "customers"), frozenset({"id", "region"})
    twc = {"TableWithColumns": {"DatabaseName": "sales", "Name": "customers", "ColumnNames": ["id", "region"]}}
    for asked in ({P.SELECT}, {P.SELECT, P.DESCRIBE}):
        grant = Grant(0, grantee, frozenset(asked), table=table, columns=columns)
        assert lf_entries(grant) == [(twc, ["SELECT"])]
        assert as_lake_formation_means(grant).permissions == {P.SELECT, P.DESCRIBE}
    for asked in ({P.DESCRIBE}, {P.SELECT, P.INSERT}, {P.ALTER}):
        with pytest.raises(BadRequest, match="columns SELECT only"):
            lf_entries(Grant(0, grantee, frozenset(asked), table=table, columns=columns))
    assert _from_lf(["SELECT"], "TableWithColumns") == {P.SELECT, P.DESCRIBE}
    assert _from_lf(["INSERT"], "TableWithColumns") == set()  # not Lake Formation's either


def test_all_on_the_lake_formation_catalog_reads_no_table(glue_server, tmp_path_factory):
    """`ALL` on Lake Formation's Catalog, granted in Lake Formation itself, lets a principal create namespaces
    (CREATE_DATABASE) and nothing more: it cannot load another's table, nor create tables in its namespace."""
    admin = glue_server.client()
    secret = admin.request("POST", "/management/v1/principals", json={"name": "lf_catalog_all"})["client_secret"]
    rest = admin.rest_catalog("lf_all_admin")
    ns = f"lfall_{tmp_path_factory.mktemp('x').name[-6:].lower().replace('-', '_')}"
    rest.create_namespace(ns)
    import pyarrow as pa
    schema = pa.schema([("id", pa.int64()), ("secret", pa.string())])
    rest.create_table((ns, "t"), schema=schema).append(pa.table({"id": [1], "secret": ["x"]}, schema=schema))
    lf = boto_client("lakeformation", glue_server.moto)
    lf.grant_permissions(Principal={"DataLakePrincipalIdentifier": arn("user", "lf_catalog_all")},
                         Resource={"Catalog": {}}, Permissions=["ALL"])
    time.sleep(6)  # the test servers reread Lake Formation every 5 s
    mine = glue_server.client("lf_catalog_all", secret)
    grants = mine.request("GET", "/management/v1/grants", params={"principal": "lf_catalog_all"})
    assert [sorted(g["permissions"]) for g in grants] == [["CREATE_TABLE"]], grants
    http = mine.rest_catalog("lf_all_mine")
    from pyiceberg.exceptions import ForbiddenError, NoSuchNamespaceError, NoSuchTableError
    with pytest.raises(NoSuchTableError):
        http.load_table((ns, "t"))
    with pytest.raises((ForbiddenError, NoSuchNamespaceError)):
        http.create_table((ns, "mine"), schema=schema)
    http.create_namespace(f"{ns}_own")  # what CREATE_DATABASE is for
    assert f"{ns}_own" in [n[0] for n in http.list_namespaces()]


def test_a_revoke_that_fails_half_way_leaves_the_grant_whole(policy_moto, monkeypatch):
    """A namespace grant is two Lake Formation entries (the database, its tables): when revoking the second
    keeps failing, the first is granted back and the error says to run the revoke again."""
    from icemesh.backends.aws.lakeformation import LakeFormation
    from icemesh.backends.aws.settings import AwsError, AwsSettings
    from icemesh.governance.permissions import Permission
    from icemesh.governance.policy import Grant
    from icemesh.governance.resources import NamespaceRef

    for key, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    lf = LakeFormation(AwsSettings(REGION, policy_moto))
    boto_client("glue", policy_moto).create_database(DatabaseInput={"Name": "halfway"})
    grant = Grant(0, Grantee(PRINCIPAL, "svc_halfway"), frozenset({Permission.DESCRIBE, Permission.SELECT}),
                  namespace=NamespaceRef(("halfway",)))
    lf.add_grant(grant)

    def held() -> list:
        return sorted(sorted(g.permissions) for g in lf.grants() if g.grantee == grant.grantee)

    assert held() == [[Permission.DESCRIBE, Permission.SELECT]]
    real, calls = lf._call, []

    def flaky(operation, client=None, **params):
        if operation == "revoke_permissions" and "Table" in params["Resource"]:
            calls.append(operation)
            raise AwsError("Lake Formation revoke_permissions failed: InternalServiceException (injected)")
        return real(operation, client, **params)

    monkeypatch.setattr(lf, "_call", flaky)
    with pytest.raises(AwsError, match="nothing of it was revoked: run the revoke again"):
        lf.revoke(grant)
    assert len(calls) == 3  # retried before giving up
    monkeypatch.setattr(lf, "_call", real)
    raw = boto_client("lakeformation", policy_moto).list_permissions()["PrincipalResourcePermissions"]
    mine = [e for e in raw if e["Principal"]["DataLakePrincipalIdentifier"].endswith("/svc_halfway")]
    assert {next(iter(e["Resource"])) for e in mine} == {"Database", "Table"}  # both halves in place
    assert held() == [[Permission.DESCRIBE, Permission.SELECT]]
    lf.revoke(grant)
    assert held() == []


def _cli_fails(*args: str, server) -> str:
    """The CLI's one-line error (what `main` prints for an IcemeshError)."""
    from click.testing import CliRunner

    from icemesh.cli.main import cli
    from icemesh.errors import IcemeshError

    env = dict(FAKE_AWS_ENV, ICEMESH_CATALOG_URI=server.uri, ICEMESH_CLIENT_ID="admin",
               ICEMESH_CLIENT_SECRET=server.admin_secret)
    done = CliRunner().invoke(cli, list(args), env=env)
    assert done.exit_code != 0 and isinstance(done.exception, IcemeshError), done.output
    return done.exception.message


def test_column_grants_are_what_lake_formation_holds(policy_server, policy_moto, tmp_path):
    """A column grant lands as `TableWithColumns` + SELECT (all Lake Formation takes there) and reads back as
    SELECT and DESCRIBE of those columns, through the server and directly, with no churn in the policy plan;
    other permissions on columns are refused before anything is written."""
    import pyarrow as pa

    icemesh("policy", "apply", str(POLICY), server=policy_server)
    rest = policy_server.client().rest_catalog()
    if ("manufacturing", "lots") not in rest.list_tables("manufacturing"):
        rest.create_table(("manufacturing", "lots"),
                          schema=pa.schema([("id", pa.int64()), ("lot", pa.string()), ("cost", pa.float64())]))
    lf = boto_client("lakeformation", policy_moto)
    marketing = {"DataLakePrincipalIdentifier": arn(PRINCIPAL, "svc_marketing")}

    def held() -> list:
        return [(p["Resource"], p["Permissions"]) for p in lf.list_permissions()["PrincipalResourcePermissions"]
                if p["Principal"] == marketing]

    granted = icemesh("grant", "SELECT", "--to", "svc_marketing", "--table", "manufacturing.lots", "--columns", "id,lot",
                      server=policy_server)
    assert granted["permissions"] == ["DESCRIBE", "SELECT"] and granted["columns"] == ["id", "lot"]
    twc = {"TableWithColumns": {"DatabaseName": "manufacturing", "Name": "lots", "ColumnNames": ["id", "lot"]}}
    assert held() == [(twc, ["SELECT"])]
    for extra, server in (([], policy_server), (direct(policy_moto), None)):
        checked = icemesh("access", "check", "svc_marketing", "manufacturing.lots", *extra, server=server)
        assert checked["decision"] == "ALLOW" and checked["visible_columns"] == ["id", "lot"], checked

    for perms in ("DESCRIBE", "SELECT,DESCRIBE,INSERT"):  # (icemesh itself refuses INSERT on columns anywhere)
        out = _cli_fails("grant", perms, "--to", "svc_marketing", "--table", "manufacturing.lots", "--columns", "cost",
                         server=policy_server)
        assert "SELECT" in out and "only" in out and len(out.strip().splitlines()) == 1, out
    assert held() == [(twc, ["SELECT"])]  # nothing more was written

    # A policy file's column grant of SELECT alone plans nothing after it lands: SELECT is what Lake Formation holds.
    with_columns = tmp_path / "columns.yml"
    with_columns.write_text(POLICY.read_text() + "  - to: svc_marketing\n    permissions: [SELECT]\n"
                            "    table: manufacturing.lots\n    columns: [id, lot]\n")
    assert icemesh("policy", "apply", str(with_columns), "--plan", server=policy_server)["changes"] == []
    assert icemesh("policy", "apply", str(with_columns), "--plan", *direct(policy_moto))["changes"] == []
    refused = tmp_path / "refused.yml"
    refused.write_text(POLICY.read_text() + "  - to: svc_marketing\n    permissions: [DESCRIBE]\n"
                       "    table: manufacturing.lots\n    columns: [id]\n")
    out = _cli_fails("policy", "apply", str(refused), server=policy_server)
    assert "only" in out and "line" in out, out
    assert held() == [(twc, ["SELECT"])]
    icemesh("policy", "apply", str(POLICY), server=policy_server)  # the file's world again: the column grant goes
    assert held() == []


def test_direct_tooling_never_takes_an_owner_from_a_glue_parameter(policy_server, policy_moto):
    """Without the server there is no owner ledger: a Glue writer who sets `icemesh.owner` on a database gets
    no owner rights from the direct tooling either, and the check says owners are the server's to count."""
    icemesh("policy", "apply", str(POLICY), server=policy_server)
    glue = boto_client("glue", policy_moto)
    database = glue.get_database(Name="manufacturing")["Database"]
    glue.update_database(Name="manufacturing", DatabaseInput={
        "Name": "manufacturing", "Parameters": {**database.get("Parameters", {}), "icemesh.owner": "svc_marketing"}})
    try:
        checked = icemesh("access", "check", "svc_marketing", "manufacturing", "--action", "CREATE_TABLE",
                          *direct(policy_moto))
        assert checked["decision"] == "DENY" and any("owner rights" in n for n in checked["notes"]), checked
        plan = icemesh("policy", "apply", str(POLICY), "--plan", *direct(policy_moto))
        assert plan["changes"] == [] and any("owners are recorded by the catalog server" in n for n in plan["notes"])
        by_server = icemesh("access", "check", "svc_marketing", "manufacturing", "--action", "CREATE_TABLE",
                            server=policy_server)
        assert by_server["decision"] == "DENY", by_server
    finally:
        glue.update_database(Name="manufacturing", DatabaseInput={"Name": "manufacturing",
                                                                  "Parameters": database.get("Parameters", {})})
