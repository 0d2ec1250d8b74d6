"""icemesh for Dagster (`icemesh[dagster]`): one code location per domain, on dagster-dbt's `@dbt_assets`.

    # definitions.py of the sales domain (`icemesh dagster init .` writes it)
    from icemesh.dagster import domain_definitions
    defs = domain_definitions(project_dir=".")

Products are assets keyed `[project, model]` in every location, so Dagster draws the mesh as one graph across code
locations without any domain importing another's code; other domains' products are external assets whose
materializations come from the catalog's change feed (a sensor), so `AutomationCondition.eager()` rebuilds a domain
when, and only when, its inputs change; `icemesh_freshness` becomes freshness checks; the domain runs as its own
principal through the `icemesh` resource.
"""

from icemesh.dagster.definitions import domain_definitions
from icemesh.dagster.resource import IcemeshResource
from icemesh.dagster.translator import IcemeshTranslator, product_key

__all__ = ["IcemeshResource", "IcemeshTranslator", "domain_definitions", "product_key"]
