"""icemesh for Prefect: each domain's dbt build as a Prefect flow run as its principal (Prefect's own test harness:
a temporary local API and database), on the three-project mesh of test_dbt_cross_project (inventory -> orders ->
reporting, least privilege). Asset lineage is read from the events the flows emit; the catalog's change feed is
bridged to Prefect events that the downstream deployment's trigger matches."""

from __future__ import annotations

import pytest
from prefect.events.schemas.events import Resource
from prefect.testing.fixtures import asserting_events_worker  # noqa: F401 - Prefect's fixture, used below
from prefect.testing.utilities import prefect_test_harness

from icemesh.client import CatalogClient
from icemesh.prefect import asset_key, domain_flow, forward_catalog_events, upstream_trigger
from tests.dbt_helpers import mesh_world

M = "/management/v1"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    server, projects, _secrets = mesh_world(tmp_path_factory, "prefect-mesh")
    with prefect_test_harness():
        yield server, projects
    server.stop()


def flow_of(mesh, name: str, **options):
    server, projects = mesh
    return domain_flow(str(projects[name].path), catalog_uri=server.uri, client_id=f"svc_{name}",
                       client_secret=server.secrets[name], **options)


def client_of(mesh, name: str) -> CatalogClient:
    server, _projects = mesh
    return CatalogClient(server.uri, client_id=f"svc_{name}", client_secret=server.secrets[name])


def test_domain_flows_publish_as_their_principals_and_record_asset_lineage(mesh, asserting_events_worker):
    server, _projects = mesh
    inventory = flow_of(mesh, "inventory")()
    assert inventory["project"] == "inventory" and inventory["upstream"] == []
    assert {"inventory.items_v2", "inventory.item_counts"} <= {p["product"] for p in inventory["published"]}
    orders = flow_of(mesh, "orders")()
    current = server.client().rest_catalog().load_table("orders.order_lines").current_snapshot().snapshot_id
    assert orders["published"] == [{"product": "orders.order_lines", "snapshot-id": current}]
    assert [u["product"] for u in orders["upstream"]] == ["inventory.items_v2"]  # what it refs, not all of inventory
    assert server.client().rest_catalog().load_table("orders.order_lines").properties["icemesh.dbt.project"] == "orders"

    asserting_events_worker.drain()
    events = asserting_events_worker._client.events
    client = client_of(mesh, "orders")
    made = [e for e in events if e.event == "prefect.asset.materialization.succeeded"
            and e.resource.id == asset_key(client, "orders.order_lines")]
    assert len(made) == 1, [e.event for e in events]
    related = {r.id: r.role for r in made[0].related}
    assert related[asset_key(client, "inventory.items_v2")] == "asset"  # the upstream product, named by the catalog
    assert made[0].payload["snapshot-id"] == current
    assert asset_key(client, "orders.order_lines").startswith(f"iceberg://{server.uri.split('://', 1)[1]}/")


def test_a_stale_upstream_fails_the_flow_before_dbt_runs(mesh):
    server, projects = mesh
    flow_of(mesh, "inventory")()
    reporting = projects["reporting"]
    probe = reporting.path / "models" / "stale_probe.sql"  # inventory.item_counts: error_after 0 minutes
    probe.write_text("select * from {{ ref('inventory', 'item_counts') }}")
    results = reporting.path / "target" / "run_results.json"
    before = results.stat().st_mtime if results.exists() else None
    try:
        state = flow_of(mesh, "reporting")(return_state=True)
        assert state.is_failed()
        message = str(state.result(raise_on_failure=False))
        assert "reporting does not build on stale inputs" in message and "inventory.item_counts" in message
        assert (results.stat().st_mtime if results.exists() else None) == before  # dbt never ran
    finally:
        probe.unlink()


def test_catalog_events_reach_prefect_and_trigger_only_the_dependent_deployment(mesh, asserting_events_worker):
    server, projects = mesh
    orders = client_of(mesh, "orders")
    cursor = orders.request("GET", f"{M}/events", params={"after": 0, "limit": 1000})["next-after"]
    flow_of(mesh, "inventory")()  # a new snapshot of every inventory product
    after, emitted = forward_catalog_events(orders, after=cursor)
    assert after > cursor
    keys = {e.resource.id for e in emitted}
    assert asset_key(orders, "inventory.items_v2") in keys
    assert asset_key(orders, "inventory.supplier_prices") not in keys  # confidential: orders may not read it
    items = next(e for e in emitted if e.resource.id == asset_key(orders, "inventory.items_v2"))
    assert int(items.resource["icemesh.snapshot-id"]) == server.client().rest_catalog().load_table(
        "inventory.items_v2").current_snapshot().snapshot_id
    assert forward_catalog_events(orders, after=after) == (after, [])  # the cursor never repeats

    follows_inventory = upstream_trigger(str(projects["orders"].path), orders)
    follows_orders = upstream_trigger(str(projects["reporting"].path), client_of(mesh, "reporting"))
    assert follows_inventory.expect == {"icemesh.product.updated"}
    assert follows_inventory.match.matches(Resource.model_validate(items.resource.root))
    assert follows_orders.match.matches(Resource.model_validate(items.resource.root))  # reporting declares both
    lines = Resource.model_validate({"prefect.resource.id": asset_key(orders, "orders.order_lines")})
    assert follows_orders.match.matches(lines) and not follows_inventory.match.matches(lines)
