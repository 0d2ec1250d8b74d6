"""What the `iceberg` materialization hands the plugin: one dbt model as a data product to publish.

The macro passes plain dicts (Jinja cannot build Python objects); this module turns them into a typed
spec and derives what the product records about itself: the `icemesh.dbt.*` table properties.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PROPERTY_PREFIX = "icemesh.dbt."
DECLARED_TAGS_PROPERTY = "icemesh.tags"  # the tags a product declares; the catalog applies them with the commit
MODES = ("replace", "append", "merge", "delete+insert")
ON_SCHEMA_CHANGE = ("ignore", "fail", "append_new_columns", "sync_all_columns")


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    description: str = ""
    data_type: str | None = None
    not_null: bool = False
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProductSpec:
    namespace: str
    table: str
    project: str
    model: str
    unique_id: str
    sql: str
    mode: str = "replace"
    unique_key: tuple[str, ...] = ()
    on_schema_change: str = "ignore"
    partition_by: tuple[str, ...] = ()
    access: str | None = None
    group: str | None = None
    owner: Any = None
    version: Any = None
    latest_version: Any = None
    deprecation_date: str | None = None
    freshness: dict[str, Any] | None = None
    invocation_id: str | None = None
    description: str = ""
    contract_enforced: bool = False
    columns: tuple[ColumnSpec, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    upstream: tuple[str, ...] = ()
    upstream_snapshots: dict[str, int] = field(default_factory=dict)
    catalog_entry: dict[str, Any] | None = None  # the catalogs.yml entry a `catalog_name` model names

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ProductSpec":
        mode = config.get("mode") or "replace"
        if mode not in MODES:
            raise ValueError(f"unknown write mode {mode!r}: expected one of {', '.join(MODES)}")
        on_change = config.get("on_schema_change") or "ignore"
        if on_change not in ON_SCHEMA_CHANGE:
            raise ValueError(f"on_schema_change {on_change!r} is not one of {', '.join(ON_SCHEMA_CHANGE)}")
        partition_by = config.get("partition_by") or ()
        if isinstance(partition_by, str):
            partition_by = (partition_by,)
        return cls(
            namespace=config["namespace"], table=config["table"], project=config["project"], model=config["model"],
            unique_id=config["unique_id"], sql=config["sql"], mode=mode,
            unique_key=tuple(config.get("unique_key") or ()), on_schema_change=on_change,
            partition_by=tuple(str(p) for p in partition_by), access=_text(config.get("access")),
            group=config.get("group"), owner=config.get("owner"), version=config.get("version"),
            latest_version=config.get("latest_version"), invocation_id=config.get("invocation_id"),
            deprecation_date=_text(config.get("deprecation_date")), freshness=config.get("freshness") or None,
            description=config.get("description") or "", contract_enforced=bool(config.get("contract_enforced")),
            columns=tuple(ColumnSpec(name=c["name"], description=c.get("description") or "",
                                     data_type=c.get("data_type"), not_null=bool(c.get("not_null")),
                                     tags=_tags(c.get("tags"), f"column {c['name']}"))
                          for c in config.get("columns") or ()),
            tags=_tags(config.get("tags"), "icemesh_tags"),
            upstream=tuple(config.get("upstream") or ()),
            upstream_snapshots=dict(config.get("upstream_snapshots") or {}),
            catalog_entry=dict(config["catalog_entry"]) if config.get("catalog_entry") else None,
        )

    @property
    def identifier(self) -> str:
        return f"{self.namespace}.{self.table}"

    def column(self, name: str) -> ColumnSpec | None:
        """Column names match case-insensitively, as dbt matches YAML to SQL."""
        lowered = name.lower()
        return next((c for c in self.columns if c.name.lower() == lowered), None)

    def contract(self) -> dict[str, Any] | None:
        if not self.contract_enforced:
            return None
        return {"enforced": True, "columns": [
            {"name": c.name, "data_type": c.data_type, "not_null": c.not_null} for c in self.columns]}

    def properties(self) -> dict[str, str]:
        """`icemesh.dbt.*` properties: who made the product, from what, under which contract."""
        values = {
            "project": self.project, "model": self.model, "unique_id": self.unique_id, "access": self.access,
            "group": self.group, "owner": self.owner, "version": self.version, "latest_version": self.latest_version,
            "invocation_id": self.invocation_id, "contract": self.contract(),
            "deprecation_date": self.deprecation_date, "freshness": self.freshness,
            "upstream": list(self.upstream) if self.upstream else None,
            "upstream_snapshots": self.upstream_snapshots or None,
        }
        properties = {}
        for key, value in values.items():
            if value is None or value == "":
                continue
            properties[PROPERTY_PREFIX + key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        if self.description:
            properties["comment"] = self.description
        return properties


def _text(value: Any) -> str | None:
    """dbt hands some enums (access) to Jinja as objects whose str() is the value."""
    return None if value is None else str(getattr(value, "value", value))


def _tags(value: Any, where: str) -> dict[str, str]:
    if not value:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a mapping of tag key to value, e.g. {{'sensitivity': 'internal'}}")
    return {str(k): str(v) for k, v in value.items()}
