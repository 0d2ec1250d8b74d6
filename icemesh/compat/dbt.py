"""dbt 1.11's private APIs icemesh uses (dbt-core and dbt-spark, both pinned at 1.11):

- dbt-spark: the set of adapter methods its Jinja wrapper exposes, which is how `adapter.icemesh_publish(...)`
  becomes callable from a materialization (dbt-spark has no plugin hook);
- dbt-adapters: `CATALOG_INTEGRATIONS`, the catalog types `catalogs.yml` may name for an adapter (read when the adapter
  is made), to which icemesh adds `iceberg_rest` for dbt-duckdb and dbt-spark;
- dbt-core: `ModelNode.materialization_enforces_constraints`, a fixed list (`table`, `incremental`) behind the
  warning "Constraint types are not supported for iceberg materializations", which the `iceberg`
  materialization does not deserve for the constraints it enforces (not_null: a required Iceberg field)."""

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


def enforces_constraints(materialization: str, kinds: frozenset[str]) -> None:
    """Tell dbt that `materialization` enforces constraints of `kinds` (a model with any other kind still gets
    dbt's warning). Idempotent."""
    from dbt.contracts.graph.nodes import ModelNode

    current = ModelNode.materialization_enforces_constraints
    if getattr(current.fget, "icemesh", None) == (materialization, kinds):
        return
    original = current.fget

    def enforces(node) -> bool:
        if node.config.materialized == materialization:
            return all(str(getattr(c.type, "value", c.type)) in kinds for c in node.all_constraints)
        return original(node)

    enforces.icemesh = (materialization, kinds)
    ModelNode.materialization_enforces_constraints = property(enforces)


def add_catalog_integration_type(adapter_class: type, integration_class: type) -> None:
    """Let `catalogs.yml` name `integration_class.catalog_type` on this adapter. dbt builds an adapter's catalog
    client from the class attribute CATALOG_INTEGRATIONS when the adapter is made, so this runs before (from a
    dbt plugin's initialize). The list is replaced, not appended to: BaseAdapter's default is shared by all."""
    current = list(getattr(adapter_class, "CATALOG_INTEGRATIONS", None) or [])
    if any(c.catalog_type.casefold() == integration_class.catalog_type.casefold() for c in current):
        return
    adapter_class.CATALOG_INTEGRATIONS = [*current, integration_class]


def profile_adapter_type() -> str | None:
    """The adapter type of the profile dbt loaded for this command, or None when it cannot say. dbt-core 1.11 keeps the
    profile on click's context before it initialises plugins; a plugin that serves one adapter asks here so that it
    costs other projects nothing (importing dbt-spark takes about 0.3 s)."""
    try:
        import click

        context = click.get_current_context(silent=True)
        profile = context.obj.get("profile") if context is not None and isinstance(context.obj, dict) else None
        return str(profile.credentials.type) if profile is not None else None
    except Exception:  # noqa: BLE001 - dbt's internals moved: do what an unknown profile needs
        return None
