"""The portal's login session: the cookie carries the catalog's own access token (what `/v1/oauth/tokens`
issues), so the portal stores nothing of its own and a session ends when the token does."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from icemesh.catalog.service import CatalogService
from icemesh.errors import NotAuthorized
from icemesh.protocol import RequestContext
from icemesh.security.authenticator import OAuthError
from icemesh.security.login_guard import TooManyLogins

COOKIE = "icemesh_portal"


class LoginFailed(Exception):
    """A one-line reason shown on the login form."""


async def log_in(svc: CatalogService, client_id: str, secret: str, token: str, address: str) -> tuple[str, int]:
    """A token for the form's credentials (rate-limited and audited like the OAuth endpoint), or a pasted token
    checked by the catalog; returns (token, seconds it lives)."""
    if token:
        try:
            svc.context(f"Bearer {token}")
        except NotAuthorized:
            raise LoginFailed("That token is not valid (expired or revoked)") from None
        return token, 3600
    guard = svc.login_guard
    try:
        guard.check(client_id, address)
        issued = await asyncio.wrap_future(guard.run(lambda: svc.authenticator.client_credentials(
            client_id or None, secret or None, "catalog")))
    except TooManyLogins as exc:
        raise LoginFailed(exc.message) from None
    except OAuthError as exc:
        if exc.error in ("invalid_client", "invalid_grant"):
            guard.failed(client_id, address)
        svc.audit.audit_failed_login(client_id, address, exc.message)
        raise LoginFailed(exc.message) from None
    guard.succeeded(client_id)
    svc.audit.audit_login(issued.principal, address, "portal")
    return issued.access_token, issued.expires_in


def set_session(response: Response, token: str, max_age: int) -> None:
    response.set_cookie(COOKIE, token, max_age=max_age, httponly=True, samesite="strict", path="/")


def clear_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


def current(svc: CatalogService, request: Request) -> RequestContext | None:
    """The caller the cookie names, as the REST API would resolve its bearer token (None: log in again)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        return svc.context(f"Bearer {token}")
    except NotAuthorized:
        return None
