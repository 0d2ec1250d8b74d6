"""Namespaces and table pointers in SQL: which metadata file is current for each table, who owns what.

Pointer changes are compare-and-swap updates inside one database transaction, so concurrent commits, even
from several server processes, never lose an update, and a multi-table commit lands whole or not at all.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable, Iterable

from sqlalchemy import and_, bindparam, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from icemesh.backends.sql.database import Database, idents_in, idents_under, page_by_name
from icemesh.backends.sql.schema import (
    ACCESS_PROPERTY,
    RESTRICTED_ACCESS,
    bump_policy_version,
    namespaces_t,
    pointer_version_t,
    retired_locations_t,
    tables_t,
    views_t,
    warehouses_t,
)
from icemesh.catalog.ports import PointerChange, PointerConflict, TableRecord, create_by_swap
from icemesh.errors import AlreadyExists, CommitStateUnknown, NamespaceNotEmpty, NoSuchNamespace, NoSuchTable
from icemesh.governance.resources import NamespaceRef, TableRef
from icemesh.names import Namespace, TableIdent
from icemesh.tables.locations import ancestors, refuse_overlap

KEPT_POINTERS = 20_000  # per thread (at most LOOKUP_THREADS keep any), until a pointer moves
LOCATION_LOCK = 0x1CE5_0C47  # PostgreSQL advisory lock key: one table-location claim at a time


class SqlPointerStore:
    """The catalog service's PointerStore on the SQL database (no HTTP, no files)."""

    def __init__(self, database: Database, products=None) -> None:
        self.db = database
        self.products = products  # the product index (SqlProductIndex), kept in each pointer move's transaction
        self._local = threading.local()  # per thread, so keeping pointers takes no lock (get_table)
        self._version_stmt = select(pointer_version_t.c.version).where(pointer_version_t.c.id == bindparam("i"))
        self._load_stmt = select(tables_t.c.metadata_location, tables_t.c.location).where(
            tables_t.c.warehouse == bindparam("w"), tables_t.c.namespace == bindparam("n"),
            tables_t.c.name == bindparam("t"))

    def upsert_warehouse(self, name: str, root: str, properties: dict[str, str]) -> None:
        with self.db.write() as conn, conn.begin():
            found = conn.execute(select(warehouses_t.c.name).where(warehouses_t.c.name == name)).first()
            values = {"root": root, "properties": json.dumps(properties)}
            if found:
                conn.execute(update(warehouses_t).where(warehouses_t.c.name == name).values(**values))
            else:
                conn.execute(insert(warehouses_t).values(name=name, **values))

    def list_warehouses(self) -> list[tuple[str, str, dict[str, str]]]:
        with self.db.connect() as conn:
            rows = conn.execute(select(warehouses_t).order_by(warehouses_t.c.name)).all()
        return [(r.name, r.root, json.loads(r.properties)) for r in rows]

    def create_namespace(self, warehouse: str, ns: Namespace, properties: dict[str, str], owner: str | None = None,
                         also: Callable[[Any], None] | None = None) -> None:
        """`also(conn)` runs in the same transaction (the namespace's event)."""
        try:
            with self.db.write() as conn, conn.begin():
                conn.execute(
                    insert(namespaces_t).values(
                        warehouse=warehouse,
                        name=ns.key,
                        parent=ns.parent_key,
                        properties=json.dumps(properties),
                        created_at=time.time(),
                        owner=owner,
                    )
                )
                bump_policy_version(conn)
                if also is not None:
                    also(conn)
        except IntegrityError:
            raise AlreadyExists(f"Namespace {ns} already exists") from None

    def namespace_properties(self, warehouse: str, ns: Namespace) -> dict[str, str] | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(namespaces_t.c.properties).where(namespaces_t.c.warehouse == warehouse, namespaces_t.c.name == ns.key)
            ).first()
        return None if row is None else json.loads(row.properties)

    def list_namespaces(self, warehouse: str, parent: Namespace | None, after: str | None, limit: int | None) -> list[Namespace]:
        c = namespaces_t.c
        stmt = page_by_name(select(c.name).where(c.warehouse == warehouse, c.parent == (parent.key if parent else "")),
                     c.name, after, limit)
        with self.db.connect() as conn:
            return [Namespace.from_key(r.name) for r in conn.execute(stmt)]

    def namespaces_with_owners(self, warehouse: str) -> list[tuple[Namespace, str | None]]:
        c = namespaces_t.c
        with self.db.connect() as conn:
            rows = conn.execute(select(c.name, c.owner).where(c.warehouse == warehouse).order_by(c.name)).all()
        return [(Namespace.from_key(r.name), r.owner) for r in rows]

    def update_namespace_properties(
        self, warehouse: str, ns: Namespace, removals: Iterable[str], updates: dict[str, str]
    ) -> tuple[list[str], list[str], list[str]]:
        c = namespaces_t.c
        where = and_(c.warehouse == warehouse, c.name == ns.key)
        with self.db.write() as conn, conn.begin():
            row = conn.execute(select(c.properties).where(where)).first()
            if row is None:
                raise NoSuchNamespace(f"Namespace does not exist: {ns}")
            props = json.loads(row.properties)
            removed = [k for k in removals if k in props]
            missing = [k for k in removals if k not in props]
            for key in removed:
                del props[key]
            props.update(updates)
            conn.execute(update(namespaces_t).where(where).values(properties=json.dumps(props)))
        return list(updates), removed, missing

    def drop_namespace(self, warehouse: str, ns: Namespace, also: Callable[[Any], None] | None = None) -> None:
        """Drop an empty namespace; `also(conn)` runs in the same transaction (its tags and grants end with it)."""
        c = namespaces_t.c
        try:
            with self.db.write() as conn, conn.begin():
                child = conn.execute(select(c.name).where(c.warehouse == warehouse, c.parent == ns.key).limit(1)).first()
                if child is not None:
                    raise NamespaceNotEmpty(f"Namespace {ns} is not empty: it contains namespace {Namespace.from_key(child.name)}")
                table = conn.execute(
                    select(tables_t.c.name).where(tables_t.c.warehouse == warehouse, tables_t.c.namespace == ns.key).limit(1)
                ).first()
                if table is not None:
                    raise NamespaceNotEmpty(f"Namespace {ns} is not empty: it contains table {table.name}; drop its tables first")
                view = conn.execute(
                    select(views_t.c.name).where(views_t.c.warehouse == warehouse, views_t.c.namespace == ns.key).limit(1)
                ).first()
                if view is not None:
                    raise NamespaceNotEmpty(f"Namespace {ns} is not empty: it contains view {view.name}; drop its views first")
                result = conn.execute(delete(namespaces_t).where(c.warehouse == warehouse, c.name == ns.key))
                if result.rowcount == 0:
                    raise NoSuchNamespace(f"Namespace does not exist: {ns}")
                if also is not None:
                    also(conn)
                bump_policy_version(conn)
        except IntegrityError:
            raise NamespaceNotEmpty(f"Namespace {ns} is not empty: a table was created in it concurrently") from None

    def get_table(self, warehouse: str, ident: TableIdent) -> TableRecord | None:
        """The table's pointer. On SQLite each thread keeps the pointers it read (a kept loadTable's select
        was its largest cost: benchmarks/catalog.py) for as long as the database has seen no commit (its WAL
        index header, Database.lookup_generation) or, after one, as long as no pointer moved (the triggers'
        icemesh_pointer_version, one select for all of them)."""
        kept = self._kept()
        if kept is not None:
            found = kept[2].get((warehouse, ident))
            if found is not None:
                return found
        row = self.db.lookup(self._load_stmt, {"w": warehouse, "n": ident.namespace.key, "t": ident.name})
        record = None if row is None else TableRecord(row[0], row[1])
        if record is not None and kept is not None and len(kept[2]) < KEPT_POINTERS:
            kept[2][(warehouse, ident)] = record  # read after the checks in _kept: never older than they say
        return record

    def _kept(self) -> tuple[bytes, int, dict] | None:
        """This thread's (WAL header, pointer version, pointers), checked against the database now; None: look
        every pointer up."""
        header = self.db.lookup_generation()
        if header is None:
            return None
        kept = getattr(self._local, "pointers", None)
        if kept is not None and kept[0] == header:
            return kept
        row = self.db.lookup(self._version_stmt, {"i": 1})  # something committed: did a pointer move?
        if row is None:
            return None
        version = row[0]
        pointers = kept[2] if kept is not None and kept[1] == version else {}
        kept = self._local.pointers = (header, version, pointers)
        return kept

    def list_tables(self, warehouse: str, ns: Namespace, after: str | None, limit: int | None) -> list[TableIdent]:
        return idents_in(self.db, tables_t, warehouse, ns, after, limit)

    def tables_under(self, warehouse: str, ns: Namespace) -> list[TableIdent]:
        """Tables in `ns` and in every namespace nested below it."""
        return idents_under(self.db, tables_t, warehouse, ns)

    def owners(self, warehouse: str) -> dict[NamespaceRef | TableRef, str]:
        """Who owns each namespace and table (creators, or owners set by policy files)."""
        owners: dict[NamespaceRef | TableRef, str] = {}
        with self.db.connect() as conn:
            for r in conn.execute(select(namespaces_t.c.name, namespaces_t.c.owner)
                                  .where(namespaces_t.c.warehouse == warehouse, namespaces_t.c.owner.is_not(None))):
                owners[NamespaceRef(Namespace.from_key(r.name).levels)] = r.owner
            for r in conn.execute(select(tables_t.c.namespace, tables_t.c.name, tables_t.c.owner)
                                  .where(tables_t.c.warehouse == warehouse, tables_t.c.owner.is_not(None))):
                owners[TableRef(NamespaceRef(Namespace.from_key(r.namespace).levels), r.name)] = r.owner
            for r in conn.execute(select(views_t.c.namespace, views_t.c.name, views_t.c.owner)
                                  .where(views_t.c.warehouse == warehouse, views_t.c.owner.is_not(None))):
                owners[TableRef(NamespaceRef(Namespace.from_key(r.namespace).levels), r.name)] = r.owner  # views too
        return owners

    def restricted(self, warehouse: str) -> list[TableRef]:
        """Tables whose dbt access level is protected or private."""
        c = tables_t.c
        with self.db.connect() as conn:
            rows = conn.execute(select(c.namespace, c.name).where(c.warehouse == warehouse,
                                                                  c.access.in_(RESTRICTED_ACCESS))).all()
        return [TableRef(NamespaceRef(Namespace.from_key(r.namespace).levels), r.name) for r in rows]

    def reassign_owner(self, conn, old: str, new: str) -> None:
        """Inside the caller's transaction: everything `old` owned (any warehouse) is `new`'s."""
        conn.execute(update(namespaces_t).where(namespaces_t.c.owner == old).values(owner=new))
        conn.execute(update(tables_t).where(tables_t.c.owner == old).values(owner=new))

    def table_location_in_use(self, warehouse: str, location: str) -> bool:
        with self.db.connect() as conn:
            return conn.execute(select(tables_t.c.name).where(tables_t.c.location == location).limit(1)).first() is not None

    def tables_overlapping(self, location: str, conn=None) -> list[tuple[str, TableIdent, str]]:
        """(warehouse, table, location) of every table whose location equals, contains or lies inside `location`,
        in any warehouse (roots may nest)."""
        c = tables_t.c
        stmt = select(c.warehouse, c.namespace, c.name, c.location).where(
            (c.location == location) | c.location.startswith(location + "/", autoescape=True)
            | c.location.in_(ancestors(location)))
        if conn is None:
            with self.db.connect() as own:
                rows = own.execute(stmt).all()
        else:
            rows = conn.execute(stmt).all()
        return [(r.warehouse, TableIdent(Namespace.from_key(r.namespace), r.name), r.location) for r in rows]

    def retire_location(self, warehouse: str, ident: TableIdent, location: str) -> None:
        """A table dropped without purge leaves its files: its location stays reserved (see release_location)."""
        with self.db.write() as conn, conn.begin():
            conn.execute(delete(retired_locations_t).where(retired_locations_t.c.location == location))
            conn.execute(insert(retired_locations_t).values(location=location, warehouse=warehouse,
                                                            namespace=ident.namespace.key, name=ident.name,
                                                            retired_at=time.time()))

    def retired_locations_overlapping(self, location: str) -> list[str]:
        c = retired_locations_t.c
        with self.db.connect() as conn:
            rows = conn.execute(select(c.location).where(
                (c.location == location) | c.location.startswith(location + "/", autoescape=True)
                | c.location.in_(ancestors(location)))).all()
        return [r.location for r in rows]

    def release_location(self, location: str) -> None:
        """A table (registered by an admin) took over a retired location and its files."""
        c = retired_locations_t.c
        with self.db.write() as conn, conn.begin():
            conn.execute(delete(retired_locations_t).where(
                (c.location == location) | c.location.startswith(location + "/", autoescape=True)
                | c.location.in_(ancestors(location))))

    def _claim_locations(self, conn, warehouse: str, changes: list[PointerChange]) -> None:
        """Inside the swap's transaction: no claimed location may overlap another table's. On PostgreSQL an
        advisory lock serializes the claims (SQLite's BEGIN IMMEDIATE already does)."""
        claims = [ch for ch in changes if ch.claims_location]
        if not claims:
            return
        if self.db.is_postgres:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCATION_LOCK})
        for ch in claims:
            for other_wh, other, _location in self.tables_overlapping(ch.location, conn):
                if (other_wh, other) != (warehouse, ch.ident):
                    raise refuse_overlap(ch.location)

    def swap_pointers(self, warehouse: str, changes: list[PointerChange]) -> None:
        """Apply every change or none: a missing expected pointer raises PointerConflict."""
        c = tables_t.c
        now = time.time()
        try:
            with self.db.write() as conn, conn.begin():
                for ch in changes:
                    self._claim_locations(conn, warehouse, [ch])  # after the earlier changes of this transaction
                    key = (c.warehouse == warehouse, c.namespace == ch.ident.namespace.key, c.name == ch.ident.name)
                    if ch.expected is None:
                        conn.execute(
                            insert(tables_t).values(
                                warehouse=warehouse,
                                namespace=ch.ident.namespace.key,
                                name=ch.ident.name,
                                metadata_location=ch.new,
                                previous_metadata_location=None,
                                location=ch.location,
                                created_at=now,
                                updated_at=now,
                                owner=ch.owner,
                                access=_access(ch),
                            )
                        )
                        bump_policy_version(conn)
                    else:
                        result = conn.execute(
                            update(tables_t)
                            .where(*key, c.metadata_location == ch.expected)
                            .values(
                                metadata_location=ch.new,
                                previous_metadata_location=ch.expected,
                                location=ch.location,
                                updated_at=now,
                                **({"access": _access(ch)} if ch.metadata is not None else {}),
                            )
                        )
                        if result.rowcount != 1:
                            raise PointerConflict(str(ch.ident))
                    if self.products is not None and ch.metadata is not None and ch.new != ch.expected:
                        self.products.put_table(conn, warehouse, ch.ident, ch.new, ch.metadata, ch.expected)
                    if ch.also is not None:
                        ch.also(conn)
        except IntegrityError as exc:
            raise PointerConflict(str(exc.orig)) from None
        except SQLAlchemyError as exc:  # the database failed mid-commit: the client must not assume either outcome
            raise CommitStateUnknown("Catalog database failed during commit; reload the table before retrying "
                                     f"({exc.__class__.__name__})") from None

    def create_table(self, warehouse: str, ident: TableIdent, metadata_location: str, location: str,
                     owner: str | None = None, metadata: Any = None, also: Callable[[Any], None] | None = None) -> None:
        create_by_swap(self, warehouse, ident, metadata_location, location, owner, metadata, also)

    def drop_table(self, warehouse: str, ident: TableIdent, also: Callable[[Any], None] | None = None) -> TableRecord:
        """Drop the pointer; `also(conn)` runs in the same transaction (the table's tags and grants end with it)."""
        c = tables_t.c
        with self.db.write() as conn, conn.begin():
            row = conn.execute(
                select(c.metadata_location, c.location).where(
                    c.warehouse == warehouse, c.namespace == ident.namespace.key, c.name == ident.name
                )
            ).first()
            if row is None:
                raise NoSuchTable(f"Table does not exist: {ident}")
            conn.execute(
                delete(tables_t).where(c.warehouse == warehouse, c.namespace == ident.namespace.key, c.name == ident.name)
            )
            if self.products is not None:
                self.products.forget(conn, warehouse, ident)
            if also is not None:
                also(conn)
            bump_policy_version(conn)
        return TableRecord(row.metadata_location, row.location)

    def rename_table(self, warehouse: str, source: TableIdent, destination: TableIdent,
                     also: Callable[[Any], None] | None = None) -> None:
        """Rename; `also(conn)` runs in the same transaction (governance moves the table's tags and grants)."""
        c = tables_t.c
        try:
            with self.db.write() as conn, conn.begin():
                ns_row = conn.execute(
                    select(namespaces_t.c.name).where(
                        namespaces_t.c.warehouse == warehouse, namespaces_t.c.name == destination.namespace.key
                    )
                ).first()
                if ns_row is None:
                    raise NoSuchNamespace(f"Namespace does not exist: {destination.namespace}")
                result = conn.execute(
                    update(tables_t)
                    .where(c.warehouse == warehouse, c.namespace == source.namespace.key, c.name == source.name)
                    .values(namespace=destination.namespace.key, name=destination.name, updated_at=time.time())
                )
                if result.rowcount != 1:
                    raise NoSuchTable(f"Table does not exist: {source}")
                if self.products is not None:
                    self.products.move(conn, warehouse, source, destination)
                if also is not None:
                    also(conn)
                bump_policy_version(conn)
        except IntegrityError:
            raise AlreadyExists(f"Table already exists: {destination}") from None


def _access(change: PointerChange) -> str | None:
    properties = getattr(change.metadata, "properties", None) or {}
    value = properties.get(ACCESS_PROPERTY)
    return value[:16] if value else None

