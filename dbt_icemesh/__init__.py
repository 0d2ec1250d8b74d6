"""dbt's plugin entry point for icemesh: dbt imports every top-level module named `dbt_*` and reads its
`plugins`. The resolver turns `ref('other_project', 'model')` into the catalog's product (icemesh.dbt.resolver)."""

from icemesh.dbt.resolver import IcemeshResolver

plugins = [IcemeshResolver]
