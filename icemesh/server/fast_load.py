"""loadTable without the framework in the way: the hottest route, answered at the ASGI layer.

Profiled under load (benchmarks/catalog.py, py-spy), FastAPI's per-request machinery (route matching,
dependency solving, the middleware stack, the Response object) cost about as much as the service's own work
for a cached table. This middleware answers `GET /v1/{prefix}/namespaces/{ns}/tables/{table}` itself with the
same service calls as the FastAPI route (`rest_routes.load_table`), which stays for OpenAPI and for every
request this one does not recognise: each request is still authenticated, authorized, audited and checked
against `If-None-Match` by `CatalogService`; only the HTTP plumbing is thinner. It runs before FastAPI's own
stack (`CatalogApp.__call__`): that stack's error, telemetry and exception layers cost more than the answer
of a kept load (catalog/load_cache.py). A request with a body, or any exception, is handled as FastAPI would.
"""

from __future__ import annotations

import functools
import re

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from icemesh.catalog.service import CatalogService
from icemesh.errors import IcemeshError
from icemesh.names import Namespace, TableIdent
from icemesh.server.errors import error_response, unexpected_response
from icemesh.server.rest_routes import PASSED_HEADERS, load, load_body, request_id

# Starlette's `{param}` is `[^/]+` on the decoded path: the same requests match here as in the router.
_LOAD_PATH = re.compile(r"/v1/([^/]+)/namespaces/([^/]+)/tables/([^/]+)")
_QUERY = re.compile(rb"(?:snapshots=(all|refs))?")
_JSON = (b"content-type", b"application/json")
# The request headers this path reads; the rest are never decoded.
_READ_HEADERS = frozenset({b"authorization", b"x-request-id", b"if-none-match", b"content-length", b"transfer-encoding",
                           *(h.encode("latin-1") for h in PASSED_HEADERS)})


class LoadTableFastPath:
    """Serve loadTable from the service directly; anything unusual (other query parameters, a root path, a
    body) goes to the FastAPI route, which gives the same answer the slow way."""

    def __init__(self, service: CatalogService) -> None:
        self.service = service

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer the request if it is a plain loadTable; False (nothing sent) to leave it to FastAPI."""
        if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
            return False
        path = _LOAD_PATH.fullmatch(scope["path"])
        query = _QUERY.fullmatch(scope.get("query_string", b"")) if path else None
        if query is None:
            return False
        headers: dict[str, str] = {}
        for key, value in scope["headers"]:  # first of each, as Starlette's Headers.get (names come lower-case)
            if key in _READ_HEADERS:
                name = key.decode("latin-1")
                if name not in headers:
                    headers[name] = value.decode("latin-1")
        if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
            return False  # a GET with a body: RequestGuard's limits apply on the FastAPI side
        snapshots = query.group(1).decode() if query.group(1) else None
        try:
            await self._answer(send, path.groups(), snapshots, headers)
        except IcemeshError as exc:  # the same error model as the FastAPI route's handlers
            await error_response(exc)(scope, receive, send)
        except Exception as exc:  # noqa: BLE001 - as FastAPI's handler for the unexpected: a 500, the log has it
            await unexpected_response(exc)(scope, receive, send)
        return True

    async def _answer(self, send: Send, parts: tuple[str, ...], snapshots: str | None, headers: dict[str, str]) -> None:
        svc = self.service
        prefix, namespace, table = parts
        ctx = svc.context(headers.get("authorization"), {k: v for k, v in headers.items() if k in PASSED_HEADERS},
                          request_id(headers.get("x-request-id")))
        ident = _ident(namespace, table)
        loaded = await load(svc, ctx, prefix, ident, snapshots, headers.get("if-none-match"))
        if isinstance(loaded, str):
            await send({"type": "http.response.start", "status": 304, "headers": [(b"etag", loaded.encode("latin-1"))]})
            await send({"type": "http.response.body", "body": b""})
            return
        body = load_body(loaded)
        head = loaded.encoded.get("head")  # made once per answer, as its body
        if head is None:
            head = [(b"content-length", str(len(body)).encode()), _JSON]
            if loaded.etag:
                head.append((b"etag", loaded.etag.encode("latin-1")))
            loaded.encoded["head"] = head
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": body})


@functools.lru_cache(maxsize=65536)
def _ident(namespace: str, table: str) -> TableIdent:
    """Path parts to a validated name, once per distinct pair (a malformed one raises, and is not kept)."""
    return TableIdent.of(Namespace.from_url(namespace), table)


class CatalogApp(FastAPI):
    """FastAPI, with plain loadTable requests answered before its middleware stack (LoadTableFastPath), and
    connections kept open after a 500."""

    fast_load: LoadTableFastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fast_load is not None and not self.root_path and await self.fast_load.handle(scope, receive, send):
            return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        answered = False

        async def tracked(message) -> None:
            nonlocal answered
            await send(message)
            answered = answered or (message["type"] == "http.response.body" and not message.get("more_body", False))

        try:
            await super().__call__(scope, receive, tracked)
        except Exception:
            # Starlette re-raises an unexpected error after its 500 has gone out (errors.unexpected_response logged
            # it): passed on, uvicorn drops the keep-alive connection and the client's next request on it fails.
            if not answered:
                raise
