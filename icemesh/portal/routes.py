"""The portal's HTTP routes: resolve the session, ask the view model, render a template. Nothing else."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from icemesh.errors import NoSuchTable
from icemesh.portal import csrf, lineage_svg, mesh_view, sessions, view_model

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


def _views(request: Request) -> mesh_view.ViewCache:
    state = request.app.state
    cache = getattr(state, "portal_views", None)
    if cache is None:
        cache = state.portal_views = mesh_view.ViewCache(state.service)
    return cache


async def _form(request: Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}


def _user(request: Request, ctx) -> dict[str, str]:
    """What every logged-in page's header needs: the name and the logout form's CSRF token."""
    return {"user": ctx.principal.name, "csrf": csrf.session_token(request.cookies[sessions.COOKIE])}


def _login_page(status: int = 200, error: str | None = None) -> HTMLResponse:
    token = csrf.new_login_token()
    response = _page("login.html", status=status, error=error, user=None, csrf=token)
    csrf.set_login_cookie(response, token)
    return response


@router.get("/login")
def login_form(request: Request):
    return _login_page()


@router.post("/login")
async def login(request: Request):
    form = await _form(request)
    if not csrf.login_ok(request, form):
        return _login_page(403, csrf.REFUSED)  # no login attempted, nothing audited or changed
    svc = request.app.state.service
    address = request.client.host if request.client else "unknown"
    try:
        token, ttl = await sessions.log_in(svc, form.get("client_id", "").strip(), form.get("client_secret", ""),
                                           form.get("token", "").strip(), address)
    except sessions.LoginFailed as exc:
        return _login_page(401, str(exc))
    response = RedirectResponse("/", status_code=303)
    sessions.set_session(response, token, ttl)
    csrf.clear_login_cookie(response)
    return response


@router.post("/logout")
async def logout(request: Request):
    form = await _form(request)
    if not csrf.session_ok(request, request.cookies.get(sessions.COOKIE), form):
        return _page("missing.html", status=403, user=None, message=csrf.REFUSED)
    response = _to_login()
    sessions.clear_session(response)
    return response


@router.get("/")
async def home(request: Request, q: str = "", domain: str = "", tag: str = "", page: str = "", size: str = ""):
    ctx = sessions.current(request.app.state.service, request)
    if ctx is None:
        return _to_login()
    products = request.app.state.products
    try:
        data = await run_in_threadpool(lambda: view_model.home(_views(request).get(products, ctx), q, domain, tag,
                                                               page, size))
    except view_model.BadParameter as exc:
        return _page("missing.html", status=400, message=str(exc), **_user(request, ctx))

    def link(**changes) -> str:
        values = {"q": q, "domain": domain, "tag": tag, "size": data["size"], "page": data["page"], **changes}
        if values["size"] == view_model.DEFAULT_PAGE_SIZE:
            values.pop("size")
        return "/?" + urlencode({k: v for k, v in values.items() if v not in ("", None)})
    return _page("home.html", link=link, **data, **_user(request, ctx))


@router.get("/products/{name}")
async def product(request: Request, name: str):
    ctx = sessions.current(request.app.state.service, request)
    if ctx is None:
        return _to_login()
    state = request.app.state

    def build():
        return view_model.product(state.products, state.management, _views(request).get(state.products, ctx), ctx, name)
    try:
        data = await run_in_threadpool(build)
    except NoSuchTable as exc:
        return _page("missing.html", status=404, message=str(exc), **_user(request, ctx))
    return _page("product.html", **data, **_user(request, ctx))


@router.get("/lineage")
async def lineage(request: Request, focus: str = ""):
    ctx = sessions.current(request.app.state.service, request)
    if ctx is None:
        return _to_login()

    def build():
        view = _views(request).get(request.app.state.products, ctx)
        data = view_model.graph(view, focus)
        # The SVG escapes every name itself (lineage_svg.render); drawn once per view and focus.
        svg = view.extra(("svg", data["focus"]), lambda: lineage_svg.render(
            data["nodes"], data["edges"], data["focus"], data["up"], data["down"]))
        return data, svg
    data, svg = await run_in_threadpool(build)
    return _page("lineage.html", svg=Markup(svg), count=len(data["nodes"]), focus=data["focus"],
                 missing=data["missing"], up=sorted(data["up"]), down=sorted(data["down"]), **_user(request, ctx))


@router.get("/governance")
async def governance(request: Request):
    ctx = sessions.current(request.app.state.service, request)
    if ctx is None:
        return _to_login()
    data = await run_in_threadpool(view_model.governance, request.app.state.management, ctx)
    if data is None:
        return _page("missing.html", status=403, message="The governance page needs ADMIN (ask an administrator)",
                     **_user(request, ctx))
    return _page("governance.html", **data, **_user(request, ctx))


@router.get("/favicon.ico")
def favicon():
    return Response(status_code=204)
