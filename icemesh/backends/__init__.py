"""Where the mesh's state lives, behind the catalog's ports (icemesh.catalog.ports): one folder per backend.

`open_backend(settings)` is the one place that chooses: `sql` (SQLite or PostgreSQL, the default) or `glue`
(AWS Glue for tables, Lake Formation for governance, the SQL database for identities and audit).
"""

from __future__ import annotations

from icemesh.catalog.ports import Backend


def open_backend(settings) -> Backend:
    """The backend a server's settings name (ServerSettings: `backend`, `db`, and the AWS settings for glue)."""
    if settings.backend == "glue":
        from icemesh.backends.aws import open_glue

        return open_glue(settings.aws(), settings.db)
    from icemesh.backends.sql import open_sql

    return open_sql(settings.db)


def open_credential_vendor(settings):
    """The vendor of scoped storage credentials (`serve --vend-credentials-role`), or None: clients then bring
    their own storage keys (or get the server's, with --share-storage-keys)."""
    if not settings.vend_credentials_role:
        return None
    from icemesh.backends.aws.sts import StsCredentialVendor

    return StsCredentialVendor(settings.sts(), settings.vend_credentials_role, settings.vend_credentials_duration_s)
