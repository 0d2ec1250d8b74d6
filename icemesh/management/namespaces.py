"""Namespaces as the mesh manages them (`icemesh namespaces ...`): created with their owner, listed and shown
with owner, tags, properties and the tables the caller may see, dropped.

A domain's namespace must belong to the domain's principal from its first moment: created through the
REST API by an admin and handed over afterwards, the admin would own it in between, and a failure between
the two steps would leave it so. Creating for another owner therefore needs ADMIN and is one write with
the owner in it. Without an owner (or naming oneself) it is exactly the REST create: CREATE_TABLE on the
catalog (on the parent for a nested namespace), and the caller owns it. Show and drop are the REST load and
drop: a namespace the caller may not see is answered as one that does not exist.
"""

from __future__ import annotations

from typing import Any

from icemesh.catalog.authorizer import namespace_ref, table_ref
from icemesh.protocol import RequestContext
from icemesh.names import Namespace
from icemesh.governance.views import namespace_tags_json
from icemesh.names import parse_namespace_arg
from icemesh.catalog.service import CatalogService
from icemesh.errors import BadRequest, NoSuchNamespace
from icemesh.governance.permissions import Permission


class NamespaceService:
    def __init__(self, catalog: CatalogService) -> None:
        self.catalog = catalog

    def create(self, ctx: RequestContext, name: str, owner: str | None = None,
               properties: dict[str, str] | None = None, warehouse: str | None = None) -> dict[str, Any]:
        wh = self.catalog.find_warehouse(warehouse).name
        ns = parse_namespace_arg(name)
        properties = {str(k): str(v) for k, v in (properties or {}).items()}
        if not owner or owner == ctx.principal.name:
            self.catalog.create_namespace(ctx, wh, ns, properties)
            return self._created(ns, ctx.principal.name, properties, wh)
        self.catalog.auth.admin(ctx, wh, "namespaces owned by another principal")
        if not self.catalog.identities.principal_exists(owner):
            raise BadRequest(f"Unknown principal {owner!r}: create it first with `icemesh principals create {owner}`")
        if len(ns.levels) > 1 and self.catalog.pointers.namespace_properties(wh, Namespace(ns.levels[:-1])) is None:
            parent = ".".join(ns.levels[:-1])
            raise NoSuchNamespace(f"Namespace {parent} does not exist: create it first with "
                                  f"`icemesh namespaces create {parent} --owner {owner}`")
        self.catalog.pointers.create_namespace(wh, ns, properties, owner=owner)  # owner and namespace in one write
        self.catalog.auth.invalidate()
        return self._created(ns, owner, properties, wh)

    @staticmethod
    def _created(ns: Namespace, owner: str, properties: dict[str, str], wh: str) -> dict[str, Any]:
        return {"namespace": str(ns), "owner": owner, "properties": properties, "warehouse": wh}

    def list(self, ctx: RequestContext, warehouse: str | None = None) -> list[dict[str, Any]]:
        """Every namespace (nested ones too) the caller may DESCRIBE, with owner and effective tags."""
        wh = self.catalog.find_warehouse(warehouse).name
        evaluator = self.catalog.auth.evaluator(wh)
        rows = []
        for ns, owner in self.catalog.pointers.namespaces_with_owners(wh):
            seen = self.catalog.auth.namespace(ctx, wh, Permission.DESCRIBE, ns,
                                               lambda ns=ns: self.catalog.pointers.tables_under(wh, ns),
                                               enforce=False, audit=False)
            if seen.allowed:
                rows.append({"namespace": str(ns), "owner": owner, "tags": evaluator.namespace_tags(namespace_ref(ns))})
        return rows

    def show(self, ctx: RequestContext, name: str, warehouse: str | None = None) -> dict[str, Any]:
        """Owner, effective tags (with where each comes from), properties, and the tables the caller may see."""
        wh = self.catalog.find_warehouse(warehouse).name
        ns = parse_namespace_arg(name)
        store = self.catalog.pointers
        properties = self.catalog.load_namespace(ctx, wh, ns)["properties"]  # 404 alike for missing and unseen
        evaluator = self.catalog.auth.evaluator(wh)
        owner = dict(store.namespaces_with_owners(wh)).get(ns)
        tables = [t for t in store.list_tables(wh, ns, None, None)
                  if evaluator.decide_table(ctx.principal.name, Permission.DESCRIBE, table_ref(t)).allowed]
        return {"namespace": str(ns), "owner": owner, "warehouse": wh, "properties": properties,
                "tags": namespace_tags_json(evaluator, namespace_ref(ns))["tags"],
                "tables": [t.name for t in tables]}

    def drop(self, ctx: RequestContext, name: str, warehouse: str | None = None) -> None:
        """The REST drop: DROP on the namespace, refused while it holds tables or namespaces; its tags, grants and
        ownership end with it."""
        self.catalog.drop_namespace(ctx, self.catalog.find_warehouse(warehouse).name, parse_namespace_arg(name))
