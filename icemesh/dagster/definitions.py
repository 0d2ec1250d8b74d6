"""`domain_definitions(project_dir=...)`: a domain's code location.

The dbt manifest is prepared by `dbt parse` as the domain's principal (the icemesh resolver injects the upstream
products the project refs, with their own upstream chain); the domain's models are one `@dbt_assets` definition
(`dbt build`, as the principal); the injected products are external assets with their deps; a sensor reports
their new snapshots from the catalog's change feed; `icemesh_freshness` becomes checks.
"""


import json
import os
import subprocess
import sys
from typing import Any, Optional

import dagster as dg
import yaml
from dagster_dbt import DbtCliResource, dbt_assets

from icemesh.dagster import checks
from icemesh.dagster.resource import IcemeshResource, from_env
from icemesh.dagster.sensor import catalog_events_sensor
from icemesh.dagster.translator import IcemeshTranslator, is_injected


def _dbt() -> str:
    """dbt of this Python environment (the one icemesh's plugins are installed in), whatever PATH says."""
    return os.path.join(os.path.dirname(sys.executable), "dbt")


def _resolved(value: Any) -> Optional[str]:
    return value.get_value() if isinstance(value, dg.EnvVar) else value


def _principal_env(icemesh: IcemeshResource) -> dict[str, str]:
    """What a dbt command of this domain runs with: the principal's settings, dbt's telemetry off."""
    return {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            **{k: v for k, v in ((k, _resolved(v)) for k, v in icemesh.settings().items()) if v}}


def prepare_manifest(project_dir: str, icemesh: IcemeshResource, target: str | None = None,
                     profiles_dir: str | None = None) -> str:
    """`dbt parse` as the domain's principal; returns target/manifest.json (offline: from the parse cache)."""
    env = {**os.environ, **_principal_env(icemesh)}
    args = [_dbt(), "parse", "--project-dir", project_dir]
    if target:
        args += ["--target", target]
    if profiles_dir:
        args += ["--profiles-dir", profiles_dir]
    done = subprocess.run(args, cwd=project_dir, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
        raise dg.DagsterInvariantViolationError(f"dbt parse of {project_dir} failed: {lines[-1] if lines else done.stderr}")
    return os.path.join(project_dir, "target", "manifest.json")


def _in_process(context, project_dir: str, profiles_dir: str | None, target: str | None, command: list[str],
                icemesh: IcemeshResource, manifest: dict, translator) -> Any:
    """`dbt <command>` of the selected assets in this process; dbt's events become Dagster's as dagster-dbt makes them."""
    from icemesh.compat.dagster_dbt import asset_events
    from icemesh.dbt.in_process import invoke

    selected = context.selected_asset_keys
    names = sorted("fqn:" + ".".join(node["fqn"]) for node in manifest.get("nodes", {}).values()
                   if node.get("resource_type") in ("model", "seed", "snapshot")
                   and translator.get_asset_key(node) in selected)
    args = [*command, "--select", *names]
    if target:
        args += ["--target", target]
    env = {"DBT_PROFILES_DIR": profiles_dir or project_dir, **_principal_env(icemesh)}
    records: list[dict] = []
    invoke(project_dir, args, env, on_event=records.append)
    for record in records:
        if "node_info" in (record.get("data") or {}):
            yield from asset_events(record, manifest, translator, context)


def domain_definitions(project_dir: str, *, icemesh: IcemeshResource | None = None,
                       automation: dg.AutomationCondition | None = None, target: str | None = None,
                       profiles_dir: str | None = None, command: tuple[str, ...] = ("build",),
                       sensor_interval_s: int = 30, in_process: bool = False) -> dg.Definitions:
    """The Definitions of the domain at `project_dir` (default automation: eager, rebuild when an input changes).
    `in_process`: the asset runs dbt in this process (icemesh.dbt.in_process) instead of dagster-dbt's subprocess,
    so a dbt-spark `method: session` project keeps its process's JVM and session between runs."""
    project_dir = os.path.abspath(project_dir)
    icemesh = icemesh or from_env()
    with open(os.path.join(project_dir, "dbt_project.yml"), encoding="utf-8") as f:
        project = str((yaml.safe_load(f) or {}).get("name"))
    manifest_path = prepare_manifest(project_dir, icemesh, target, profiles_dir)
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    translator = IcemeshTranslator(project, automation if automation is not None else dg.AutomationCondition.eager())

    @dbt_assets(manifest=manifest, select=f"package:{project}", dagster_dbt_translator=translator,
                name=f"{project}_dbt_assets")
    def domain_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource, icemesh: IcemeshResource):
        if in_process:
            yield from _in_process(context, project_dir, profiles_dir, target, list(command), icemesh, manifest,
                                   translator)
            return
        with icemesh.environment():
            yield from dbt.cli(list(command), context=context).stream()

    nodes = manifest.get("nodes", {})
    injected = {uid: n for uid, n in nodes.items() if is_injected(n) and n.get("package_name") != project}
    upstream_specs, upstream_products, upstream_checks = [], {}, []
    for uid, node in sorted(injected.items()):
        key = translator.get_asset_key(node)
        deps = [translator.get_asset_key(nodes[d]) for d in (node.get("depends_on") or {}).get("nodes", []) if d in nodes]
        upstream_specs.append(dg.AssetSpec(key=key, deps=deps, group_name=node["package_name"],
                                           description=node.get("description") or None,
                                           metadata={"icemesh/product": (node.get("meta") or {}).get("icemesh", {}).get("product")}))
        meta = (node.get("meta") or {}).get("icemesh") or {}
        if meta.get("product"):
            upstream_products[meta["product"]] = key
            if meta.get("freshness"):
                upstream_checks.append(checks.upstream_check(key, meta["product"], meta["freshness"]))
    own = {translator.get_asset_key(n): (n.get("config") or {}).get("icemesh_freshness")
           for n in nodes.values() if n.get("package_name") == project and n.get("resource_type") == "model"}
    own_checks = checks.own_checks({k: v for k, v in own.items() if v})
    sensors = [catalog_events_sensor(f"{project}_upstream_snapshots", upstream_products, sensor_interval_s)] \
        if upstream_products else []
    dbt = DbtCliResource(project_dir=project_dir, profiles_dir=profiles_dir, target=target, dbt_executable=_dbt())
    return dg.Definitions(assets=[domain_assets, *upstream_specs], asset_checks=[*own_checks, *upstream_checks],
                          sensors=sensors, resources={"dbt": dbt, "icemesh": icemesh})
