"""Vended storage credentials (issue 21, part 4): a real `icemesh serve` on an S3 warehouse in moto, with moto's
IAM checks on.

moto runs with INITIAL_NO_AUTH_ACTION_COUNT: after the first set-up calls, every S3 and STS request must be signed
with keys moto issued. The server has its own IAM user's keys; the clients here (pyiceberg, DuckDB, Spark) have
only keys moto never issued in their environment, so a read succeeds only with the keys the catalog vended.
moto enforces a role's own policies but not an AssumeRole session policy (test_moto_ignores_session_policies
shows it), so the per-table scope is proven by the exact session policy the server sent to STS, read back from
a recording pass-through in front of moto's STS (moto's /moto-api/data.json would have it, but fails on the S3
objects these tests write), and by the pure policy function's unit tests.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import boto3
import httpx
import pyarrow as pa
import pytest

from icemesh.backends.aws.settings import AwsSettings
from icemesh.backends.aws.sts import StsCredentialVendor, session_name
from icemesh.catalog.credential_cache import CredentialCache
from icemesh.catalog.ports import VendedCredentials
from icemesh.catalog.service import CREDENTIALS_ENDPOINT
from icemesh.client import CatalogClient
from icemesh.server.process import CatalogProcess, free_port
from icemesh.storage.session_policy import session_policy, table_prefix
from tests.aws import FAKE_AWS_ENV, REGION, boto_client, start_moto

BUCKET = "icemesh-vend"
WAREHOUSE = f"s3://{BUCKET}/wh"
M = "/management/v1"
DELEGATION = {"X-Iceberg-Access-Delegation": "vended-credentials"}
KEY_NAMES = ("s3.access-key-id", "s3.secret-access-key", "s3.session-token")
ROWS = [{"id": i, "name": f"n{i}"} for i in range(1, 6)]
SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string())])


# -- the session policy, as a pure function ----------------------------------------------------------------------


def test_read_only_policy_is_exactly_the_tables_prefix():
    assert session_policy("s3://bkt/wh/sales/orders-1", write=False) == {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadTableFiles", "Effect": "Allow", "Action": ["s3:GetObject"],
             "Resource": ["arn:aws:s3:::bkt/wh/sales/orders-1/*"]},
            {"Sid": "ListTableFiles", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::bkt"],
             "Condition": {"StringLike": {"s3:prefix": ["wh/sales/orders-1/", "wh/sales/orders-1/*"]}}},
        ],
    }


def test_read_write_policy_adds_put_and_delete_on_the_same_prefix_only():
    policy = session_policy("s3a://bkt/wh/sales/orders-1/", write=True)
    assert policy["Statement"][:2] == session_policy("s3://bkt/wh/sales/orders-1", write=False)["Statement"]
    assert policy["Statement"][2] == {"Sid": "WriteTableFiles", "Effect": "Allow",
                                      "Action": ["s3:PutObject", "s3:DeleteObject"],
                                      "Resource": ["arn:aws:s3:::bkt/wh/sales/orders-1/*"]}


def _iam_matches(pattern: str, value: str) -> bool:
    """IAM's wildcard match for the patterns session_policy writes (`*`, and the `${*}` literal)."""
    literal = "\0"
    translated = pattern.replace("${*}", literal).replace("[", "[[]")
    return fnmatch.fnmatchcase(value.replace("*", literal), translated)


def _objects_covered(policy: dict) -> list[str]:
    return [r for s in policy["Statement"] if "s3:GetObject" in s["Action"] for r in s["Resource"]]


def test_a_prefix_never_matches_a_longer_table_name():
    """`.../orders` must not also cover `.../orders_secret`: the prefix ends in `/`."""
    [resource] = _objects_covered(session_policy("s3://bkt/wh/ns/orders", write=False))
    assert _iam_matches(resource, "arn:aws:s3:::bkt/wh/ns/orders/data/a.parquet")
    assert not _iam_matches(resource, "arn:aws:s3:::bkt/wh/ns/orders_secret/data/a.parquet")
    assert not _iam_matches(resource, "arn:aws:s3:::bkt/wh/ns/ordersX")
    listing = session_policy("s3://bkt/wh/ns/orders", write=False)["Statement"][1]["Condition"]["StringLike"]["s3:prefix"]
    assert not any(_iam_matches(p, "wh/ns/orders_secret/") for p in listing)


def test_wildcards_in_a_location_are_literal_in_the_policy():
    """A client-chosen location with `*` or `?` must not widen the policy to other tables."""
    [resource] = _objects_covered(session_policy("s3://bkt/wh/ns/o*", write=False))
    assert resource == "arn:aws:s3:::bkt/wh/ns/o${*}/*"
    assert not _iam_matches(resource, "arn:aws:s3:::bkt/wh/ns/orders/x")
    assert session_policy("s3://bkt/wh/a?$b", write=False)["Statement"][1]["Condition"]["StringLike"]["s3:prefix"][0] \
        == "wh/a${?}${$}b/"


@pytest.mark.parametrize("location", ["s3://bkt", "s3://bkt/", "file:///tmp/wh/t", "/tmp/t", "s3:///no-bucket/t"])
def test_no_policy_for_a_whole_bucket_or_a_non_s3_location(location):
    with pytest.raises(ValueError):
        table_prefix(location)


def test_session_names_are_what_sts_accepts():
    assert session_name("svc_sales") == "icemesh-svc_sales"
    assert session_name("a b/c;d") == "icemesh-a_b_c_d"
    assert len(session_name("x" * 200)) == 64


class CountingVendor:
    """A vendor that mints numbered keys valid for 900 s from the fake clock's now."""

    def __init__(self, clock) -> None:
        self.clock, self.calls = clock, []

    def vend(self, location, write, principal):
        self.calls.append((location, write, principal))
        return VendedCredentials(f"AK{len(self.calls)}", "s", "t", int((self.clock() + 900) * 1000), write)


def test_loads_reuse_keys_only_while_half_their_life_is_left():
    now = [1000.0]
    vendor = CountingVendor(lambda: now[0])
    cache = CredentialCache(vendor, clock=lambda: now[0], max_entries=2)
    first = cache.get("s3://b/t1", False, "p")
    now[0] += 449
    assert cache.get("s3://b/t1", False, "p") is first
    assert cache.get("s3://b/t1", True, "p") is not first  # another mode, another key
    assert cache.get("s3://b/t1", False, "q") is not first  # another principal
    assert cache.get("s3://b/t1", False, "p", fresh=True) is not first  # a refresh always mints
    now[0] += 452  # past half the life of the refreshed keys too
    assert cache.get("s3://b/t1", False, "p").access_key_id == f"AK{len(vendor.calls)}"
    assert len(cache._entries) == 2  # bounded


# -- moto with IAM checks, and the server -----------------------------------------------------------------------


class StsRecorder:
    """A pass-through to moto that keeps every STS request's form and moto's answer (this test's record of what
    the server sent, and of the expiry STS gave). Headers go through unchanged, Host included, so signatures hold."""

    def __init__(self, target: str) -> None:
        self.calls: list[tuple[dict[str, str], str]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("content-length", "connection")}
                answer = httpx.post(target + self.path, content=body, headers=headers, timeout=30)
                recorder.calls.append(({k: v[0] for k, v in parse_qs(body.decode()).items()}, answer.text))
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", "text/xml"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def assume_role(self, access_key_id: str) -> tuple[dict[str, str], str]:
        """The AssumeRole request (form fields) whose answer minted `access_key_id`, and that answer."""
        [found] = [(form, text) for form, text in self.calls
                   if form.get("Action") == "AssumeRole" and f"<AccessKeyId>{access_key_id}</AccessKeyId>" in text]
        return found


@dataclass
class Aws:
    url: str
    keys: dict[str, str]  # the server's own IAM user's keys (env names)
    role_arn: str
    sts: StsRecorder | None = field(default=None, repr=False)

    def client(self, service: str, **keys):
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=keys.get("key", self.keys["AWS_ACCESS_KEY_ID"]),
                            aws_secret_access_key=keys.get("secret", self.keys["AWS_SECRET_ACCESS_KEY"]),
                            aws_session_token=keys.get("token"))

    def assumed(self, access_key_id: str) -> dict:
        """What the server asked of STS for `access_key_id` (role, session name, session policy) and the expiry
        STS answered, in epoch ms."""
        form, answer = self.sts.assume_role(access_key_id)
        expiration = re.search(r"<Expiration>([^<]+)</Expiration>", answer).group(1)
        expires_ms = int(dt.datetime.fromisoformat(expiration.replace("Z", "+00:00")).timestamp() * 1000)
        return {"role_arn": form["RoleArn"], "session_name": form["RoleSessionName"], "policy": form["Policy"],
                "duration": int(form["DurationSeconds"]), "expires_at_ms": expires_ms}


ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    """moto that checks signatures and IAM policies after its first 3 calls (which create the server's user)."""
    port = free_port()
    try:
        proc = start_moto(tmp_path_factory.mktemp("moto-iam"), port, env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"})
    except RuntimeError as exc:
        pytest.fail(str(exc))
    url = f"http://127.0.0.1:{port}"
    try:
        iam = boto_client("iam", url)
        iam.create_user(UserName="icemesh-server")
        iam.put_user_policy(UserName="icemesh-server", PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL))
        key = iam.create_access_key(UserName="icemesh-server")["AccessKey"]
        found = Aws(url, {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}, "")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                                         "Action": "sts:AssumeRole"}]}
        role = found.client("iam").create_role(RoleName="icemesh-vend", AssumeRolePolicyDocument=json.dumps(trust))
        # The role bounds every vended key: this bucket's objects only.
        found.client("iam").put_role_policy(RoleName="icemesh-vend", PolicyName="warehouse", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                 "Resource": f"arn:aws:s3:::{BUCKET}/*"},
                {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}"}]}))
        found.client("s3").create_bucket(Bucket=BUCKET)
        found.role_arn = role["Role"]["Arn"]
        found.sts = StsRecorder(url)
        yield found
        found.sts.http.shutdown()
    finally:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="module", autouse=True)
def clients_have_no_keys():
    """This process's clients hold only keys moto never issued: a read works only with vended keys."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in FAKE_AWS_ENV.items():
            mp.setenv(name, value)
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_STS"):
            mp.delenv(name, raising=False)
        yield


@pytest.fixture(scope="module")
def server(tmp_path_factory, aws):
    """Vending from the role; `--share-storage-keys` is given too and must be ignored (never both)."""
    home = tmp_path_factory.mktemp("catalog-vend")
    extra = ["--s3-endpoint", aws.url, "--s3-region", REGION, "--vend-credentials-role", aws.role_arn,
             "--vend-credentials-duration", "900", "--sts-endpoint", aws.sts.url, "--share-storage-keys"]
    proc = CatalogProcess(db=f"sqlite:///{home}/catalog.db", warehouse=WAREHOUSE, extra_args=extra,
                          env={**FAKE_AWS_ENV, **aws.keys}, cwd=str(home)).start()
    proc.home = home
    yield proc
    proc.stop()


@dataclass
class World:
    server: CatalogProcess
    aws: Aws
    ns: str
    admin: CatalogClient
    secrets: dict[str, str]  # principal name -> its client secret
    names: dict[str, str]  # role in these tests -> principal name

    def client(self, name: str) -> CatalogClient:
        return self.server.client(name, self.secrets[name])

    def manage(self, method: str, path: str, **kwargs):
        return self.admin.request(method, M + path, **kwargs)

    def table_url(self, table: str, suffix: str = "") -> str:
        return f"{self.server.uri}/v1/{self.admin.prefix()}/namespaces/{self.ns}/tables/{table}{suffix}"

    def load(self, who: str, table: str = "orders", headers: dict | None = None) -> httpx.Response:
        return httpx.get(self.table_url(table), headers={**self.client(who).headers(), **(headers or DELEGATION)},
                         timeout=30)

    def credentials(self, who: str, table: str = "orders", headers: dict | None = None) -> httpx.Response:
        return httpx.get(self.table_url(table, "/credentials"), headers={**self.client(who).headers(), **(headers or {})},
                         timeout=30)

    def location(self, table: str) -> str:
        return self.load("admin", table).json()["metadata"]["location"]


@pytest.fixture(scope="module")
def world(server, aws) -> World:
    """As admin (the owner), pyiceberg creates and fills <ns>.orders and <ns>.orders_secret with vended keys only;
    reader may SELECT orders, writer may also INSERT, filtered reads only some rows, outsider has nothing."""
    admin = server.client()
    ns = f"v_{uuid.uuid4().hex[:8]}"
    catalog = admin.rest_catalog("vend_admin")
    catalog.create_namespace(ns)
    for name in ("orders", "orders_secret"):
        table = catalog.create_table(f"{ns}.{name}", SCHEMA)
        table.append(pa.Table.from_pylist(ROWS, schema=SCHEMA))
    names = {"admin": "admin", **{role: f"{role}_{ns}" for role in ("reader", "writer", "filtered", "outsider")}}
    secrets = {"admin": server.admin_secret}
    for role, name in names.items():
        if role != "admin":
            secrets[name] = admin.request("POST", M + "/principals", json={"name": name})["client_secret"]
    world = World(server, aws, ns, admin, secrets, names)
    world.manage("POST", "/grants", json={"permissions": "SELECT,DESCRIBE", "principal": f"reader_{ns}",
                                          "table": f"{ns}.orders"})
    world.manage("POST", "/grants", json={"permissions": "SELECT,INSERT,DESCRIBE", "principal": f"writer_{ns}",
                                          "table": f"{ns}.orders"})
    world.manage("POST", "/grants", json={"permissions": "SELECT,DESCRIBE", "principal": f"filtered_{ns}",
                                          "table": f"{ns}.orders", "rows": "id > 2"})
    return world


def who(world: World, role: str) -> str:
    return world.names[role]


def vended(response: httpx.Response) -> tuple[dict, list[dict]]:
    assert response.status_code == 200, response.text
    body = response.json()
    return body.get("config", {}), body.get("storage-credentials", [])


# -- what each principal gets -----------------------------------------------------------------------------------


def test_config_lists_the_credentials_endpoint(world):
    assert CREDENTIALS_ENDPOINT in world.admin.config()["endpoints"]


def test_a_server_that_does_not_vend_neither_lists_nor_serves_it(sqlite_server):
    admin = sqlite_server.client()
    assert CREDENTIALS_ENDPOINT not in admin.config()["endpoints"]
    response = httpx.get(f"{sqlite_server.uri}/v1/{admin.prefix()}/namespaces/x/tables/y/credentials",
                         headers=admin.headers(), timeout=30)
    assert response.status_code == 406 and "--vend-credentials-role" in response.json()["error"]["message"]


def test_a_reader_gets_read_only_keys_for_the_tables_prefix_only(world):
    location = world.location("orders")
    started = time.time()
    config, credentials = vended(world.load(who(world, "reader")))
    assert [c["prefix"] for c in credentials] == [location + "/"]
    keys = credentials[0]["config"]
    assert {k: config[k] for k in KEY_NAMES} == {k: keys[k] for k in KEY_NAMES}
    assert keys["s3.endpoint"] == world.aws.url and keys["client.region"] == REGION
    assumed = world.aws.assumed(keys["s3.access-key-id"])
    assert assumed["role_arn"] == world.aws.role_arn
    assert assumed["session_name"] == session_name(who(world, "reader"))
    assert json.loads(assumed["policy"]) == session_policy(location, write=False)
    other = world.location("orders_secret")
    assert other.rstrip("/") + "/" not in assumed["policy"]
    expires = int(keys["s3.session-token-expires-at-ms"])
    assert expires == assumed["expires_at_ms"] and assumed["duration"] == 900
    assert started + 900 - 60 < expires / 1000 < time.time() + 900 + 1


def test_a_writer_and_the_owner_get_read_write_keys(world):
    location = world.location("orders")
    for role in ("writer", "admin"):
        _config, [credential] = vended(world.load(who(world, role)))
        policy = json.loads(world.aws.assumed(credential["config"]["s3.access-key-id"])["policy"])
        assert policy == session_policy(location, write=True), role


def test_without_the_delegation_header_no_keys_at_all(world):
    """Vending is asked for, never imposed; and the server's own keys are never shared beside it."""
    response = world.load(who(world, "reader"), headers={"X-Iceberg-Access-Delegation": "remote-signing"})
    config, credentials = vended(response)
    assert credentials == [] and not set(KEY_NAMES) & set(config)
    assert world.aws.keys["AWS_SECRET_ACCESS_KEY"] not in response.text


def test_the_credentials_endpoint_refreshes_under_the_same_rules(world):
    location = world.location("orders")
    response = world.credentials(who(world, "reader"))
    assert response.status_code == 200, response.text
    [credential] = response.json()["storage-credentials"]
    assert credential["prefix"] == location + "/"
    assert json.loads(world.aws.assumed(credential["config"]["s3.access-key-id"])["policy"]) == \
        session_policy(location, write=False)
    again = world.credentials(who(world, "reader")).json()["storage-credentials"][0]["config"]
    assert again["s3.access-key-id"] != credential["config"]["s3.access-key-id"]  # fresh keys each call


def test_loads_reuse_keys_and_refreshes_mint_new_ones(world):
    reader = who(world, "reader")
    first = vended(world.load(reader))[1][0]["config"]["s3.access-key-id"]
    assert vended(world.load(reader))[1][0]["config"]["s3.access-key-id"] == first
    refreshed = world.credentials(reader).json()["storage-credentials"][0]["config"]["s3.access-key-id"]
    assert refreshed != first


def test_the_adapter_reports_stss_own_expiry_and_sends_the_policy(aws):
    """What the STS adapter sent and got, recorded here: the policy document, and the expiry it passes on."""
    vendor = StsCredentialVendor(AwsSettings(REGION, aws.url), aws.role_arn, 1200)
    sent, got = {}, {}
    client = aws.client("sts")
    real = client.assume_role

    def recording(**kwargs):
        sent.update(kwargs)
        got.update(real(**kwargs))
        return got

    client.assume_role = recording
    vendor._client = client
    creds = vendor.vend("s3://icemesh-vend/wh/x/t-1", write=False, principal="p1")
    assert json.loads(sent["Policy"]) == session_policy("s3://icemesh-vend/wh/x/t-1", write=False)
    assert sent["DurationSeconds"] == 1200 and sent["RoleArn"] == aws.role_arn
    assert creds.expires_at_ms == int(got["Credentials"]["Expiration"].timestamp() * 1000)
    assert creds.secret_access_key not in repr(creds) and creds.session_token not in repr(creds)


def test_a_refused_assume_role_is_a_one_line_502(aws):
    """STS refusing the server (here: keys moto never issued) is the server's problem, said in one line."""
    from icemesh.backends.aws.settings import AwsError

    vendor = StsCredentialVendor(AwsSettings(REGION, aws.url), aws.role_arn)
    with pytest.raises(AwsError) as refused:
        vendor.vend("s3://icemesh-vend/wh/x/t-1", write=False, principal="p1")
    assert refused.value.code == 502 and "\n" not in refused.value.message
    assert "STS AssumeRole" in refused.value.message and "trust policy" in refused.value.message


# -- hostile principals -------------------------------------------------------------------------------------------


def test_a_principal_without_rights_gets_no_keys_and_learns_nothing(world):
    outsider = who(world, "outsider")
    for response in (world.load(outsider), world.credentials(outsider)):
        assert response.status_code == 404, response.text
        assert "s3." not in response.text
    missing = world.credentials(outsider, table="no_such_table")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == world.credentials(outsider).json()["error"]["type"]


def test_a_restricted_reader_gets_keys_only_when_it_applies_the_restrictions(world):
    filtered = who(world, "filtered")
    for response in (world.load(filtered), world.credentials(filtered)):
        assert response.status_code == 403, response.text
        assert "read restrictions" in response.json()["error"]["message"]
    promise = {"X-Icemesh-Read-Restrictions": "apply"}
    _config, [credential] = vended(world.load(filtered, headers={**DELEGATION, **promise}))
    assert credential["prefix"] == world.location("orders") + "/"
    assert world.credentials(filtered, headers=promise).status_code == 200


def test_a_revoked_grant_gets_a_403_not_fresh_keys(world):
    name = f"temp_{world.ns}"
    world.secrets[name] = world.manage("POST", "/principals", json={"name": name})["client_secret"]
    table = f"{world.ns}.orders"
    world.manage("POST", "/grants", json={"permissions": "DESCRIBE", "principal": name, "table": table})
    grant = world.manage("POST", "/grants", json={"permissions": "SELECT", "principal": name, "table": table})
    assert world.credentials(name).status_code == 200
    world.manage("POST", "/grants/revoke", json={"permissions": "SELECT", "id": grant["id"]})
    refused = world.credentials(name)  # it may still see the table: told what it lacks
    assert refused.status_code == 403, refused.text
    assert "SELECT" in refused.json()["error"]["message"] and "s3." not in refused.text
    assert world.load(name).status_code == 403


def test_a_reader_of_one_table_gets_nothing_for_the_other(world):
    reader = who(world, "reader")
    assert world.credentials(reader, table="orders_secret").status_code == 404
    assert world.load(reader, table="orders_secret").status_code == 404


def test_vending_is_audited_without_the_keys(world):
    reader = who(world, "reader")
    response = world.credentials(reader)
    keys = response.json()["storage-credentials"][0]["config"]
    rows = [r for r in world.manage("GET", "/audit", params={"principal": reader, "limit": 1000})
            if r["action"] == "VEND_CREDENTIALS"]
    assert rows and all(r["resource"] == f"table {world.ns}.orders" for r in rows)
    assert any(r["reason"].startswith("read-only storage credentials for s3://") for r in rows)
    writer_rows = world.manage("GET", "/audit", params={"principal": who(world, "writer"), "limit": 1000})
    assert any(r["action"] == "VEND_CREDENTIALS" and r["reason"].startswith("read-write") for r in writer_rows)
    dump = json.dumps(world.manage("GET", "/audit", params={"limit": 10000}))
    assert keys["s3.secret-access-key"] not in dump and keys["s3.session-token"] not in dump
    with open(os.path.join(world.server.home, "catalog.db"), "rb") as db:
        stored = db.read()
    assert keys["s3.secret-access-key"].encode() not in stored and keys["s3.session-token"].encode() not in stored
    assert keys["s3.secret-access-key"] not in world.server.log()


# -- real clients with nothing but the vended keys ----------------------------------------------------------------


def test_keys_moto_never_issued_are_refused(aws):
    """The premise of the tests below: this process's own keys read nothing."""
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):
        boto_client("s3", aws.url).list_objects_v2(Bucket=BUCKET)


def test_pyiceberg_scans_with_only_vended_keys(world):
    catalog = world.client(who(world, "reader")).rest_catalog("vend_reader")
    assert not any(key.startswith("s3.") and "key" in key for key in catalog.properties)
    table = catalog.load_table(f"{world.ns}.orders")
    assert sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["id"]) == ROWS


def test_pyiceberg_writes_through_a_staged_create_with_vended_keys(world):
    """A staged create (no metadata location yet): pyiceberg takes the keys from `config`."""
    catalog = world.admin.rest_catalog("vend_staged")
    name = f"{world.ns}.staged_{uuid.uuid4().hex[:6]}"
    txn = catalog.create_table_transaction(name, SCHEMA)
    txn.append(pa.Table.from_pylist(ROWS[:2], schema=SCHEMA))
    txn.commit_transaction()
    assert catalog.load_table(name).scan().to_arrow().to_pylist() == ROWS[:2]


def test_duckdb_reads_with_only_vended_keys(world):
    from icemesh.runtimes import duckdb as duck_engine

    reader = world.client(who(world, "reader"))
    con = duck_engine.connect(world.server.uri, "mesh", token=reader.token())
    try:
        assert con.execute(f"SELECT id, name FROM mesh.{world.ns}.orders ORDER BY id").fetchall() == \
            [(r["id"], r["name"]) for r in ROWS]
    finally:
        con.close()


def test_spark_reads_with_only_vended_keys(world, spark):
    from tests.conftest import spark_catalog

    reader = who(world, "reader")
    name = spark_catalog(spark, world.server, f"vend_{world.ns}", reader, world.secrets[reader],
                         s3={"s3.region": REGION})
    # Iceberg Java 1.10 asks for vended credentials only when told to (pyiceberg and DuckDB always ask).
    spark.conf.set(f"spark.sql.catalog.{name}.header.X-Iceberg-Access-Delegation", "vended-credentials")
    rows = spark.sql(f"SELECT id, name FROM {name}.{world.ns}.orders ORDER BY id").collect()
    assert [(r.id, r.name) for r in rows] == [(r["id"], r["name"]) for r in ROWS]


# -- moto's limits, stated --------------------------------------------------------------------------------------------


def test_moto_ignores_session_policies(world):
    """Why the scope is asserted on the policy document: moto lets a key whose session policy names one table read
    another table's files (real STS would refuse). If this starts failing, moto enforces session policies: then
    assert the refusal directly."""
    _config, [credential] = vended(world.load(who(world, "reader")))
    keys = credential["config"]
    s3 = world.aws.client("s3", key=keys["s3.access-key-id"], secret=keys["s3.secret-access-key"],
                          token=keys["s3.session-token"])
    other = world.location("orders_secret")
    prefix = other[len(f"s3://{BUCKET}/"):] + "/"
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    assert listed.get("KeyCount", 0) > 0


# -- the server's settings ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, words", [
    (["--vend-credentials-role", "not-an-arn"], "is not an IAM role ARN"),
    (["--vend-credentials-role", "arn:aws:iam::123456789012:role/r", "--vend-credentials-duration", "60"],
     "900<=x<=43200"),
])
def test_bad_vending_settings_are_one_line_errors(tmp_path, args, words):
    result = subprocess.run([sys.executable, "-m", "icemesh.cli.main", "serve", "--port", str(free_port()),
                             "--db", f"sqlite:///{tmp_path}/c.db", "--warehouse", WAREHOUSE, *args],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert words in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "c.db").exists()


def test_a_writer_appends_with_its_vended_keys(world):
    """A non-owner with INSERT writes data files with the read-write keys it was vended."""
    name = f"{world.ns}.appended_{uuid.uuid4().hex[:6]}"
    world.admin.rest_catalog("vend_owner").create_table(name, SCHEMA)
    world.manage("POST", "/grants", json={"permissions": "SELECT,INSERT,DESCRIBE", "principal": who(world, "writer"),
                                          "table": name})
    table = world.client(who(world, "writer")).rest_catalog("vend_writer").load_table(name)
    table.append(pa.Table.from_pylist(ROWS[:1], schema=SCHEMA))
    assert world.admin.rest_catalog("vend_check").load_table(name).scan().to_arrow().to_pylist() == ROWS[:1]


def test_duckdb_creates_and_fills_a_table_with_vended_keys(world):
    """DuckDB's CTAS is a stage-create then a commit: the keys of the stage-create answer write the files."""
    from icemesh.runtimes import duckdb as duck_engine

    con = duck_engine.connect(world.server.uri, "mesh", token=world.admin.token())
    try:
        con.execute(f"CREATE TABLE mesh.{world.ns}.from_duck AS SELECT range AS id FROM range(3)")
        assert con.execute(f"SELECT count(*) FROM mesh.{world.ns}.from_duck").fetchone() == (3,)
    finally:
        con.close()
    location = world.location("from_duck")
    _config, [credential] = vended(world.load("admin", "from_duck"))
    assert credential["prefix"] == location + "/"


def test_a_staged_table_at_a_chosen_location_gets_no_keys(world):
    """A stage-create claims no location until it commits: keys for `wh/<ns>/future` would cover tables created
    there meanwhile. The server's own fresh location gets keys; a chosen one does not."""
    url = f"{world.server.uri}/v1/{world.admin.prefix()}/namespaces/{world.ns}/tables"
    schema = {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}
    headers = {**world.admin.headers(), **DELEGATION}
    chosen = httpx.post(url, headers=headers, timeout=30, json={
        "name": "chosen", "schema": schema, "stage-create": True, "location": f"{WAREHOUSE}/{world.ns}/future"})
    assert chosen.status_code == 200, chosen.text
    assert "storage-credentials" not in chosen.json() and not set(KEY_NAMES) & set(chosen.json()["config"])
    fresh = httpx.post(url, headers=headers, timeout=30, json={"name": "fresh", "schema": schema, "stage-create": True})
    [credential] = fresh.json()["storage-credentials"]
    assert credential["prefix"] == fresh.json()["metadata"]["location"] + "/"
    policy = json.loads(world.aws.assumed(credential["config"]["s3.access-key-id"])["policy"])
    assert policy == session_policy(fresh.json()["metadata"]["location"], write=True)


def test_a_column_limited_reader_gets_keys_only_when_it_applies_the_limits(world):
    name = f"cols_{world.ns}"
    world.secrets[name] = world.manage("POST", "/principals", json={"name": name})["client_secret"]
    world.manage("POST", "/grants", json={"permissions": "SELECT,DESCRIBE", "principal": name,
                                          "table": f"{world.ns}.orders", "columns": ["id"]})
    for response in (world.load(name), world.credentials(name)):
        assert response.status_code == 403, response.text
        assert "column limits" in response.json()["error"]["message"] and "s3." not in response.text
    promise = {"X-Icemesh-Column-Limits": "apply"}
    assert world.credentials(name, headers=promise).status_code == 200
    _config, [credential] = vended(world.load(name, headers={**DELEGATION, **promise}))
    assert json.loads(world.aws.assumed(credential["config"]["s3.access-key-id"])["policy"]) == \
        session_policy(world.location("orders"), write=False)
