"""What both product writers share: the result, the properties a publish sets, the one-line error.

Kept free of pyiceberg and pyarrow so the lean writer (lean_writer.py) and the dbt plugin import it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

from icemesh.dbt import tagging
from icemesh.dbt.product import DECLARED_TAGS_PROPERTY, PROPERTY_PREFIX, ProductSpec


@dataclass
class WriteResult:
    identifier: str
    mode: str
    rows: int
    snapshot_id: int | None
    seconds: float


def actual(name: str, columns: list[str]) -> str:
    """The column as the SQL spells it (YAML names match case-insensitively)."""
    if not name:
        return name
    lowered = name.lower()
    return next((c for c in columns if c.lower() == lowered), name)


def product_properties(spec: ProductSpec, columns: list[str]) -> dict[str, str]:
    """The table properties a publish sets; the declared tags ride in the commit (the catalog applies them in
    the same transaction as the rows)."""
    wanted_tags = {(actual(column, columns), key): value for (column, key), value in tagging.declared(spec).items()}
    return {**spec.properties(), DECLARED_TAGS_PROPERTY: tagging.record(wanted_tags)}


def stale_properties(existing: dict[str, str], properties: dict[str, str]) -> list[str]:
    """icemesh's own properties the product had and this publish no longer sets."""
    return [k for k in existing
            if (k.startswith(PROPERTY_PREFIX) or k == DECLARED_TAGS_PROPERTY) and k not in properties]


def snapshot_properties(spec: ProductSpec) -> dict[str, str]:
    return {f"{PROPERTY_PREFIX}unique_id": spec.unique_id, f"{PROPERTY_PREFIX}invocation_id": spec.invocation_id or ""}


def publish_error(identifier: str, exc: BaseException) -> str:
    """The one line dbt shows when a product cannot be published, whichever engine ran the model: the
    catalog's own reason (from pyiceberg, or the innermost Java exception on Spark), not a stack trace."""
    from icemesh.errors import IcemeshError

    if getattr(exc, "java_exception", None) is not None:
        from icemesh.runtimes.spark import error_message

        reason = error_message(exc)
    else:
        text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        reason = text if isinstance(exc, (ValueError, IcemeshError)) else f"{exc.__class__.__name__}: {text}"
    return f"icemesh could not publish {identifier}: {reason}"
