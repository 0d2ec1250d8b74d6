"""`POST /v1/oauth/tokens`: OAuth2 client credentials (and token exchange, for refresh) as Iceberg clients speak it."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from icemesh.catalog.service import CatalogService
from icemesh.security.authenticator import OAuthError, basic_credentials
from icemesh.security.login_guard import LoginGuard, TooManyLogins
from icemesh.server.models import OAUTH_ERROR_RESPONSES

router = APIRouter(prefix="/v1", tags=["OAuth2"], responses=OAUTH_ERROR_RESPONSES)

CLIENT_CREDENTIALS = "client_credentials"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


@router.post("/oauth/tokens")
async def get_token(request: Request) -> Response:
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    svc: CatalogService = request.app.state.service
    guard: LoginGuard = svc.login_guard
    grant_type = form.get("grant_type", CLIENT_CREDENTIALS)
    authorization = request.headers.get("authorization")
    address = request.client.host if request.client else "unknown"
    client_id = form.get("client_id") or basic_credentials(authorization)[0] or ""

    def issue():
        if grant_type == CLIENT_CREDENTIALS:
            secret = form.get("client_secret") if form.get("client_id") else basic_credentials(authorization)[1]
            return svc.authenticator.client_credentials(client_id or None, secret, form.get("scope"))
        if grant_type == TOKEN_EXCHANGE:
            return svc.authenticator.token_exchange(form.get("subject_token"), form.get("scope"))
        raise OAuthError("unsupported_grant_type", f"Unsupported grant_type {grant_type!r}: use client_credentials", 400)

    try:
        guard.check(client_id, address)
        issued = await asyncio.wrap_future(guard.run(issue))  # hashing on the login pool: loads keep their threads
    except TooManyLogins as exc:
        if exc.first:
            svc.audit.audit_failed_login(client_id, address, exc.message)
        return Response(orjson.dumps({"error": "slow_down", "error_description": exc.message}), status_code=429,
                        media_type="application/json", headers={"Retry-After": str(max(1, int(exc.retry_after_s + 0.999)))})
    except OAuthError as exc:
        if exc.error in ("invalid_client", "invalid_grant"):
            guard.failed(client_id, address)
        svc.audit.audit_failed_login(client_id, address, exc.message)
        return Response(orjson.dumps({"error": exc.error, "error_description": exc.message}), status_code=exc.code,
                        media_type="application/json")
    guard.succeeded(client_id)
    svc.audit.audit_login(issued.principal, address, grant_type)
    return Response(orjson.dumps({
        "access_token": issued.access_token,
        "token_type": "bearer",
        "expires_in": issued.expires_in,
        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "scope": issued.scope,
    }), media_type="application/json", headers={"Cache-Control": "no-store"})
