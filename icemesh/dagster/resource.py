"""The domain's principal as a Dagster resource: the catalog client for the sensor and checks, and the environment
the dbt CLI runs in (ICEMESH_CATALOG_URI, ICEMESH_CLIENT_ID, ICEMESH_CLIENT_SECRET), from `EnvVar`s by default."""


from contextlib import contextmanager
from typing import Iterator, Optional

import dagster as dg

from icemesh.client import CatalogClient


class IcemeshResource(dg.ConfigurableResource):
    catalog_uri: Optional[str] = None
    client_id: Optional[str] = None
    client_secret: Optional[str] = None

    def settings(self) -> dict[str, str]:
        values = {"ICEMESH_CATALOG_URI": self.catalog_uri, "ICEMESH_CLIENT_ID": self.client_id,
                  "ICEMESH_CLIENT_SECRET": self.client_secret}
        return {k: v for k, v in values.items() if v}

    def client(self) -> CatalogClient:
        return CatalogClient.from_env(self.catalog_uri, client_id=self.client_id, client_secret=self.client_secret,
                                      column_limits=True)

    @contextmanager
    def environment(self) -> Iterator[None]:
        """The principal's settings in this process's environment while dbt runs (dagster-dbt passes it on)."""
        from icemesh.dbt.in_process import environment

        with environment(self.settings()):
            yield


def from_env() -> IcemeshResource:
    """The resource a generated definitions file uses: everything from the code location's environment."""
    return IcemeshResource(catalog_uri=dg.EnvVar("ICEMESH_CATALOG_URI"), client_id=dg.EnvVar("ICEMESH_CLIENT_ID"),
                           client_secret=dg.EnvVar("ICEMESH_CLIENT_SECRET"))
