"""`Idempotency-Key` on mutations: a retried request gets the first outcome instead of running twice.

Final outcomes (2xx and 4xx) are stored with the key for the advertised lifetime; 5xx outcomes are
not, so a retry after a server failure runs again. Keys belong to the principal that sent them.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Callable

from starlette.requests import Request
from starlette.responses import Response

from icemesh.catalog.ports import IdempotencyStore
from icemesh.errors import BadRequest, IcemeshError, UnprocessableEntity
from icemesh.server.errors import error_body, error_response

MAX_KEY_LENGTH = 255
PENDING_WAIT_S = 30.0
# A claim whose request has not finished after this long belongs to a server that died mid-request (kill -9,
# power loss): a retry takes it over instead of waiting (PENDING_WAIT_S) for an answer that will never come.
PENDING_LEASE_S = float(os.environ.get("ICEMESH_IDEMPOTENCY_LEASE_SECONDS", "20"))


def run_idempotent(request: Request, store: IdempotencyStore, lifetime_s: int, operation: Callable[[], Response],
                   fingerprint: str | None = None) -> Response:
    """`fingerprint` identifies the exact request (method, path, query, body digest): the same key with another
    request is refused (422), never answered with the first request's outcome."""
    key = request.headers.get("idempotency-key")
    if not key:
        return _run(operation)
    if len(key) > MAX_KEY_LENGTH:
        return error_response(BadRequest(f"Idempotency-Key longer than {MAX_KEY_LENGTH} characters"))
    # Keys are scoped to the caller: another principal reusing a key never sees (or replays) this answer.
    ctx = getattr(request.state, "icemesh_context", None)
    principal = ctx.principal.name if ctx is not None else ""
    key = hashlib.sha256(f"{principal}\x1f{key}".encode("utf-8")).hexdigest()
    fingerprint = (fingerprint or f"{request.method} {request.url.path}")[-512:]
    deadline = time.monotonic() + PENDING_WAIT_S
    while True:
        state, status, body = store.claim_idempotency_key(key, fingerprint, lifetime_s, PENDING_LEASE_S)
        if state == "done":
            return Response(body, status_code=status, media_type="application/json" if body else None,
                            headers={"Idempotent-Replayed": "true"})
        if state == "mismatch":
            return error_response(UnprocessableEntity("Idempotency-Key was already used for a different request: use a new key"))
        if state == "new":
            break
        if time.monotonic() > deadline:
            return Response(error_body("A request with this Idempotency-Key is still running; retry later",
                                       "ServiceUnavailableException", 503), 503, media_type="application/json")
        time.sleep(0.05)
    try:
        response = _run(operation)
    except BaseException:
        store.finish_idempotency_key(key, None, None)
        raise
    if response.status_code < 500:
        store.finish_idempotency_key(key, response.status_code, bytes(response.body or b""))
    else:
        store.finish_idempotency_key(key, None, None)
    return response


def _run(operation: Callable[[], Response]) -> Response:
    try:
        return operation()
    except IcemeshError as exc:
        return error_response(exc)
