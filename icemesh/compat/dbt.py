"""dbt-spark 1.11's private API icemesh uses: the set of adapter methods its Jinja wrapper exposes, which is how
`adapter.icemesh_publish(...)` becomes callable from a materialization (dbt-spark has no plugin hook)."""

from __future__ import annotations

from typing import Callable

PINNED = "1.11"


def expose_adapter_method(adapter_class: type, name: str, method: Callable) -> None:
    """Add `name` to the adapter and to what dbt's Jinja may call on it (idempotent)."""
    if name not in adapter_class._available_:
        setattr(adapter_class, name, method)
        adapter_class._available_ = adapter_class._available_ | {name}


def exposed(adapter_class: type, name: str) -> bool:
    return name in adapter_class._available_
