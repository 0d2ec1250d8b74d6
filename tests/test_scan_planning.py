"""Server-side scan planning (`POST .../plan`, `.../tasks`) with the caller's policies applied, through pyiceberg 0.12
(`scan-planning-mode=server`) and raw HTTP for what a hostile client would send. One server, planning pages of 2
files so the plan-task path is taken."""

from __future__ import annotations

import base64
import json

import httpx
import pyarrow as pa
import pytest
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.conversions import to_bytes
from pyiceberg.expressions import EqualTo
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import LongType, NestedField, StringType

from icemesh.protocol import COLUMN_LIMITS_HEADER, READ_RESTRICTIONS_HEADER
from tests.conftest import start_catalog

M = "/management/v1"
SCHEMA = Schema(NestedField(1, "id", LongType(), required=True), NestedField(2, "region", StringType()),
                NestedField(3, "email", StringType()))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    server = start_catalog(tmp_path_factory, None, "planning", env={"ICEMESH_PLAN_PAGE_SIZE": "2"},
                           extra_args=["--scan-planning", "server"])
    admin = server.client()
    admin.request("POST", f"{M}/tags", json={"key": "sens", "values": ["public", "pii"]})
    secrets = {n: admin.request("POST", f"{M}/principals", json={"name": n})["client_secret"]
               for n in ("svc_reader", "svc_limited", "svc_outsider", "svc_eu")}
    rest = admin.rest_catalog()
    rest.create_namespace("shop")
    admin.request("POST", f"{M}/tag-assignments", json={"key": "sens", "value": "public", "namespace": "shop"})
    spec = PartitionSpec(PartitionField(2, 1000, IdentityTransform(), "region"))
    orders = rest.create_table("shop.orders", SCHEMA, partition_spec=spec)
    for region in ("eu", "us", "apac"):  # three files, one per region, in three commits (and so three snapshots)
        orders.append(pa.table({"id": pa.array([1, 2] if region == "eu" else [3] if region == "us" else [4], pa.int64()),
                                "region": [region] * (2 if region == "eu" else 1),
                                "email": [f"{region}@x"] * (2 if region == "eu" else 1)},
                               schema=SCHEMA.as_arrow()))
    other = rest.create_table("shop.other", SCHEMA)
    other.append(pa.table({"id": pa.array([9], pa.int64()), "region": ["eu"], "email": ["o@x"]}, schema=SCHEMA.as_arrow()))
    admin.request("POST", f"{M}/tag-assignments", json={"key": "sens", "value": "pii", "table": "shop.orders",
                                                        "column": "email"})
    admin.request("POST", f"{M}/grants", json={"permissions": "DESCRIBE,SELECT", "principal": "svc_reader",
                                               "tags": ["sens=public,pii"]})
    admin.request("POST", f"{M}/grants", json={"permissions": "DESCRIBE,SELECT", "principal": "svc_limited",
                                               "tags": ["sens=public"]})
    admin.request("POST", f"{M}/grants", json={"permissions": "DESCRIBE,SELECT", "principal": "svc_eu",
                                               "tags": ["sens=public,pii"], "rows": "region = 'eu'",
                                               "masks": ["email=sha256"]})
    server.secrets = secrets
    yield server
    server.stop()


def _catalog(server, name: str) -> RestCatalog:
    """pyiceberg as `name`, following the server's scan-planning-mode (an override: server)."""
    return server.client(name, server.secrets[name], column_limits=True).rest_catalog()


def _http(server, name: str) -> tuple[httpx.Client, str]:
    client = server.client(name, server.secrets[name], column_limits=True)
    http = httpx.Client(base_url=server.uri, headers={**client.headers(), COLUMN_LIMITS_HEADER: "true"})
    return http, f"/v1/{client.prefix()}/namespaces/shop/tables"


def test_config_advertises_planning_and_pyiceberg_plans_on_the_server(world):
    reader = _catalog(world, "svc_reader")
    assert reader.supports_server_side_planning()
    table = reader.load_table("shop.orders")
    assert sorted(table.scan().to_arrow()["id"].to_pylist()) == [1, 2, 3, 4]  # three files over two pages
    assert sorted(table.scan(row_filter=EqualTo("region", "eu")).to_arrow()["id"].to_pylist()) == [1, 2]
    http, tables = _http(world, "svc_reader")
    plan = http.post(f"{tables}/orders/plan", json={"filter": {"type": "eq", "term": "region", "value": "us"}}).json()
    assert plan["status"] == "completed" and len(plan["file-scan-tasks"]) == 1  # pruned by partition on the server
    whole = http.post(f"{tables}/orders/plan", json={}).json()
    assert len(whole["file-scan-tasks"]) == 2 and len(whole["plan-tasks"]) == 1
    rest = http.post(f"{tables}/orders/tasks", json={"plan-task": whole["plan-tasks"][0]}).json()
    paths = {t["data-file"]["file-path"] for t in whole["file-scan-tasks"] + rest["file-scan-tasks"]}
    assert len(paths) == 3
    first = table.metadata.snapshots[0].snapshot_id  # an older snapshot: only the eu file
    old = http.post(f"{tables}/orders/plan", json={"snapshot-id": first}).json()
    assert [t["data-file"]["record-count"] for t in old["file-scan-tasks"]] == [2]


def test_a_limited_reader_plans_only_what_it_may_see(world):
    limited = _catalog(world, "svc_limited")
    table = limited.load_table("shop.orders")
    assert [f.name for f in table.schema().fields] == ["id", "region"]
    assert sorted(table.scan().to_arrow()["id"].to_pylist()) == [1, 2, 3, 4]
    http, tables = _http(world, "svc_limited")
    stats = http.post(f"{tables}/orders/plan", json={"stats-fields": ["id"]}).json()
    files = [t["data-file"] for t in stats["file-scan-tasks"]]
    assert all(set(f["lower-bounds"]["keys"]) == {1} for f in files)  # only the field asked for, never email's
    plain = http.post(f"{tables}/orders/plan", json={}).json()
    assert all("lower-bounds" not in t["data-file"] for t in plain["file-scan-tasks"])


@pytest.mark.parametrize("body", [
    {"select": ["id", "email"]},
    {"filter": {"type": "eq", "term": "email", "value": "eu@x"}},  # pruning by a hidden column's values leaks them
    {"filter": {"type": "and", "left": {"type": "eq", "term": "region", "value": "eu"},
                "right": {"type": "starts-with", "term": "EMAIL", "value": "e"}}, "case-sensitive": False},
    {"stats-fields": ["email"]},
])
def test_a_plan_may_not_select_filter_on_or_ask_statistics_of_a_hidden_column(world, body):
    http, tables = _http(world, "svc_limited")
    answer = http.post(f"{tables}/orders/plan", json=body)
    assert answer.status_code == 403, answer.text
    assert "email" in answer.json()["error"]["message"] and "hidden column" in answer.json()["error"]["message"]


def test_hostile_plans_and_plan_tasks(world):
    reader, tables = _http(world, "svc_reader")
    other = _catalog(world, "svc_reader").load_table("shop.other").current_snapshot().snapshot_id
    foreign = reader.post(f"{tables}/orders/plan", json={"snapshot-id": other})
    assert foreign.status_code == 400 and "has no snapshot" in foreign.json()["error"]["message"]
    task = reader.post(f"{tables}/orders/plan", json={}).json()["plan-tasks"][0]
    moved = reader.post(f"{tables}/other/tasks", json={"plan-task": task})  # another table's task
    assert moved.status_code == 404 and "NoSuchPlanTask" in moved.json()["error"]["type"]
    forged = "icemesh-plan-1." + base64.urlsafe_b64encode(json.dumps(
        {"prefix": "default", "table": ["shop", "orders"], "page": 0, "request": {}}).encode()).decode()
    assert reader.post(f"{tables}/orders/tasks", json={"plan-task": forged}).status_code == 404
    assert reader.post(f"{tables}/orders/tasks", json={"plan-task": "garbage"}).status_code == 404
    # A task carries no authority: handed to a principal without SELECT, it is refused as a plan would be.
    outsider, _ = _http(world, "svc_outsider")
    assert outsider.post(f"{tables}/orders/tasks", json={"plan-task": task}).status_code in (403, 404)
    assert outsider.post(f"{tables}/orders/plan", json={}).status_code in (403, 404)
    limited, _ = _http(world, "svc_limited")  # ...and to a limited one, it plans under its own limits
    hidden = json.loads(base64.urlsafe_b64decode(task.removeprefix("icemesh-plan-1.")))
    hidden["request"], hidden["principal"], hidden["plan-id"] = {"select": ["email"]}, "svc_limited", "x"
    sneaky = "icemesh-plan-1." + base64.urlsafe_b64encode(json.dumps(hidden).encode()).decode()
    assert limited.post(f"{tables}/orders/tasks", json={"plan-task": sneaky}).status_code == 403
    bad = reader.post(f"{tables}/orders/plan", json={"start-snapshot-id": 1, "end-snapshot-id": 2})
    assert bad.status_code == 400 and "Incremental scan planning" in bad.json()["error"]["message"]
    typo = reader.post(f"{tables}/orders/plan", json={"select": ["nope"]})
    assert typo.status_code == 400 and "'nope'" in typo.json()["error"]["message"]


def test_plan_ids_fetch_cancel_and_bound_to_their_maker(world):
    reader, tables = _http(world, "svc_reader")
    plan = reader.post(f"{tables}/orders/plan", json={}).json()
    plan_id = plan["plan-id"]
    assert len(plan_id) >= 32 and plan_id != reader.post(f"{tables}/orders/plan", json={}).json()["plan-id"]
    again = reader.get(f"{tables}/orders/plan/{plan_id}")
    assert again.status_code == 200 and again.json() == plan  # the same completed result, same task tokens
    limited, _ = _http(world, "svc_limited")
    outsider, _ = _http(world, "svc_outsider")
    for http, path in ((limited, f"{tables}/orders/plan/{plan_id}"), (outsider, f"{tables}/orders/plan/{plan_id}"),
                       (reader, f"{tables}/other/plan/{plan_id}"), (reader, f"{tables}/orders/plan/{plan_id[:-1]}"),
                       (reader, f"{tables}/orders/plan/{'x' * 300}"), (reader, f"{tables}/orders/plan/..%2F..")):
        for verb in ("GET", "DELETE"):
            answer = http.request(verb, path)
            assert answer.status_code == 404, (verb, path, answer.text)
            assert answer.json()["error"]["type"] in ("NoSuchPlanIdException", "NoSuchEndpointException")
    assert limited.post(f"{tables}/orders/tasks", json={"plan-task": plan["plan-tasks"][0]}).status_code == 404
    assert reader.delete(f"{tables}/orders/plan/{plan_id}").status_code == 204
    assert reader.get(f"{tables}/orders/plan/{plan_id}").status_code == 404
    assert reader.delete(f"{tables}/orders/plan/{plan_id}").status_code == 404
    gone = reader.post(f"{tables}/orders/tasks", json={"plan-task": plan["plan-tasks"][0]})
    assert gone.status_code == 404 and gone.json()["error"]["type"] == "NoSuchPlanTaskException"
    config = reader.get("/v1/config").json()["endpoints"]
    assert {"GET /v1/{prefix}/namespaces/{namespace}/tables/{table}/plan/{plan-id}",
            "DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}/plan/{plan-id}"} <= set(config)


def test_task_pages_come_from_the_kept_plan_and_grants_are_checked_each_time(world):
    from icemesh.catalog.plan_store import PlanStore, Plan

    reader, tables = _http(world, "svc_reader")
    plan = reader.post(f"{tables}/orders/plan", json={}).json()
    world.client().rest_catalog().load_table("shop.orders").append(pa.table(  # a new file after planning...
        {"id": pa.array([5], pa.int64()), "region": ["eu"], "email": ["n@x"]}, schema=SCHEMA.as_arrow()))
    page = reader.post(f"{tables}/orders/tasks", json={"plan-task": plan["plan-tasks"][0]}).json()
    assert len(plan["file-scan-tasks"]) + len(page["file-scan-tasks"]) == 3  # ...is not in the kept plan
    admin = world.client()
    spec = {"permissions": "DESCRIBE,SELECT", "principal": "svc_reader", "tags": ["sens=public,pii"]}
    admin.request("POST", f"{M}/grants/revoke", json={**spec, "permissions": "SELECT"})  # may see it, not read it
    try:
        revoked = reader.post(f"{tables}/orders/tasks", json={"plan-task": plan["plan-tasks"][0]})
        assert revoked.status_code == 403, revoked.text
        assert reader.get(f"{tables}/orders/plan/{plan['plan-id']}").status_code == 403
    finally:
        admin.request("POST", f"{M}/grants", json=spec)
    store = PlanStore(ttl=60, max_plans=2, max_files=3)
    make = lambda n: Plan("p", "x", ("t",), None, 1, None, [object()] * n)
    first, second = store.add(make(2)), store.add(make(1))
    assert store.get(first, "p", "x", ("t",)) and store.get(second, "p", "x", ("t",))
    third = store.add(make(2))  # over the file budget: the oldest goes
    assert store.get(first, "p", "x", ("t",)) is None and store.get(third, "p", "x", ("t",))
    assert store.get(store.add(make(4)), "p", "x", ("t",)) is None  # bigger than the budget: never kept
    assert store.get(third, "q", "x", ("t",)) is None
    expired = PlanStore(ttl=0)
    assert expired.get(expired.add(make(1)), "p", "x", ("t",)) is None


def test_iceberg_java_parsers_accept_the_answers(world, spark):
    """Iceberg 1.10.2's own response parsers (in the Spark runtime jar), called through py4j on what icemesh sends."""
    jvm = spark._jvm
    reader, tables = _http(world, "svc_reader")
    loaded = reader.get(f"{tables}/orders").json()
    specs = jvm.org.apache.iceberg.TableMetadataParser.fromJson(json.dumps(loaded["metadata"])).specsById()
    mapper = jvm.org.apache.iceberg.util.JsonUtil.mapper()
    responses = jvm.org.apache.iceberg.rest.responses

    fields = {spec["spec-id"]: [f["field-id"] for f in spec["fields"]] for spec in loaded["metadata"]["partition-specs"]}

    def java(answer):
        """Iceberg 1.10.2 reads `content` as its enum's name (DATA, where the spec and pyiceberg say `data`) and
        `partition` as an object keyed by partition field id (the spec: an array of values) and bounds as hex of
        their binary form (the spec: typed values)."""
        def fix(node):
            if isinstance(node, dict):
                node = {k: fix(v) for k, v in node.items()}
                if isinstance(node.get("content"), str):
                    node["content"] = node["content"].upper().replace("-", "_")
                if isinstance(node.get("partition"), list) and "spec-id" in node:
                    node["partition"] = {str(i): v for i, v in zip(fields[node["spec-id"]], node["partition"])}
                for bound in ("lower-bounds", "upper-bounds"):
                    if isinstance(node.get(bound), dict):
                        node[bound]["values"] = [to_bytes(SCHEMA.find_field(k).field_type, v).hex().upper()
                                                 for k, v in zip(node[bound]["keys"], node[bound]["values"])]
                return node
            return [fix(v) for v in node] if isinstance(node, list) else node
        return mapper.readTree(json.dumps(fix(answer)))

    def paths(tasks) -> dict[str, int]:
        return {t.file().location(): t.file().recordCount() for t in tasks}

    def expected(answer) -> dict[str, int]:
        return {t["data-file"]["file-path"]: t["data-file"]["record-count"] for t in answer["file-scan-tasks"]}

    plan = reader.post(f"{tables}/orders/plan", json={"stats-fields": ["id"]}).json()
    with pytest.raises(Exception, match="No enum constant org.apache.iceberg.FileContent.data"):  # as the spec has it
        responses.PlanTableScanResponseParser.fromJson(mapper.readTree(json.dumps(plan)), specs, True)
    parsed = responses.PlanTableScanResponseParser.fromJson(java(plan), specs, True)
    assert parsed.planStatus().status() == "completed" and parsed.planId() == plan["plan-id"]
    assert paths(parsed.fileScanTasks()) == expected(plan) and len(expected(plan)) == 2
    assert list(parsed.planTasks()) == plan["plan-tasks"]
    fetched = reader.get(f"{tables}/orders/plan/{plan['plan-id']}").json()
    parsed = responses.FetchPlanningResultResponseParser.fromJson(java(fetched), specs, True)
    assert parsed.planStatus().status() == "completed" and paths(parsed.fileScanTasks()) == expected(plan)
    page = reader.post(f"{tables}/orders/tasks", json={"plan-task": plan["plan-tasks"][0]}).json()
    parsed = responses.FetchScanTasksResponseParser.fromJson(java(page), specs, True)
    assert paths(parsed.fileScanTasks()) == expected(page) and len(expected(page)) >= 1
    one = page["file-scan-tasks"][0]
    task = jvm.org.apache.iceberg.rest.RESTFileScanTaskParser.fromJson(
        java(one), jvm.java.util.ArrayList(), specs, True)
    assert task.file().location() == one["data-file"]["file-path"]


def _restricted(server, name: str = "svc_eu") -> tuple[httpx.Client, str]:
    """HTTP as a reader that declares it applies read restrictions (as icemesh's engines do)."""
    http, tables = _http(server, name)
    http.headers[READ_RESTRICTIONS_HEADER] = "apply"
    return http, tables


def _regions(http: httpx.Client, tables: str, answer: dict) -> set[str]:
    """The partition values (regions) of every planned file, its plan-tasks' pages included."""
    tasks = list(answer["file-scan-tasks"])
    for token in answer.get("plan-tasks") or []:
        tasks += http.post(f"{tables}/orders/tasks", json={"plan-task": token}).json()["file-scan-tasks"]
    return {t["data-file"]["partition"][0] for t in tasks}


def test_a_filtered_reader_is_planned_only_the_files_of_its_rows(world):
    plain, tables = _http(world, "svc_eu")
    refused = plain.post(f"{tables}/orders/plan", json={})
    assert refused.status_code == 403 and "does not apply read restrictions" in refused.text
    http, tables = _restricted(world)
    assert _regions(http, tables, http.post(f"{tables}/orders/plan", json={}).json()) == {"eu"}  # never us, apac
    # Its own filter narrows, never widens: asking for another region's rows plans nothing.
    widen = {"filter": {"type": "or", "left": {"type": "eq", "term": "region", "value": "us"},
                        "right": {"type": "eq", "term": "region", "value": "apac"}}}
    assert http.post(f"{tables}/orders/plan", json=widen).json()["file-scan-tasks"] == []
    assert _regions(http, tables, http.post(f"{tables}/orders/plan",
                                            json={"filter": {"type": "not-null", "term": "id"}}).json()) == {"eu"}
    everything, _ = _http(world, "svc_reader")  # an unfiltered reader of the same columns gets all three
    assert _regions(everything, tables, everything.post(f"{tables}/orders/plan", json={}).json()) == {"apac", "eu", "us"}


@pytest.mark.parametrize("body, why", [
    ({"filter": {"type": "eq", "term": "email", "value": "us@x"}}, "masked"),  # an oracle on the unmasked values
    ({"filter": {"type": "starts-with", "term": "EMAIL", "value": "a"}, "case-sensitive": False}, "masked"),
    ({"stats-fields": ["email"]}, "masked"),
    ({"stats-fields": ["id"]}, "statistics"),  # bounds over every row of the file, the other regions' included
])
def test_a_filtered_reader_may_not_probe_masked_values_or_other_rows_through_a_plan(world, body, why):
    http, tables = _restricted(world)
    answer = http.post(f"{tables}/orders/plan", json=body)
    assert answer.status_code == 403, answer.text
    assert why in answer.json()["error"]["message"]


def test_a_plan_made_under_another_data_filter_is_not_served_again(world):
    admin = world.client()
    http, tables = _restricted(world)
    plan = http.post(f"{tables}/orders/plan", json={}).json()
    assert http.get(f"{tables}/orders/plan/{plan['plan-id']}").status_code == 200
    grant = {"permissions": "DESCRIBE,SELECT", "principal": "svc_eu", "tags": ["sens=public,pii"],
             "rows": "region = 'eu'", "masks": ["email=sha256"]}
    admin.request("POST", f"{M}/grants/revoke", json=grant)
    narrower = {**grant, "rows": "region = 'eu' and id = 1"}
    admin.request("POST", f"{M}/grants", json=narrower)
    try:
        again = http.get(f"{tables}/orders/plan/{plan['plan-id']}")
        assert again.status_code == 404 and "another data filter" in again.text
        assert _regions(http, tables, http.post(f"{tables}/orders/plan", json={}).json()) == {"eu"}
    finally:
        admin.request("POST", f"{M}/grants/revoke", json=narrower)
        admin.request("POST", f"{M}/grants", json=grant)


def test_a_filtered_reader_planning_a_snapshot_from_before_its_filter_column(world):
    """The grant's row filter names `region`, which an older snapshot's schema lacks (its rows read region as
    null): planning that snapshot answers with that snapshot's files only (the file has no statistics for the
    column, so it may match; the reader's engine applies the filter to its rows), never a 500."""
    admin = world.client()
    rest = admin.rest_catalog()
    early = Schema(NestedField(1, "id", LongType(), required=True), NestedField(2, "email", StringType()))
    late = rest.create_table("shop.late", early)
    late.append(pa.table({"id": pa.array([1], pa.int64()), "email": ["a@x"]}, schema=early.as_arrow()))
    before = late.current_snapshot().snapshot_id
    old_files = {t.file.file_path for t in late.scan().plan_files()}
    with late.update_schema() as update:
        update.add_column("region", StringType())
    late = rest.load_table("shop.late")
    late.append(pa.table({"id": pa.array([2, 3], pa.int64()), "email": ["b@x", "c@x"], "region": ["us", "us"]},
                         schema=late.schema().as_arrow()))
    http, tables = _restricted(world)
    for body in ({"snapshot-id": before, "use-snapshot-schema": True}, {"snapshot-id": before}):
        answer = http.post(f"{tables}/late/plan", json=body)
        assert answer.status_code == 200, answer.text
        assert {t["data-file"]["file-path"] for t in answer.json()["file-scan-tasks"]} == old_files, body
    now = http.post(f"{tables}/late/plan", json={}).json()  # the us-only file's bounds exclude region = 'eu'
    assert {t["data-file"]["file-path"] for t in now["file-scan-tasks"]} == old_files


def test_a_row_filter_on_a_dropped_column_refuses_the_filtered_reader(world):
    """A grant's row filter that names a column the table no longer has cannot be applied: the filtered
    reader is refused with a message naming the column (fail closed), on plans and on loadTable alike."""
    admin = world.client()
    rest = admin.rest_catalog()
    gone = rest.create_table("shop.gone", SCHEMA)
    gone.append(pa.table({"id": pa.array([1], pa.int64()), "region": ["eu"], "email": ["a@x"]}, schema=SCHEMA.as_arrow()))
    with gone.update_schema() as update:
        update.delete_column("region")
    http, tables = _restricted(world)
    for answer in (http.post(f"{tables}/gone/plan", json={}), http.get(f"{tables}/gone")):
        assert answer.status_code == 403, answer.text
        assert "region" in answer.json()["error"]["message"]
