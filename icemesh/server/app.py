"""Build the ASGI application: the catalog service wired to its store and warehouses, plus routes."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from icemesh import __version__
from icemesh.catalog.authorizer import Authorizer
from icemesh.backends import open_backend, open_credential_vendor
from icemesh.management.events import EventService
from icemesh.management.service import ManagementService
from icemesh.management.products import ProductService
from icemesh.catalog.planning import ScanPlanner
from icemesh.catalog.views import ViewService
from icemesh.catalog.service import CatalogService
from icemesh.security.authenticator import Authenticator
from icemesh.server.management_routes import router as management_router
from icemesh.portal.routes import router as portal_router
from icemesh.server.oauth_routes import router as oauth_router
from icemesh.server.errors import error_body, install_error_handlers
from icemesh.server.fast_load import CatalogApp, LoadTableFastPath
from icemesh.server.rest_routes import router as rest_router
from icemesh.server.settings import ServerSettings
from icemesh.storage.warehouse import Warehouse


def build_service(settings: ServerSettings) -> CatalogService:
    """The catalog service on the backend the settings name (see icemesh.backends.open_backend)."""
    backend = open_backend(settings)
    warehouses = [Warehouse(w.name, w.root, dict(w.properties)) for w in settings.warehouses]
    service = CatalogService(backend, warehouses, settings.default_warehouse,
                             Authenticator(backend.identities, backend.policy, token_ttl_s=settings.token_ttl_s),
                             Authorizer(backend.policy, backend.audit))
    service.vendor = open_credential_vendor(settings)
    return service


class RequestGuard:
    """Refuse bodies over the limit (413 in the spec's error model): by their Content-Length before
    reading them, or, for chunked bodies without one, as soon as the bytes read pass the limit. Also read
    every REST body as JSON whatever content-type the client sent (some clients send none or a form type)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["path"].startswith(("/v1/", "/management/")) and scope["path"] != "/v1/oauth/tokens" \
                    and scope["method"] not in ("GET", "HEAD", "DELETE"):
                headers = [(k, v) for k, v in scope.get("headers", ()) if k != b"content-type"]
                scope = {**scope, "headers": headers + [(b"content-type", b"application/json")]}
            length = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
            if length is not None and length.isdigit() and int(length) > self.max_bytes:
                return await self._refuse(send)
            if length is None and scope["method"] not in ("GET", "HEAD"):
                receive = await self._buffered(receive)  # chunked: count the bytes before the app sees them
                if receive is None:
                    return await self._refuse(send)
        await self.app(scope, receive, send)

    async def _buffered(self, receive: Receive) -> Receive | None:
        """Read a body of unknown length; None once it passes the limit, else a receive that replays it."""
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return _replay([message])
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return None
            more = message.get("more_body", False)
        return _replay([{"type": "http.request", "body": b"".join(chunks), "more_body": False}], receive)

    async def _refuse(self, send: Send) -> None:
        body = error_body(f"Request body larger than {self.max_bytes} bytes", "BadRequestException", 413)
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _replay(messages: list[dict], then: Receive | None = None) -> Receive:
    async def receive() -> dict:
        if messages:
            return messages.pop(0)
        return await then() if then is not None else {"type": "http.disconnect"}

    return receive


def _prune_events(service: CatalogService, days: float) -> threading.Event:
    """Drop events older than the retention, at start and then hourly (every worker may: deletes are idempotent)."""
    stop = threading.Event()
    events = service.backend.events
    if events is None:
        return stop

    def prune() -> None:
        while True:
            try:
                events.prune(time.time() - days * 86400)
            except Exception:  # a busy database: the next round prunes
                logging.getLogger("icemesh.events").exception("could not prune old events")
            if stop.wait(3600):
                return
    threading.Thread(target=prune, name="icemesh-events-retention", daemon=True).start()
    return stop


def create_app(settings: ServerSettings, service: CatalogService | None = None) -> CatalogApp:
    service = service or build_service(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        stop = _prune_events(service, settings.events_retention_days)
        yield
        stop.set()
        service.backend.close()  # flush buffered audit records before the process exits

    app = CatalogApp(
        lifespan=lifespan,
        title="icemesh catalog",
        version=__version__,
        description="An Iceberg REST catalog for the open data mesh.",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.service = service
    app.state.settings = settings
    app.state.management = ManagementService(app.state.service)
    app.state.products = ProductService(app.state.service)
    app.state.views = ViewService(app.state.service)
    app.state.planner = ScanPlanner(app.state.service)
    service.scan_planning_mode = settings.scan_planning
    app.state.events = EventService(app.state.service)
    install_error_handlers(app)
    app.include_router(oauth_router)
    app.include_router(rest_router)
    app.include_router(management_router)
    app.include_router(portal_router)  # the portal at `/` (icemesh.portal)
    app.fast_load = LoadTableFastPath(service)  # before FastAPI's stack; requests with a body are left to it
    app.add_middleware(RequestGuard, max_bytes=settings.max_body_bytes)

    @app.get("/healthz", tags=["Operations"])
    def healthz() -> dict:
        return {"status": "ok"}

    return app


def app_from_env() -> FastAPI:
    """Factory for multi-worker uvicorn: each worker process rebuilds the app from the environment."""
    return create_app(ServerSettings.from_env())
