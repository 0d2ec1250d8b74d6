"""The AWS backend: tables in the Glue Data Catalog, governance in Lake Formation, identities and audit in the
local SQL database; and the direct Lake Formation tooling (no server) that shares its governance read side."""

from __future__ import annotations


def open_glue(aws, db_url: str):
    from icemesh.backends.aws.governance import open_glue as open_

    return open_(aws, db_url)
