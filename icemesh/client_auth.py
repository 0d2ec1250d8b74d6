"""pyiceberg sessions that reuse a CatalogClient's token instead of logging in again.

pyiceberg's own OAuth2 manager logs in each time it builds a session, and a RestCatalog builds two (one to read
`/v1/config`, one for the rest): two client-credentials logins per catalog, each a deliberately slow secret check
on the server (scrypt), on top of the one the CatalogClient already made. This manager asks the client, which
keeps one token per process and logs in again only when it is about to expire.
"""

from __future__ import annotations

from pyiceberg.catalog.rest.auth import AuthManager

IMPL = f"{__name__}.ClientToken"


class ClientToken(AuthManager):
    def __init__(self, client) -> None:
        self.client = client

    def auth_header(self) -> str:
        return f"Bearer {self.client.token()}"


def auth_property(client) -> dict:
    """The RestCatalog `auth` property that makes its sessions use `client`'s token (pyiceberg's custom auth)."""
    return {"type": "custom", "impl": IMPL, "custom": {"client": client}}
