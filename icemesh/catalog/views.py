"""Iceberg views over REST, governed like tables: DESCRIBE lists and finds them, SELECT loads them,
CREATE_TABLE on the namespace creates them (the creator owns the view), ALTER replaces and renames, DROP drops.
Tags and grants name a view as they name a table. A view's SQL runs in the reader's engine against tables
the catalog governs on their own, so a view never widens what its reader may read.
"""

from __future__ import annotations

from typing import Any, NoReturn

import orjson

from icemesh.catalog import pagination
from icemesh.catalog.authorizer import table_ref
from icemesh.catalog.ports import ViewStore
from icemesh.errors import AlreadyExists, Forbidden, NoSuchView, Unsupported
from icemesh.governance.permissions import Permission
from icemesh.names import Namespace, TableIdent
from icemesh.protocol import RequestContext
from icemesh.storage.warehouse import Warehouse
from icemesh.tables import view_metadata as vm


class ViewService:
    def __init__(self, catalog) -> None:
        self.catalog = catalog

    @property
    def store(self) -> ViewStore:
        if self.catalog.backend.views is None:
            raise Unsupported("This catalog's backend keeps no views (the SQL backend does)")
        return self.catalog.backend.views

    # -- reading -----------------------------------------------------------------------------------

    def list_views(self, ctx: RequestContext, prefix: str, ns: Namespace, page_token: str | None,
                   page_size: int | None) -> dict[str, Any]:
        wh = self.catalog.warehouse(prefix)
        self.catalog.require_namespace_permission(ctx, wh, ns, Permission.DESCRIBE)
        visible, next_token = pagination.filtered_page(
            lambda after, limit: self.store.list_views(wh.name, ns, after, limit),
            lambda v: self._may(ctx, wh, v, Permission.DESCRIBE), lambda v: v.name, page_token, page_size)
        result: dict[str, Any] = {"identifiers": [v.to_json() for v in visible]}
        if next_token:
            result["next-page-token"] = next_token
        return result

    def load_view(self, ctx: RequestContext, prefix: str, ident: TableIdent) -> dict[str, Any]:
        wh = self.catalog.warehouse(prefix)
        record, doc = self._read(ctx, wh, ident)
        columns = [f["name"] for f in vm.current_schema(doc).get("fields", [])]
        decision = self.catalog.auth.table(ctx, wh.name, Permission.SELECT, ident, columns, enforce=False)
        if not decision.allowed:
            self._refuse(ctx, wh, ident, decision.message())
        if not decision.all_columns:
            self._refuse(ctx, wh, ident, f"{ctx.principal.name} may not read every column of view {ident} "
                                         "(some are hidden by policy); ask for a grant on them")
        result = {"metadata-location": record.metadata_location, "metadata": doc, "config": {}}
        tags = self.catalog.auth.evaluator(wh.name).table_tags(table_ref(ident))
        if tags:
            result["labels"] = {"object-labels": tags}  # the view's effective tags (the spec's labels)
        return result

    def view_exists(self, ctx: RequestContext, prefix: str, ident: TableIdent) -> None:
        wh = self.catalog.warehouse(prefix)
        if self.store.get_view(wh.name, ident) is None or not self._may(ctx, wh, ident, Permission.DESCRIBE):
            raise self._no_view(ident)

    # -- writing -----------------------------------------------------------------------------------

    def create_view(self, ctx: RequestContext, prefix: str, ns: Namespace, request: dict[str, Any]) -> dict[str, Any]:
        wh = self.catalog.warehouse(prefix)
        ident = TableIdent.of(ns, request.get("name"))
        self.catalog.require_namespace_permission(ctx, wh, ns, Permission.CREATE_TABLE)
        if self.catalog.pointers.get_table(wh.name, ident) is not None:
            raise AlreadyExists(f"A table named {ident} exists: a view cannot take its name")
        if self.store.get_view(wh.name, ident) is not None:
            raise AlreadyExists(f"View already exists: {ident}")
        location = self._location(wh, ns, ident, request.get("location"))
        doc = vm.new_view(request, location)
        metadata_location = wh.metadata_file_location(location, 0)
        wh.write_new_file(metadata_location, vm.serialize(doc))
        try:
            self.store.create_view(wh.name, ident, metadata_location, location, owner=ctx.principal.name, metadata=doc)
        except Exception:
            wh.delete_file(metadata_location)
            raise
        self.catalog.auth.invalidate()
        self.catalog.auth.note_new_owner()
        return {"metadata-location": metadata_location, "metadata": doc, "config": {}}

    def replace_view(self, ctx: RequestContext, prefix: str, ident: TableIdent, requirements: list[Any],
                     updates: list[Any]) -> dict[str, Any]:
        wh = self.catalog.warehouse(prefix)
        record, base = self._read(ctx, wh, ident)
        self._require(ctx, wh, ident, Permission.ALTER)
        vm.check_requirements(base, requirements)
        doc = vm.apply_updates(base, updates)
        if doc == base:
            return {"metadata-location": record.metadata_location, "metadata": base}
        metadata_location = wh.metadata_file_location(record.location, _next_version(record.metadata_location))
        wh.write_new_file(metadata_location, vm.serialize(doc))
        try:
            self.store.swap_view(wh.name, ident, record.metadata_location, metadata_location, metadata=doc)
        except Exception:
            wh.delete_file(metadata_location)
            raise
        return {"metadata-location": metadata_location, "metadata": doc}

    def drop_view(self, ctx: RequestContext, prefix: str, ident: TableIdent) -> None:
        wh = self.catalog.warehouse(prefix)
        if self.store.get_view(wh.name, ident) is None:
            raise self._no_view(ident)
        self._require(ctx, wh, ident, Permission.DROP)
        last = not any(self.store.get_view(other, ident) is not None or
                       self.catalog.pointers.get_table(other, ident) is not None
                       for other in self.catalog.warehouses if other != wh.name)
        self.store.drop_view(wh.name, ident, also=lambda conn: self.catalog.policy.forget_table(
            conn, wh.name, table_ref(ident), last))
        self.catalog.auth.invalidate()

    def rename_view(self, ctx: RequestContext, prefix: str, source: TableIdent, destination: TableIdent) -> None:
        wh = self.catalog.warehouse(prefix)
        if self.store.get_view(wh.name, source) is None:
            raise self._no_view(source)
        self._require(ctx, wh, source, Permission.ALTER)
        self.catalog.require_namespace_permission(ctx, wh, destination.namespace, Permission.CREATE_TABLE)
        elsewhere = any(self.store.get_view(other, source) is not None
                        for other in self.catalog.warehouses if other != wh.name)
        self.store.rename_view(wh.name, source, destination, also=lambda conn: self.catalog.policy.move_table(
            conn, wh.name, table_ref(source), table_ref(destination), elsewhere))
        self.catalog.auth.invalidate()

    # -- rules -------------------------------------------------------------------------------------

    def _location(self, wh: Warehouse, ns: Namespace, ident: TableIdent, asked: str | None) -> str:
        """The catalog's own location for the view, or one the client asks for inside the warehouse that no
        table's files are under (a view writes metadata files there, and every file belongs to one owner)."""
        if not asked:
            return wh.default_table_location(ns, ident.name)
        location = wh.require_inside(asked.rstrip("/"), "view location")
        if self.catalog.pointers.tables_overlapping(location) or self.catalog.pointers.table_location_in_use(wh.name, location) \
                or self.store.locations_overlapping(location):
            raise Forbidden(f"View location {asked!r} overlaps a table's or another view's files: omit it and the "
                            "catalog chooses one")
        return location

    def _read(self, ctx: RequestContext, wh: Warehouse, ident: TableIdent):
        record = self.store.get_view(wh.name, ident)
        if record is None or not self._may(ctx, wh, ident, Permission.DESCRIBE):
            raise self._no_view(ident)
        return record, vm.validated(orjson.loads(wh.read_bytes(record.metadata_location)))

    def _may(self, ctx: RequestContext, wh: Warehouse, ident: TableIdent, permission: Permission) -> bool:
        return self.catalog.auth.table(ctx, wh.name, permission, ident, enforce=False, audit=False).allowed

    def _require(self, ctx: RequestContext, wh: Warehouse, ident: TableIdent, permission: Permission) -> None:
        decision = self.catalog.auth.table(ctx, wh.name, permission, ident, enforce=False)
        if not decision.allowed:
            self._refuse(ctx, wh, ident, decision.message().replace(f"table {ident}", f"view {ident}"))

    def _refuse(self, ctx: RequestContext, wh: Warehouse, ident: TableIdent, message: str) -> NoReturn:
        """403 naming the missing grant to a caller that may see the view; otherwise the same 404 as a missing one."""
        if self._may(ctx, wh, ident, Permission.DESCRIBE):
            raise Forbidden(message)
        raise self._no_view(ident)

    @staticmethod
    def _no_view(ident: TableIdent) -> NoSuchView:
        return NoSuchView(f"no view {ident} you may see")


def _next_version(metadata_location: str) -> int:
    name = metadata_location.rsplit("/", 1)[-1]
    head = name.split("-", 1)[0]
    return int(head) + 1 if head.isdigit() else 1
