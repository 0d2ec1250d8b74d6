"""OpenLineage run events from published products: a two-domain build (shop publishes `shop.orders`, reports refs
it and publishes `reports.customer_totals`) against a real `icemesh serve`, with a local HTTP receiver standing
in for Marquez. Each project runs as its own principal, configured the ways the openlineage client finds its
configuration (OPENLINEAGE_URL, openlineage.yml in the working directory, OPENLINEAGE_CONFIG).

The openlineage-python package ships no JSON schema of the spec, so the events' required structure (RunEvent:
eventType, eventTime, run.runId as a UUID, job.namespace/name, producer, schemaURL; datasets' namespace/name;
each facet's _producer/_schemaURL) is checked by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from icemesh.server.process import free_port
from tests.conftest import start_catalog
from tests.dbt_helpers import dbt_project

M = "/management/v1"
WARNING = "OpenLineage events could not be sent"


class Receiver:
    """An OpenLineage HTTP endpoint on 127.0.0.1 that keeps every event it is sent."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        events = self.events

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/api/v1/lineage":
                    events.append(json.loads(body))
                self.send_response(201 if self.path == "/api/v1/lineage" else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def mesh(tmp_path_factory, receiver):
    server = start_catalog(tmp_path_factory, None, "openlineage")
    admin = server.client()
    admin.request("POST", f"{M}/tags", json={"key": "domain", "values": ["shop"]})
    secrets = {}
    for name in ("shop", "reports"):
        secrets[name] = admin.request("POST", f"{M}/principals", json={"name": f"svc_{name}"})["client_secret"]
        admin.request("POST", f"{M}/grants", json={"permissions": "CREATE_TABLE", "principal": f"svc_{name}",
                                                   "catalog": True})
    admin.request("POST", f"{M}/grants", json={"permissions": "DESCRIBE,SELECT", "principal": "svc_reports",
                                               "tags": ["domain=shop"]})
    home = tmp_path_factory.mktemp("lineage-projects")
    projects = {}
    for name in ("shop", "reports"):
        project = dbt_project(f"lineage/{name}", home, server, f"svc_{name}", secrets[name])
        for key in [k for k in project.env if k.startswith("OPENLINEAGE")]:
            del project.env[key]  # only what each test configures
        projects[name] = project
    built = {"start": len(receiver.events)}
    built["shop"] = run(projects["shop"], "run", OPENLINEAGE_URL=receiver.url)
    built["reports"] = run(projects["reports"], "run", OPENLINEAGE_URL=receiver.url)
    built["events"] = receiver.events[built["start"]:]
    yield server, projects, built
    server.stop()


def run(dbt, *args, check: bool = True, **openlineage_env) -> subprocess.CompletedProcess:
    """`dbt *args` with exactly these OPENLINEAGE_* variables set."""
    for key in [k for k in dbt.env if k.startswith("OPENLINEAGE")]:
        del dbt.env[key]
    dbt.env.update(openlineage_env)
    return dbt(*args, check=check)


def events_of(events: list[dict], job: str) -> list[dict]:
    return [e for e in events if e["job"]["name"] == job]


def invocation_id(dbt) -> str:
    return json.loads((dbt.path / "target" / "run_results.json").read_text())["metadata"]["invocation_id"]


def test_each_product_sends_start_then_complete_named_by_the_catalog(mesh):
    server, projects, built = mesh
    shop, reports = events_of(built["events"], "shop.orders"), events_of(built["events"], "reports.customer_totals")
    assert [e["eventType"] for e in shop] == ["START", "COMPLETE"]
    assert [e["eventType"] for e in reports] == ["START", "COMPLETE"]
    assert len(built["events"]) == 4
    assert shop[0]["run"]["runId"] == shop[1]["run"]["runId"] != reports[0]["run"]["runId"]
    assert shop[1]["job"] == {**shop[1]["job"], "namespace": "shop", "name": "shop.orders"}

    namespace = f"iceberg://{server.uri.split('://', 1)[1]}/{server.client().prefix()}"
    (output,) = shop[1]["outputs"]
    assert (output["namespace"], output["name"]) == (namespace, "shop.orders")
    (consumed,) = reports[1]["inputs"]
    assert (consumed["namespace"], consumed["name"]) == (output["namespace"], output["name"])
    assert reports[1]["outputs"][0]["name"] == "reports.customer_totals"
    assert ".duckdb" not in json.dumps(built["events"]).replace(".duckdb_extension", "")

    # The dbt invocation is the parent run; the job says it is a dbt model and carries the compiled SQL.
    assert shop[1]["run"]["facets"]["parent"]["run"]["runId"] == invocation_id(projects["shop"])
    assert shop[1]["job"]["facets"]["jobType"]["integration"] == "DBT"
    assert "range(5)" in shop[1]["job"]["facets"]["sql"]["query"]


def test_schema_and_snapshot_facets_match_the_catalog(mesh):
    server, _projects, built = mesh
    shop, reports = events_of(built["events"], "shop.orders"), events_of(built["events"], "reports.customer_totals")
    catalog = server.client().rest_catalog()
    orders = catalog.load_table("shop.orders")
    output = shop[1]["outputs"][0]["facets"]
    # As written: Iceberg's types and the contract's descriptions; START announced the contract's own types.
    assert [(f["name"], f["type"]) for f in output["schema"]["fields"]] == [
        ("order_id", "int"), ("customer_id", "int"), ("amount", "double")]
    assert output["schema"]["fields"][0]["description"] == "The order's id."
    assert [(f["name"], f["type"]) for f in shop[0]["outputs"][0]["facets"]["schema"]["fields"]] == [
        ("order_id", "integer"), ("customer_id", "integer"), ("amount", "double")]
    assert output["version"]["datasetVersion"] == str(orders.current_snapshot().snapshot_id)
    assert shop[1]["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 5
    assert output["catalog"]["framework"] == "iceberg" and output["catalog"]["metadataUri"] == server.uri
    # The consumer's input: the snapshot it read, and its schema.
    consumed = reports[1]["inputs"][0]["facets"]
    assert consumed["version"]["datasetVersion"] == output["version"]["datasetVersion"]
    assert [f["name"] for f in consumed["schema"]["fields"]] == ["order_id", "customer_id", "amount"]
    totals = catalog.load_table("reports.customer_totals")
    assert reports[1]["outputs"][0]["facets"]["version"]["datasetVersion"] == str(totals.current_snapshot().snapshot_id)


def test_column_lineage_traces_columns_to_the_upstream_product(mesh):
    _server, _projects, built = mesh
    (complete,) = [e for e in events_of(built["events"], "reports.customer_totals") if e["eventType"] == "COMPLETE"]
    fields = complete["outputs"][0]["facets"]["columnLineage"]["fields"]
    namespace = complete["inputs"][0]["namespace"]
    assert fields["customer_id"]["inputFields"] == [
        {"namespace": namespace, "name": "shop.orders", "field": "customer_id", "transformations": []}]
    assert [f["field"] for f in fields["total"]["inputFields"]] == ["amount"]
    assert "orders" not in fields  # count(*) reads no column
    # shop.orders reads no product (a table function): no column lineage rather than a made-up one.
    (shop_complete,) = [e for e in events_of(built["events"], "shop.orders") if e["eventType"] == "COMPLETE"]
    assert "columnLineage" not in shop_complete["outputs"][0]["facets"]


def test_events_have_the_structure_the_spec_requires(mesh):
    _server, _projects, built = mesh
    for event in built["events"]:
        assert event["eventType"] in {"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"}
        assert dt.datetime.fromisoformat(event["eventTime"]).tzinfo is not None
        assert str(uuid.UUID(event["run"]["runId"])) == event["run"]["runId"]
        assert event["job"]["namespace"] and event["job"]["name"]
        assert event["producer"].startswith("urn:icemesh:")
        assert event["schemaURL"].startswith("https://openlineage.io/spec/") and "#/$defs/RunEvent" in event["schemaURL"]
        facets = [*event["run"].get("facets", {}).values(), *event["job"].get("facets", {}).values()]
        for dataset in [*event.get("inputs", []), *event.get("outputs", [])]:
            assert dataset["namespace"] and dataset["name"]
            facets += [*dataset.get("facets", {}).values(), *dataset.get("outputFacets", {}).values()]
        for facet in facets:
            assert facet["_producer"] and facet["_schemaURL"].startswith("https://openlineage.io/spec/facets/")


def test_openlineage_yml_and_openlineage_config_are_honoured(mesh, receiver, tmp_path):
    _server, projects, _built = mesh
    shop = projects["shop"]
    config = f"transport:\n  type: http\n  url: {receiver.url}\n"
    in_project = shop.path / "openlineage.yml"  # dbt runs in the project's directory
    in_project.write_text(config)
    try:
        mark = len(receiver.events)
        run(shop, "run", "--select", "orders")
        assert [e["eventType"] for e in events_of(receiver.events[mark:], "shop.orders")] == ["START", "COMPLETE"]
    finally:
        in_project.unlink()
    elsewhere = tmp_path / "lineage.yml"
    elsewhere.write_text(config)
    mark = len(receiver.events)
    run(shop, "run", "--select", "orders", OPENLINEAGE_CONFIG=str(elsewhere))
    assert [e["eventType"] for e in events_of(receiver.events[mark:], "shop.orders")] == ["START", "COMPLETE"]


def test_a_failing_model_sends_fail_and_publishes_nothing(mesh, receiver):
    server, projects, _built = mesh
    mark = len(receiver.events)
    failed = run(projects["shop"], "run", "--select", "broken", "--vars", "broken: true", check=False,
                 OPENLINEAGE_URL=receiver.url)
    assert failed.returncode != 0 and "Conversion Error" in failed.stdout
    events = events_of(receiver.events[mark:], "shop.broken")
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    message = events[1]["run"]["facets"]["errorMessage"]["message"]
    assert message.startswith("icemesh could not publish shop.broken:") and "Conversion Error" in message
    assert "version" not in events[1]["outputs"][0]["facets"]
    assert not server.client().rest_catalog().table_exists("shop.broken")


def test_a_receiver_that_is_down_never_fails_the_build(mesh):
    server, projects, _built = mesh
    before = server.client().rest_catalog().load_table("shop.orders").current_snapshot().snapshot_id
    done = run(projects["shop"], "run", "--select", "orders", OPENLINEAGE_URL=f"http://127.0.0.1:{free_port()}")
    assert done.stdout.count(WARNING) == 1, done.stdout[-3000:]
    assert "Connection refused" in done.stdout
    assert "Retrying" not in done.stderr  # urllib3's log of each retry stays out of the way
    assert "PASS=1" in done.stdout
    after = server.client().rest_catalog().load_table("shop.orders").current_snapshot().snapshot_id
    assert after != before  # the product was published all the same


def test_without_configuration_nothing_is_sent(mesh, receiver):
    _server, projects, _built = mesh
    mark = len(receiver.events)
    done = run(projects["shop"], "run", "--select", "orders")
    disabled = run(projects["shop"], "run", "--select", "orders", OPENLINEAGE_URL=receiver.url,
                   OPENLINEAGE_DISABLED="true")
    assert receiver.events[mark:] == []
    assert WARNING not in done.stdout + disabled.stdout


@pytest.mark.spark
def test_a_spark_model_sends_the_same_names(mesh, receiver, tmp_path_factory):
    """dbt-spark publishes through the same writer: its input is the DuckDB product's output, by name."""
    server, _projects, built = mesh
    admin = server.client()
    secret = admin.request("POST", f"{M}/principals", json={"name": "svc_ledger"})["client_secret"]
    admin.request("POST", f"{M}/grants", json={"permissions": "CREATE_TABLE", "principal": "svc_ledger", "catalog": True})
    admin.request("POST", f"{M}/grants", json={"permissions": "DESCRIBE,SELECT", "principal": "svc_ledger",
                                               "tags": ["domain=shop"]})
    ledger = dbt_project("lineage/ledger", tmp_path_factory.mktemp("lineage-spark"), server, "svc_ledger", secret)
    mark = len(receiver.events)
    run(ledger, "run", OPENLINEAGE_URL=receiver.url)
    start, complete = events_of(receiver.events[mark:], "ledger.order_values")
    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
    (produced,) = [e for e in events_of(built["events"], "shop.orders") if e["eventType"] == "COMPLETE"][0]["outputs"]
    (consumed,) = complete["inputs"]
    assert (consumed["namespace"], consumed["name"]) == (produced["namespace"], produced["name"])
    assert complete["job"]["facets"]["sql"]["dialect"] == "spark"
    output = complete["outputs"][0]
    assert (output["namespace"], output["name"]) == (produced["namespace"], "ledger.order_values")
    table = server.client().rest_catalog().load_table("ledger.order_values")
    assert output["facets"]["version"]["datasetVersion"] == str(table.current_snapshot().snapshot_id)
    assert [f["field"] for f in output["facets"]["columnLineage"]["fields"]["doubled"]["inputFields"]] == ["amount"]


def test_unconfigured_lineage_imports_nothing_of_openlineage(tmp_path):
    """`dbt parse` and every model pay nothing for lineage when it is off."""
    code = ("import sys; from icemesh.dbt import openlineage, writer; "
            "assert not openlineage.configured(); "
            "assert not [m for m in sys.modules if m == 'openlineage' or m.startswith('openlineage.')], 'imported'")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINEAGE")}
    env["HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


def test_configured_follows_where_the_openlineage_client_looks(monkeypatch, tmp_path):
    from icemesh.dbt import openlineage

    for key in [k for k in os.environ if k.startswith("OPENLINEAGE")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert not openlineage.configured()
    (tmp_path / "openlineage.yml").write_text("transport: {type: console}\n")
    assert openlineage.configured()
    (tmp_path / "openlineage.yml").unlink()
    (tmp_path / "home" / ".openlineage").mkdir(parents=True)
    (tmp_path / "home" / ".openlineage" / "openlineage.yml").write_text("transport: {type: console}\n")
    assert openlineage.configured()
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "True")
    assert not openlineage.configured()
    monkeypatch.delenv("OPENLINEAGE_DISABLED")
    (tmp_path / "home" / ".openlineage" / "openlineage.yml").unlink()
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "console")
    assert openlineage.configured()


def test_names_come_from_the_catalog_uri_and_warehouse():
    from icemesh.dbt import openlineage
    from icemesh.dbt.product import ProductSpec

    class Client:
        uri = "https://catalog.example.com:8443/icemesh"

        def prefix(self):
            return "prod"

    assert openlineage.dataset_namespace(Client()) == "iceberg://catalog.example.com:8443/icemesh/prod"
    spec = ProductSpec(namespace="inventory", table="items_v2", project="inventory", model="items", unique_id="u",
                       sql="select 1", version=2)
    assert openlineage.job_name(spec) == "inventory.items.v2"
