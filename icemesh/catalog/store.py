"""The catalog's system of record in SQL (SQLite by default, PostgreSQL in production).

Only pointers live here: which metadata file is current for each table. Pointer changes are
compare-and-swap updates inside one database transaction, so concurrent commits, even from several
server processes, never lose an update, and a multi-table commit lands whole or not at all.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from sqlalchemy import (
    Column,
    Float,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    delete,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from icemesh.catalog.identifiers import Namespace, TableIdent
from icemesh.catalog.locations import ancestors, refuse_overlap
from icemesh.governance.resources import NamespaceRef, TableRef
from icemesh.errors import AlreadyExists, InvalidConfiguration, NamespaceNotEmpty, NoSuchNamespace, NoSuchTable

schema = MetaData()
LOCATION_LOCK = 0x1CE5_0C47
ACCESS_PROPERTY = "icemesh.dbt.access"
RESTRICTED_ACCESS = ("protected", "private")  # PostgreSQL advisory lock key: one table-location claim at a time

warehouses_t = Table(
    "icemesh_warehouses",
    schema,
    Column("name", String(255), primary_key=True),
    Column("root", Text, nullable=False),
    Column("properties", Text, nullable=False, default="{}"),
)

namespaces_t = Table(
    "icemesh_namespaces",
    schema,
    Column("warehouse", String(255), primary_key=True),
    Column("name", String(4200), primary_key=True),
    Column("parent", String(4200), nullable=False, index=True),
    Column("properties", Text, nullable=False, default="{}"),
    Column("created_at", Float, nullable=False),
    Column("owner", String(255)),
)

tables_t = Table(
    "icemesh_tables",
    schema,
    Column("warehouse", String(255), primary_key=True),
    Column("namespace", String(4200), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("metadata_location", Text, nullable=False),
    Column("previous_metadata_location", Text),
    Column("location", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("owner", String(255)),
    # The dbt access level the table's metadata declares (icemesh.dbt.access), kept with every pointer move:
    # protected and private models are not products (see Policy.restricted).
    Column("access", String(16)),
    ForeignKeyConstraint(["warehouse", "namespace"], ["icemesh_namespaces.warehouse", "icemesh_namespaces.name"]),
)

retired_locations_t = Table(
    "icemesh_retired_locations",
    schema,
    Column("location", String(2048), primary_key=True),
    Column("warehouse", String(255), nullable=False),
    Column("namespace", String(4200), nullable=False),
    Column("name", String(255), nullable=False),
    Column("retired_at", Float, nullable=False),
)

policy_version_t = Table(
    "icemesh_policy_version",
    schema,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

idempotency_t = Table(
    "icemesh_idempotency_keys",
    schema,
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(512), nullable=False),
    Column("status", Integer),
    Column("body", LargeBinary),
    Column("created_at", Float, nullable=False),
)


@dataclass(frozen=True)
class TableRecord:
    metadata_location: str
    location: str


@dataclass(frozen=True)
class PointerChange:
    """Move `ident` from `expected` (None: the table must not exist yet) to `new`."""

    ident: TableIdent
    expected: str | None
    new: str
    location: str
    owner: str | None = None  # for creates: who will own the new table
    metadata: Any = field(default=None, compare=False)  # the new TableMetadata (Glue copies columns and properties)
    claims_location: bool = False  # the table takes `location` (a create, a re-pointing register): checked for overlap
    # Governance that moves with this pointer (tags declared in the commit, tags following renamed columns):
    # run inside the swap's transaction with its connection, so both land or neither does.
    also: Callable[[Any], None] | None = field(default=None, compare=False)


def bump_policy_version(conn) -> None:
    """Owners, tags and grants feed authorization: any change to them invalidates cached policies."""
    conn.execute(update(policy_version_t).where(policy_version_t.c.id == 1).values(version=policy_version_t.c.version + 1))


class PointerConflict(Exception):
    """Some table's pointer was not what the commit expected: another commit got there first."""


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def private_file(path: str) -> None:
    """Create `path` (and its missing folders) readable by its owner only; SQLite gives its -wal and -shm files
    the database file's mode. An existing file is left as it is."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        os.makedirs(folder, mode=0o700, exist_ok=True)
    if not os.path.exists(path):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def make_engine(url: str) -> Engine:
    if _is_sqlite(url):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            try:
                private_file(path)
            except OSError as exc:
                raise InvalidConfiguration(f"Cannot create the catalog database {path}: {exc.strerror}") from None
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=32, max_overflow=32)

        @event.listens_for(engine, "connect")
        def _configure(dbapi_conn, _record):  # pragma: no cover - exercised by every test
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            options = conn.get_execution_options()
            if options.get("isolation_level") == "AUTOCOMMIT":
                return  # single-statement reads: no transaction (see CatalogStore._read)
            # Writers take the lock up front: a deferred transaction that upgrades later can deadlock.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("icemesh_write", False) else "BEGIN")

        return engine
    if url.startswith("postgresql"):
        # No pre-ping: it costs a round trip per request; SQLAlchemy still discards connections that fail.
        return create_engine(url, pool_size=32, max_overflow=32, pool_recycle=1800)
    raise InvalidConfiguration(f"Unsupported catalog database {url.split(':', 1)[0]!r}: use sqlite:///path or postgresql://user@host/db")


def create_by_swap(store, warehouse: str, ident: TableIdent, metadata_location: str, location: str,
                   owner: str | None, metadata: Any, also: Callable[[Any], None] | None = None) -> None:
    """Create = swap a pointer from nothing: a lost race is 'already exists' (or 'no namespace' if it went).
    Shared by every pointer store, so both backends answer a create the same way."""
    if store.namespace_properties(warehouse, ident.namespace) is None:
        raise NoSuchNamespace(f"Namespace does not exist: {ident.namespace}")
    try:
        store.swap_pointers(warehouse, [PointerChange(ident, None, metadata_location, location, owner, metadata,
                                                      claims_location=True, also=also)])
    except PointerConflict:
        if store.namespace_properties(warehouse, ident.namespace) is None:
            raise NoSuchNamespace(f"Namespace does not exist: {ident.namespace}") from None
        raise AlreadyExists(f"Table already exists: {ident}") from None


class CatalogStore:
    """Namespaces, table pointers and idempotency records, behind plain methods (no HTTP, no files)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        try:
            schema.create_all(self.engine)
            self._add_missing_columns()
            with self._write() as conn, conn.begin():
                if conn.execute(select(policy_version_t.c.id).where(policy_version_t.c.id == 1)).first() is None:
                    conn.execute(insert(policy_version_t).values(id=1, version=1))
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            raise InvalidConfiguration(f"Cannot open the catalog database: {reason}") from None
        self._t = tables_t.c
        self._load_stmt = select(tables_t.c.metadata_location, tables_t.c.location).where(
            tables_t.c.warehouse == _bind("w"), tables_t.c.namespace == _bind("n"), tables_t.c.name == _bind("t")
        )

    def _add_missing_columns(self) -> None:
        """Catalogs made by an earlier icemesh lack `access` (fixed names, no user input); it fills in at the
        next commit of each table."""
        from sqlalchemy import inspect

        if "access" not in {c["name"] for c in inspect(self.engine).get_columns(tables_t.name)}:
            with self._write() as conn, conn.begin():
                conn.execute(text(f"ALTER TABLE {tables_t.name} ADD COLUMN access VARCHAR(16)"))

    def _write(self):
        return self.engine.connect().execution_options(icemesh_write=True)

    def _read(self):
        """A connection for one-statement reads on hot paths: autocommit, so a lookup is one round trip
        (in a transaction it would be BEGIN, SELECT and ROLLBACK: three on PostgreSQL)."""
        return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def close(self) -> None:
        self.engine.dispose()

    # -- warehouses --------------------------------------------------------------------------------

    def upsert_warehouse(self, name: str, root: str, properties: dict[str, str]) -> None:
        with self._write() as conn, conn.begin():
            found = conn.execute(select(warehouses_t.c.name).where(warehouses_t.c.name == name)).first()
            values = {"root": root, "properties": json.dumps(properties)}
            if found:
                conn.execute(update(warehouses_t).where(warehouses_t.c.name == name).values(**values))
            else:
                conn.execute(insert(warehouses_t).values(name=name, **values))

    def list_warehouses(self) -> list[tuple[str, str, dict[str, str]]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(warehouses_t).order_by(warehouses_t.c.name)).all()
        return [(r.name, r.root, json.loads(r.properties)) for r in rows]

    # -- namespaces --------------------------------------------------------------------------------

    def create_namespace(self, warehouse: str, ns: Namespace, properties: dict[str, str], owner: str | None = None) -> None:
        try:
            with self._write() as conn, conn.begin():
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
        except IntegrityError:
            raise AlreadyExists(f"Namespace {ns} already exists") from None

    def namespace_properties(self, warehouse: str, ns: Namespace) -> dict[str, str] | None:
        with self._read() as conn:
            row = conn.execute(
                select(namespaces_t.c.properties).where(namespaces_t.c.warehouse == warehouse, namespaces_t.c.name == ns.key)
            ).first()
        return None if row is None else json.loads(row.properties)

    def list_namespaces(self, warehouse: str, parent: Namespace | None, after: str | None, limit: int | None) -> list[Namespace]:
        c = namespaces_t.c
        stmt = select(c.name).where(c.warehouse == warehouse, c.parent == (parent.key if parent else ""))
        if after is not None:
            stmt = stmt.where(c.name > after)
        stmt = stmt.order_by(c.name)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
            return [Namespace.from_key(r.name) for r in conn.execute(stmt)]

    def namespaces_with_owners(self, warehouse: str) -> list[tuple[Namespace, str | None]]:
        c = namespaces_t.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(c.name, c.owner).where(c.warehouse == warehouse).order_by(c.name)).all()
        return [(Namespace.from_key(r.name), r.owner) for r in rows]

    def update_namespace_properties(
        self, warehouse: str, ns: Namespace, removals: Iterable[str], updates: dict[str, str]
    ) -> tuple[list[str], list[str], list[str]]:
        c = namespaces_t.c
        where = and_(c.warehouse == warehouse, c.name == ns.key)
        with self._write() as conn, conn.begin():
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
            with self._write() as conn, conn.begin():
                child = conn.execute(select(c.name).where(c.warehouse == warehouse, c.parent == ns.key).limit(1)).first()
                if child is not None:
                    raise NamespaceNotEmpty(f"Namespace {ns} is not empty: it contains namespace {Namespace.from_key(child.name)}")
                table = conn.execute(
                    select(tables_t.c.name).where(tables_t.c.warehouse == warehouse, tables_t.c.namespace == ns.key).limit(1)
                ).first()
                if table is not None:
                    raise NamespaceNotEmpty(f"Namespace {ns} is not empty: it contains table {table.name}; drop its tables first")
                result = conn.execute(delete(namespaces_t).where(c.warehouse == warehouse, c.name == ns.key))
                if result.rowcount == 0:
                    raise NoSuchNamespace(f"Namespace does not exist: {ns}")
                if also is not None:
                    also(conn)
                bump_policy_version(conn)
        except IntegrityError:
            raise NamespaceNotEmpty(f"Namespace {ns} is not empty: a table was created in it concurrently") from None

    # -- tables ------------------------------------------------------------------------------------

    def get_table(self, warehouse: str, ident: TableIdent) -> TableRecord | None:
        with self._read() as conn:
            row = conn.execute(self._load_stmt, {"w": warehouse, "n": ident.namespace.key, "t": ident.name}).first()
        return None if row is None else TableRecord(row[0], row[1])

    def list_tables(self, warehouse: str, ns: Namespace, after: str | None, limit: int | None) -> list[TableIdent]:
        c = tables_t.c
        stmt = select(c.name).where(c.warehouse == warehouse, c.namespace == ns.key)
        if after is not None:
            stmt = stmt.where(c.name > after)
        stmt = stmt.order_by(c.name)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
            return [TableIdent(ns, r.name) for r in conn.execute(stmt)]

    def tables_under(self, warehouse: str, ns: Namespace) -> list[TableIdent]:
        """Tables in `ns` and in every namespace nested below it."""
        c = tables_t.c
        prefix = ns.key + "\x1f"
        stmt = select(c.namespace, c.name).where(c.warehouse == warehouse).where(
            (c.namespace == ns.key) | (c.namespace.startswith(prefix, autoescape=True)))
        with self.engine.connect() as conn:
            return [TableIdent(Namespace.from_key(r.namespace), r.name) for r in conn.execute(stmt)]

    def owners(self, warehouse: str) -> dict[NamespaceRef | TableRef, str]:
        """Who owns each namespace and table (creators, or owners set by policy files)."""
        owners: dict[NamespaceRef | TableRef, str] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(select(namespaces_t.c.name, namespaces_t.c.owner)
                                  .where(namespaces_t.c.warehouse == warehouse, namespaces_t.c.owner.is_not(None))):
                owners[NamespaceRef(Namespace.from_key(r.name).levels)] = r.owner
            for r in conn.execute(select(tables_t.c.namespace, tables_t.c.name, tables_t.c.owner)
                                  .where(tables_t.c.warehouse == warehouse, tables_t.c.owner.is_not(None))):
                owners[TableRef(NamespaceRef(Namespace.from_key(r.namespace).levels), r.name)] = r.owner
        return owners

    def restricted(self, warehouse: str) -> list[TableRef]:
        """Tables whose dbt access level is protected or private."""
        c = tables_t.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(c.namespace, c.name).where(c.warehouse == warehouse,
                                                                  c.access.in_(RESTRICTED_ACCESS))).all()
        return [TableRef(NamespaceRef(Namespace.from_key(r.namespace).levels), r.name) for r in rows]

    def reassign_owner(self, conn, old: str, new: str) -> None:
        """Inside the caller's transaction: everything `old` owned (any warehouse) is `new`'s."""
        conn.execute(update(namespaces_t).where(namespaces_t.c.owner == old).values(owner=new))
        conn.execute(update(tables_t).where(tables_t.c.owner == old).values(owner=new))

    def table_location_in_use(self, warehouse: str, location: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(tables_t.c.name).where(tables_t.c.location == location).limit(1)).first() is not None

    def tables_overlapping(self, location: str, conn=None) -> list[tuple[str, TableIdent, str]]:
        """(warehouse, table, location) of every table whose location equals, contains or lies inside `location`,
        in any warehouse (roots may nest)."""
        c = tables_t.c
        stmt = select(c.warehouse, c.namespace, c.name, c.location).where(
            (c.location == location) | c.location.startswith(location + "/", autoescape=True)
            | c.location.in_(ancestors(location)))
        if conn is None:
            with self.engine.connect() as own:
                rows = own.execute(stmt).all()
        else:
            rows = conn.execute(stmt).all()
        return [(r.warehouse, TableIdent(Namespace.from_key(r.namespace), r.name), r.location) for r in rows]

    def retire_location(self, warehouse: str, ident: TableIdent, location: str) -> None:
        """A table dropped without purge leaves its files: its location stays reserved (see release_location)."""
        with self._write() as conn, conn.begin():
            conn.execute(delete(retired_locations_t).where(retired_locations_t.c.location == location))
            conn.execute(insert(retired_locations_t).values(location=location, warehouse=warehouse,
                                                            namespace=ident.namespace.key, name=ident.name,
                                                            retired_at=time.time()))

    def retired_locations_overlapping(self, location: str) -> list[str]:
        c = retired_locations_t.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(c.location).where(
                (c.location == location) | c.location.startswith(location + "/", autoescape=True)
                | c.location.in_(ancestors(location)))).all()
        return [r.location for r in rows]

    def release_location(self, location: str) -> None:
        """A table (registered by an admin) took over a retired location and its files."""
        c = retired_locations_t.c
        with self._write() as conn, conn.begin():
            conn.execute(delete(retired_locations_t).where(
                (c.location == location) | c.location.startswith(location + "/", autoescape=True)
                | c.location.in_(ancestors(location))))

    def _claim_locations(self, conn, warehouse: str, changes: list[PointerChange]) -> None:
        """Inside the swap's transaction: no claimed location may overlap another table's. On PostgreSQL an
        advisory lock serializes the claims (SQLite's BEGIN IMMEDIATE already does)."""
        claims = [ch for ch in changes if ch.claims_location]
        if not claims:
            return
        if self.engine.dialect.name == "postgresql":
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
            with self._write() as conn, conn.begin():
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
                    if ch.also is not None:
                        ch.also(conn)
        except IntegrityError as exc:
            raise PointerConflict(str(exc.orig)) from None

    def create_table(self, warehouse: str, ident: TableIdent, metadata_location: str, location: str,
                     owner: str | None = None, metadata: Any = None, also: Callable[[Any], None] | None = None) -> None:
        create_by_swap(self, warehouse, ident, metadata_location, location, owner, metadata, also)

    def drop_table(self, warehouse: str, ident: TableIdent, also: Callable[[Any], None] | None = None) -> TableRecord:
        """Drop the pointer; `also(conn)` runs in the same transaction (the table's tags and grants end with it)."""
        c = tables_t.c
        with self._write() as conn, conn.begin():
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
            if also is not None:
                also(conn)
            bump_policy_version(conn)
        return TableRecord(row.metadata_location, row.location)

    def rename_table(self, warehouse: str, source: TableIdent, destination: TableIdent,
                     also: Callable[[Any], None] | None = None) -> None:
        """Rename; `also(conn)` runs in the same transaction (governance moves the table's tags and grants)."""
        c = tables_t.c
        try:
            with self._write() as conn, conn.begin():
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
                if also is not None:
                    also(conn)
                bump_policy_version(conn)
        except IntegrityError:
            raise AlreadyExists(f"Table already exists: {destination}") from None

    # -- idempotency -------------------------------------------------------------------------------

    def claim_idempotency_key(self, key: str, fingerprint: str, lifetime_s: float,
                              lease_s: float = float("inf")) -> tuple[str, int | None, bytes | None]:
        """Claim `key` for a new request, or report what an earlier request with it did.

        Returns ("new", None, None) when this request should run, ("done", status, body) to replay,
        ("pending", None, None) while another request with the key is still running, and
        ("mismatch", None, None) when the key was used for a different operation. A claim still
        unfinished after `lease_s` was left by a server that died: it is taken over ("new").
        """
        c = idempotency_t.c
        now = time.time()
        try:
            with self._write() as conn, conn.begin():
                conn.execute(delete(idempotency_t).where(c.created_at < now - lifetime_s))
                conn.execute(insert(idempotency_t).values(key=key, fingerprint=fingerprint, status=None, body=None, created_at=now))
            return "new", None, None
        except IntegrityError:
            pass
        with self.engine.connect() as conn:
            row = conn.execute(select(c.fingerprint, c.status, c.body, c.created_at).where(c.key == key)).first()
        if row is None:
            return self.claim_idempotency_key(key, fingerprint, lifetime_s, lease_s)
        if row.fingerprint != fingerprint:
            return "mismatch", None, None
        if row.status is None and row.created_at < now - lease_s:
            with self._write() as conn, conn.begin():
                taken = conn.execute(update(idempotency_t).where(c.key == key, c.status.is_(None), c.created_at < now - lease_s)
                                     .values(created_at=time.time())).rowcount
            return ("new" if taken == 1 else "pending"), None, None
        if row.status is None:
            return "pending", None, None
        return "done", row.status, row.body

    def finish_idempotency_key(self, key: str, status: int | None, body: bytes | None) -> None:
        """Record the outcome (status None releases the claim so a retry runs again)."""
        c = idempotency_t.c
        with self._write() as conn, conn.begin():
            if status is None:
                conn.execute(delete(idempotency_t).where(c.key == key))
            else:
                conn.execute(update(idempotency_t).where(c.key == key).values(status=status, body=body))


def _access(change: PointerChange) -> str | None:
    properties = getattr(change.metadata, "properties", None) or {}
    value = properties.get(ACCESS_PROPERTY)
    return value[:16] if value else None


def _bind(name: str):
    from sqlalchemy import bindparam

    return bindparam(name)
