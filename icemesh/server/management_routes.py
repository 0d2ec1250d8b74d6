"""`/management/v1`: governance over HTTP (principals, roles, namespaces with owners, tags, grants, access
checks, audit) and the product registry (`/products`)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from icemesh.protocol import RequestContext
from icemesh.management.events import EventService
from icemesh.management.service import ManagementService
from icemesh.management.namespaces import NamespaceService
from icemesh.management.products import ProductService
from icemesh.server.models import ERROR_RESPONSES
from icemesh.server.rest_routes import context

router = APIRouter(prefix="/management/v1", tags=["icemesh management"], responses=ERROR_RESPONSES)


def management(request: Request) -> ManagementService:
    return request.app.state.management


def namespaces(request: Request) -> NamespaceService:
    return NamespaceService(request.app.state.service)


def events(request: Request) -> EventService:
    return request.app.state.events


def products(request: Request) -> ProductService:
    return request.app.state.products


def ok(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


class PrincipalCreate(BaseModel):
    name: str
    roles: list[str] = Field(default_factory=list)
    create_roles: bool = Field(default=False, description="Create roles that do not exist yet (else they are refused)")


class RolesBody(BaseModel):
    roles: list[str]
    create_roles: bool = Field(default=False, description="Create roles that do not exist yet (else they are refused)")


class RoleCreate(BaseModel):
    name: str


class TagCreate(BaseModel):
    key: str
    values: list[str]


class TagValues(BaseModel):
    values: list[str]


class TagAssignment(BaseModel):
    key: str
    value: str | None = None
    namespace: str | None = None
    table: str | None = None
    column: str | None = None
    ahead: bool = False  # tag a table or column that is about to be created
    warehouse: str | None = None  # where the resource lives (decides its owner); the default warehouse if not given


class GrantSpec(BaseModel):
    permissions: list[str] | str
    principal: str | None = None
    role: str | None = None
    catalog: bool = False
    namespace: str | None = None
    table: str | None = None
    columns: list[str] | None = None
    tags: list[str] | None = Field(default=None, description="conditions like 'domain=sales,finance' (ANDed)")
    rows: str | None = Field(default=None, description="SELECT only these rows: an Iceberg expression")
    masks: list[str] | None = Field(default=None, description="COLUMN=ACTION, e.g. email=sha256")
    mask_tags: list[str] | None = Field(default=None, description="KEY=VALUE:ACTION: mask every column with that tag")
    id: int | None = Field(default=None, description="revoke only: the grant to remove")


@router.get("/whoami")
def whoami(ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    return ok(m.whoami(ctx))


@router.post("/principals", status_code=201)
def create_principal(body: PrincipalCreate, ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    return ok(m.create_principal(ctx, body.name, body.roles, body.create_roles), 201)


@router.get("/principals")
def list_principals(ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    return ok(m.list_principals(ctx))


@router.delete("/principals/{name}", status_code=204)
def delete_principal(name: str, ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    m.delete_principal(ctx, name)
    return Response(status_code=204)


@router.post("/principals/{name}/rotate-secret")
def rotate_secret(name: str, ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    return ok(m.rotate_secret(ctx, name))


@router.put("/principals/{name}/roles")
def set_roles(name: str, body: RolesBody, ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    return ok(m.set_roles(ctx, name, body.roles, body.create_roles))


@router.post("/roles", status_code=201)
def create_role(body: RoleCreate, ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    return ok(m.create_role(ctx, body.name), 201)


@router.get("/roles")
def list_roles(ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    return ok(m.list_roles(ctx))


@router.delete("/roles/{name}", status_code=204)
def delete_role(name: str, ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    m.delete_role(ctx, name)
    return Response(status_code=204)


@router.post("/tags", status_code=201)
def create_tag(body: TagCreate, ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    return ok(m.create_tag(ctx, body.key, body.values), 201)


@router.get("/tags")
def list_tags(ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    return ok(m.list_tags(ctx))


@router.put("/tags/{key}")
def update_tag(key: str, body: TagValues, ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    return ok(m.update_tag(ctx, key, body.values))


@router.delete("/tags/{key}", status_code=204)
def delete_tag(key: str, ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    m.delete_tag(ctx, key)
    return Response(status_code=204)


@router.post("/tag-assignments")
def assign_tag(body: TagAssignment, ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    if body.value is None:
        return ok({"error": {"message": "value is required", "type": "BadRequestException", "code": 400}}, 400)
    return ok(m.assign_tag(ctx, body.key, body.value, body.namespace, body.table, body.column, body.ahead,
                           body.warehouse))


@router.post("/tag-assignments/remove")
def unassign_tag(body: TagAssignment, ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    return ok(m.unassign_tag(ctx, body.key, body.namespace, body.table, body.column, body.warehouse))


@router.get("/checks/names")
def unsafe_names(ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    return ok(m.unsafe_names(ctx))


@router.get("/effective-tags")
def effective_tags(resource: str, warehouse: str | None = None, ctx: RequestContext = Depends(context),
                   m: ManagementService = Depends(management)):
    return ok(m.show_tags(ctx, resource, warehouse))


@router.post("/grants", status_code=201)
def grant(body: GrantSpec, ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    return ok(m.grant(ctx, body.model_dump()), 201)


@router.post("/grants/revoke")
def revoke(body: GrantSpec, ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    return ok(m.revoke(ctx, body.model_dump()))


@router.get("/grants")
def list_grants(principal: str | None = None, role: str | None = None,
                ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    return ok(m.list_grants(ctx, principal, role))


@router.get("/access")
def check_access(principal: str, resource: str, action: str = "SELECT",
                 ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    return ok(m.check_access(ctx, principal, resource, action))


@router.get("/audit")
def audit(principal: str | None = None, denied: bool = False, limit: int = Query(default=100, ge=1, le=10000),
          ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    return ok(m.audit(ctx, principal, denied, limit))


@router.get("/events")
def read_events(after: int = Query(default=0, ge=0, description="an event-id: the events after it (0: from the start)"),
                limit: int = Query(default=100, ge=1, le=1000),
                type: list[str] | None = Query(default=None, description="only these operation types"),
                wait: float = Query(default=0, ge=0, le=30, description="seconds to hold the request until one arrives"),
                ctx: RequestContext = Depends(context), e: EventService = Depends(events)):
    """The change feed: namespaces and tables created, committed to, registered, renamed and dropped, as far as
    the caller may DESCRIBE them; `next-after` is the cursor for the next call."""
    return ok(e.read(ctx, after, limit, type, wait))


class NamespaceCreate(BaseModel):
    namespace: str = Field(description="Levels joined by dots: sales or sales.emea")
    owner: str | None = Field(default=None, description="Its owner from the first moment (needs ADMIN unless it is the caller)")
    properties: dict[str, str] = Field(default_factory=dict)
    warehouse: str | None = None


@router.post("/namespaces", status_code=201)
def create_namespace(body: NamespaceCreate, ctx: RequestContext = Depends(context),
                     n: NamespaceService = Depends(namespaces)):
    return ok(n.create(ctx, body.namespace, body.owner, body.properties, body.warehouse), 201)


@router.get("/namespaces")
def list_namespaces(warehouse: str | None = None, ctx: RequestContext = Depends(context),
                    n: NamespaceService = Depends(namespaces)):
    """The namespaces the caller may see, with owners and tags."""
    return ok(n.list(ctx, warehouse))


@router.get("/namespaces/{name}")
def show_namespace(name: str, warehouse: str | None = None, ctx: RequestContext = Depends(context),
                   n: NamespaceService = Depends(namespaces)):
    return ok(n.show(ctx, name, warehouse))


@router.delete("/namespaces/{name}", status_code=204)
def drop_namespace(name: str, warehouse: str | None = None, ctx: RequestContext = Depends(context),
                   n: NamespaceService = Depends(namespaces)):
    n.drop(ctx, name, warehouse)
    return Response(status_code=204)


class PolicyApply(BaseModel):
    document: str = Field(description="The policy file's YAML text")
    dry_run: bool = Field(default=False, description="Only plan: list the changes, apply nothing")


@router.post("/policy")
def apply_policy(body: PolicyApply, ctx: RequestContext = Depends(context), m: ManagementService = Depends(management)):
    return ok(m.apply_policy(ctx, body.document, body.dry_run))


@router.get("/products")
def list_products(namespace: str | None = None, include_tables: bool = False, warehouse: str | None = None,
                  project: list[str] = Query(default=[], description="Only these dbt projects (repeatable)"),
                  tag: list[str] = Query(default=[], description="key=value[,value] (an LF-tag; values ORed, "
                                         "tags ANDed) or a dbt tag name (repeatable)"),
                  owner: str | None = Query(default=None, description="The dbt owner's email or name"),
                  q: str | None = Query(default=None, description="Search names, descriptions, columns and docs"),
                  name: list[str] = Query(default=[], description="Only these products (repeatable)"),
                  ref: list[str] = Query(default=[], description="project.model: the products of this dbt model, "
                                         "every version (repeatable)"),
                  page_token: str | None = Query(default=None, alias="page-token"),
                  page_size: int | None = Query(default=None, alias="page-size"),
                  ctx: RequestContext = Depends(context), p: ProductService = Depends(products)):
    """The products (tables dbt published) the caller may see in a warehouse (the default one unless named),
    with what it may read of each. With `page-size` or `page-token`: one page, as
    {"products", "next-page-token"}; without: every match, as a list."""
    found = p.page(ctx, namespace, include_tables, warehouse, project, tag, owner, q, name, page_token, page_size,
                   refs=ref)
    if page_size is None and page_token is None:
        return ok(found["products"])
    return ok(found)


@router.get("/lineage")
def lineage(product: str | None = None, depth: int = 3, warehouse: str | None = None,
            ctx: RequestContext = Depends(context), p: ProductService = Depends(products)):
    """Product-to-product edges between products the caller may see: around `product` up to `depth` hops
    upstream and downstream, or all of them."""
    return ok(p.lineage(ctx, product, depth, warehouse))


@router.get("/products/{name}")
def show_product(name: str, warehouse: str | None = None, ctx: RequestContext = Depends(context),
                 p: ProductService = Depends(products)):
    return ok(p.show(ctx, name, warehouse))
