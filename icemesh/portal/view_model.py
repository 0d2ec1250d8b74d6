"""What each portal page shows, asked of the services the management API calls for the same principal
(ProductService, ManagementService, through mesh_view's per-principal cache): every permission rule stays
there, none is decided here."""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import orjson

from icemesh import freshness as fresh
from icemesh.errors import IcemeshError
from icemesh.portal.mesh_view import MeshView
from icemesh.protocol import RequestContext

PAGE_SIZES = (10, 25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 25
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class BadParameter(ValueError):
    """A query parameter the page cannot use; its message is the one line the page shows."""


def owner_of(dbt: dict) -> str:
    owner = dbt.get("owner")
    if isinstance(owner, dict):
        return owner.get("email") or owner.get("name") or ""
    return str(owner or "")


def age(ms: int | None, now: float | None = None) -> str:
    if not ms:
        return "never"
    seconds = max(0, (now or time.time()) - ms / 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def when(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _hours(seconds: float | None) -> str:
    """A threshold as its producer would say it: 12 h, 30 min, 45 s."""
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size or (seconds >= size and unit != "d" and seconds % size == 0):
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def freshness(product: dict, now: float | None = None) -> dict[str, str]:
    """A badge against the producer's `icemesh_freshness`: fresh, warn (past warn_after), error (past
    error_after); without thresholds it only says how old the data is."""
    now = now or time.time()
    f = fresh.assess(product["dbt"], product.get("last_updated_ms"), now)
    limits = ", ".join(x for x in (f"warn after {_hours(f.warn_after_s)}" if f.warn_after_s is not None else "",
                                   f"error after {_hours(f.error_after_s)}" if f.error_after_s is not None else "") if x)
    if f.level == "empty":
        return {"level": "empty", "label": "no data yet", "limits": limits}
    updated = f"updated {age(product.get('last_updated_ms'), now)}"
    label = {"fresh": f"fresh: {updated}", "warn": f"warn: {updated}", "error": f"error: {updated}",
             "unknown": updated}[f.level]
    return {"level": f.level, "label": label, "limits": limits or "no icemesh_freshness declared"}


def _dbt_tags(product: dict) -> list[str]:
    tags = product["dbt"].get("tags") or []
    return [str(t) for t in tags] if isinstance(tags, list) else []


def card(product: dict, governance_tags: dict[str, tuple[str, str]] | None = None) -> dict[str, Any]:
    """A product as the home page lists it (no time in it: cards are kept per catalog version)."""
    dbt = product["dbt"]
    tags = [f"{k}={v}" for k, (v, _src) in sorted((governance_tags or {}).items())]
    return {"name": product["name"], "domain": product["namespace"], "model": dbt.get("model") or product["table"],
            "project": dbt.get("project") or product["namespace"], "description": product["description"],
            "owner": owner_of(dbt), "group": str(dbt.get("group") or ""), "access": dbt.get("access") or "",
            "tags": tags + [t for t in _dbt_tags(product) if t not in tags],
            "columns": [c["name"] for c in product["columns"]],
            "read": "all columns" if product["select"]["all_columns"] else
                    ("some columns" if product["select"]["allowed"] else "describe only")}


def _matches(c: dict[str, Any], q: str) -> bool:
    q = q.lower()
    fields = [c["name"], c["description"], c["owner"], c["group"], *c["tags"], *c["columns"]]
    return any(q in str(f).lower() for f in fields)


def _int(value: str, name: str, default: int) -> int:
    if value in ("", None):
        return default
    try:
        return int(value)
    except ValueError:
        raise BadParameter(f"{name} must be a whole number, not {value[:40]!r}") from None


def home(view: MeshView, q: str = "", domain: str = "", tag: str = "", page: str = "", size: str = "") -> dict[str, Any]:
    """Products the caller may DESCRIBE, searched by name, description, column, tag and owner, with facet
    counts (domains, governance and dbt tags) over the search's results, one page at a time."""
    number = _int(page, "page", 1)
    per_page = _int(size, "size", DEFAULT_PAGE_SIZE)
    if number < 1:
        raise BadParameter("page must be 1 or more")
    if not 1 <= per_page <= PAGE_SIZES[-1]:
        raise BadParameter(f"size must be from 1 to {PAGE_SIZES[-1]}")
    cards = view.extra(("cards",), lambda: [card(view.products[n], view.tags.get(n)) for n in view.names])
    found = [c for c in cards if not q or _matches(c, q)]
    domains: dict[str, int] = {}
    tags: dict[str, int] = {}
    for c in found:
        domains[c["domain"]] = domains.get(c["domain"], 0) + 1
        for t in c["tags"]:
            tags[t] = tags.get(t, 0) + 1
    shown = [c for c in found if (not domain or c["domain"] == domain) and (not tag or tag in c["tags"])]
    pages = max(1, -(-len(shown) // per_page))
    number = min(number, pages)
    now = time.time()
    rows = [{**c, "freshness": freshness(view.products[c["name"]], now)}
            for c in shown[(number - 1) * per_page:number * per_page]]
    return {"q": q, "domain": domain, "tag": tag, "products": rows, "matched": len(shown),
            "domains": sorted(domains.items()), "tags": sorted(tags.items()), "total": len(cards),
            "page": number, "pages": pages, "size": per_page, "sizes": PAGE_SIZES,
            "first": (number - 1) * per_page + 1 if rows else 0, "last": (number - 1) * per_page + len(rows)}


def history(catalog, ctx: RequestContext, name: str, limit: int = 10) -> list[dict[str, Any]] | None:
    """The newest snapshots, from the table exactly as loadTable returns it to this caller (None: it may not
    load it). The portal applies column limits (it shows no data and no column it was not given)."""
    from icemesh.names import parse_table_arg

    try:
        loaded = catalog.load_table(replace(ctx, applies_column_limits=True), catalog.default_warehouse,
                                    parse_table_arg(name))
    except IcemeshError:
        return None
    if isinstance(loaded, str):
        return None
    doc = orjson.loads(loaded.metadata_json)
    snapshots = doc.get("snapshots") or []
    current = doc.get("current-snapshot-id")
    newest = sorted(snapshots, key=lambda s: s.get("timestamp-ms", 0), reverse=True)[:limit]
    out = []
    for s in newest:
        summary = s.get("summary") or {}
        out.append({"id": s.get("snapshot-id"), "current": s.get("snapshot-id") == current,
                    "at": when(s.get("timestamp-ms")), "ms": s.get("timestamp-ms"),
                    "operation": summary.get("operation", ""),
                    "added": summary.get("added-records", ""), "total": summary.get("total-records", ""),
                    "files_added": summary.get("added-data-files", ""), "files": summary.get("total-data-files", ""),
                    "invocation": summary.get("icemesh.dbt.invocation_id", "")})
    return out


def governance(management, ctx: RequestContext, audit_rows: int = 50) -> dict[str, Any] | None:
    """Tags, grants, principals and recent audit as the management API lists them (None: not an ADMIN, so
    nothing is asked: the admin-only calls would only audit a refusal)."""
    if not management.whoami(ctx)["admin"]:
        return None
    grants = []
    for g in management.list_grants(ctx):
        on = {k: v for k, v in g.items() if k not in ("id", "grantee", "permissions", "description", "catalog")}
        if g.get("catalog"):
            on = {"the catalog": "", **on}
        grants.append({"id": g["id"], "grantee": f'{g["grantee"]["type"]} {g["grantee"]["name"]}',
                       "permissions": ", ".join(g["permissions"]),
                       "on": "; ".join(f"{k} {v if not isinstance(v, list) else ', '.join(map(str, v))}".strip()
                                       for k, v in on.items())})
    audit = management.audit(ctx, None, False, audit_rows)
    return {"tags": management.list_tags(ctx), "grants": grants, "principals": management.list_principals(ctx),
            "audit": [{**r, "when": age(int(r["at"] * 1000)) if isinstance(r["at"], (int, float)) else str(r["at"])}
                      for r in audit]}


def _ident(name: str) -> str:
    return name if _PLAIN.match(name) else '"' + name.replace('"', '""') + '"'


def _may_read(p: dict[str, Any], principal: str) -> dict[str, Any]:
    """All columns, these columns (and how many are hidden), or nothing; with the grant to ask an admin for."""
    select = p["select"]
    ask = f"icemesh grant SELECT --to {shlex.quote(principal)} --table {shlex.quote(p['name'])}"
    if select["all_columns"]:
        return {"level": "all", "text": "all columns", "ask": ""}
    if select["allowed"]:
        return {"level": "some", "text": "these columns: " + ", ".join(c["name"] for c in p["columns"]),
                "ask": f"the others are hidden by policy; to read them ask an admin for: {ask}"}
    return {"level": "none", "text": "nothing", "ask": select.get("message") or f"ask an admin for: {ask}"}


def product(products_service, management, view: MeshView, ctx: RequestContext, name: str) -> dict[str, Any]:
    """One product as `/management/v1/products/{name}` shows it, with its effective tags and where each comes
    from (`/management/v1/effective-tags`: only the columns the caller may read). Raises NoSuchTable."""
    p = view.products.get(name)
    if p is None:  # not among the listed products (refused claim, plain table): ask the service itself
        p = products_service.show(ctx, name)
        upstream = [u for u in p["dbt"].get("upstream") or [] if isinstance(u, str) and u in view.products]
        downstream = [d for d in p["downstream"] if d in view.products]
    else:
        upstream, downstream = view.upstream.get(name, []), view.downstream.get(name, [])

    def tags_of() -> dict:
        try:
            return management.show_tags(ctx, name)
        except IcemeshError:
            return {"tags": {}, "columns": {}}

    tags = view.extra(("tags", name), tags_of)
    dbt = p["dbt"]
    project, model = dbt.get("project") or p["namespace"], dbt.get("model") or p["table"]
    contract = dbt.get("contract") if isinstance(dbt.get("contract"), dict) else {}
    declared = {str(c.get("name", "")).lower(): c for c in contract.get("columns") or [] if isinstance(c, dict)}
    # Only the columns the caller may read: the contract's list names the hidden ones too, so it is never shown whole.
    columns = [{**c, "declared": (declared.get(c["name"].lower()) or {}).get("data_type") or "",
                "not_null": bool((declared.get(c["name"].lower()) or {}).get("not_null")),
                "tags": tags.get("columns", {}).get(c["name"], {})} for c in p["columns"]]
    cols = ", ".join(_ident(c["name"]) for c in p["columns"][:5]) or "*"
    version = dbt.get("version")
    ref_args = f"'{project}', '{model}'" + (f", v={version}" if version not in (None, "") else "")
    sql = f"select {cols} from {'.'.join(_ident(part) for part in p['name'].split('.'))} limit 10"
    snapshots = view.extra(("history", name), lambda: history(products_service.catalog, ctx, name))
    current = next((s for s in snapshots or [] if s["current"]), None)
    return {"p": p, "card": card(p, view.tags.get(name)), "freshness": freshness(p), "columns": columns,
            "contract": bool(contract.get("enforced")), "history": snapshots, "current": current,
            "tags": tags.get("tags", {}), "upstream": upstream, "downstream": downstream,
            "ref": f"{{{{ ref({ref_args}) }}}}", "query": f"icemesh query {shlex.quote(sql)}",
            "version": version, "latest_version": dbt.get("latest_version"),
            "deprecation": dbt.get("deprecation_date") or dbt.get("deprecation"),
            "updated": age(p["last_updated_ms"]), "updated_at": when(p["last_updated_ms"]),
            "may_read": _may_read(p, ctx.principal.name)}


def graph(view: MeshView, focus: str = "") -> dict[str, Any]:
    """Nodes (visible products), edges between them, and for a focused product its upstream and downstream
    (transitively); a product the caller may not see is neither drawn nor focused."""
    nodes = [{"name": n, "domain": view.products[n]["namespace"]} for n in view.names]
    if focus and focus not in view.products:
        return {"nodes": nodes, "edges": view.edges, "focus": "", "up": set(), "down": set(),
                "missing": "That product does not exist (or you may not see it)"}
    up, down = set(), set()
    if focus:
        for start, links, into in ((focus, view.upstream, up), (focus, view.downstream, down)):
            todo = list(links.get(start, []))
            while todo:
                n = todo.pop()
                if n not in into:
                    into.add(n)
                    todo.extend(links.get(n, []))
    return {"nodes": nodes, "edges": view.edges, "focus": focus, "up": up, "down": down, "missing": ""}
