"""Data products: the tables dbt published (they carry `icemesh.dbt.*` properties), described for a caller.

The catalog is the registry of products: `icemesh products list/show` and the dbt cross-project resolver
read it here in one call instead of loading tables one by one. A caller sees only products it may
DESCRIBE; for each it learns whether it may SELECT (and which columns), or the one-line reason it may not.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from typing import Any

import orjson

from icemesh.governance import product_claims
from icemesh.protocol import RequestContext
from icemesh.names import TableIdent
from icemesh.names import parse_namespace_arg, parse_table_arg
from icemesh.errors import NoSuchTable
from icemesh.governance.permissions import Permission
from icemesh.catalog.authorizer import table_ref
from icemesh.governance.resources import NamespaceRef

log = logging.getLogger("icemesh.products")
DBT_PREFIX = "icemesh.dbt."
_JSON_FIELDS = {"owner", "contract", "upstream", "freshness", "tags"}


class _Summaries:
    """What a product's metadata file says about it, parsed once per file (files never change)."""

    def __init__(self, capacity: int = 20_000) -> None:
        self._entries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, location: str, raw: bytes) -> dict[str, Any]:
        with self._lock:
            found = self._entries.get(location)
        if found is not None:
            return found
        summary = _summarize(orjson.loads(raw))
        with self._lock:
            self._entries[location] = summary
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        return summary


def _summarize(doc: dict[str, Any]) -> dict[str, Any]:
    properties = doc.get("properties") or {}
    dbt = {}
    for key, value in properties.items():
        if key.startswith(DBT_PREFIX):
            name = key[len(DBT_PREFIX):]
            if name in _JSON_FIELDS:
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            dbt[name] = value
    current = doc.get("current-schema-id", 0)
    schemas = doc.get("schemas") or ([doc["schema"]] if "schema" in doc else [])
    schema = next((s for s in schemas if s.get("schema-id", 0) == current), schemas[0] if schemas else {})
    snapshots = doc.get("snapshots") or []
    current_id = doc.get("current-snapshot-id")
    current_snapshot = next((s for s in snapshots if s.get("snapshot-id") == current_id), None)
    return {
        "dbt": dbt,
        "description": properties.get("comment", ""),
        "columns": [{"name": f["name"], "type": f["type"] if isinstance(f["type"], str) else f["type"].get("type"),
                     "required": bool(f.get("required")), "doc": f.get("doc") or ""} for f in schema.get("fields", [])],
        "snapshots": len(snapshots),
        "current_snapshot_id": current_id if current_id not in (None, -1) else None,
        "last_updated_ms": (current_snapshot or {}).get("timestamp-ms") or doc.get("last-updated-ms"),
    }


def _view_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """A view product (dbt's `view` with catalog_name, on Spark): its properties as a table's, the current
    version's schema as its columns, no snapshots (it holds no data)."""
    properties = doc.get("properties") or {}
    versions = doc.get("versions") or []
    version = next((v for v in versions if v.get("version-id") == doc.get("current-version-id")), {})
    schema = next((s for s in doc.get("schemas") or [] if s.get("schema-id") == version.get("schema-id")), {})
    summary = _summarize({"properties": properties, "schemas": [schema], "current-schema-id": schema.get("schema-id")})
    summary.update(kind="view", snapshots=0, current_snapshot_id=None,
                   last_updated_ms=version.get("timestamp-ms"))
    return summary


class ProductService:
    def __init__(self, catalog) -> None:
        self.catalog = catalog
        self._summaries = _Summaries()

    def _summary(self, wh: str, record) -> dict[str, Any]:
        entry = self.catalog.cache.get(record.metadata_location, self.catalog.warehouses[wh].read_bytes)
        return self._summaries.get(record.metadata_location, entry.raw)

    def _view_summaries(self, ctx: RequestContext, wh: str, namespace: str | None):
        """(ident, summary) of the views the caller may DESCRIBE that dbt published (their files read only then)."""
        store = self.catalog.backend.views
        if store is None:
            return
        auth = self.catalog.auth
        spaces = [parse_namespace_arg(namespace)] if namespace else \
            [ns for ns, _owner in self.catalog.pointers.namespaces_with_owners(wh)]
        for ns in spaces:
            for ident in store.list_views(wh, ns, None, None):
                if not auth.table(ctx, wh, Permission.DESCRIBE, ident, enforce=False, audit=False).allowed:
                    continue
                record = store.get_view(wh, ident)
                try:
                    summary = _view_summary(orjson.loads(self.catalog.warehouses[wh].read_bytes(record.metadata_location)))
                except Exception as exc:  # noqa: BLE001 - one unreadable view never fails the listing
                    log.warning("products: cannot read view %s's metadata (%s)", ident, exc.__class__.__name__)
                    continue
                if "model" in summary["dbt"]:
                    yield ident, summary

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
            dbt["upstream"] = [n for n in upstream if isinstance(n, str) and self._may_describe(ctx, wh, n)]
        if "upstream_snapshots" in dbt:
            try:
                pins = json.loads(dbt["upstream_snapshots"]) if isinstance(dbt["upstream_snapshots"], str) \
                    else dbt["upstream_snapshots"]
            except ValueError:
                pins = {}
            pins = {n: v for n, v in (pins.items() if isinstance(pins, dict) else ())
                    if self._may_describe(ctx, wh, n)}
            dbt["upstream_snapshots"] = json.dumps(pins, sort_keys=True)
        return dbt

    def _may_describe(self, ctx: RequestContext, wh: str, name: str) -> bool:
        try:
            ident = parse_table_arg(name)
        except Exception:  # noqa: BLE001 - a name that is not a table's: nothing to show
            return False
        return self.catalog.auth.table(ctx, wh, Permission.DESCRIBE, ident, enforce=False, audit=False).allowed

    def _idents(self, wh: str, namespace: str | None) -> list[TableIdent]:
        store = self.catalog.pointers
        if namespace:
            return store.list_tables(wh, parse_namespace_arg(namespace), None, None)
        out: list[TableIdent] = []
        for ns, _owner in store.namespaces_with_owners(wh):
            out.extend(store.list_tables(wh, ns, None, None))
        return out

    def list(self, ctx: RequestContext, namespace: str | None = None, include_tables: bool = False,
             warehouse: str | None = None) -> list[dict[str, Any]]:
        """The products the caller may see in a warehouse, by name or root (with `include_tables`, every
        table it may see); the default warehouse when not named (a dev target may read another)."""
        wh = self.catalog.find_warehouse(warehouse).name
        products = []
        auth = self.catalog.auth
        bindings = self.catalog.policy.project_bindings()
        for ident in self._idents(wh, namespace):
            if not auth.table(ctx, wh, Permission.DESCRIBE, ident, enforce=False, audit=False).allowed:
                continue  # decided before any file is read: what the caller may not see costs nothing
            record = self.catalog.pointers.get_table(wh, ident)
            if record is None:
                continue
            summary = self._readable_summary(wh, ident, record)
            if summary is None or (not include_tables and "model" not in summary["dbt"]):
                continue
            if "model" in summary["dbt"] and _refusal(ident, summary, bindings) is not None:
                continue  # a claim on another domain's project (made before claims were checked): never a product
            described = self._describe(ctx, wh, ident, summary)
            if described is not None:
                products.append(described)
        for ident, summary in self._view_summaries(ctx, wh, namespace):
            if _refusal(ident, summary, bindings) is None:
                described = self._describe(ctx, wh, ident, summary)
                if described is not None:
                    products.append(described)
        return _without_duplicate_claims(products)

    def _readable_summary(self, wh: str, ident: TableIdent, record) -> dict[str, Any] | None:
        """One table whose metadata file is gone or broken is left out (and logged), never a 500 for everyone."""
        try:
            return self._summary(wh, record)
        except Exception as exc:  # noqa: BLE001 - any unreadable file: the listing goes on
            log.warning("products: cannot read %s's metadata %s (%s)", ident, record.metadata_location,
                        exc.__class__.__name__)
            return None

    def show(self, ctx: RequestContext, name: str, warehouse: str | None = None) -> dict[str, Any]:
        """One product, with its downstream products (those that record it upstream) among those visible."""
        wh = self.catalog.find_warehouse(warehouse).name
        ident = parse_table_arg(name)
        record = self.catalog.pointers.get_table(wh, ident)
        summary = self._readable_summary(wh, ident, record) if record is not None else None
        if record is None:  # a view product?
            summary = next((s for i, s in self._view_summaries(ctx, wh, str(ident.namespace)) if i == ident), None)
        described = self._describe(ctx, wh, ident, summary) if summary is not None else None
        if described is None:  # missing and invisible look the same
            raise NoSuchTable(f"Product {name} does not exist (or you may not see it)")
        refused = _refusal(ident, summary, self.catalog.policy.project_bindings())
        if refused is not None:
            described["refused"] = f"not a product: {name} {refused}"
        described["downstream"] = sorted(p["name"] for p in self.list(ctx, warehouse=wh)
                                         if str(ident) in (p["dbt"].get("upstream") or []))
        return described


def _claim(summary: dict[str, Any]) -> product_claims.Claim:
    dbt = summary["dbt"]
    return product_claims.Claim(str(dbt.get("project", "")), str(dbt.get("model", "")), str(dbt.get("version", "") or ""))


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
