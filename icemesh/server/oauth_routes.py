"""`POST /v1/oauth/tokens`: OAuth2 client credentials (and token exchange, for refresh) as Iceberg clients speak it."""

from __future__ import annotations

from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from icemesh.catalog.service import CatalogService
from icemesh.security.authenticator import OAuthError, basic_credentials
from icemesh.server.models import OAUTH_ERROR_RESPONSES

router = APIRouter(prefix="/v1", tags=["OAuth2"], responses=OAUTH_ERROR_RESPONSES)

CLIENT_CREDENTIALS = "client_credentials"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


@router.post("/oauth/tokens")
async def get_token(request: Request) -> Response:
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    svc: CatalogService = request.app.state.service
    grant_type = form.get("grant_type", CLIENT_CREDENTIALS)
    authorization = request.headers.get("authorization")

    def issue():
        if grant_type == CLIENT_CREDENTIALS:
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
            if not client_id:
                client_id, client_secret = basic_credentials(authorization)
            return svc.authenticator.client_credentials(client_id, client_secret, form.get("scope"))
        if grant_type == TOKEN_EXCHANGE:
            return svc.authenticator.token_exchange(form.get("subject_token"), form.get("scope"))
        raise OAuthError("unsupported_grant_type", f"Unsupported grant_type {grant_type!r}: use client_credentials", 400)

    try:
        issued = await run_in_threadpool(issue)  # secret hashing is slow on purpose: keep it off the event loop
    except OAuthError as exc:
        svc.auth.governance.audit_login(form.get("client_id") or "unknown", False, exc.message)
        return Response(orjson.dumps({"error": exc.error, "error_description": exc.message}), status_code=exc.code,
                        media_type="application/json")
    return Response(orjson.dumps({
        "access_token": issued.access_token,
        "token_type": "bearer",
        "expires_in": issued.expires_in,
        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "scope": issued.scope,
    }), media_type="application/json", headers={"Cache-Control": "no-store"})
