"""What one principal may see of the mesh (ProductService.list's answer, the lineage between those products and
their table tags), computed once per catalog version and kept for that principal.

The version is the policy version of the evaluator that decided (grants, roles, tags, owners) and the change
feed's newest event (every commit, create, drop and rename records one), both read before the listing: a change
during it makes the next request list again, never keeps a stale answer. Without a change feed nothing is
kept. Entries also expire after `MAX_AGE_S`, for changes a backend records no event for (Glue tables changed
outside icemesh). Times ("updated 5m ago") are never kept: pages compute them when they render.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from icemesh.catalog.authorizer import table_ref
from icemesh.names import parse_table_arg
from icemesh.protocol import RequestContext

MAX_AGE_S = 10.0
MAX_PRINCIPALS = 64


@dataclass
class MeshView:
    products: dict[str, dict[str, Any]]  # by name, as ProductService.list describes each to this principal
    names: list[str]  # sorted
    tags: dict[str, dict[str, tuple[str, str]]]  # product -> governance tag -> (value, where it comes from)
    edges: list[tuple[str, str]]  # (upstream, downstream), both visible
    upstream: dict[str, list[str]]
    downstream: dict[str, list[str]]
    _extras: dict[tuple, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def extra(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """A per-product answer (history, column tags) for this principal, computed once for this version."""
        with self._lock:
            if key in self._extras:
                return self._extras[key]
        value = compute()
        with self._lock:
            if len(self._extras) > 2000:
                self._extras.clear()
            self._extras[key] = value
        return value


def build(products_service, ctx: RequestContext) -> MeshView:
    found = products_service.list(ctx)
    by_name = {p["name"]: p for p in found}
    evaluator = products_service.catalog.auth.evaluator(products_service.catalog.default_warehouse)
    tags = {name: evaluator.table_tags_with_source(table_ref(parse_table_arg(name))) for name in by_name}
    edges = sorted({(str(u), p["name"]) for p in found for u in p["dbt"].get("upstream") or []
                    if isinstance(u, str) and u in by_name and u != p["name"]})
    upstream: dict[str, list[str]] = {n: [] for n in by_name}
    downstream: dict[str, list[str]] = {n: [] for n in by_name}
    for up, down in edges:
        upstream[down].append(up)
        downstream[up].append(down)
    return MeshView(by_name, sorted(by_name), tags, edges, upstream, downstream)


class ViewCache:
    def __init__(self, service) -> None:
        self.service = service
        self._entries: OrderedDict[tuple, tuple[Any, float, MeshView]] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[tuple, threading.Lock] = {}

    def _version(self) -> Any:
        events = self.service.backend.events
        if events is None:
            return None
        evaluator = self.service.auth.evaluator(self.service.default_warehouse)
        return evaluator.policy.version, events.latest()

    def get(self, products_service, ctx: RequestContext) -> MeshView:
        version = self._version()
        if version is None:
            return build(products_service, ctx)
        p = ctx.principal
        key = (p.name, tuple(p.roles), p.anonymous, tuple(sorted(p.scopes)))
        hit = self._hit(key, version)
        if hit is not None:
            return hit
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:  # one listing per principal at a time: the others wait for it and share it
            hit = self._hit(key, version)
            if hit is not None:
                return hit
            started = time.monotonic()
            view = build(products_service, ctx)
            with self._lock:
                self._entries[key] = (version, started, view)
                self._entries.move_to_end(key)
                while len(self._entries) > MAX_PRINCIPALS:
                    self._entries.popitem(last=False)
                if len(self._building) > 4 * MAX_PRINCIPALS:
                    self._building = {k: v for k, v in self._building.items() if k in self._entries or v.locked()}
        return view

    def _hit(self, key: tuple, version: Any) -> MeshView | None:
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] == version and time.monotonic() - hit[1] < MAX_AGE_S:
                self._entries.move_to_end(key)
                return hit[2]
        return None
