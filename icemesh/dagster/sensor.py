"""Upstream products' new snapshots, from the catalog's change feed, as materializations of their external assets.

Each tick reads `GET /management/v1/events?after=<cursor>&type=update-table` as the domain's principal (so only
commits it may read) and reports one AssetMaterialization per upstream product that got a new snapshot (the latest,
with its snapshot id), keeping the feed's cursor as the sensor's: nothing is reported twice or skipped. A commit
the instance already holds a later materialization of (the product built by a Dagster run of its own location) is
not reported again. A downstream
asset's automation condition then sees its dependency updated.
"""


from typing import Mapping

import dagster as dg

from icemesh.protocol import SNAPSHOT_EVENTS

from icemesh.dagster.resource import IcemeshResource

EVENTS = "/management/v1/events"
PAGE = 1000


def catalog_events_sensor(name: str, products: Mapping[str, dg.AssetKey], minimum_interval_seconds: int = 30):
    """`products`: the upstream products' catalog names (`namespace.table`) and their asset keys."""

    @dg.sensor(name=name, minimum_interval_seconds=minimum_interval_seconds, default_status=dg.DefaultSensorStatus.RUNNING,
               description="New snapshots of upstream products, from the icemesh catalog's change feed")
    def upstream_snapshots(context: dg.SensorEvaluationContext, icemesh: IcemeshResource) -> dg.SensorResult:
        client = icemesh.client()
        cursor = int(context.cursor or 0)
        latest: dict[str, dict] = {}
        while True:
            answer = client.request("GET", EVENTS, params={"after": cursor, "limit": PAGE, "type": list(SNAPSHOT_EVENTS)})
            for event in answer.get("events", []):
                identifier = event.get("identifier") or {}
                product = ".".join([*identifier.get("namespace", []), identifier.get("name", "")])
                if product in products and event.get("snapshot-id") is not None:
                    latest[product] = event
            moved = int(answer.get("next-after", cursor))
            if moved == cursor or len(answer.get("events", [])) < PAGE:
                cursor = moved
                break
            cursor = moved
        # A commit Dagster itself made (a materialization of the asset recorded since) is not reported again: another
        # location's run of that product already says it was updated.
        latest = {product: event for product, event in latest.items() if not _known(context.instance, products[product], event)}
        materializations = [
            dg.AssetMaterialization(asset_key=products[product], description=f"new snapshot of {product} in the catalog",
                                    metadata={"snapshot_id": str(event["snapshot-id"]), "event_id": event["event-id"],
                                              "committed_by": str(event.get("principal")),
                                              "committed_at_ms": event.get("timestamp-ms")})
            for product, event in sorted(latest.items())]
        return dg.SensorResult(asset_events=materializations, cursor=str(cursor))

    return upstream_snapshots


def _known(instance, key: dg.AssetKey, event: dict) -> bool:
    recorded = instance.get_latest_materialization_event(key)
    return recorded is not None and recorded.timestamp * 1000 >= float(event.get("timestamp-ms") or 0)
