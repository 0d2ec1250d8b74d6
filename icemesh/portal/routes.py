"""The portal's HTTP routes: resolve the session, ask the view model, render a template. Nothing else."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from icemesh.errors import NoSuchTable
from icemesh.portal import lineage_svg, sessions, view_model

router = APIRouter(include_in_schema=False)
_templates = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                         autoescape=select_autoescape(default=True, default_for_string=True))
_templates.filters["urlpart"] = lambda s: quote(str(s), safe="")
_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                                       "form-action 'self'; frame-ancestors 'none'"}


def _page(name: str, status: int = 200, **values) -> HTMLResponse:
    return HTMLResponse(_templates.get_template(name).render(**values), status_code=status, headers=_HEADERS)


def _to_login() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


@router.get("/login")
def login_form(request: Request):
    return _page("login.html", error=None, user=None)


@router.post("/login")
async def login(request: Request):
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    svc = request.app.state.service
    address = request.client.host if request.client else "unknown"
    try:
        token, ttl = await sessions.log_in(svc, form.get("client_id", "").strip(), form.get("client_secret", ""),
                                           form.get("token", "").strip(), address)
    except sessions.LoginFailed as exc:
        return _page("login.html", status=401, error=str(exc), user=None)
    response = RedirectResponse("/", status_code=303)
    sessions.set_session(response, token, ttl)
    return response


@router.post("/logout")
def logout():
    response = _to_login()
    sessions.clear_session(response)
    return response


@router.get("/")
async def home(request: Request, q: str = "", domain: str = "", tag: str = ""):
    ctx = sessions.current(request.app.state.service, request)
    if ctx is None:
        return _to_login()
    data = await run_in_threadpool(view_model.home, request.app.state.products, ctx, q, domain, tag)
    return _page("home.html", user=ctx.principal.name, **data)


@router.get("/products/{name}")
async def product(request: Request, name: str):
    ctx = sessions.current(request.app.state.service, request)
    if ctx is None:
        return _to_login()
    try:
        data = await run_in_threadpool(view_model.product, request.app.state.products, request.app.state.management,
                                       ctx, name)
    except NoSuchTable as exc:
        return _page("missing.html", status=404, user=ctx.principal.name, message=str(exc))
    return _page("product.html", user=ctx.principal.name, **data)


@router.get("/lineage")
async def lineage(request: Request):
    ctx = sessions.current(request.app.state.service, request)
    if ctx is None:
        return _to_login()
    nodes, edges = await run_in_threadpool(view_model.graph, request.app.state.products, ctx)
    # The SVG escapes every name itself (lineage_svg.render).
    return _page("lineage.html", user=ctx.principal.name, svg=Markup(lineage_svg.render(nodes, edges)),
                 edges=edges, count=len(nodes))


@router.get("/governance")
async def governance(request: Request):
    ctx = sessions.current(request.app.state.service, request)
    if ctx is None:
        return _to_login()
    data = await run_in_threadpool(view_model.governance, request.app.state.management, ctx)
    if data is None:
        return _page("missing.html", status=403, user=ctx.principal.name,
                     message="The governance page needs ADMIN (ask an administrator)")
    return _page("governance.html", user=ctx.principal.name, **data)


@router.get("/favicon.ico")
def favicon():
    return Response(status_code=204)
