"""icemesh for Dagster: one code location per domain on the three-project mesh of test_dbt_cross_project
(inventory -> orders -> reporting, least privilege), in process with Dagster's own APIs: the asset graph, a
materialization, the change-feed sensor and automation-condition evaluation on one ephemeral instance."""

from __future__ import annotations

import time

import dagster as dg
import pytest

from icemesh.dagster import IcemeshResource, domain_definitions
from tests.dbt_helpers import mesh_world

ITEMS, LINES, DEMAND = dg.AssetKey(["inventory", "items_v2"]), dg.AssetKey(["orders", "order_lines"]), \
    dg.AssetKey(["reporting", "item_demand"])


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    server, projects, secrets = mesh_world(tmp_path_factory, "dagster-mesh")
    projects["inventory"]("run")
    projects["orders"]("run")
    resources = {n: IcemeshResource(catalog_uri=server.uri, client_id=f"svc_{n}", client_secret=secrets[n])
                 for n in projects}
    defs = {n: domain_definitions(str(projects[n].path), icemesh=resources[n]) for n in ("orders", "reporting")}
    yield server, projects, resources, defs
    server.stop()


def tick(defs: dg.Definitions, name: str, resource: IcemeshResource, instance, cursor):
    """One sensor evaluation, its asset events recorded as the daemon would record them."""
    sensor = defs.resolve_sensor_def(name)
    result = sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources={"icemesh": resource}))
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    return result


def requested(result) -> set:
    return {key for key in (LINES, DEMAND) if result.get_num_requested(key)}


def test_asset_graph_has_the_cross_domain_edges_with_the_same_keys_everywhere(mesh):
    _server, _projects, _resources, defs = mesh
    orders = defs["orders"].resolve_asset_graph()
    assert ITEMS in {d for d in orders.get(LINES).parent_keys}
    assert not orders.get(ITEMS).is_materializable  # inventory's product: an external asset here
    reporting = defs["reporting"].resolve_asset_graph()
    assert {ITEMS, LINES} <= set(reporting.get(DEMAND).parent_keys)
    assert ITEMS in set(reporting.get(LINES).parent_keys)  # the chain past the project reporting refs
    assert reporting.get(DEMAND).automation_condition is not None


def test_an_upstream_commit_triggers_exactly_the_dependent_domains(mesh):
    server, projects, resources, defs = mesh
    instance = dg.DagsterInstance.ephemeral()
    orders_tick = tick(defs["orders"], "orders_upstream_snapshots", resources["orders"], instance, None)
    reporting_tick = tick(defs["reporting"], "reporting_upstream_snapshots", resources["reporting"], instance, None)
    assert {e.asset_key for e in orders_tick.asset_events} == {ITEMS, dg.AssetKey(["inventory", "items_v1"])}
    # orders builds as its principal, through Dagster; the catalog gets the new snapshot
    before = server.client().rest_catalog().load_table("orders.order_lines").current_snapshot().snapshot_id
    job = defs["orders"].resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(instance=instance, asset_selection=[LINES]).success
    after = server.client().rest_catalog().load_table("orders.order_lines").current_snapshot().snapshot_id
    assert after != before
    assert job.execute_in_process(instance=instance, asset_selection=[LINES]).success  # (a second run: a baseline)
    evaluations = {n: dg.evaluate_automation_conditions(defs=defs[n], instance=instance) for n in defs}

    # inventory publishes: the orders sensor reports it, and both dependent domains' automation asks for a run
    committed = time.perf_counter()
    projects["inventory"]("run", "--select", "items_v2")
    started = time.perf_counter()
    orders_tick = tick(defs["orders"], "orders_upstream_snapshots", resources["orders"], instance, orders_tick.cursor)
    assert [e.asset_key for e in orders_tick.asset_events] == [ITEMS]
    assert orders_tick.asset_events[0].metadata["snapshot_id"].value == str(
        server.client().rest_catalog().load_table("inventory.items_v2").current_snapshot().snapshot_id)
    reporting_tick = tick(defs["reporting"], "reporting_upstream_snapshots", resources["reporting"], instance,
                          reporting_tick.cursor)
    evaluations = {n: dg.evaluate_automation_conditions(defs=defs[n], instance=instance, cursor=evaluations[n].cursor)
                   for n in defs}
    latency = time.perf_counter() - started
    assert requested(evaluations["orders"]) == {LINES}
    assert requested(evaluations["reporting"]) == {DEMAND}
    print(f"commit -> sensor -> automation request: {latency * 1000:.0f} ms (dbt run {started - committed:.1f} s)")
    # nothing new: no tick events, no requests
    orders_tick = tick(defs["orders"], "orders_upstream_snapshots", resources["orders"], instance, orders_tick.cursor)
    assert orders_tick.asset_events == []
    again = dg.evaluate_automation_conditions(defs=defs["orders"], instance=instance, cursor=evaluations["orders"].cursor)
    assert requested(again) == set()


def test_a_stale_upstream_fails_its_freshness_check(mesh):
    """inventory.items_v2 declares warn_after 0 minutes: the catalog says it is older than that."""
    _server, _projects, resources, defs = mesh
    check = next(c for c in defs["orders"].asset_checks if ITEMS in {k.asset_key for k in c.check_keys})
    result = check(icemesh=resources["orders"])
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert "past its warn_after" in result.description


def test_dagster_init_writes_a_definitions_file_that_loads(mesh, tmp_path):
    import json
    import os
    import subprocess
    import sys

    server, projects, _resources, _defs = mesh
    path = projects["orders"].path
    icemesh = os.path.join(os.path.dirname(sys.executable), "icemesh")
    done = subprocess.run([icemesh, "dagster", "init", str(path), "--output", "json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["changed"] is True
    again = subprocess.run([icemesh, "dagster", "init", str(path), "--output", "json"], capture_output=True, text=True)
    assert json.loads(again.stdout)["changed"] is False
    env = {**projects["orders"].env}
    loaded = subprocess.run([sys.executable, "-c", "import runpy; d = runpy.run_path('definitions.py')['defs'];"
                             "print(sorted(k.to_user_string() for k in d.resolve_asset_graph().get_all_asset_keys()))"],
                            cwd=path, env=env, capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert "orders/order_lines" in loaded.stdout and "inventory/items_v2" in loaded.stdout
    (path / "definitions.py").write_text("# mine\n")
    refused = subprocess.run([icemesh, "dagster", "init", str(path)], capture_output=True, text=True)
    assert refused.returncode != 0 and "exists and is not the one icemesh writes" in (refused.stdout + refused.stderr)
    assert "Traceback" not in refused.stderr
