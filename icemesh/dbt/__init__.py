"""dbt integration: the dbt-duckdb plugin (`icemesh.dbt.duckdb`) and the `icemesh` macros package."""

import os

PACKAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "package")
