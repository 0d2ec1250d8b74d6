"""Iceberg REST routes (`/v1/...`): decode the URL and body, call the service, encode the answer."""

from __future__ import annotations

import hashlib
import itertools
import os
from typing import Any, Callable

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from icemesh.tables import metadata as md
from icemesh.protocol import ACCESS_DELEGATION_HEADER, COLUMN_LIMITS_HEADER, READ_RESTRICTIONS_HEADER, RequestContext
from icemesh.names import Namespace, TableIdent
from icemesh.catalog.service import CatalogService, LoadedTable, MetadataNotCached, TableChange
from icemesh.catalog.planning import ScanPlanner
from icemesh.catalog.views import ViewService
from icemesh.errors import BadRequest, NoSuchNamespace, NoSuchTable, NoSuchView
from icemesh.server import models
from icemesh.server.idempotency import run_idempotent

router = APIRouter(prefix="/v1", tags=["Iceberg REST catalog"], responses=models.ERROR_RESPONSES)

NO_CONTENT = 204


async def service(request: Request) -> CatalogService:
    return request.app.state.service


async def views(request: Request) -> ViewService:
    return request.app.state.views


async def planner(request: Request) -> ScanPlanner:
    return request.app.state.planner


# The request headers the service reads (lower-case, as ASGI and Starlette give them).
PASSED_HEADERS = (COLUMN_LIMITS_HEADER.lower(), READ_RESTRICTIONS_HEADER.lower(), ACCESS_DELEGATION_HEADER.lower())


_REQUEST_PREFIX = os.urandom(6).hex()  # this process's; the counter numbers its requests
_REQUESTS = itertools.count(1)


def request_id(given: str | None) -> str:
    """The client's X-Request-Id, or one of ours: unique across processes without a random draw per request
    (uuid4's urandom call cost as much as a kept loadTable answer)."""
    return given or f"{_REQUEST_PREFIX}{next(_REQUESTS):012x}"


async def context(request: Request) -> RequestContext:
    """The caller, resolved by the service from its bearer token (401 without a valid one).

    Async on purpose: tokens are cached in memory, and a thread hop per dependency costs more than
    the occasional small database lookup on a cache miss (measured: benchmarks/catalog.py).
    """
    svc: CatalogService = request.app.state.service
    headers = request.headers
    ctx = svc.context(headers.get("authorization"), {k: headers[k] for k in PASSED_HEADERS if k in headers},
                      request_id(headers.get("x-request-id")))
    request.state.icemesh_context = ctx  # idempotency keys are scoped to the caller
    return ctx


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)


async def load(svc: CatalogService, ctx: RequestContext, prefix: str, ident: TableIdent, snapshots: str | None,
               if_none_match: str | None) -> LoadedTable | str:
    """loadTable on the event loop while the metadata is cached; a storage read (or STS) goes to a worker thread.
    A str is the ETag of a 304."""
    try:
        return svc.load_table(ctx, prefix, ident, snapshots, if_none_match, cached_only=True)
    except MetadataNotCached:
        return await run_in_threadpool(svc.load_table, ctx, prefix, ident, snapshots, if_none_match)


def load_result(loaded: LoadedTable) -> Response:
    headers = {"ETag": loaded.etag} if loaded.etag else None
    return Response(load_body(loaded), media_type="application/json", headers=headers)


def load_body(loaded: LoadedTable) -> bytes:
    """The LoadTableResult as bytes: the cached metadata JSON spliced in, never re-encoded; made once per
    answer (the service keeps answers per reader and table version)."""
    body = loaded.encoded.get("json")
    if body is not None:
        return body
    location = orjson.dumps(loaded.metadata_location)
    body = b'{"metadata-location":' + location + b',"metadata":' + loaded.metadata_json + b',"config":' + orjson.dumps(loaded.config)
    if loaded.labels:
        body += b',"labels":' + orjson.dumps(loaded.labels)
    if loaded.read_restrictions:
        body += b',"read-restrictions":' + orjson.dumps(loaded.read_restrictions)
    if loaded.storage_credentials:
        body += b',"storage-credentials":' + orjson.dumps(loaded.storage_credentials)
    body += b"}"
    loaded.encoded["json"] = body
    return body


def mutation(request: Request, svc: CatalogService, operation: Callable[[], Response], body: Any = None) -> Response:
    """Run a mutation once per Idempotency-Key (the key is bound to this exact request, body included), and
    record every refusal in the audit log: denials are audited where they are decided, other 4xx here."""
    fingerprint = None
    if request.headers.get("idempotency-key"):  # only a keyed request is compared with another (re-encoding costs)
        content = body.model_dump_json(by_alias=True).encode() if body is not None else b""
        fingerprint = f"{request.method} {request.url.path}?{request.url.query} " + hashlib.sha256(content).hexdigest()
    response = run_idempotent(request, svc.idempotency, svc.idempotency_lifetime_s, operation, fingerprint)
    if 400 <= response.status_code < 500 and response.status_code not in (401, 403):
        ctx = getattr(request.state, "icemesh_context", None)
        svc.auth.audit_refusal(ctx, request.method, request.url.path, _error_message(response))
    return response


def _error_message(response: Response) -> str:
    try:
        return str(orjson.loads(response.body)["error"]["message"])[:500]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


def table_change(body: models.CommitTableRequest, ident: TableIdent | None = None) -> TableChange:
    if ident is None:
        if body.identifier is None:
            raise BadRequest("Each table change in a transaction needs an identifier")
        ident = TableIdent.of(body.identifier.namespace, body.identifier.name)
    return TableChange(ident, md.parse_requirements(body.requirements), md.parse_updates(body.updates))


# -- configuration ---------------------------------------------------------------------------------


@router.get("/config")
def get_config(warehouse: str | None = None, svc: CatalogService = Depends(service), ctx: RequestContext = Depends(context)):
    return json_response(svc.config(ctx, warehouse))


# -- namespaces ------------------------------------------------------------------------------------


@router.get("/{prefix}/namespaces")
def list_namespaces(
    prefix: str,
    parent: str | None = None,
    page_token: str | None = Query(default=None, alias="pageToken"),
    page_size: int | None = Query(default=None, alias="pageSize"),
    svc: CatalogService = Depends(service),
    ctx: RequestContext = Depends(context),
):
    parent_ns = Namespace.from_url(parent) if parent else None
    return json_response(svc.list_namespaces(ctx, prefix, parent_ns, page_token, page_size))


@router.post("/{prefix}/namespaces")
def create_namespace(prefix: str, body: models.CreateNamespaceRequest, request: Request,
                     svc: CatalogService = Depends(service), ctx: RequestContext = Depends(context)):
    return mutation(request, svc, lambda: json_response(
        svc.create_namespace(ctx, prefix, Namespace.of(body.namespace), body.properties)), body)


@router.get("/{prefix}/namespaces/{namespace}")
def load_namespace(prefix: str, namespace: str, svc: CatalogService = Depends(service), ctx: RequestContext = Depends(context)):
    return json_response(svc.load_namespace(ctx, prefix, Namespace.from_url(namespace)))


def _existing_name(parse, missing: type[Exception]):
    """The identifier a HEAD (exists?) request names. A name icemesh refuses (a space, a dot...) cannot exist, so
    the answer is 404, not a 400: a HEAD answer has no body to say why, and clients treat 400 as an error where
    they asked a yes/no question (pyiceberg's namespace_exists raised a bare "Bad Request"). Creating such a name is
    still a 400 that says which rule it breaks."""
    try:
        return parse()
    except BadRequest:
        raise missing("no such name") from None


@router.head("/{prefix}/namespaces/{namespace}", status_code=NO_CONTENT)
def namespace_exists(prefix: str, namespace: str, svc: CatalogService = Depends(service), ctx: RequestContext = Depends(context)):
    svc.load_namespace(ctx, prefix, _existing_name(lambda: Namespace.from_url(namespace), NoSuchNamespace))
    return Response(status_code=NO_CONTENT)


@router.delete("/{prefix}/namespaces/{namespace}", status_code=NO_CONTENT)
def drop_namespace(prefix: str, namespace: str, request: Request,
                   svc: CatalogService = Depends(service), ctx: RequestContext = Depends(context)):
    def run() -> Response:
        svc.drop_namespace(ctx, prefix, Namespace.from_url(namespace))
        return Response(status_code=NO_CONTENT)

    return mutation(request, svc, run)


@router.post("/{prefix}/namespaces/{namespace}/properties")
def update_namespace_properties(prefix: str, namespace: str, body: models.UpdateNamespacePropertiesRequest, request: Request,
                                svc: CatalogService = Depends(service), ctx: RequestContext = Depends(context)):
    return mutation(request, svc, lambda: json_response(
        svc.update_namespace_properties(ctx, prefix, Namespace.from_url(namespace), body.removals, body.updates)), body)


# -- tables ----------------------------------------------------------------------------------------


@router.get("/{prefix}/namespaces/{namespace}/tables")
def list_tables(
    prefix: str,
    namespace: str,
    page_token: str | None = Query(default=None, alias="pageToken"),
    page_size: int | None = Query(default=None, alias="pageSize"),
    svc: CatalogService = Depends(service),
    ctx: RequestContext = Depends(context),
):
    return json_response(svc.list_tables(ctx, prefix, Namespace.from_url(namespace), page_token, page_size))


@router.post("/{prefix}/namespaces/{namespace}/tables")
def create_table(prefix: str, namespace: str, body: models.CreateTableRequest, request: Request,
                 svc: CatalogService = Depends(service), ctx: RequestContext = Depends(context)):
    payload = body.model_dump(by_alias=True)
    return mutation(request, svc, lambda: load_result(svc.create_table(ctx, prefix, Namespace.from_url(namespace), payload)),
                    body)


@router.get("/{prefix}/namespaces/{namespace}/tables/{table}", responses={304: {"description": "Not modified: the ETag sent in If-None-Match is current"}})
async def load_table(prefix: str, namespace: str, table: str, request: Request, snapshots: str | None = None,
                     svc: CatalogService = Depends(service), ctx: RequestContext = Depends(context)):
    """The hottest route. Plain requests are answered before they get here, by fast_load.LoadTableFastPath
    with the same calls; this one documents it in OpenAPI and serves the rest (e.g. extra query parameters).
    Served on the event loop while the metadata is cached; a storage read goes to a worker thread."""
    ident = TableIdent.of(Namespace.from_url(namespace), table)
    loaded = await load(svc, ctx, prefix, ident, snapshots, request.headers.get("if-none-match"))
    if isinstance(loaded, str):
        return Response(status_code=304, headers={"ETag": loaded})
    return load_result(loaded)


@router.get("/{prefix}/namespaces/{namespace}/tables/{table}/credentials")
def load_credentials(prefix: str, namespace: str, table: str, svc: CatalogService = Depends(service),
                     ctx: RequestContext = Depends(context)):
    """The spec's loadCredentials: fresh vended storage keys for the table, permissions checked again."""
    return json_response(svc.load_credentials(ctx, prefix, TableIdent.of(Namespace.from_url(namespace), table)),
                         headers={"Cache-Control": "no-store"})


@router.post("/{prefix}/namespaces/{namespace}/tables/{table}/plan")
def plan_table_scan(prefix: str, namespace: str, table: str, body: dict[str, Any], p: ScanPlanner = Depends(planner),
                    ctx: RequestContext = Depends(context)):
    """Server-side scan planning, with the caller's policies applied (icemesh/catalog/planning.py)."""
    return json_response(p.plan(ctx, prefix, TableIdent.of(Namespace.from_url(namespace), table), body))


@router.post("/{prefix}/namespaces/{namespace}/tables/{table}/tasks")
def fetch_scan_tasks(prefix: str, namespace: str, table: str, body: dict[str, Any], p: ScanPlanner = Depends(planner),
                     ctx: RequestContext = Depends(context)):
    return json_response(p.tasks(ctx, prefix, TableIdent.of(Namespace.from_url(namespace), table), body))


@router.get("/{prefix}/namespaces/{namespace}/tables/{table}/plan/{plan_id}")
def fetch_planning_result(prefix: str, namespace: str, table: str, plan_id: str, p: ScanPlanner = Depends(planner),
                          ctx: RequestContext = Depends(context)):
    return json_response(p.fetch(ctx, prefix, TableIdent.of(Namespace.from_url(namespace), table), plan_id))


@router.delete("/{prefix}/namespaces/{namespace}/tables/{table}/plan/{plan_id}", status_code=NO_CONTENT)
def cancel_planning(prefix: str, namespace: str, table: str, plan_id: str, p: ScanPlanner = Depends(planner),
                    ctx: RequestContext = Depends(context)):
    p.cancel(ctx, prefix, TableIdent.of(Namespace.from_url(namespace), table), plan_id)
    return Response(status_code=NO_CONTENT)


@router.head("/{prefix}/namespaces/{namespace}/tables/{table}", status_code=NO_CONTENT)
def table_exists(prefix: str, namespace: str, table: str, svc: CatalogService = Depends(service), ctx: RequestContext = Depends(context)):
    svc.table_exists(ctx, prefix, _existing_name(lambda: TableIdent.of(Namespace.from_url(namespace), table),
                                                 NoSuchTable))
    return Response(status_code=NO_CONTENT)


@router.post("/{prefix}/namespaces/{namespace}/tables/{table}")
def commit_table(prefix: str, namespace: str, table: str, body: models.CommitTableRequest, request: Request,
                 svc: CatalogService = Depends(service), ctx: RequestContext = Depends(context)):
    def run() -> Response:
        ident = TableIdent.of(Namespace.from_url(namespace), table)
        loaded = svc.commit_table(ctx, prefix, table_change(body, ident))
        return Response(b'{"metadata-location":' + orjson.dumps(loaded.metadata_location) + b',"metadata":'
                        + loaded.metadata_json + b"}", media_type="application/json")

    return mutation(request, svc, run, body)


@router.delete("/{prefix}/namespaces/{namespace}/tables/{table}", status_code=NO_CONTENT)
def drop_table(prefix: str, namespace: str, table: str, request: Request,
               purge_requested: bool = Query(default=False, alias="purgeRequested"),
               svc: CatalogService = Depends(service), ctx: RequestContext = Depends(context)):
    def run() -> Response:
        svc.drop_table(ctx, prefix, TableIdent.of(Namespace.from_url(namespace), table), purge_requested)
        return Response(status_code=NO_CONTENT)

    return mutation(request, svc, run)


@router.post("/{prefix}/namespaces/{namespace}/register")
def register_table(prefix: str, namespace: str, body: models.RegisterTableRequest, request: Request,
                   svc: CatalogService = Depends(service), ctx: RequestContext = Depends(context)):
    return mutation(request, svc, lambda: load_result(svc.register_table(
        ctx, prefix, Namespace.from_url(namespace), body.name, body.metadata_location, body.overwrite)), body)


@router.post("/{prefix}/namespaces/{namespace}/tables/{table}/metrics", status_code=NO_CONTENT)
def report_metrics(prefix: str, namespace: str, table: str, body: dict[str, Any],
                   svc: CatalogService = Depends(service), ctx: RequestContext = Depends(context)):
    svc.report_metrics(ctx, prefix, TableIdent.of(Namespace.from_url(namespace), table), body)
    return Response(status_code=NO_CONTENT)


@router.post("/{prefix}/tables/rename", status_code=NO_CONTENT)
def rename_table(prefix: str, body: models.RenameTableRequest, request: Request,
                 svc: CatalogService = Depends(service), ctx: RequestContext = Depends(context)):
    def run() -> Response:
        svc.rename_table(ctx, prefix, TableIdent.of(body.source.namespace, body.source.name),
                         TableIdent.of(body.destination.namespace, body.destination.name))
        return Response(status_code=NO_CONTENT)

    return mutation(request, svc, run, body)


@router.post("/{prefix}/transactions/commit", status_code=NO_CONTENT)
def commit_transaction(prefix: str, body: models.CommitTransactionRequest, request: Request,
                       svc: CatalogService = Depends(service), ctx: RequestContext = Depends(context)):
    def run() -> Response:
        svc.commit_transaction(ctx, prefix, [table_change(change) for change in body.table_changes])
        return Response(status_code=NO_CONTENT)

    return mutation(request, svc, run, body)


# -- views -----------------------------------------------------------------------------------------


def _view(namespace: str, view: str) -> TableIdent:
    return TableIdent.of(Namespace.from_url(namespace), view)


@router.get("/{prefix}/namespaces/{namespace}/views")
def list_views(prefix: str, namespace: str, page_token: str | None = Query(default=None, alias="pageToken"),
               page_size: int | None = Query(default=None, alias="pageSize"), v: ViewService = Depends(views),
               ctx: RequestContext = Depends(context)):
    return json_response(v.list_views(ctx, prefix, Namespace.from_url(namespace), page_token, page_size))


@router.post("/{prefix}/namespaces/{namespace}/views")
def create_view(prefix: str, namespace: str, body: models.CreateViewRequest, request: Request,
                svc: CatalogService = Depends(service), v: ViewService = Depends(views),
                ctx: RequestContext = Depends(context)):
    payload = body.model_dump(by_alias=True)
    return mutation(request, svc, lambda: json_response(v.create_view(ctx, prefix, Namespace.from_url(namespace), payload)),
                    body)


@router.get("/{prefix}/namespaces/{namespace}/views/{view}")
def load_view(prefix: str, namespace: str, view: str, v: ViewService = Depends(views),
              ctx: RequestContext = Depends(context)):
    return json_response(v.load_view(ctx, prefix, _view(namespace, view)))


@router.head("/{prefix}/namespaces/{namespace}/views/{view}", status_code=NO_CONTENT)
def view_exists(prefix: str, namespace: str, view: str, v: ViewService = Depends(views),
                ctx: RequestContext = Depends(context)):
    v.view_exists(ctx, prefix, _existing_name(lambda: _view(namespace, view), NoSuchView))
    return Response(status_code=NO_CONTENT)


@router.post("/{prefix}/namespaces/{namespace}/views/{view}")
def replace_view(prefix: str, namespace: str, view: str, body: models.CommitTableRequest, request: Request,
                 svc: CatalogService = Depends(service), v: ViewService = Depends(views),
                 ctx: RequestContext = Depends(context)):
    return mutation(request, svc, lambda: json_response(v.replace_view(
        ctx, prefix, _view(namespace, view), body.requirements, body.updates)), body)


@router.delete("/{prefix}/namespaces/{namespace}/views/{view}", status_code=NO_CONTENT)
def drop_view(prefix: str, namespace: str, view: str, request: Request, svc: CatalogService = Depends(service),
              v: ViewService = Depends(views), ctx: RequestContext = Depends(context)):
    def run() -> Response:
        v.drop_view(ctx, prefix, _view(namespace, view))
        return Response(status_code=NO_CONTENT)

    return mutation(request, svc, run)


@router.post("/{prefix}/views/rename", status_code=NO_CONTENT)
def rename_view(prefix: str, body: models.RenameTableRequest, request: Request, svc: CatalogService = Depends(service),
                v: ViewService = Depends(views), ctx: RequestContext = Depends(context)):
    def run() -> Response:
        v.rename_view(ctx, prefix, TableIdent.of(body.source.namespace, body.source.name),
                      TableIdent.of(body.destination.namespace, body.destination.name))
        return Response(status_code=NO_CONTENT)

    return mutation(request, svc, run, body)
