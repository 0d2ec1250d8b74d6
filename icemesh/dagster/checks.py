"""`icemesh_freshness` as Dagster freshness checks.

A domain's own products: dagster's last-update freshness check, with the product's `error_after` (else
`warn_after`) as the bound, over the asset's materializations. Upstream products: a check that asks the catalog
when the product last changed (its current snapshot's time), since their materializations are another location's;
it fails past `error_after` and warns past `warn_after`, the thresholds their producer declared.
"""


import datetime as dt
import time
from typing import Any, Mapping

import dagster as dg

from icemesh.dagster.resource import IcemeshResource

from icemesh.dbt.resolver import freshness_seconds as seconds  # {count: 12, period: hour} in seconds


def own_checks(keys_and_freshness: Mapping[dg.AssetKey, Mapping[str, Any]]) -> list:
    checks = []
    for key, freshness in keys_and_freshness.items():
        bound = seconds(freshness.get("error_after")) or seconds(freshness.get("warn_after"))
        if bound:
            checks.extend(dg.build_last_update_freshness_checks(
                assets=[key], lower_bound_delta=dt.timedelta(seconds=max(bound, 1.0))))
    return checks


def upstream_check(key: dg.AssetKey, product: str, freshness: Mapping[str, Any]) -> dg.AssetChecksDefinition:
    """The catalog's word on an upstream product's freshness, against the thresholds its producer declared."""

    @dg.asset_check(asset=key, name="icemesh_freshness", description=f"{product} against its producer's icemesh_freshness")
    def fresh(icemesh: IcemeshResource) -> dg.AssetCheckResult:
        found = [p for p in icemesh.client().request("GET", "/management/v1/products", params={"name": [product]})
                 if p["name"] == product]  # only this product: the catalog filters, however large the mesh
        if not found or not found[0].get("last_updated_ms"):
            return dg.AssetCheckResult(passed=False, description=f"{product} is not visible in the catalog (or empty)")
        age = time.time() - found[0]["last_updated_ms"] / 1000
        for level, severity in (("error_after", dg.AssetCheckSeverity.ERROR), ("warn_after", dg.AssetCheckSeverity.WARN)):
            limit = seconds(freshness.get(level))
            if limit is not None and age > limit:
                return dg.AssetCheckResult(passed=False, severity=severity, metadata={"age_s": age, "limit_s": limit},
                                           description=f"{product} last changed {age / 3600:.1f} h ago, past its "
                                                       f"{level} of {limit / 3600:g} h")
        return dg.AssetCheckResult(passed=True, metadata={"age_s": age})

    return fresh
