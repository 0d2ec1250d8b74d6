"""A product's freshness against the thresholds its producer declared (`icemesh_freshness`, dbt's shape:
`{warn_after: {count: 12, period: hour}, error_after: {...}}`). Pure: the dbt resolver, the orchestrators and
the portal judge a product the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_PERIODS = {"minute": 60, "hour": 3600, "day": 86400}


def threshold_seconds(threshold: Any) -> float | None:
    """dbt's freshness threshold shape: {count: 12, period: hour} (None: not a threshold)."""
    if not isinstance(threshold, dict) or threshold.get("count") is None:
        return None
    period = str(threshold.get("period", "hour")).rstrip("s")
    if period not in _PERIODS:
        return None
    try:
        return float(threshold["count"]) * _PERIODS[period]
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Freshness:
    level: str  # "fresh", "warn", "error", "unknown" (no thresholds declared) or "empty" (no data yet)
    age_s: float | None
    warn_after_s: float | None
    error_after_s: float | None


def assess(dbt: dict[str, Any], last_updated_ms: int | None, now: float) -> Freshness:
    """Past `error_after` is an error, past `warn_after` a warning; without either, the age alone says nothing."""
    declared = dbt.get("freshness") if isinstance(dbt.get("freshness"), dict) else {}
    warn, error = threshold_seconds(declared.get("warn_after")), threshold_seconds(declared.get("error_after"))
    if not last_updated_ms:
        return Freshness("empty", None, warn, error)
    age = max(0.0, now - last_updated_ms / 1000)
    if error is not None and age > error:
        level = "error"
    elif warn is not None and age > warn:
        level = "warn"
    elif warn is None and error is None:
        level = "unknown"
    else:
        level = "fresh"
    return Freshness(level, age, warn, error)
