"""Data products: the tables dbt published (they carry `icemesh.dbt.*` properties), described for a caller.

The catalog is the registry of products: `icemesh products list/show`, `icemesh lineage`, the portal and the
dbt cross-project resolver read it here. On the SQL backend the registry is the product index (kept in each
commit's transaction, see backends/sql/products.py): a listing is one indexed query, paged, filtered and
searched there, and no metadata file is read. A backend without an index (Glue) lists from the tables'
metadata files, behind the same calls. A caller sees only products it may DESCRIBE, decided per row from the
policy (never from a file); for each it learns whether it may SELECT (and which columns: hidden ones are not
named, nor matched by a search), or the one-line reason it may not.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

import orjson

from icemesh.catalog.authorizer import table_ref
from icemesh.catalog.ports import IndexedProduct, ProductQuery
from icemesh.errors import BadRequest, NoSuchTable
from icemesh.governance import product_claims
from icemesh.governance.permissions import Permission
from icemesh.governance.resources import NamespaceRef
from icemesh.names import Namespace, TableIdent, parse_namespace_arg, parse_table_arg
from icemesh.protocol import RequestContext
from icemesh.tables import product_summary

log = logging.getLogger("icemesh.products")
DBT_PREFIX = product_summary.DBT_PREFIX
MAX_PAGE = 1000
DEFAULT_PAGE = 100
MAX_DEPTH = 20
# A `ref` filter value: a dbt project and model name, as dbt writes identifiers (no dots, so the split is certain)
_REF = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*")
CLOCK_SLACK_S = 120  # server clocks may disagree this much: a pointer moved by another process is looked at again


@dataclass(frozen=True)
class Filters:
    """What a listing asks for, beyond what the caller may see (each narrows; empty: any)."""

    projects: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    owner: str | None = None
    q: str | None = None
    tags: tuple[tuple[str, frozenset[str] | None], ...] = ()  # (key, values) LF-tags; (word, None) a dbt tag
    refs: tuple[tuple[str, str], ...] = ()  # (dbt project, dbt model): every version of each

    @classmethod
    def parse(cls, projects: Iterable[str] = (), tags: Iterable[str] = (), owner: str | None = None,
              q: str | None = None, names: Iterable[str] = (), refs: Iterable[str] = ()) -> "Filters":
        parsed = []
        for tag in tags:
            key, sep, values = str(tag).partition("=")
            found = frozenset(v.strip() for v in values.split(",") if v.strip())
            if not key.strip() or (sep and not found):
                raise BadRequest(f"Invalid tag filter {tag!r}: use key=value (values ORed by commas) or a dbt tag name")
            parsed.append((key.strip(), found if sep else None))
        for name in names:
            parse_table_arg(name)  # a one-line error for a malformed name
        pairs = []
        for ref in refs:
            if not _REF.fullmatch(str(ref)):
                raise BadRequest(f"Invalid ref filter {str(ref)[:200]!r}: use project.model (two dbt identifiers)")
            project, _dot, model = str(ref).partition(".")
            pairs.append((project, model))
        return cls(tuple(p for p in projects if p), tuple(names), owner or None, (q or "").strip().lower() or None,
                   tuple(parsed), tuple(sorted(set(pairs))))


@dataclass
class _Page:
    products: list[dict[str, Any]] = field(default_factory=list)
    next_token: str | None = None
    unreadable: list[dict[str, str]] = field(default_factory=list)

    def answer(self) -> dict[str, Any]:
        out: dict[str, Any] = {"products": self.products, "next-page-token": self.next_token}
        if self.unreadable:
            out["unreadable"] = self.unreadable
        return out


def encode_token(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def decode_token(token: str | None) -> tuple[str, str] | None:
    if not token:
        return None
    try:
        key = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if isinstance(key, list) and len(key) == 2 and all(isinstance(k, str) for k in key):
            return key[0], key[1]
    except ValueError:
        pass
    raise BadRequest("Invalid page-token: pass the next-page-token of the previous answer, or none for the first page")


def page_size_of(size: int | None) -> int | None:
    if size is None:
        return None
    if not 1 <= size <= MAX_PAGE:
        raise BadRequest(f"Invalid page-size {size}: use 1 to {MAX_PAGE}")
    return size


class _Summaries:
    """What a product's metadata file says about it, parsed once per file (files never change): the path
    for a backend without a product index."""

    def __init__(self, capacity: int = 20_000) -> None:
        self._entries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, location: str, raw: bytes) -> dict[str, Any]:
        with self._lock:
            found = self._entries.get(location)
        if found is not None:
            return found
        summary = product_summary.from_document(orjson.loads(raw))
        with self._lock:
            self._entries[location] = summary
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        return summary


class ProductService:
    def __init__(self, catalog) -> None:
        self.catalog = catalog
        self.index = getattr(catalog.backend, "products", None)
        self._summaries = _Summaries()
        self._filled: dict[str, float] = {}  # warehouse -> when its last check for unindexed tables started
        self._twins_cache: dict[str, tuple[int, set]] = {}  # warehouse -> (policy version, twins)
        self._fill_lock = threading.Lock()

    # -- the calls -----------------------------------------------------------------------------------

    def list(self, ctx: RequestContext, namespace: str | None = None, include_tables: bool = False,
             warehouse: str | None = None, projects: Iterable[str] = (), tags: Iterable[str] = (),
             owner: str | None = None, q: str | None = None, names: Iterable[str] = (),
             refs: Iterable[str] = ()) -> list[dict[str, Any]]:
        """The products the caller may see in a warehouse, by name or root (with `include_tables`, every
        table it may see); the default warehouse when not named (a dev target may read another). Unpaged."""
        return self.page(ctx, namespace, include_tables, warehouse, projects, tags, owner, q, names,
                         refs=refs)["products"]

    def page(self, ctx: RequestContext, namespace: str | None = None, include_tables: bool = False,
             warehouse: str | None = None, projects: Iterable[str] = (), tags: Iterable[str] = (),
             owner: str | None = None, q: str | None = None, names: Iterable[str] = (),
             page_token: str | None = None, page_size: int | None = None,
             refs: Iterable[str] = ()) -> dict[str, Any]:
        """One page of `list` (all of it when `page_size` is None), in (namespace, name) order, with the
        token of the next page (None: the last), and the tables it may see whose metadata is unreadable."""
        wh = self.catalog.find_warehouse(warehouse).name
        filters = Filters.parse(projects, tags, owner, q, names, refs)
        after, size = decode_token(page_token), page_size_of(page_size)
        ns = parse_namespace_arg(namespace) if namespace else None
        if self.index is None:
            return self._page_from_metadata(ctx, wh, ns, include_tables, filters, after, size).answer()
        self._fill(wh)
        return self._page_from_index(ctx, wh, ns, include_tables, filters, after, size).answer()

    def show(self, ctx: RequestContext, name: str, warehouse: str | None = None) -> dict[str, Any]:
        """One product, with its downstream products (those that record it upstream) among those visible."""
        wh = self.catalog.find_warehouse(warehouse).name
        ident = parse_table_arg(name)
        if self.index is not None:
            self._fill(wh)
        summary = self._one(ctx, wh, ident)
        described = self._describe(ctx, wh, ident, summary) if summary is not None else None
        if described is None:  # missing and invisible look the same
            raise NoSuchTable(f"Product {name} does not exist (or you may not see it)")
        refused = _refusal(ident, summary, self.catalog.policy.project_bindings())
        if refused is not None:
            described["refused"] = f"not a product: {name} {refused}"
        described["downstream"] = self._downstream(ctx, wh, [str(ident)]).get(str(ident), [])
        return described

    def lineage(self, ctx: RequestContext, name: str | None = None, depth: int = 3,
                warehouse: str | None = None) -> list[dict[str, str]]:
        """Product-to-product edges (upstream, downstream) between products the caller may see: around `name`
        up to `depth` hops each way, or all of them. A product it may not see is no node, and no path
        runs through it."""
        wh = self.catalog.find_warehouse(warehouse).name
        if not 1 <= depth <= MAX_DEPTH:
            raise BadRequest(f"Invalid depth {depth}: use 1 to {MAX_DEPTH}")
        if self.index is not None:
            self._fill(wh)
        if name is None:
            visible = {p["name"]: p for p in self.list(ctx, warehouse=wh)}
            return [{"upstream": u, "downstream": d} for u, d in sorted(
                {(u, p["name"]) for p in visible.values() for u in p["dbt"].get("upstream") or [] if u in visible})]
        ident = parse_table_arg(name)
        if self._one(ctx, wh, ident) is None or not self._may_see(ctx, wh, ident):
            raise NoSuchTable(f"Product {name} does not exist (or you may not see it)")
        edges: set[tuple[str, str]] = set()
        up, down = {str(ident)}, {str(ident)}
        for _hop in range(depth):
            nxt = set()
            for node in up:
                summary = self._one(ctx, wh, parse_table_arg(node))
                for u in _upstream_names(summary):
                    if self._visible_name(ctx, wh, u):
                        edges.add((u, node))
                        nxt.add(u)
            up = nxt
            found = self._downstream(ctx, wh, down)
            down = set()
            for node, below in found.items():
                for d in below:
                    edges.add((node, d))
                    down.add(d)
            if not up and not down:
                break
        return [{"upstream": u, "downstream": d} for u, d in sorted(edges)]

    # -- the index -----------------------------------------------------------------------------------

    def _fill(self, wh: str) -> None:
        """Index what the index does not reflect yet, from the metadata files: an older catalog's tables (the
        first listing looks at all), then what a writer without the index (an older icemesh process on the
        same database) moved lately. One unreadable file is recorded as such (skipped, reported), never fatal."""
        last = self._filled.get(wh)
        started = time.time()
        if last is not None and started - last < 1.0:
            return  # looked within the last second
        pending = self.index.unindexed(wh, None if last is None else last - CLOCK_SLACK_S)
        if not pending:
            self._filled[wh] = started
            return
        with self._fill_lock:  # rows a writer without the index left behind (gone tables) go in the same step
            entries = []
            for ident, kind, location in pending:
                try:
                    doc = orjson.loads(self.catalog.warehouses[wh].read_bytes(location))
                    summary = product_summary.from_view_document(doc) if kind == "view" else \
                        product_summary.from_document(doc)
                    entries.append((ident, kind, location, summary, None))
                except Exception as exc:  # noqa: BLE001 - any unreadable file: the listing goes on
                    log.warning("products: cannot read %s's metadata %s (%s)", ident, location, exc.__class__.__name__)
                    entries.append((ident, kind, location, None, f"cannot read its metadata ({exc.__class__.__name__})"))
            for start in range(0, len(entries), 1000):
                self.index.fill(wh, entries[start:start + 1000])
            self._twins_cache.pop(wh, None)
        self._filled[wh] = started

    def _page_from_index(self, ctx: RequestContext, wh: str, ns: Namespace | None, include_tables: bool,
                         filters: Filters, after: tuple[str, str] | None, size: int | None) -> _Page:
        query = ProductQuery(namespace=ns, projects=filters.projects, owner=filters.owner, text=filters.q,
                             products_only=not include_tables, refs=filters.refs)
        page = _Page()
        bindings = self.catalog.policy.project_bindings()
        twins = self._twins(wh, bindings)
        batch = 500 if size is None else size + 1  # a caller that sees most rows needs one batch; others more
        wanted = set(filters.names)
        while True:
            rows = self._rows(wh, query, wanted, after, batch)
            for row in rows:
                after = (row.ident.namespace.key, row.ident.name)
                if not self._may_see(ctx, wh, row.ident):
                    continue  # decided before its summary is even decoded
                if row.summary is None and row.raw is not None:
                    row = replace(row, summary=orjson.loads(row.raw))
                described = self._take(ctx, wh, row, include_tables, filters, bindings, page, twins)
                if described is None:
                    continue
                page.products.append(described)
                if size is not None and len(page.products) == size:
                    page.next_token = encode_token(after)
                    return page
            if len(rows) < batch:
                break
            batch = min(batch * 4, 2000)
        return page

    def _rows(self, wh: str, query: ProductQuery, wanted: set[str], after, batch: int) -> list[IndexedProduct]:
        if not wanted:
            return self.index.find(wh, query, after, batch)
        rows = [self.index.get(wh, parse_table_arg(n)) for n in sorted(wanted)]
        rows = sorted((r for r in rows if r is not None and (query.products_only is False or _is_product(r.summary))),
                      key=lambda r: (r.ident.namespace.key, r.ident.name))
        return [r for r in rows if after is None or (r.ident.namespace.key, r.ident.name) > after]

    def _twins(self, wh: str, bindings) -> set[tuple[str, str, str]]:
        """Claims two accepted tables make (both refused): a refused claim elsewhere never knocks out the real one.
        Kept per policy version (creates, drops and renames move it; commits cannot make twins: refused)."""
        version = self.catalog.policy.policy_version()
        cached = self._twins_cache.get(wh)
        if cached is not None and cached[0] == version:
            return cached[1]
        twins = {(p, m, v) for p, m, v, ns in self.index.duplicate_claims(wh)
                if product_claims.registry_refusal(product_claims.Claim(p, m, v), NamespaceRef(ns.levels),
                                                   bindings.get(p)) is None}
        self._twins_cache[wh] = (version, twins)
        return twins

    def _take(self, ctx, wh: str, row: IndexedProduct, include_tables: bool, filters: Filters, bindings,
              page: _Page, twins) -> dict[str, Any] | None:
        """One index row as the caller may see it, or None: decided from the policy before anything else."""
        if not self._may_see(ctx, wh, row.ident):
            return None
        if row.summary is None:
            page.unreadable.append({"name": str(row.ident), "reason": row.error or "unreadable metadata"})
            return None
        summary = row.summary
        is_product = "model" in summary["dbt"]
        if not include_tables and not is_product:
            return None
        if is_product and _refusal(row.ident, summary, bindings) is not None:
            return None  # a claim on another domain's project (made before claims were checked): never a product
        if is_product and _claim_key(summary["dbt"]) in twins:
            log.warning("products: %s refused, another table claims dbt model %s.%s", row.ident,
                        summary["dbt"].get("project"), summary["dbt"].get("model"))
            return None
        described = self._describe(ctx, wh, row.ident, summary)
        if described is None or not self._passes(wh, row.ident, described, filters):
            return None
        return described

    def _one(self, ctx: RequestContext, wh: str, ident: TableIdent) -> dict[str, Any] | None:
        """A table's or view's product summary (None: no such table, or unreadable)."""
        if self.index is not None:
            row = self.index.get(wh, ident)
            return None if row is None else row.summary
        record = self.catalog.pointers.get_table(wh, ident)
        if record is not None:
            return self._readable_summary(wh, ident, record)
        return next((s for i, s in self._view_summaries(ctx, wh, ident.namespace) if i == ident), None)

    def _downstream(self, ctx: RequestContext, wh: str, names: Iterable[str]) -> dict[str, list[str]]:
        names = list(names)
        if self.index is not None:
            found = self.index.downstream(wh, names)
            return {n: sorted(d for d in found.get(n, []) if self._visible_name(ctx, wh, d)) for n in names}
        everything = self.list(ctx, warehouse=wh)
        return {n: sorted(p["name"] for p in everything if n in (p["dbt"].get("upstream") or [])) for n in names}

    # -- one product, as the caller may see it ------------------------------------------------------

    def _may_see(self, ctx: RequestContext, wh: str, ident: TableIdent) -> bool:
        return self.catalog.auth.table(ctx, wh, Permission.DESCRIBE, ident, enforce=False, audit=False).allowed

    def _visible_name(self, ctx: RequestContext, wh: str, name: str) -> bool:
        try:
            ident = parse_table_arg(name)
        except Exception:  # noqa: BLE001 - a recorded upstream that is no table name names nothing visible
            return False
        return self._may_see(ctx, wh, ident)

    def _describe(self, ctx: RequestContext, wh: str, ident: TableIdent, summary: dict[str, Any]) -> dict[str, Any] | None:
        auth = self.catalog.auth
        if not auth.table(ctx, wh, Permission.DESCRIBE, ident, enforce=False, audit=False).allowed:
            return None
        names = [c["name"] for c in summary["columns"]]
        select = auth.table(ctx, wh, Permission.SELECT, ident, names, enforce=False, audit=False)
        visible = set(select.visible_columns or ()) if select.allowed else set()
        # A filtered or masked reader's engine must apply the restrictions (a dbt ref reads them through a view)
        restricted = select.allowed and bool(auth.evaluator(wh).restrictions(ctx.principal.name, table_ref(ident), names))
        return {
            "name": str(ident), "namespace": str(ident.namespace), "table": ident.name,
            "description": summary["description"], "dbt": self._visible_dbt(ctx, wh, summary["dbt"], visible),
            # Hidden columns are not named, even to a caller that may describe the table.
            "columns": [c for c in summary["columns"] if c["name"] in visible],
            "select": {"allowed": select.allowed, "all_columns": select.all_columns, "restricted": restricted,
                       "message": None if select.all_columns else _why(select, names)},
            "snapshots": summary["snapshots"], "current_snapshot_id": summary["current_snapshot_id"],
            "last_updated_ms": summary["last_updated_ms"], "kind": summary.get("kind", "table"),
        }

    def _visible_dbt(self, ctx: RequestContext, wh: str, dbt: dict[str, Any], visible: set[str]) -> dict[str, Any]:
        """The producer's dbt fields as the caller may see them: its contract without hidden columns, its upstream
        products (and their snapshots) without those the caller may not DESCRIBE. Names are never leaked by
        the fields that merely repeat them."""
        dbt = dict(dbt)
        contract = dbt.get("contract")
        if isinstance(contract, dict) and isinstance(contract.get("columns"), list):
            dbt["contract"] = {**contract, "columns": [c for c in contract["columns"]
                                                       if isinstance(c, dict) and c.get("name") in visible]}
        elif contract is not None and not isinstance(contract, dict):
            dbt.pop("contract")  # unreadable: nothing of it is shown
        if "upstream" in dbt:
            upstream = dbt["upstream"] if isinstance(dbt["upstream"], list) else []
            dbt["upstream"] = [n for n in upstream if isinstance(n, str) and self._visible_name(ctx, wh, n)]
        if "upstream_snapshots" in dbt:
            try:
                pins = json.loads(dbt["upstream_snapshots"]) if isinstance(dbt["upstream_snapshots"], str) \
                    else dbt["upstream_snapshots"]
            except ValueError:
                pins = {}
            pins = {n: v for n, v in (pins.items() if isinstance(pins, dict) else ())
                    if self._visible_name(ctx, wh, n)}
            was_text = isinstance(dbt["upstream_snapshots"], str)
            dbt["upstream_snapshots"] = json.dumps(pins, sort_keys=True) if was_text else pins
        return dbt

    def _passes(self, wh: str, ident: TableIdent, described: dict[str, Any], filters: Filters) -> bool:
        """The filters, exactly, on what the caller sees (the index's matches are a superset)."""
        dbt = described["dbt"]
        if filters.projects and dbt.get("project") not in filters.projects:
            return False
        if filters.refs and (dbt.get("project"), dbt.get("model")) not in filters.refs:
            return False
        if filters.owner and filters.owner.lower() not in product_summary.owner_text(dbt):
            return False
        if filters.tags:
            lf = self.catalog.auth.evaluator(wh).table_tags(table_ref(ident))
            words = {str(t) for t in dbt.get("tags") or []} if isinstance(dbt.get("tags"), list) else set()
            for key, values in filters.tags:
                if values is None and key not in words:
                    return False
                if values is not None and lf.get(key) not in values:
                    return False
        if filters.q and filters.q not in product_summary.search_text(described["name"], described):
            return False
        return True

    # -- without an index: the tables' metadata files -------------------------------------------------

    def _summary(self, wh: str, record) -> dict[str, Any]:
        entry = self.catalog.cache.get(record.metadata_location, self.catalog.warehouses[wh].read_bytes)
        return self._summaries.get(record.metadata_location, entry.raw)

    def _readable_summary(self, wh: str, ident: TableIdent, record) -> dict[str, Any] | None:
        """One table whose metadata file is gone or broken is left out (and logged), never a 500 for everyone."""
        try:
            return self._summary(wh, record)
        except Exception as exc:  # noqa: BLE001 - any unreadable file: the listing goes on
            log.warning("products: cannot read %s's metadata %s (%s)", ident, record.metadata_location,
                        exc.__class__.__name__)
            return None

    def _view_summaries(self, ctx: RequestContext, wh: str, namespace: Namespace | None):
        """(ident, summary) of the views the caller may DESCRIBE that dbt published (their files read only then)."""
        store = self.catalog.backend.views
        if store is None:
            return
        spaces = [namespace] if namespace else [ns for ns, _owner in self.catalog.pointers.namespaces_with_owners(wh)]
        for ns in spaces:
            for ident in store.list_views(wh, ns, None, None):
                if not self._may_see(ctx, wh, ident):
                    continue
                record = store.get_view(wh, ident)
                try:
                    summary = product_summary.from_view_document(
                        orjson.loads(self.catalog.warehouses[wh].read_bytes(record.metadata_location)))
                except Exception as exc:  # noqa: BLE001 - one unreadable view never fails the listing
                    log.warning("products: cannot read view %s's metadata (%s)", ident, exc.__class__.__name__)
                    continue
                if "model" in summary["dbt"]:
                    yield ident, summary

    def _idents(self, wh: str, namespace: Namespace | None) -> list[TableIdent]:
        store = self.catalog.pointers
        if namespace:
            return store.list_tables(wh, namespace, None, None)
        out: list[TableIdent] = []
        for ns, _owner in store.namespaces_with_owners(wh):
            out.extend(store.list_tables(wh, ns, None, None))
        return out

    def _page_from_metadata(self, ctx: RequestContext, wh: str, ns: Namespace | None, include_tables: bool,
                            filters: Filters, after: tuple[str, str] | None, size: int | None) -> _Page:
        bindings = self.catalog.policy.project_bindings()
        found: list[tuple[TableIdent, dict[str, Any]]] = []
        for ident in self._idents(wh, ns):
            if filters.names and str(ident) not in filters.names:
                continue
            if not self._may_see(ctx, wh, ident):
                continue  # decided before any file is read: what the caller may not see costs nothing
            record = self.catalog.pointers.get_table(wh, ident)
            summary = self._readable_summary(wh, ident, record) if record is not None else None
            if summary is None or (not include_tables and "model" not in summary["dbt"]):
                continue
            if "model" in summary["dbt"] and _refusal(ident, summary, bindings) is not None:
                continue
            found.append((ident, summary))
        found += [(i, s) for i, s in self._view_summaries(ctx, wh, ns)
                  if _refusal(i, s, bindings) is None and (not filters.names or str(i) in filters.names)]
        products = []
        for ident, summary in sorted(found, key=lambda f: (f[0].namespace.key, f[0].name)):
            described = self._describe(ctx, wh, ident, summary)
            if described is not None and self._passes(wh, ident, described, filters):
                products.append((ident, described))
        kept = {id(p) for p in _without_duplicate_claims([p for _i, p in products])}
        products = [(i, p) for i, p in products if id(p) in kept
                    and (after is None or (i.namespace.key, i.name) > after)]
        page = _Page([p for _i, p in products[:size]] if size is not None else [p for _i, p in products])
        if size is not None and len(products) > size:
            last = products[size - 1][0]
            page.next_token = encode_token((last.namespace.key, last.name))
        return page


def _is_product(summary: dict[str, Any] | None) -> bool:
    return summary is not None and "model" in summary["dbt"]


def _upstream_names(summary: dict[str, Any] | None) -> list[str]:
    found = (summary or {}).get("dbt", {}).get("upstream") or []
    return [str(u) for u in found] if isinstance(found, list) else []


def _claim_key(dbt: dict[str, Any]) -> tuple[str, str, str]:
    return str(dbt.get("project", "")), str(dbt.get("model", "")), str(dbt.get("version") or "")


def _claim(summary: dict[str, Any]) -> product_claims.Claim:
    return product_claims.Claim(*_claim_key(summary["dbt"]))


def _refusal(ident: TableIdent, summary: dict[str, Any], bindings: dict) -> str | None:
    dbt = summary["dbt"]
    if not dbt.get("project"):
        return None
    claim = _claim(summary)
    return product_claims.registry_refusal(claim, NamespaceRef(ident.namespace.levels), bindings.get(claim.project))


def _without_duplicate_claims(products: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Two tables claiming one (project, model, version) are both refused: neither can be trusted to be it."""
    seen: dict[tuple, int] = {}
    for p in products:
        if p["dbt"].get("project"):
            key = (p["dbt"].get("project"), p["dbt"].get("model"), str(p["dbt"].get("version") or ""))
            seen[key] = seen.get(key, 0) + 1
    keep = []
    for p in products:
        key = (p["dbt"].get("project"), p["dbt"].get("model"), str(p["dbt"].get("version") or ""))
        if p["dbt"].get("project") and seen[key] > 1:
            log.warning("products: %s refused, another table claims dbt model %s.%s", p["name"], key[0], key[1])
            continue
        keep.append(p)
    return keep


def _why(decision, names: list[str]) -> str:
    if not decision.allowed:
        return decision.message()
    hidden = [n for n in names if n not in set(decision.visible_columns or ())]
    return f"{decision.principal} may read {decision.resource} except {len(hidden)} column(s) hidden by policy"
