"""What each portal page shows, asked of the services the management API calls for the same principal
(ProductService, ManagementService): every permission rule stays there, none is decided here."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import orjson

from icemesh.errors import IcemeshError
from icemesh.protocol import RequestContext


def owner_of(dbt: dict) -> str:
    owner = dbt.get("owner")
    if isinstance(owner, dict):
        return owner.get("email") or owner.get("name") or ""
    return str(owner or "")


def age(ms: int | None) -> str:
    if not ms:
        return "never"
    seconds = max(0, time.time() - ms / 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def freshness(product: dict) -> dict[str, str]:
    """A badge: fresh within a day, stale after a week (a dbt freshness `warn_after` would refine this)."""
    ms = product.get("last_updated_ms")
    if not ms:
        return {"label": "no data", "level": "none"}
    hours = (time.time() - ms / 1000) / 3600
    level = "fresh" if hours < 24 else ("aging" if hours < 24 * 7 else "stale")
    return {"label": f"updated {age(ms)}", "level": level}


def _dbt_tags(product: dict) -> list[str]:
    tags = product["dbt"].get("tags") or []
    return [str(t) for t in tags] if isinstance(tags, list) else []


def card(product: dict) -> dict[str, Any]:
    dbt = product["dbt"]
    return {"name": product["name"], "domain": product["namespace"], "model": dbt.get("model") or product["table"],
            "project": dbt.get("project") or product["namespace"], "description": product["description"],
            "owner": owner_of(dbt), "access": dbt.get("access") or "", "tags": _dbt_tags(product),
            "freshness": freshness(product), "columns": [c["name"] for c in product["columns"]],
            "read": "all columns" if product["select"]["all_columns"] else
                    ("some columns" if product["select"]["allowed"] else "describe only")}


def _matches(c: dict[str, Any], q: str) -> bool:
    q = q.lower()
    fields = [c["name"], c["description"], c["owner"], *c["tags"], *c["columns"]]
    return any(q in str(f).lower() for f in fields)


def home(products_service, ctx: RequestContext, q: str = "", domain: str = "", tag: str = "") -> dict[str, Any]:
    """Products the caller may DESCRIBE (ProductService.list), searched by name, description, column, tag and
    owner, with facet counts over the search's results."""
    cards = [card(p) for p in products_service.list(ctx)]
    found = [c for c in cards if not q or _matches(c, q)]
    domains: dict[str, int] = {}
    tags: dict[str, int] = {}
    for c in found:
        domains[c["domain"]] = domains.get(c["domain"], 0) + 1
        for t in c["tags"]:
            tags[t] = tags.get(t, 0) + 1
    shown = [c for c in found if (not domain or c["domain"] == domain) and (not tag or tag in c["tags"])]
    return {"q": q, "domain": domain, "tag": tag, "products": sorted(shown, key=lambda c: c["name"]),
            "domains": sorted(domains.items()), "tags": sorted(tags.items()), "total": len(cards)}


def history(catalog, ctx: RequestContext, name: str, limit: int = 5) -> list[dict[str, Any]] | None:
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
    snapshots = orjson.loads(loaded.metadata_json).get("snapshots") or []
    newest = sorted(snapshots, key=lambda s: s.get("timestamp-ms", 0), reverse=True)[:limit]
    return [{"id": s.get("snapshot-id"), "when": age(s.get("timestamp-ms")),
             "operation": (s.get("summary") or {}).get("operation", ""),
             "added": (s.get("summary") or {}).get("added-records", ""),
             "total": (s.get("summary") or {}).get("total-records", "")} for s in newest]


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


def product(products_service, management, ctx: RequestContext, name: str) -> dict[str, Any]:
    """One product as `/management/v1/products/{name}` shows it, with its effective tags and where each comes
    from (`/management/v1/effective-tags`: only the columns the caller may read). Raises NoSuchTable."""
    p = products_service.show(ctx, name)
    try:
        tags = management.show_tags(ctx, name)
    except IcemeshError:
        tags = {"tags": {}, "columns": {}}
    dbt = p["dbt"]
    project, model = dbt.get("project") or p["namespace"], dbt.get("model") or p["table"]
    columns = [{**c, "tags": tags.get("columns", {}).get(c["name"], {})} for c in p["columns"]]
    cols = ", ".join(c["name"] for c in p["columns"][:5]) or "*"
    return {"p": p, "card": card(p), "columns": columns, "history": history(products_service.catalog, ctx, name), "tags": tags.get("tags", {}),
            "upstream": [str(u) for u in dbt.get("upstream") or []], "downstream": p["downstream"],
            "ref": f"{{{{ ref('{project}', '{model}') }}}}",
            "query": f'icemesh query --engine duckdb "select {cols} from {p["name"]} limit 10"',
            "version": dbt.get("version"), "deprecation": dbt.get("deprecation_date") or dbt.get("deprecation"),
            "updated": age(p["last_updated_ms"])}


def graph(products_service, ctx: RequestContext) -> tuple[list[dict[str, str]], list[tuple[str, str]]]:
    """Nodes (visible products) and edges between them; an upstream the caller may not see is not drawn."""
    found = products_service.list(ctx)
    names = {p["name"] for p in found}
    nodes = [{"name": p["name"], "domain": p["namespace"]} for p in found]
    edges = sorted({(str(u), p["name"]) for p in found for u in p["dbt"].get("upstream") or [] if str(u) in names})
    return nodes, edges
