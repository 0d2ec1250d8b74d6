"""Iceberg view pointers in the catalog's database: like a table's, a compare-and-swap on one row per view."""

from __future__ import annotations

import time
from typing import Any, Callable

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from icemesh.backends.sql.database import Database, idents_in, idents_under
from icemesh.backends.sql.schema import bump_policy_version, namespaces_t, tables_t, views_t
from icemesh.catalog.ports import ViewRecord
from icemesh.errors import AlreadyExists, CommitFailed, NoSuchNamespace, NoSuchView
from icemesh.names import Namespace, TableIdent
from icemesh.tables.locations import overlaps


class SqlViewStore:
    def __init__(self, database: Database, products=None) -> None:
        self.db = database
        self.products = products  # the product index, kept in each view change's transaction

    @staticmethod
    def _where(warehouse: str, ident: TableIdent):
        c = views_t.c
        return (c.warehouse == warehouse, c.namespace == ident.namespace.key, c.name == ident.name)

    def get_view(self, warehouse: str, ident: TableIdent) -> ViewRecord | None:
        with self.db.connect() as conn:
            row = conn.execute(select(views_t.c.metadata_location, views_t.c.location, views_t.c.owner)
                               .where(*self._where(warehouse, ident))).first()
        return None if row is None else ViewRecord(row.metadata_location, row.location, row.owner)

    def list_views(self, warehouse: str, ns: Namespace, after: str | None, limit: int | None) -> list[TableIdent]:
        return idents_in(self.db, views_t, warehouse, ns, after, limit)

    def views_under(self, warehouse: str, ns: Namespace) -> list[TableIdent]:
        """Views in `ns` and in every namespace nested below it."""
        return idents_under(self.db, views_t, warehouse, ns)

    def locations_overlapping(self, location: str) -> list[str]:
        """Locations of views that contain `location` or lie under it (a view's metadata files live there)."""
        with self.db.connect() as conn:
            return [r.location for r in conn.execute(select(views_t.c.location)).all() if overlaps(r.location, location)]

    def _name_free(self, conn, warehouse: str, ident: TableIdent) -> None:
        if conn.execute(select(namespaces_t.c.name).where(namespaces_t.c.warehouse == warehouse,
                                                          namespaces_t.c.name == ident.namespace.key)).first() is None:
            raise NoSuchNamespace(f"Namespace does not exist: {ident.namespace}")
        t = tables_t.c
        if conn.execute(select(t.name).where(t.warehouse == warehouse, t.namespace == ident.namespace.key,
                                             t.name == ident.name)).first() is not None:
            raise AlreadyExists(f"A table named {ident} exists: a view cannot take its name")
        if conn.execute(select(views_t.c.name).where(*self._where(warehouse, ident))).first() is not None:
            raise AlreadyExists(f"View already exists: {ident}")

    def create_view(self, warehouse: str, ident: TableIdent, metadata_location: str, location: str, owner: str,
                    metadata: dict[str, Any] | None = None) -> None:
        now = time.time()
        try:
            with self.db.write() as conn, conn.begin():
                self._name_free(conn, warehouse, ident)
                conn.execute(insert(views_t).values(warehouse=warehouse, namespace=ident.namespace.key, name=ident.name,
                                                    metadata_location=metadata_location, location=location,
                                                    created_at=now, updated_at=now, owner=owner))
                if self.products is not None and metadata is not None:
                    self.products.put_view(conn, warehouse, ident, metadata_location, metadata)
                bump_policy_version(conn)  # a new owner
        except IntegrityError:
            raise AlreadyExists(f"View already exists: {ident}") from None

    def swap_view(self, warehouse: str, ident: TableIdent, expected: str, new: str,
                  metadata: dict[str, Any] | None = None) -> None:
        """Point the view at `new` if it still points at `expected` (another replace got there first: 409)."""
        with self.db.write() as conn, conn.begin():
            result = conn.execute(update(views_t).where(*self._where(warehouse, ident),
                                                        views_t.c.metadata_location == expected)
                                  .values(metadata_location=new, updated_at=time.time()))
            if result.rowcount != 1:
                raise CommitFailed(f"View {ident} changed since it was loaded: load it again and retry")
            if self.products is not None and metadata is not None:
                self.products.put_view(conn, warehouse, ident, new, metadata)

    def drop_view(self, warehouse: str, ident: TableIdent, also: Callable[[Any], None] | None = None) -> ViewRecord:
        with self.db.write() as conn, conn.begin():
            row = conn.execute(select(views_t.c.metadata_location, views_t.c.location, views_t.c.owner)
                               .where(*self._where(warehouse, ident))).first()
            if row is None:
                raise NoSuchView(f"View does not exist: {ident}")
            conn.execute(delete(views_t).where(*self._where(warehouse, ident)))
            if self.products is not None:
                self.products.forget(conn, warehouse, ident)
            if also is not None:
                also(conn)
            bump_policy_version(conn)
        return ViewRecord(row.metadata_location, row.location, row.owner)

    def rename_view(self, warehouse: str, source: TableIdent, destination: TableIdent,
                    also: Callable[[Any], None] | None = None) -> None:
        try:
            with self.db.write() as conn, conn.begin():
                self._name_free(conn, warehouse, destination)
                result = conn.execute(update(views_t).where(*self._where(warehouse, source))
                                      .values(namespace=destination.namespace.key, name=destination.name,
                                              updated_at=time.time()))
                if result.rowcount != 1:
                    raise NoSuchView(f"View does not exist: {source}")
                if self.products is not None:
                    self.products.move(conn, warehouse, source, destination)
                if also is not None:
                    also(conn)
                bump_policy_version(conn)
        except IntegrityError:
            raise AlreadyExists(f"View already exists: {destination}") from None
