"""Every endpoint `/v1/config` lists, exercised by the real clients that have a call for it (pyiceberg 0.12 and
Spark's Iceberg 1.10.2 catalog), each step asserting what a user would see.

Which endpoints a client really reached is read from the server's own access log (`serve --access-log`), not
assumed: the last test fails, naming them, for any listed endpoint that no step here reached with a 2xx, or that
a client with a call for it never reached. A new endpoint therefore needs a step here (or, when a client has no
call for it, a line in its *_HAS_NO_CALL saying why). Run the module whole: the last test reads what the others
recorded. Two sweeps send every listed endpoint on another principal's objects: with no grants each is refused;
with DESCRIBE and SELECT each reading endpoint answers and each other one is a 403; neither changes anything.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import defaultdict
from contextlib import contextmanager

import httpx
import pyarrow as pa
import pytest
from pyiceberg.catalog.rest.scan_planning import PlanCompleted
from pyiceberg.schema import Schema
from pyiceberg.types import DoubleType, LongType, NestedField
from pyiceberg.view.metadata import SQLViewRepresentation, ViewVersion

from tests.conftest import spark_catalog, start_catalog

pytestmark = pytest.mark.spark

M = "/management/v1"
T = "/v1/{prefix}/namespaces/{namespace}/tables/{table}"
V = "/v1/{prefix}/namespaces/{namespace}/views/{view}"
ORDERS = pa.schema([("id", pa.int64()), ("amount", pa.float64())])

# Listed endpoints a client has no call for (so no test can make it reach them), and why.
PYICEBERG_HAS_NO_CALL = {
    f"POST {T}/metrics": "pyiceberg 0.12 sends no scan or commit reports",
    f"GET {T}/plan/{{plan-id}}": "pyiceberg 0.12 does not poll a submitted plan (plan_scan raises NotImplementedError)",
    f"DELETE {T}/plan/{{plan-id}}": "pyiceberg 0.12 never cancels a plan",
    f"POST {V}": "pyiceberg 0.12 cannot replace a view (no replace_view)",
    "POST /v1/{prefix}/views/rename": "pyiceberg 0.12 cannot rename a view (no rename_view)",
    "POST /v1/{prefix}/transactions/commit": "pyiceberg 0.12 commits one table at a time",
}
_NO_REST_PLANNING = "Iceberg 1.10.2's Spark runtime plans scans on the client (no REST scan-planning client)"
SPARK_HAS_NO_CALL = {
    f"POST {T}/plan": _NO_REST_PLANNING,
    f"GET {T}/plan/{{plan-id}}": _NO_REST_PLANNING,
    f"DELETE {T}/plan/{{plan-id}}": _NO_REST_PLANNING,
    f"POST {T}/tasks": _NO_REST_PLANNING,
}
NO_CALL = {"pyiceberg": PYICEBERG_HAS_NO_CALL, "spark": SPARK_HAS_NO_CALL}

_ACCESS = re.compile(r'"([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3})')


class AccessLog:
    """The listed endpoints each client reached with a 2xx answer, read from the server's access log in the
    windows `with log.client(name):` marks (one client at a time: steps run one after another)."""

    def __init__(self, server, endpoints: list[str]) -> None:
        self.server = server
        self.endpoints = endpoints
        self.patterns = []
        for endpoint in endpoints:
            method, template = endpoint.split(" ", 1)
            regex = "".join("[^/]+" if part.startswith("{") else re.escape(part)
                            for part in re.split(r"(\{[^}]+\})", template))
            self.patterns.append((endpoint, method, re.compile(f"^{regex}$")))
        self.reached: dict[str, set[str]] = defaultdict(set)
        self.offset = 0

    def _sync(self) -> str:
        """Everything the server answered so far is in the log: a marker request, then wait for its line."""
        marker = uuid.uuid4().hex
        httpx.get(f"{self.server.uri}/healthz?sync={marker}", timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(self.server.log_path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            if marker in text:
                return text
            time.sleep(0.05)
        raise AssertionError(f"the server's access log ({self.server.log_path}) never showed the marker request")

    def endpoint(self, method: str, path: str) -> str | None:
        path = path.split("?", 1)[0]
        return next((e for e, m, regex in self.patterns if m == method and regex.match(path)), None)

    @contextmanager
    def client(self, name: str):
        self.offset = len(self._sync())
        yield
        text = self._sync()
        for method, path, status in _ACCESS.findall(text[self.offset:]):
            endpoint = self.endpoint(method, path)
            if endpoint and 200 <= int(status) < 300:
                self.reached[name].add(endpoint)
        self.offset = len(text)


@pytest.fixture(scope="module")
def world(tmp_path_factory, spark):
    # Plans of more than 2 files come with plan-tasks, so pyiceberg's scans also reach /tasks.
    server = start_catalog(tmp_path_factory, None, "conformance", extra_args=["--access-log"],
                           env={"PYTHONUNBUFFERED": "1", "ICEMESH_PLAN_PAGE_SIZE": "2"})
    admin = server.client()
    server.outsider_secret = admin.request("POST", f"{M}/principals", json={"name": "svc_outsider"})["client_secret"]
    server.rest = admin.rest_catalog()
    server.http = httpx.Client(base_url=f"{server.uri}/v1/{admin.prefix()}", headers=admin.headers(), timeout=30)
    server.endpoints = server.http.get(f"{server.uri}/v1/config").json()["endpoints"]
    server.access = AccessLog(server, server.endpoints)
    server.cat = spark_catalog(spark, server, f"conf_{server.port}")
    server.jvm = spark._jvm
    server.iceberg = spark._jsparkSession.sessionState().catalogManager().catalog(server.cat).icebergCatalog()
    yield server
    server.http.close()
    server.stop()


def _ident(world, ns: str, name: str):
    """An Iceberg Java TableIdentifier (py4j cannot call its varargs `of`)."""
    return world.jvm.org.apache.iceberg.catalog.TableIdentifier.parse(f"{ns}.{name}")


def _ns() -> str:
    return f"c_{uuid.uuid4().hex[:10]}"


def _orders(*rows) -> pa.Table:
    return pa.table({"id": [r[0] for r in rows], "amount": [r[1] for r in rows]}, schema=ORDERS)


def _rows(table) -> list[tuple]:
    return sorted(tuple(r.values()) for r in table.scan().to_arrow().to_pylist())


def _spark_rows(spark, sql: str) -> list[tuple]:
    return sorted(tuple(r) for r in spark.sql(sql).collect())


def test_config_lists_namespaces_tables_views_transactions_and_planning(world):
    listed = set(world.endpoints)
    assert {"POST /v1/{prefix}/namespaces", f"POST {T}", "POST /v1/{prefix}/transactions/commit",
            "GET /v1/{prefix}/namespaces/{namespace}/views", f"POST {V}", "POST /v1/{prefix}/views/rename",
            f"POST {T}/plan", f"GET {T}/plan/{{plan-id}}", f"DELETE {T}/plan/{{plan-id}}", f"POST {T}/tasks"} <= listed
    assert len(listed) == len(world.endpoints)  # each once
    for client, no_call in NO_CALL.items():  # the exemptions name listed endpoints, nothing stale
        assert set(no_call) <= listed, (client, set(no_call) - listed)


# -- pyiceberg ----------------------------------------------------------------------------------------------


def test_pyiceberg_namespaces(world):
    rest, ns = world.rest, _ns()
    with world.access.client("pyiceberg"):
        rest.create_namespace(ns, {"owner_team": "sales"})
        assert rest.namespace_exists(ns) and not rest.namespace_exists(f"{ns}_none")
        assert (ns,) in rest.list_namespaces()
        assert rest.load_namespace_properties(ns)["owner_team"] == "sales"
        summary = rest.update_namespace_properties(ns, removals={"owner_team"}, updates={"tier": "gold"})
        assert summary.removed == ["owner_team"] and summary.updated == ["tier"] and summary.missing == []
        properties = rest.load_namespace_properties(ns)
        assert properties["tier"] == "gold" and "owner_team" not in properties
        rest.drop_namespace(ns)
        assert not rest.namespace_exists(ns) and (ns,) not in rest.list_namespaces()


def test_pyiceberg_tables(world):
    rest, ns = world.rest, _ns()
    with world.access.client("pyiceberg"):
        rest.create_namespace(ns)
        table = rest.create_table(f"{ns}.orders", schema=ORDERS)
        table.append(_orders((1, 1.0), (2, 2.0)))
        assert rest.table_exists(f"{ns}.orders") and not rest.table_exists(f"{ns}.none")
        assert rest.list_tables(ns) == [(ns, "orders")]
        assert _rows(rest.load_table(f"{ns}.orders")) == [(1, 1.0), (2, 2.0)]
        rest.rename_table(f"{ns}.orders", f"{ns}.orders_2026")
        assert rest.list_tables(ns) == [(ns, "orders_2026")]
        location = rest.load_table(f"{ns}.orders_2026").metadata_location
        rest.drop_table(f"{ns}.orders_2026")  # no purge: the files stay, an admin may adopt them
        assert not rest.table_exists(f"{ns}.orders_2026")
        restored = rest.register_table(f"{ns}.restored", location)
        assert _rows(restored) == [(1, 1.0), (2, 2.0)]
        rest.purge_table(f"{ns}.restored")
        assert rest.list_tables(ns) == []
        rest.drop_namespace(ns)


def test_pyiceberg_plans_on_the_server_and_reads_the_same_rows(world):
    ns = _ns()
    world.rest.create_namespace(ns)
    table = world.rest.create_table(f"{ns}.orders", schema=ORDERS)
    for n in (1, 2, 3):  # three files: one page of two, then a plan-task
        table.append(_orders((n, float(n))))
    planner = world.client().rest_catalog(**{"scan-planning-mode": "server"})
    assert planner.supports_server_side_planning()
    with world.access.client("pyiceberg"):
        planned = planner.load_table(f"{ns}.orders")
        assert _rows(planned) == [(1, 1.0), (2, 2.0), (3, 3.0)]
    # The same files pyiceberg plans on the client: the server neither adds nor drops one.
    local = {t.file.file_path for t in world.rest.load_table(f"{ns}.orders").scan().plan_files()}
    assert len(local) == 3 and {t.file.file_path for t in planned.scan().plan_files()} == local


def test_plans_are_fetched_by_id_and_cancelled(world):
    """No client fetches or cancels plans yet (pyiceberg 0.12, Spark 1.10.2): raw HTTP, read with pyiceberg's
    own response model."""
    ns, http = _ns(), world.http
    world.rest.create_namespace(ns)
    table = world.rest.create_table(f"{ns}.orders", schema=ORDERS)
    table.append(_orders((1, 1.0)))
    with world.access.client("http"):
        submitted = http.post(f"/namespaces/{ns}/tables/orders/plan", json={})
        assert submitted.status_code == 200, submitted.text
        plan = PlanCompleted.model_validate_json(submitted.text)
        fetched = http.get(f"/namespaces/{ns}/tables/orders/plan/{plan.plan_id}")
        assert fetched.status_code == 200 and PlanCompleted.model_validate_json(fetched.text) == plan
        assert [t.data_file.file_path for t in plan.file_scan_tasks] == \
            [t.file.file_path for t in table.scan().plan_files()]
        assert http.delete(f"/namespaces/{ns}/tables/orders/plan/{plan.plan_id}").status_code == 204
        assert http.get(f"/namespaces/{ns}/tables/orders/plan/{plan.plan_id}").status_code == 404


def test_pyiceberg_views(world):
    rest, ns = world.rest, _ns()
    schema = Schema(NestedField(1, "id", LongType()), NestedField(2, "amount", DoubleType()))
    version = ViewVersion(version_id=1, schema_id=0, summary={"engine-name": "pyiceberg"}, default_namespace=(ns,),
                          representations=[SQLViewRepresentation(type="sql", sql=f"SELECT id, amount FROM {ns}.orders",
                                                                 dialect="spark")])
    rest.create_namespace(ns)
    with world.access.client("pyiceberg"):
        created = rest.create_view(f"{ns}.big", schema=schema, view_version=version)
        assert rest.list_views(ns) == [(ns, "big")]
        assert rest.view_exists(f"{ns}.big") and not rest.view_exists(f"{ns}.none")
        loaded = rest.load_view(f"{ns}.big")
        assert loaded.metadata.view_uuid == created.metadata.view_uuid
        assert loaded.metadata.versions[0].representations[0].root.sql == f"SELECT id, amount FROM {ns}.orders"
        rest.drop_view(f"{ns}.big")
        assert rest.list_views(ns) == [] and not rest.view_exists(f"{ns}.big")


# -- Spark --------------------------------------------------------------------------------------------------


def test_spark_namespaces(world, spark):
    cat, ns = world.cat, _ns()
    java_ns = _ident(world, ns, "x").namespace()
    with world.access.client("spark"):
        spark.sql(f"CREATE NAMESPACE {cat}.{ns} WITH PROPERTIES ('owner_team' = 'sales')")
        assert (ns,) in _spark_rows(spark, f"SHOW NAMESPACES IN {cat}")
        spark.sql(f"ALTER NAMESPACE {cat}.{ns} SET PROPERTIES ('tier' = 'gold')")
        described = dict(_spark_rows(spark, f"DESCRIBE NAMESPACE EXTENDED {cat}.{ns}"))
        assert "tier" in described["Properties"] and "owner_team" in described["Properties"]
        assert world.iceberg.namespaceExists(java_ns)  # Spark's Iceberg catalog: HEAD
        spark.sql(f"DROP NAMESPACE {cat}.{ns}")
        assert not world.iceberg.namespaceExists(java_ns)
    assert not world.rest.namespace_exists(ns)


def test_spark_tables(world, spark):
    cat, ns = world.cat, _ns()
    ident = _ident(world, ns, "events")
    with world.access.client("spark"):
        spark.sql(f"CREATE NAMESPACE {cat}.{ns}")
        spark.sql(f"CREATE TABLE {cat}.{ns}.events (id BIGINT, kind STRING) USING iceberg")
        spark.sql(f"INSERT INTO {cat}.{ns}.events VALUES (1, 'a'), (2, 'b')")  # a commit, then a commit report
        assert _spark_rows(spark, f"SELECT * FROM {cat}.{ns}.events") == [(1, "a"), (2, "b")]  # and a scan report
        assert [r.tableName for r in spark.sql(f"SHOW TABLES IN {cat}.{ns}").collect()] == ["events"]
        assert world.iceberg.tableExists(ident)  # HEAD
        spark.sql(f"ALTER TABLE {cat}.{ns}.events RENAME TO {ns}.events_2026")  # Spark: the new name has no catalog
        assert not world.iceberg.tableExists(ident)
        renamed = _ident(world, ns, "events_2026")
        location = world.iceberg.loadTable(renamed).operations().current().metadataFileLocation()
        spark.sql(f"DROP TABLE {cat}.{ns}.events_2026")
        spark.sql(f"CALL {cat}.system.register_table(table => '{ns}.restored', metadata_file => '{location}')")
        assert _spark_rows(spark, f"SELECT * FROM {cat}.{ns}.restored") == [(1, "a"), (2, "b")]
        spark.sql(f"DROP TABLE {cat}.{ns}.restored PURGE")
        spark.sql(f"DROP NAMESPACE {cat}.{ns}")
    assert not world.rest.namespace_exists(ns)


def test_spark_commits_a_multi_table_transaction(world, spark):
    """Spark's Iceberg catalog (RESTCatalog.commitTransaction) commits two tables at once: both change."""
    jvm, ns = world.jvm, _ns()
    world.rest.create_namespace(ns)
    for name in ("a", "b"):
        world.rest.create_table(f"{ns}.{name}", schema=ORDERS)
    with world.access.client("spark"):
        commits = jvm.java.util.ArrayList()
        for name in ("a", "b"):
            ident = _ident(world, ns, name)
            base = world.iceberg.loadTable(ident).operations().current()
            properties = jvm.java.util.HashMap()
            properties.put("batch", "2026-12")
            updated = jvm.org.apache.iceberg.TableMetadata.buildFrom(base).setProperties(properties).build()
            commits.add(jvm.org.apache.iceberg.catalog.TableCommit.create(ident, base, updated))
        world.iceberg.commitTransaction(commits)
    for name in ("a", "b"):
        assert world.rest.load_table(f"{ns}.{name}").properties["batch"] == "2026-12"


def test_spark_views(world, spark):
    cat, ns = world.cat, _ns()
    ident = _ident(world, ns, "big")
    world.rest.create_namespace(ns)
    world.rest.create_table(f"{ns}.orders", schema=ORDERS).append(_orders((1, 5.0), (2, 50.0), (3, 500.0)))
    with world.access.client("spark"):
        spark.sql(f"CREATE VIEW {cat}.{ns}.big AS SELECT id FROM {cat}.{ns}.orders WHERE amount > 10")
        # (temporary views of other modules in this process's session are listed too: only the catalog's count)
        assert [r.viewName for r in spark.sql(f"SHOW VIEWS IN {cat}.{ns}").collect() if not r.isTemporary] == ["big"]
        assert _spark_rows(spark, f"SELECT * FROM {cat}.{ns}.big") == [(2,), (3,)]
        assert world.iceberg.viewExists(ident)  # HEAD
        spark.sql(f"CREATE OR REPLACE VIEW {cat}.{ns}.big AS SELECT id FROM {cat}.{ns}.orders WHERE amount > 100")
        assert _spark_rows(spark, f"SELECT * FROM {cat}.{ns}.big") == [(3,)]
        spark.sql(f"ALTER VIEW {cat}.{ns}.big RENAME TO {cat}.{ns}.huge")
        assert not world.iceberg.viewExists(ident)
        spark.sql(f"DROP VIEW {cat}.{ns}.huge")
    assert world.rest.list_views(ns) == [] and world.rest.list_tables(ns) == [(ns, "orders")]


# -- a principal with no grants -----------------------------------------------------------------------------


def _outsider_requests(ns: str, location: str, plan_id: str, plan_task: str) -> dict[str, tuple[str, dict | None]]:
    """For each listed endpoint, the request another principal would try on the target's objects."""
    table, view = f"/namespaces/{ns}/tables/t", f"/namespaces/{ns}/views/v"
    schema = {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}
    set_props = [{"action": "set-properties", "updates": {"owner": "svc_outsider"}}]
    ident = {"namespace": [ns], "name": "t"}
    view_version = {"version-id": 1, "schema-id": 0, "timestamp-ms": 1, "summary": {}, "default-namespace": [ns],
                    "representations": [{"type": "sql", "sql": "SELECT 1 AS id", "dialect": "spark"}]}
    return {
        "GET /v1/{prefix}/namespaces": ("/namespaces", None),
        "POST /v1/{prefix}/namespaces": ("/namespaces", {"namespace": [f"{ns}_mine"]}),
        "GET /v1/{prefix}/namespaces/{namespace}": (f"/namespaces/{ns}", None),
        "HEAD /v1/{prefix}/namespaces/{namespace}": (f"/namespaces/{ns}", None),
        "DELETE /v1/{prefix}/namespaces/{namespace}": (f"/namespaces/{ns}", None),
        "POST /v1/{prefix}/namespaces/{namespace}/properties": (f"/namespaces/{ns}/properties",
                                                                {"removals": ["tier"], "updates": {"x": "1"}}),
        "GET /v1/{prefix}/namespaces/{namespace}/tables": (f"/namespaces/{ns}/tables", None),
        "POST /v1/{prefix}/namespaces/{namespace}/tables": (f"/namespaces/{ns}/tables", {"name": "mine",
                                                                                        "schema": schema}),
        f"GET {T}": (table, None),
        f"HEAD {T}": (table, None),
        f"POST {T}": (table, {"requirements": [], "updates": set_props}),
        f"DELETE {T}": (table + "?purgeRequested=true", None),
        "POST /v1/{prefix}/namespaces/{namespace}/register": (f"/namespaces/{ns}/register",
                                                              {"name": "copy", "metadata-location": location}),
        f"POST {T}/metrics": (table + "/metrics", {"report-type": "scan-report", "table-name": f"{ns}.t",
                                                   "snapshot-id": 1, "filter": True, "schema-id": 0,
                                                   "projected-field-ids": [1], "projected-field-names": ["id"],
                                                   "metrics": {}}),
        f"POST {T}/plan": (table + "/plan", {}),
        f"GET {T}/plan/{{plan-id}}": (f"{table}/plan/{plan_id}", None),
        f"DELETE {T}/plan/{{plan-id}}": (f"{table}/plan/{plan_id}", None),
        f"POST {T}/tasks": (table + "/tasks", {"plan-task": plan_task}),
        "POST /v1/{prefix}/tables/rename": ("/tables/rename", {"source": ident,
                                                               "destination": {"namespace": [ns], "name": "t2"}}),
        "POST /v1/{prefix}/transactions/commit": ("/transactions/commit", {"table-changes": [
            {"identifier": ident, "requirements": [], "updates": set_props}]}),
        "GET /v1/{prefix}/namespaces/{namespace}/views": (f"/namespaces/{ns}/views", None),
        "POST /v1/{prefix}/namespaces/{namespace}/views": (f"/namespaces/{ns}/views", {
            "name": "mine", "schema": schema, "view-version": view_version, "properties": {}}),
        f"GET {V}": (view, None),
        f"HEAD {V}": (view, None),
        f"POST {V}": (view, {"requirements": [], "updates": set_props}),
        f"DELETE {V}": (view, None),
        "POST /v1/{prefix}/views/rename": ("/views/rename", {"source": {"namespace": [ns], "name": "v"},
                                                             "destination": {"namespace": [ns], "name": "v2"}}),
    }


def _state(world, ns: str) -> dict:
    """What the admin sees of the namespace: to prove a refused request changed nothing."""
    rest = world.rest
    return {"namespaces": sorted(rest.list_namespaces()), "properties": rest.load_namespace_properties(ns),
            "tables": rest.list_tables(ns), "views": rest.list_views(ns),
            "table": rest.load_table(f"{ns}.t").metadata_location, "view": rest.load_view(f"{ns}.v").metadata}


# Endpoints that only read: a principal with DESCRIBE and SELECT reaches them; every other endpoint changes something.
READS = {
    "GET /v1/{prefix}/namespaces", "GET /v1/{prefix}/namespaces/{namespace}", "HEAD /v1/{prefix}/namespaces/{namespace}",
    "GET /v1/{prefix}/namespaces/{namespace}/tables", f"GET {T}", f"HEAD {T}", f"POST {T}/metrics", f"POST {T}/plan",
    f"GET {T}/plan/{{plan-id}}", f"DELETE {T}/plan/{{plan-id}}", f"POST {T}/tasks",
    "GET /v1/{prefix}/namespaces/{namespace}/views", f"GET {V}", f"HEAD {V}",
}


@pytest.fixture(scope="module")
def target(world):
    """Another principal's namespace with a table of 3 files (so plans have a task) and a view, tagged open."""
    ns, rest = _ns(), world.rest
    rest.create_namespace(ns, {"tier": "gold"})
    table = rest.create_table(f"{ns}.t", schema=ORDERS)
    for n in (1, 2, 3):
        table.append(_orders((n, float(n))))
    rest.create_view(f"{ns}.v", schema=Schema(NestedField(1, "id", LongType())), view_version=ViewVersion(
        version_id=1, schema_id=0, summary={}, default_namespace=(ns,),
        representations=[SQLViewRepresentation(type="sql", sql=f"SELECT id FROM {ns}.t", dialect="spark")]))
    admin = world.client()
    admin.request("POST", f"{M}/tags", json={"key": f"{ns}_access", "values": ["open"]})
    admin.request("POST", f"{M}/tag-assignments", json={"key": f"{ns}_access", "value": "open", "namespace": ns})
    return ns


def _sweep(world, ns: str, who: str, secret: str, plan_of) -> tuple[dict[str, httpx.Response], str]:
    """Every listed endpoint sent once as `who` on the target's objects (the plan `plan_of` made); the admin's view
    must not change."""
    plan = plan_of.post(f"/namespaces/{ns}/tables/t/plan", json={}).json()
    requests = _outsider_requests(ns, world.rest.load_table(f"{ns}.t").metadata_location, plan["plan-id"],
                                  plan["plan-tasks"][0])
    unknown = sorted(set(world.endpoints) - set(requests))
    assert not unknown, f"listed in /v1/config but not swept as another principal: {unknown}: " \
                        "add the request it would try to _outsider_requests (and to READS if it only reads)"
    before = _state(world, ns)
    client = world.client(who, secret)
    answers = {}
    with httpx.Client(base_url=f"{world.uri}/v1/{client.prefix()}", headers=client.headers(), timeout=30) as http:
        for endpoint in world.endpoints:
            if endpoint == f"DELETE {T}/plan/{{plan-id}}":
                continue  # last: it cancels the plan the GET and /tasks name
            path, body = requests[endpoint]
            answers[endpoint] = http.request(endpoint.split(" ", 1)[0], path, json=body)
        path, _ = requests[f"DELETE {T}/plan/{{plan-id}}"]
        answers[f"DELETE {T}/plan/{{plan-id}}"] = http.delete(path)
    assert _state(world, ns) == before
    assert not world.rest.namespace_exists(f"{ns}_mine")
    return answers, plan["plan-id"]


def _refused(endpoint: str, answer: httpx.Response, codes=(403, 404)) -> None:
    assert answer.status_code in codes, (endpoint, answer.status_code, answer.text)
    if not endpoint.startswith("HEAD"):
        error = answer.json()["error"]
        assert error["code"] == answer.status_code and error["message"], (endpoint, answer.text)


def test_a_principal_with_no_grants_reaches_no_listed_endpoint(world, target):
    answers, plan_id = _sweep(world, target, "svc_outsider", world.outsider_secret, plan_of=world.http)
    for endpoint, answer in answers.items():
        if endpoint == "GET /v1/{prefix}/namespaces":  # a listing of what it may see: nothing here
            assert answer.status_code == 200 and [target] not in answer.json()["namespaces"], answer.text
        else:
            _refused(endpoint, answer)
    # the admin's plan was neither read nor cancelled by another
    assert world.http.get(f"/namespaces/{target}/tables/t/plan/{plan_id}").status_code == 200


def test_a_reader_reads_through_every_reading_endpoint_and_changes_nothing(world, target):
    """DESCRIBE and SELECT (by the namespace's tag): each reading endpoint answers, each other one is refused."""
    admin = world.client()
    secret = admin.request("POST", f"{M}/principals", json={"name": f"svc_reader_{target}"})["client_secret"]
    admin.request("POST", f"{M}/grants", json={"permissions": "DESCRIBE,SELECT", "principal": f"svc_reader_{target}",
                                               "tags": [f"{target}_access=open"]})
    reader = world.client(f"svc_reader_{target}", secret)
    with httpx.Client(base_url=f"{world.uri}/v1/{reader.prefix()}", headers=reader.headers(), timeout=30) as own:
        answers, plan_id = _sweep(world, target, f"svc_reader_{target}", secret, plan_of=own)  # its own plan
        assert own.get(f"/namespaces/{target}/tables/t/plan/{plan_id}").status_code == 404  # it cancelled it
    for endpoint, answer in answers.items():
        if endpoint in READS:
            assert 200 <= answer.status_code < 300, (endpoint, answer.status_code, answer.text)
        else:
            _refused(endpoint, answer, codes=(403,))  # it may see the objects: a refusal, not a 404
    assert [target] in answers["GET /v1/{prefix}/namespaces"].json()["namespaces"]


# -- coverage: last, from what the tests above recorded ------------------------------------------------------


def test_every_listed_endpoint_was_reached_by_each_client_that_has_a_call_for_it(world):
    reached = world.access.reached
    problems = []
    never = sorted(e for e in world.endpoints if not any(e in seen for seen in reached.values()))
    if never:
        problems.append(f"listed in /v1/config but no test in this module reached them with a 2xx: {never}")
    for client, no_call in NO_CALL.items():
        missing = sorted(e for e in world.endpoints if e not in no_call and e not in reached[client])
        if missing:
            problems.append(f"{client} never reached {missing}: exercise them through {client} here, or say in "
                            f"{client.upper()}_HAS_NO_CALL why {client} has no call for them")
    assert not problems, "\n".join(problems)
