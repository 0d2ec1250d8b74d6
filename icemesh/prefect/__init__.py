"""icemesh for Prefect (`icemesh[prefect]`): a domain's dbt build as a Prefect flow, run as the domain's principal,
that checks its upstream products' freshness in the catalog first and records Prefect asset lineage for the products
it publishes; and a bridge from the catalog's change feed to Prefect events, for deployments that run when their
upstream products change.

    from icemesh.prefect import domain_flow, upstream_trigger
    build = domain_flow("path/to/sales")
    build.serve(name="sales", triggers=[upstream_trigger("path/to/sales")])
"""

from icemesh.prefect.assets import asset_key
from icemesh.prefect.events import forward_catalog_events, upstream_trigger
from icemesh.prefect.flows import DomainBuild, domain_flow

__all__ = ["DomainBuild", "asset_key", "domain_flow", "forward_catalog_events", "upstream_trigger"]
