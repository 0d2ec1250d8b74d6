"""Which catalog and warehouses a dbt target uses: where it publishes, and where its cross-project refs read.

A dev target publishes into its own warehouse but reads the other projects' production products (the
default), or another warehouse when told: `warehouse` / `upstream_warehouse` in the dbt-duckdb plugin's
`config:` (per target, so `dbt run --target dev` switches), or ICEMESH_CATALOG_WAREHOUSE /
ICEMESH_UPSTREAM_WAREHOUSE. A warehouse is named as the server knows it (name or root URI); empty means
the server's default warehouse. When the two differ, the upstream warehouse is attached under its own
alias (`mesh_upstream`) and the resolver names refs there; otherwise everything is `mesh`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from icemesh.client import CatalogClient

DEFAULT_ALIAS = os.environ.get("ICEMESH_DBT_CATALOG", "mesh")
WAREHOUSE_ENV = "ICEMESH_CATALOG_WAREHOUSE"
UPSTREAM_WAREHOUSE_ENV = "ICEMESH_UPSTREAM_WAREHOUSE"


@dataclass(frozen=True)
class TargetCatalog:
    uri: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    token: str | None = None
    warehouse: str = ""           # where this target's products are published
    upstream_warehouse: str = ""  # where its cross-project refs read (production: the default warehouse)
    alias: str = DEFAULT_ALIAS

    @classmethod
    def from_config(cls, config: dict[str, Any] | None = None) -> "TargetCatalog":
        """The plugin's `config:` first, then the environment."""
        config, env = config or {}, os.environ
        return cls(uri=config.get("uri"), client_id=config.get("client_id"), client_secret=config.get("client_secret"),
                   token=config.get("token"),
                   warehouse=str(config.get("warehouse") or env.get(WAREHOUSE_ENV) or ""),
                   upstream_warehouse=str(config.get("upstream_warehouse") or env.get(UPSTREAM_WAREHOUSE_ENV) or ""),
                   alias=str(config.get("catalog") or DEFAULT_ALIAS))

    def client(self, upstream: bool = False) -> CatalogClient:
        """A session as the project's principal, on its own warehouse or the upstream one. Column limits are
        declared: a product readable only in part comes without the hidden columns instead of being refused.
        (The client, and httpx with it, is imported here: dbt loads this module for every command of every project.)"""
        from icemesh.client import CatalogClient

        return CatalogClient.from_env(self.uri, client_id=self.client_id, client_secret=self.client_secret,
                                      token=self.token, column_limits=True,
                                      warehouse=self.upstream_warehouse if upstream else self.warehouse)

    def reads_elsewhere(self, own: CatalogClient | None = None, upstream: CatalogClient | None = None) -> bool:
        """Whether refs read another warehouse than the target publishes to (compared as the server resolves
        them, so `prod` and the default warehouse's root are the same)."""
        if self.warehouse == self.upstream_warehouse:
            return False
        own, upstream = own or self.client(), upstream or self.client(upstream=True)
        return own.prefix() != upstream.prefix()

    @property
    def upstream_alias(self) -> str:
        return f"{self.alias}_upstream"


def of_current_target(adapter) -> TargetCatalog:
    """The settings of the target dbt is running: the adapter's own config where it has one (the dbt-duckdb
    plugin's `config:`), else the environment (Spark, the CLI)."""
    config = adapter.target_config()
    return TargetCatalog.from_config(config) if config is not None else TargetCatalog.from_config()
