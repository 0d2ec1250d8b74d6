"""A domain's dbt build as a Prefect flow, run as the domain's principal.

    build = domain_flow("path/to/sales")          # a prefect Flow named build-<project>
    build()                                        # or build.serve(...), build.deploy(...)

The flow (1) checks the freshness of its upstream products in the catalog (the projects `dependencies.yml`
declares; a product past its producer's `icemesh_freshness` error_after fails the flow before dbt runs, warn_after
logs a warning), (2) runs dbt in a subprocess with the domain's credentials (ICEMESH_CATALOG_URI, ICEMESH_CLIENT_ID,
ICEMESH_CLIENT_SECRET, from the arguments, a Prefect Secret block, or the environment), its output in the flow's
log, and (3) records a Prefect asset materialization for each product the run published (a new snapshot in the
catalog), keyed by the catalog (assets.py), with the products it was built from as its upstream assets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import yaml

from icemesh.client import CatalogClient
from icemesh.prefect.assets import asset_key

PRODUCTS = "/management/v1/products"


@dataclass
class DomainBuild:
    project_dir: str
    command: tuple[str, ...] = ("build",)
    target: str | None = None
    profiles_dir: str | None = None
    catalog_uri: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    client_secret_block: str | None = None  # a Prefect Secret block holding the client secret
    freshness: str = "fail"                 # fail | warn | ignore: what a stale upstream product does
    env: dict[str, str] = field(default_factory=dict)

    @property
    def project(self) -> str:
        with open(os.path.join(self.project_dir, "dbt_project.yml"), encoding="utf-8") as f:
            return str((yaml.safe_load(f) or {}).get("name"))

    def credentials(self) -> dict[str, str]:
        """The principal's settings for the dbt subprocess and the catalog client."""
        secret = self.client_secret
        if secret is None and self.client_secret_block:
            from prefect.blocks.system import Secret

            secret = Secret.load(self.client_secret_block).get()
        values = {"ICEMESH_CATALOG_URI": self.catalog_uri or os.environ.get("ICEMESH_CATALOG_URI"),
                  "ICEMESH_CLIENT_ID": self.client_id or os.environ.get("ICEMESH_CLIENT_ID"),
                  "ICEMESH_CLIENT_SECRET": secret or os.environ.get("ICEMESH_CLIENT_SECRET")}
        return {k: v for k, v in values.items() if v}

    def client(self) -> CatalogClient:
        found = self.credentials()
        return CatalogClient(found.get("ICEMESH_CATALOG_URI"), client_id=found.get("ICEMESH_CLIENT_ID"),
                             client_secret=found.get("ICEMESH_CLIENT_SECRET"), column_limits=True)


def domain_flow(project_dir: str, **options: Any):
    """The Prefect flow that builds the dbt project at `project_dir` (options: DomainBuild's fields)."""
    from prefect import flow

    build = DomainBuild(os.path.abspath(project_dir), **options)

    @flow(name=f"build-{build.project}", log_prints=False)
    def build_domain() -> dict[str, Any]:
        return run_domain(build)

    build_domain.icemesh = build
    return build_domain


def run_domain(build: DomainBuild) -> dict[str, Any]:
    """The flow's body: freshness, dbt, assets (each a Prefect task)."""
    from prefect import task

    client = build.client()
    before = task(name="check upstream freshness")(check_upstream)(build, client)
    task(name=f"dbt {' '.join(build.command)}")(run_dbt)(build)
    published = _published(build, client, before["own"])
    for product in published:
        _materialize(client, product)
    return {"project": build.project, "upstream": before["upstream"],
            "published": [{"product": p["name"], "snapshot-id": p["current_snapshot_id"]} for p in published]}


def check_upstream(build: DomainBuild, client: CatalogClient) -> dict[str, Any]:
    """Refuse to build on a stale input: the upstream products' freshness, as their producers declared it."""
    from prefect import get_run_logger

    from icemesh.dbt.resolver import cross_project_refs, declared_projects, freshness_problem, reads

    logger = get_run_logger()
    upstream = set(declared_projects(build.project_dir))
    refs = cross_project_refs(build.project_dir)  # only what the models read (None: every product of those projects)
    mine = build.project
    products = client.request("GET", PRODUCTS, params={"project": sorted(upstream | {mine})})  # not the whole mesh
    problems = []
    seen = []
    for product in products:
        dbt = product.get("dbt") or {}
        if dbt.get("project") not in upstream or (refs is not None and not reads(product, refs)):
            continue
        seen.append({"product": product["name"], "snapshot-id": product.get("current_snapshot_id")})
        stale = freshness_problem(product, time.time()) if build.freshness != "ignore" else None
        if stale and stale[0] == "error" and build.freshness == "fail":
            problems.append(stale[1])
        elif stale:
            logger.warning("upstream %s", stale[1])
    if problems:
        raise RuntimeError(f"{mine} does not build on stale inputs: " + " | ".join(problems))
    own = {p["name"]: p.get("current_snapshot_id") for p in products if (p.get("dbt") or {}).get("project") == mine}
    logger.info("%s reads %d upstream products: %s", mine, len(seen), ", ".join(s["product"] for s in seen) or "none")
    return {"upstream": seen, "own": own}


def run_dbt(build: DomainBuild) -> None:
    """dbt in a subprocess of this Python environment, as the domain's principal; its lines in the flow's log."""
    from prefect import get_run_logger

    logger = get_run_logger()
    dbt = os.path.join(os.path.dirname(sys.executable), "dbt")
    args = [dbt, *build.command, "--project-dir", build.project_dir]
    if build.profiles_dir:
        args += ["--profiles-dir", build.profiles_dir]
    if build.target:
        args += ["--target", build.target]
    env = {**os.environ, **build.env, **build.credentials(), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    done = subprocess.run(args, cwd=build.project_dir, env=env, capture_output=True, text=True)
    lines = done.stdout.splitlines()
    for line in lines:
        logger.info(line)
    if done.returncode != 0:
        errors = [line.strip() for line in lines if "icemesh" in line or "Error" in line]
        raise RuntimeError(f"dbt {' '.join(build.command)} failed for {build.project}: "
                           f"{errors[-1] if errors else (done.stderr.strip().splitlines() or ['no output'])[-1]}")


def _published(build: DomainBuild, client: CatalogClient, before: dict[str, Any]) -> list[dict[str, Any]]:
    """The project's products whose snapshot the run changed (new ones included)."""
    products = client.request("GET", PRODUCTS, params={"project": [build.project]})
    return [p for p in products if (p.get("dbt") or {}).get("project") == build.project
            and p.get("current_snapshot_id") is not None and before.get(p["name"]) != p["current_snapshot_id"]]


def _materialize(client: CatalogClient, product: dict[str, Any]) -> None:
    """One Prefect asset materialization: the product, its upstream products as its dependencies."""
    from prefect.assets import Asset, AssetProperties, add_asset_metadata, materialize

    dbt = product.get("dbt") or {}
    owner = dbt.get("owner")
    owner = owner.get("email") or owner.get("name") if isinstance(owner, dict) else owner
    asset = Asset(key=asset_key(client, product["name"]), properties=AssetProperties(
        name=product["name"], description=(product.get("description") or "")[:5000] or None,
        owners=[str(owner)] if owner else None))
    upstream = [asset_key(client, name) for name in dbt.get("upstream") or [] if isinstance(name, str)]

    @materialize(asset, by="dbt", asset_deps=upstream, name=f"publish {product['name']}")
    def publish() -> None:
        add_asset_metadata(asset, {"snapshot-id": product["current_snapshot_id"], "project": dbt.get("project"),
                                   "model": dbt.get("model")})

    publish()
