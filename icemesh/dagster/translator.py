"""Asset keys for products, the same in every domain's code location: `[project, model]` (a versioned model:
`[project, model_v2]`), taken from the dbt node of the producer or of the node the icemesh resolver injected into a
consumer's manifest (its package is the producing project), so a downstream location's dependency is the upstream
location's asset."""

from __future__ import annotations

from typing import Any, Mapping, Optional

import dagster as dg
from dagster_dbt import DagsterDbtTranslator


def product_key(project: str, model: str, version: Any = None) -> dg.AssetKey:
    return dg.AssetKey([project, f"{model}_v{version}" if version not in (None, "") else model])


def is_injected(props: Mapping[str, Any]) -> bool:
    """A product of another project, added by the icemesh resolver (no file in this project)."""
    return props.get("resource_type") == "model" and not props.get("original_file_path")


class IcemeshTranslator(DagsterDbtTranslator):
    def __init__(self, project: str, automation: Optional[dg.AutomationCondition] = None) -> None:
        super().__init__()
        self.project = project
        self.automation = automation

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props.get("resource_type") == "model":
            return product_key(dbt_resource_props["package_name"], dbt_resource_props["name"],
                               dbt_resource_props.get("version"))
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> Optional[str]:
        return dbt_resource_props.get("package_name") or self.project

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> Optional[dg.AutomationCondition]:
        return None if is_injected(dbt_resource_props) else self.automation
