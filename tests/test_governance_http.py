"""Governance enforced over real HTTP, on both backends, as three principals would meet it.

The world (built once per backend):
- the admin creates two tag keys and three principals through /management/v1 and gives the producer
  CREATE_TABLE on the catalog;
- the producer `svc_sales_*` creates namespace <ns> (tables orders, customers, events, drafts) and <ns>_raw
  (table staging), so it owns them;
- the admin tags <ns> domain=sales, sensitivity=internal; drafts sensitivity=confidential; and the column
  customers.email sensitivity=confidential;
- the consumer `svc_finance_*` gets SELECT,DESCRIBE on `domain=sales AND sensitivity=public,internal`;
- the outsider `svc_hr_*` gets nothing.

So the consumer may read orders and events fully, customers without email, and never sees drafts or <ns>_raw.
Every assertion is made through pyiceberg and DuckDB, the clients people actually use, and the raw HTTP
for what they do not expose (status codes, error bodies, labels). Tag keys and principal names carry a
random suffix: the server is shared with other test modules.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import duckdb
import httpx
import pyarrow as pa
import pytest
from pyiceberg.exceptions import ForbiddenError, NoSuchNamespaceError, NoSuchTableError, UnauthorizedError
from pyiceberg.types import StringType

from icemesh.client import CatalogClient, ClientError
from icemesh.server.process import CatalogProcess

M = "/management/v1"
COLUMN_LIMITS = {"header.X-Icemesh-Column-Limits": "apply"}

ORDERS = pa.schema([("id", pa.int64()), ("amount", pa.float64())])
CUSTOMERS = pa.schema([("id", pa.int64()), ("name", pa.string()), ("email", pa.string())])
IDS = pa.schema([("id", pa.int64())])

ORDER_ROWS = [{"id": 1, "amount": 10.0}, {"id": 2, "amount": 20.5}]
CUSTOMER_ROWS = [{"id": 1, "name": "ann", "email": "ann@example.com"},
                 {"id": 2, "name": "bob", "email": "bob@example.com"}]


@dataclass
class Mesh:
    server: CatalogProcess
    admin: CatalogClient
    prefix: str
    ns: str
    raw_ns: str
    domain: str  # tag key names (suffixed)
    sensitivity: str
    names: dict[str, str]  # role in the story -> principal name
    secrets: dict[str, str]
    clients: dict[str, CatalogClient] = field(default_factory=dict)
    catalogs: dict[tuple, object] = field(default_factory=dict)
    # (principal, action, resource) of every denial the tests provoke; the audit test checks each one.
    denials: set[tuple[str, str, str]] = field(default_factory=set)

    @property
    def producer(self) -> str:
        return self.names["producer"]

    @property
    def consumer(self) -> str:
        return self.names["consumer"]

    @property
    def outsider(self) -> str:
        return self.names["outsider"]

    def client(self, who: str) -> CatalogClient:
        if who not in self.clients:
            self.clients[who] = self.server.client(self.names[who], self.secrets[who])
        return self.clients[who]

    def rest(self, who: str, **props):
        key = (who, tuple(sorted(props.items())))
        if key not in self.catalogs:
            self.catalogs[key] = self.client(who).rest_catalog(**props)
        return self.catalogs[key]

    def duck(self, who: str):
        return self.client(who).duckdb()

    def table_path(self, table: str, ns: str | None = None) -> str:
        return f"{self.server.uri}/v1/{self.prefix}/namespaces/{ns or self.ns}/tables/{table}"

    def raw_load(self, token: str, table: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.get(self.table_path(table), headers={"Authorization": f"Bearer {token}", **(headers or {})},
                         timeout=30)

    def metadata_location(self, table: str) -> str:
        """The table's current pointer, as the admin sees it: proves a refused write changed nothing."""
        return self.admin.request("GET", f"/v1/{self.prefix}/namespaces/{self.ns}/tables/{table}")["metadata-location"]

    def denied(self, who: str, action: str, resource: str) -> None:
        self.denials.add((self.names[who], action, resource))


def _manage(admin: CatalogClient, method: str, path: str, **kwargs):
    return admin.request(method, f"{M}{path}", **kwargs)


@pytest.fixture(scope="module")
def mesh(catalog_server) -> Mesh:
    sfx = uuid.uuid4().hex[:8]
    admin = catalog_server.client()
    domain, sensitivity = f"domain_{sfx}", f"sensitivity_{sfx}"
    _manage(admin, "POST", "/tags", json={"key": domain, "values": ["sales", "finance", "hr"]})
    _manage(admin, "POST", "/tags", json={"key": sensitivity, "values": ["public", "internal", "confidential"]})

    names = {"producer": f"svc_sales_{sfx}", "consumer": f"svc_finance_{sfx}", "outsider": f"svc_hr_{sfx}"}
    secrets = {}
    for role, name in names.items():
        created = _manage(admin, "POST", "/principals", json={"name": name})
        assert created["name"] == created["client_id"] == name
        assert created["client_secret"]
        secrets[role] = created["client_secret"]
    _manage(admin, "POST", "/grants", json={"permissions": "CREATE_TABLE", "principal": names["producer"], "catalog": True})

    m = Mesh(catalog_server, admin, admin.prefix(), f"gov_{sfx}", f"gov_{sfx}_raw", domain, sensitivity, names, secrets)

    # The producer creates (and so owns) both namespaces and their tables.
    producer = m.rest("producer")
    producer.create_namespace(m.ns)
    producer.create_namespace(m.raw_ns)
    tables = {
        "orders": (ORDERS, ORDER_ROWS),
        "customers": (CUSTOMERS, CUSTOMER_ROWS),
        "events": (IDS, [{"id": 1}]),
        "drafts": (IDS, [{"id": 1}]),
    }
    for name, (schema, _rows) in tables.items():
        producer.create_table(f"{m.ns}.{name}", schema)
    producer.create_table(f"{m.raw_ns}.staging", IDS)

    _manage(admin, "POST", "/tag-assignments", json={"key": domain, "value": "sales", "namespace": m.ns})
    _manage(admin, "POST", "/tag-assignments", json={"key": sensitivity, "value": "internal", "namespace": m.ns})
    _manage(admin, "POST", "/tag-assignments", json={"key": sensitivity, "value": "confidential", "table": f"{m.ns}.drafts"})
    _manage(admin, "POST", "/tag-assignments", json={"key": sensitivity, "value": "confidential",
                                                     "table": f"{m.ns}.customers", "column": "email"})
    _manage(admin, "POST", "/grants", json={"permissions": "SELECT,DESCRIBE", "principal": names["consumer"],
                                            "tags": [f"{domain}=sales", f"{sensitivity}=public,internal"]})

    for name, (schema, rows) in tables.items():
        producer.load_table(f"{m.ns}.{name}").append(pa.Table.from_pylist(rows, schema=schema))
    producer.load_table(f"{m.raw_ns}.staging").append(pa.Table.from_pylist([{"id": 7}], schema=IDS))
    return m


def _sorted_rows(table) -> list[dict]:
    return sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["id"])


# -- listings -----------------------------------------------------------------------------------------------

def test_listings_pyiceberg(mesh):
    ns, raw = mesh.ns, mesh.raw_ns
    producer, consumer, outsider = mesh.rest("producer"), mesh.rest("consumer"), mesh.rest("outsider")

    assert {(ns,), (raw,)} <= set(producer.list_namespaces())
    assert {t[-1] for t in producer.list_tables(ns)} == {"orders", "customers", "events", "drafts"}
    assert {t[-1] for t in producer.list_tables(raw)} == {"staging"}

    # The consumer sees the tagged namespace and the tables its expression matches; drafts
    # (sensitivity=confidential) and the untagged namespace do not exist for it.
    assert consumer.list_namespaces() == [(ns,)]
    assert {t[-1] for t in consumer.list_tables(ns)} == {"orders", "customers", "events"}
    with pytest.raises(NoSuchNamespaceError, match=f"no namespace {raw} you may see"):  # as if it did not exist
        consumer.list_tables(raw)
    mesh.denied("consumer", "DESCRIBE", f"namespace {raw}")

    assert outsider.list_namespaces() == []
    with pytest.raises(NoSuchNamespaceError, match=f"no namespace {ns} you may see"):
        outsider.list_tables(ns)
    mesh.denied("outsider", "DESCRIBE", f"namespace {ns}")
    with pytest.raises(NoSuchNamespaceError):
        outsider.load_namespace_properties(ns)


def test_listings_duckdb(mesh):
    schemas_q = "SELECT schema_name FROM information_schema.schemata WHERE catalog_name = 'mesh'"
    tables_q = "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = 'mesh'"
    ns, raw = mesh.ns, mesh.raw_ns
    for who, schemas, tables in [
        ("producer", {ns, raw}, {(ns, "orders"), (ns, "customers"), (ns, "events"), (ns, "drafts"), (raw, "staging")}),
        ("consumer", {ns}, {(ns, "orders"), (ns, "customers"), (ns, "events")}),
        ("outsider", set(), set()),
    ]:
        con = mesh.duck(who)
        try:
            seen_schemas = {r[0] for r in con.execute(schemas_q).fetchall()}
            seen_tables = set(con.execute(tables_q).fetchall())
        finally:
            con.close()
        if who == "producer":  # the producer may describe other namespaces too (CREATE_TABLE on the catalog)
            seen_schemas &= {ns, raw}
            seen_tables = {t for t in seen_tables if t[0] in (ns, raw)}
        assert seen_schemas == schemas, who
        assert seen_tables == tables, who


def test_missing_and_invisible_tables_look_the_same(mesh):
    """A table the caller may not see answers exactly as one that does not exist: a 404 that names only
    tables it may see."""
    answers = {}
    for who, table in [("outsider", "orders"), ("outsider", "no_such_table"), ("consumer", "drafts"),
                       ("consumer", "no_such_table"), ("producer", "no_such_table")]:
        response = mesh.raw_load(mesh.client(who).token(), table)
        assert response.status_code == 404, (who, table)
        answers[(who, table)] = response.json()["error"]
        assert answers[(who, table)]["type"] == "NoSuchTableException"
        assert answers[(who, table)]["message"] == f"no table {mesh.ns}.{table} you may see"
        with pytest.raises(NoSuchTableError):
            mesh.rest(who).load_table(f"{mesh.ns}.{table}")
    mesh.denied("outsider", "SELECT", f"table {mesh.ns}.orders")
    mesh.denied("consumer", "SELECT", f"table {mesh.ns}.drafts")
    # A near miss among the tables the caller may see is suggested; an invisible one never is.
    with pytest.raises(NoSuchTableError, match=f"no table {mesh.ns}.ordrs you may see; did you mean {mesh.ns}.orders"):
        mesh.rest("consumer").load_table(f"{mesh.ns}.ordrs")
    with pytest.raises(NoSuchTableError, match=f"no table {mesh.ns}.draft you may see$"):
        mesh.rest("consumer").load_table(f"{mesh.ns}.draft")


# -- loads --------------------------------------------------------------------------------------------------

def test_consumer_reads_a_fully_visible_table(mesh):
    table = mesh.rest("consumer").load_table(f"{mesh.ns}.orders")
    assert [f.name for f in table.schema().fields] == ["id", "amount"]
    assert _sorted_rows(table) == ORDER_ROWS
    con = mesh.duck("consumer")
    try:
        assert con.execute(f"SELECT id, amount FROM mesh.{mesh.ns}.orders ORDER BY id").fetchall() == [(1, 10.0), (2, 20.5)]
    finally:
        con.close()


def test_describe_only_load_is_403_naming_select(mesh):
    """A caller that may see a table but not read it is told which grant is missing."""
    granted = _manage(mesh.admin, "POST", "/grants", json={"permissions": "DESCRIBE", "principal": mesh.outsider,
                                                           "table": f"{mesh.ns}.orders"})
    try:
        with pytest.raises(ForbiddenError, match=f"{mesh.outsider} lacks SELECT on table {mesh.ns}.orders"):
            mesh.rest("outsider").load_table(f"{mesh.ns}.orders")
        mesh.denied("outsider", "SELECT", f"table {mesh.ns}.orders")
        response = mesh.raw_load(mesh.client("outsider").token(), "orders")
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["type"] == "ForbiddenException" and error["code"] == 403
        assert "SELECT" in error["message"]
        con = mesh.duck("outsider")
        try:
            with pytest.raises(duckdb.Error, match="SELECT"):
                con.execute(f"SELECT * FROM mesh.{mesh.ns}.orders").fetchall()
        finally:
            con.close()
    finally:
        _manage(mesh.admin, "POST", "/grants/revoke", json={"permissions": "DESCRIBE", "id": granted["id"]})
    with pytest.raises(NoSuchTableError):  # the grant is gone: the table is invisible again
        mesh.rest("outsider").load_table(f"{mesh.ns}.orders")


def test_producer_reads_everything_it_owns(mesh):
    producer = mesh.rest("producer")
    assert _sorted_rows(producer.load_table(f"{mesh.ns}.orders")) == ORDER_ROWS
    assert _sorted_rows(producer.load_table(f"{mesh.ns}.customers")) == CUSTOMER_ROWS  # email included
    assert _sorted_rows(producer.load_table(f"{mesh.ns}.drafts")) == [{"id": 1}]
    assert _sorted_rows(producer.load_table(f"{mesh.raw_ns}.staging")) == [{"id": 7}]
    con = mesh.duck("producer")
    try:
        assert con.execute(f"SELECT id, name, email FROM mesh.{mesh.ns}.customers ORDER BY id").fetchall() == \
            [(r["id"], r["name"], r["email"]) for r in CUSTOMER_ROWS]
        assert con.execute(f"SELECT count(*) FROM mesh.{mesh.raw_ns}.staging").fetchone() == (1,)
    finally:
        con.close()


# -- writes -------------------------------------------------------------------------------------------------

def test_consumer_pyiceberg_writes_are_refused_and_change_nothing(mesh):
    before = mesh.metadata_location("orders")
    table = mesh.rest("consumer").load_table(f"{mesh.ns}.orders")
    with pytest.raises(ForbiddenError, match=f"lacks INSERT on table {mesh.ns}.orders"):
        table.append(pa.Table.from_pylist([{"id": 3, "amount": 1.0}], schema=ORDERS))
    mesh.denied("consumer", "INSERT", f"table {mesh.ns}.orders")
    # A copy-on-write delete adds and removes files; a caller that may not write at all is refused on what the
    # metadata shows (a new snapshot: INSERT), before the catalog reads a single manifest.
    with pytest.raises(ForbiddenError, match="lacks INSERT on"):
        table.delete("id = 1")
    with pytest.raises(ForbiddenError, match="lacks ALTER"):
        with table.update_schema() as update:
            update.add_column("note", StringType())
    mesh.denied("consumer", "ALTER", f"table {mesh.ns}.orders")
    assert mesh.metadata_location("orders") == before
    assert _sorted_rows(mesh.rest("producer").load_table(f"{mesh.ns}.orders")) == ORDER_ROWS


def test_consumer_duckdb_insert_and_drop_are_refused(mesh):
    before = mesh.metadata_location("orders")
    con = mesh.duck("consumer")
    try:
        with pytest.raises(duckdb.Error, match=f"lacks INSERT on table {mesh.ns}.orders"):
            con.execute(f"INSERT INTO mesh.{mesh.ns}.orders VALUES (3, 1.0)")
    finally:
        con.close()
    con = mesh.duck("consumer")
    try:
        with pytest.raises(duckdb.Error, match=f"lacks DROP on table {mesh.ns}.orders"):
            con.execute(f"DROP TABLE mesh.{mesh.ns}.orders")
    finally:
        con.close()
    mesh.denied("consumer", "INSERT", f"table {mesh.ns}.orders")
    mesh.denied("consumer", "DROP", f"table {mesh.ns}.orders")
    assert mesh.metadata_location("orders") == before  # still there, unchanged
    assert {t[-1] for t in mesh.rest("consumer").list_tables(mesh.ns)} >= {"orders"}


def test_producer_writes_succeed_and_consumer_reads_them(mesh):
    producer = mesh.rest("producer")
    before = mesh.metadata_location("events")
    producer.load_table(f"{mesh.ns}.events").append(pa.Table.from_pylist([{"id": 2}], schema=IDS))
    after_append = mesh.metadata_location("events")
    assert after_append != before
    con = mesh.duck("producer")
    try:
        con.execute(f"INSERT INTO mesh.{mesh.ns}.events VALUES (3)")
    finally:
        con.close()
    assert mesh.metadata_location("events") != after_append
    assert _sorted_rows(mesh.rest("consumer").load_table(f"{mesh.ns}.events")) == [{"id": 1}, {"id": 2}, {"id": 3}]


def test_creator_owns_what_it_just_created(mesh):
    ns = f"{mesh.ns}_new_{uuid.uuid4().hex[:6]}"
    producer = mesh.rest("producer")
    producer.list_namespaces()  # log in first, so what follows runs back to back
    # A governance change through this server drops its policy snapshot; the next request reloads it, so the
    # snapshot the creates below are checked against is fresh (and stays cached for the next second).
    _manage(mesh.admin, "POST", "/tag-assignments/remove", json={"key": mesh.domain, "namespace": mesh.raw_ns})
    producer.create_namespace(ns)
    producer.create_table(f"{ns}.fresh", IDS)
    table = producer.load_table(f"{ns}.fresh")  # at once: the creator owns what it creates
    table.append(pa.Table.from_pylist([{"id": 1}], schema=IDS))
    assert _sorted_rows(producer.load_table(f"{ns}.fresh")) == [{"id": 1}]


def test_grants_and_revokes_take_effect_at_once(mesh):
    """A change made through this server is enforced by its next request (no 1 s policy cache in the way)."""
    consumer = mesh.rest("consumer")
    granted = _manage(mesh.admin, "POST", "/grants", json={"permissions": "SELECT", "principal": mesh.consumer,
                                                           "table": f"{mesh.ns}.drafts"})
    try:
        assert _sorted_rows(consumer.load_table(f"{mesh.ns}.drafts")) == [{"id": 1}]
    finally:
        _manage(mesh.admin, "POST", "/grants/revoke", json={"permissions": "SELECT", "id": granted["id"]})
    with pytest.raises(NoSuchTableError):  # no longer visible at all
        consumer.load_table(f"{mesh.ns}.drafts")


# -- column limits ------------------------------------------------------------------------------------------

def test_column_limited_reader_is_refused_without_the_promise(mesh):
    with pytest.raises(ForbiddenError, match="column limits"):
        mesh.rest("consumer").load_table(f"{mesh.ns}.customers")
    mesh.denied("consumer", "SELECT", f"table {mesh.ns}.customers")
    con = mesh.duck("consumer")  # DuckDB cannot promise it either: fail closed, never the whole table
    try:
        with pytest.raises(duckdb.Error, match="column limits"):
            con.execute(f"SELECT * FROM mesh.{mesh.ns}.customers").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("how", ["header", "scope"])
def test_column_limited_reader_gets_only_visible_columns(mesh, how):
    if how == "header":
        catalog = mesh.rest("consumer", **COLUMN_LIMITS)
    else:
        client = mesh.server.client(mesh.consumer, mesh.secrets["consumer"], scope="catalog icemesh:column-limits")
        catalog = client.rest_catalog()
    table = catalog.load_table(f"{mesh.ns}.customers")
    assert [f.name for f in table.schema().fields] == ["id", "name"]
    assert all("email" not in [f.name for f in s.fields] for s in table.metadata.schemas)
    rows = _sorted_rows(table)
    assert rows == [{"id": r["id"], "name": r["name"]} for r in CUSTOMER_ROWS]
    assert all("email" not in row for row in rows)


def test_load_table_labels(mesh):
    d, s = mesh.domain, mesh.sensitivity
    consumer = mesh.raw_load(mesh.client("consumer").token(), "customers", {"X-Icemesh-Column-Limits": "apply"})
    assert consumer.status_code == 200, consumer.text
    body = consumer.json()
    assert [f["name"] for f in next(x for x in body["metadata"]["schemas"]
                                     if x["schema-id"] == body["metadata"]["current-schema-id"])["fields"]] == ["id", "name"]
    labels = body["labels"]
    assert labels["object-labels"] == {d: "sales", s: "internal"}
    assert labels["fields"] == labels["field-labels"]  # the spec's name, and the one icemesh sent before it
    assert {f["field-id"]: f["labels"] for f in labels["fields"]} == {
        1: {d: "sales", s: "internal"}, 2: {d: "sales", s: "internal"}}  # nothing about the hidden column

    producer = mesh.raw_load(mesh.client("producer").token(), "customers")
    assert producer.status_code == 200, producer.text
    fields = {f["field-id"]: f["labels"] for f in producer.json()["labels"]["fields"]}
    assert fields[3] == {d: "sales", s: "confidential"}
    assert fields[1] == {d: "sales", s: "internal"}
    assert consumer.headers.get("etag") != producer.headers.get("etag")

    drafts = mesh.raw_load(mesh.client("producer").token(), "drafts").json()["labels"]
    assert drafts["object-labels"] == {d: "sales", s: "confidential"}


# -- authentication -----------------------------------------------------------------------------------------

def _assert_401(response: httpx.Response, contains: str | None = None) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["type"] == "NotAuthorizedException" and error["code"] == 401
    if contains:
        assert contains in error["message"].lower()


def test_no_token_and_forged_token_are_401(mesh):
    base = f"{mesh.server.uri}/v1/{mesh.prefix}"
    _assert_401(httpx.get(f"{base}/namespaces", timeout=30))
    _assert_401(httpx.get(mesh.table_path("orders"), timeout=30))
    _assert_401(httpx.get(f"{mesh.server.uri}{M}/principals", timeout=30))
    forged = {"Authorization": "Bearer " + uuid.uuid4().hex}
    _assert_401(httpx.get(f"{base}/namespaces", headers=forged, timeout=30))
    _assert_401(httpx.get(mesh.table_path("orders"), headers=forged, timeout=30))
    _assert_401(httpx.get(f"{base}/namespaces", headers={"Authorization": "Basic Zm9vOmJhcg=="}, timeout=30))

    forged_client = CatalogClient(mesh.server.uri, token="forged-" + uuid.uuid4().hex)
    with pytest.raises(UnauthorizedError):
        forged_client.rest_catalog().list_namespaces()
    with pytest.raises(duckdb.Error, match="401"):
        forged_client.duckdb()

    wrong = httpx.post(f"{mesh.server.uri}/v1/oauth/tokens", timeout=30, data={
        "grant_type": "client_credentials", "client_id": mesh.consumer, "client_secret": "wrong", "scope": "catalog"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


def _token(uri: str, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(f"{uri}/v1/oauth/tokens", timeout=30, data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret, "scope": "catalog"})


def _whoami(uri: str, token: str) -> httpx.Response:
    return httpx.get(f"{uri}{M}/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.fixture(scope="module")
def short_ttl_server(catalog_server, tmp_path_factory):
    """A second server on the same catalog database, issuing tokens that live 1 s."""
    args = catalog_server.args
    db, warehouse = args[args.index("--db") + 1], args[args.index("--warehouse") + 1]
    home = tmp_path_factory.mktemp("short-ttl")
    server = CatalogProcess(db=db, warehouse=warehouse, cwd=str(home), extra_args=["--token-ttl", "1"],
                            admin_secret=catalog_server.admin_secret).start()
    yield server
    server.stop()


def test_expired_deleted_and_rotated_tokens_are_401(mesh, short_ttl_server):
    main, short = mesh.server.uri, short_ttl_server.uri
    sfx = uuid.uuid4().hex[:6]
    doomed = {kind: _manage(mesh.admin, "POST", "/principals", json={"name": f"tmp_{kind}_{sfx}"})
              for kind in ("deleted", "rotated")}
    tokens = {kind: _token(main, p["client_id"], p["client_secret"]).json()["access_token"] for kind, p in doomed.items()}

    issued_at = time.monotonic()
    issued = _token(short, mesh.consumer, mesh.secrets["consumer"])
    assert issued.status_code == 200 and issued.json()["expires_in"] == 1
    expiring = issued.json()["access_token"]
    first_use = _whoami(short, expiring)
    if time.monotonic() - issued_at < 0.9:  # certainly used within its lifetime: it must have worked
        assert first_use.status_code == 200, first_use.text
    for token in tokens.values():  # warm both servers' token caches
        assert _whoami(main, token).status_code == 200
        assert _whoami(short, token).status_code == 200
    warmed_at = time.monotonic()

    _manage(mesh.admin, "DELETE", f"/principals/{doomed['deleted']['name']}")
    rotated = _manage(mesh.admin, "POST", f"/principals/{doomed['rotated']['name']}/rotate-secret")
    # The server that made the change forgets the tokens at once.
    _assert_401(_whoami(main, tokens["deleted"]))
    _assert_401(_whoami(main, tokens["rotated"]))
    assert _token(main, doomed["deleted"]["client_id"], doomed["deleted"]["client_secret"]).status_code == 401
    assert _token(main, doomed["rotated"]["client_id"], doomed["rotated"]["client_secret"]).status_code == 401
    fresh = _token(main, rotated["client_id"], rotated["client_secret"])
    assert fresh.status_code == 200
    assert _whoami(main, fresh.json()["access_token"]).json()["name"] == doomed["rotated"]["name"]

    # Past the 1 s lifetime and the other server's 2 s token cache (counted from the last warming, on a slow machine).
    time.sleep(max(0.0, 3.2 - (time.monotonic() - issued_at), 2.4 - (time.monotonic() - warmed_at)))
    _assert_401(_whoami(short, expiring), "expired")
    _assert_401(_whoami(main, expiring), "expired")
    _assert_401(httpx.get(f"{short}/v1/{mesh.prefix}/namespaces", headers={"Authorization": f"Bearer {expiring}"},
                          timeout=30))
    _assert_401(_whoami(short, tokens["deleted"]))
    _assert_401(_whoami(short, tokens["rotated"]))
    _manage(mesh.admin, "DELETE", f"/principals/{doomed['rotated']['name']}")


# -- management ---------------------------------------------------------------------------------------------

def test_management_by_non_admins_is_403_and_changes_nothing(mesh):
    grants_before = _manage(mesh.admin, "GET", "/grants")
    principals_before = _manage(mesh.admin, "GET", "/principals")
    tags_before = _manage(mesh.admin, "GET", "/tags")
    attempts = [
        ("POST", "/principals", {"json": {"name": f"intruder_{uuid.uuid4().hex[:6]}"}}, "principals"),
        ("GET", "/principals", {}, "principals"),
        ("DELETE", f"/principals/{mesh.outsider}", {}, "principals"),
        ("POST", f"/principals/{mesh.producer}/rotate-secret", {}, "principals"),
        ("POST", "/tags", {"json": {"key": f"k_{uuid.uuid4().hex[:6]}", "values": ["a"]}}, "tags"),
        ("POST", "/grants", {"json": {"permissions": "SELECT", "principal": None, "table": f"{mesh.ns}.drafts"}}, "grants"),
        ("GET", "/grants", {"params": {"principal": mesh.outsider}}, "grants of other principals"),
        ("GET", "/audit", {"params": {"principal": mesh.outsider}}, "audit rows of other principals"),
        ("GET", "/access", {"params": {"principal": mesh.outsider, "resource": f"{mesh.ns}.drafts"}},
         "access checks for other principals"),
    ]
    for who in ("consumer", "producer"):  # owning a namespace does not make one an admin
        client = mesh.client(who)
        for method, path, kwargs, what in attempts:
            if path == "/grants" and method == "POST":
                kwargs = {"json": {**kwargs["json"], "principal": mesh.names[who]}}
            with pytest.raises(ClientError) as info:
                client.request(method, f"{M}{path}", **kwargs)
            assert info.value.code == 403, (who, method, path, str(info.value))
            assert info.value.type == "ForbiddenException"
            assert "ADMIN" in str(info.value), str(info.value)
            mesh.denied(who, "ADMIN", what)
    assert _manage(mesh.admin, "GET", "/grants") == grants_before
    assert _manage(mesh.admin, "GET", "/principals") == principals_before
    assert _manage(mesh.admin, "GET", "/tags") == tags_before

    # What any principal may ask about itself (tests/test_self_service.py has the rest).
    me = mesh.client("consumer").request("GET", f"{M}/whoami")
    assert me["name"] == mesh.consumer and me["admin"] is False
    check = mesh.client("consumer").request("GET", f"{M}/access", params={
        "principal": mesh.consumer, "resource": f"{mesh.ns}.customers"})
    assert check["decision"] == "ALLOW" and check["visible_columns"] == ["id", "name"]
    assert check["hidden_columns"] == ["email"]


def test_owners_tag_their_own_products_but_never_override_governance(mesh):
    """A table's owner may tag it (dbt publishing does), an outsider may not, and no owner may change or
    remove what an admin set, directly (drafts is confidential) or by inheritance (the namespace's tags)."""
    tags_before = _manage(mesh.admin, "GET", "/effective-tags", params={"resource": f"{mesh.ns}.drafts"})
    with pytest.raises(ClientError) as info:
        mesh.client("consumer").request("POST", f"{M}/tag-assignments", json={
            "key": mesh.sensitivity, "value": "public", "table": f"{mesh.ns}.orders"})
    assert info.value.code == 403 and "lacks ALTER on table" in str(info.value)
    producer = mesh.client("producer")
    for body in ({"key": mesh.sensitivity, "value": "public", "table": f"{mesh.ns}.drafts"},      # direct
                 {"key": mesh.sensitivity, "value": "public", "table": f"{mesh.ns}.orders"},      # inherited
                 {"key": mesh.domain, "value": "finance", "table": f"{mesh.ns}.events", "column": "id"}):
        with pytest.raises(ClientError) as info:
            producer.request("POST", f"{M}/tag-assignments", json=body)
        assert info.value.code == 403 and "was set by governance" in str(info.value), body
    with pytest.raises(ClientError) as info:
        producer.request("POST", f"{M}/tag-assignments/remove", json={"key": mesh.sensitivity, "table": f"{mesh.ns}.drafts"})
    assert info.value.code == 403
    assert _manage(mesh.admin, "GET", "/effective-tags", params={"resource": f"{mesh.ns}.drafts"}) == tags_before

    # Re-asserting governance's value is harmless; a key governance left unset is the owner's call...
    producer.request("POST", f"{M}/tag-assignments", json={
        "key": mesh.sensitivity, "value": "confidential", "table": f"{mesh.ns}.drafts"})
    pii = f"pii_{uuid.uuid4().hex[:6]}"
    _manage(mesh.admin, "POST", "/tags", json={"key": pii, "values": ["yes", "no"]})
    producer.request("POST", f"{M}/tag-assignments", json={"key": pii, "value": "yes", "table": f"{mesh.ns}.events",
                                                           "column": "id"})
    producer.request("POST", f"{M}/tag-assignments", json={"key": pii, "value": "no", "table": f"{mesh.ns}.events",
                                                           "column": "id"})  # its own tag: it may change it
    shown = _manage(mesh.admin, "GET", "/effective-tags", params={"resource": f"{mesh.ns}.events"})
    assert shown["columns"]["id"][pii]["value"] == "no"
    # ...and it may take back what it set itself.
    producer.request("POST", f"{M}/tag-assignments/remove", json={"key": pii, "table": f"{mesh.ns}.events", "column": "id"})
    shown = _manage(mesh.admin, "GET", "/effective-tags", params={"resource": f"{mesh.ns}.events"})
    assert pii not in shown["columns"]["id"]
    _manage(mesh.admin, "DELETE", f"/tags/{pii}")


# -- audit --------------------------------------------------------------------------------------------------

def test_audit_records_every_denial(mesh):
    # Provoke a fresh set here too, so this test stands on its own.
    with pytest.raises(NoSuchTableError):
        mesh.rest("outsider").load_table(f"{mesh.ns}.events")
    mesh.denied("outsider", "SELECT", f"table {mesh.ns}.events")
    with pytest.raises(ForbiddenError):
        mesh.rest("consumer").load_table(f"{mesh.ns}.events").append(pa.Table.from_pylist([{"id": 9}], schema=IDS))
    mesh.denied("consumer", "INSERT", f"table {mesh.ns}.events")
    with pytest.raises(ClientError):
        mesh.client("consumer").request("GET", f"{M}/audit", params={"principal": mesh.outsider})
    mesh.denied("consumer", "ADMIN", "audit rows of other principals")

    expected = set(mesh.denials)
    principals = {p for p, _a, _r in expected}
    deadline = time.monotonic() + 2.0
    while True:
        found = set()
        for principal in principals:
            rows = _manage(mesh.admin, "GET", "/audit", params={"denied": "true", "principal": principal, "limit": 1000})
            assert all(r["allowed"] is False and r["principal"] == principal for r in rows)
            found |= {(r["principal"], r["action"], r["resource"]) for r in rows}
        missing = expected - found
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not missing, f"denials missing from the audit log: {sorted(missing)}"

    # Denials carry the reason given to the caller; allowed reads are recorded too.
    rows = _manage(mesh.admin, "GET", "/audit", params={"denied": "true", "principal": mesh.outsider, "limit": 1000})
    row = next(r for r in rows if r["action"] == "SELECT" and r["resource"] == f"table {mesh.ns}.events")
    assert "lacks SELECT" in row["reason"] and row["request_id"]
    mesh.rest("consumer").load_table(f"{mesh.ns}.orders")  # an allowed read, made here (not left to earlier tests)
    deadline = time.monotonic() + 2.0
    while True:
        allowed = _manage(mesh.admin, "GET", "/audit", params={"principal": mesh.consumer, "limit": 1000})
        found = any(r["allowed"] and r["action"] == "SELECT" and r["resource"] == f"table {mesh.ns}.orders"
                    for r in allowed)
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert found, "the consumer's allowed read of orders is not in the audit log"


def test_idempotency_keys_belong_to_their_principal(catalog_server):
    """Another principal replaying a known Idempotency-Key gets its own answer, never the first caller's."""
    admin = catalog_server.client()
    suffix = uuid.uuid4().hex[:6]
    other = admin.request("POST", "/management/v1/principals", json={"name": f"svc_idem_{suffix}"})
    outsider = catalog_server.client(other["name"], other["client_secret"])
    key = str(uuid.uuid4())
    body = {"namespace": [f"idem_{suffix}"]}
    first = admin.request("POST", f"/v1/{admin.prefix()}/namespaces", json=body, headers={"Idempotency-Key": key})
    assert first["namespace"] == [f"idem_{suffix}"]
    with pytest.raises(ClientError) as refused:  # not a replay of admin's 200: its own decision, a 403
        outsider.request("POST", f"/v1/{admin.prefix()}/namespaces", json=body, headers={"Idempotency-Key": key})
    assert refused.value.code == 403
