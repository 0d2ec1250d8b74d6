"""The catalog's SQL database (SQLite by default, PostgreSQL in production), shared by the SQL backend's stores.

One engine, and the connection discipline every store follows: `write()` for transactions that change
state (SQLite takes its write lock up front, so a deferred transaction never deadlocks on upgrade), `read()`
for one-statement reads on hot paths (autocommit: one round trip), `lookup()` for the one-row reads of the
hottest path (loadTable's pointer), on a connection each thread keeps.
"""

from __future__ import annotations

import os
import threading

from sqlalchemy import create_engine, event, literal_column, select
from sqlalchemy.engine import Connection, Engine

from icemesh.backends.sql.wal_changes import WalChanges
from icemesh.errors import InvalidConfiguration
from icemesh.names import Namespace, TableIdent


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
                return  # single-statement reads: no transaction (see Database.read)
            # Writers take the lock up front: a deferred transaction that upgrades later can deadlock.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("icemesh_write", False) else "BEGIN")

        return engine
    if url.startswith("postgresql"):
        # No pre-ping: it costs a round trip per request; SQLAlchemy still discards connections that fail.
        return create_engine(url, pool_size=32, max_overflow=32, pool_recycle=1800)
    raise InvalidConfiguration(f"Unsupported catalog database {url.split(':', 1)[0]!r}: use sqlite:///path or postgresql://user@host/db")


LOOKUP_THREADS = 8  # threads that keep a lookup connection; others read through the pool


def _sqlite_path(url: str) -> str | None:
    """The database file of a sqlite URL (None for PostgreSQL and in-memory databases)."""
    if not _is_sqlite(url) or "///" not in url:
        return None
    path = url.split("///", 1)[1].split("?", 1)[0]
    return os.path.abspath(path) if path and path != ":memory:" else None


class Database:
    """The engine and how stores reach it: no store reaches into another for a connection."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._local = threading.local()
        self._lookup_conns: list = []
        self._lookup_lock = threading.Lock()
        self._compiled: dict[int, tuple[object, str, tuple[str, ...] | None]] = {}
        path = _sqlite_path(url)
        self._wal = WalChanges(path) if path else None
        self._probe = select(literal_column("1"))

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def write(self) -> Connection:
        return self.engine.connect().execution_options(icemesh_write=True)

    def read(self) -> Connection:
        """A connection for one-statement reads on hot paths: autocommit, so a lookup is one round trip
        (in a transaction it would be BEGIN, SELECT and ROLLBACK: three on PostgreSQL)."""
        return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def connect(self) -> Connection:
        return self.engine.connect()

    def lookup(self, stmt, params: dict) -> tuple | None:
        """The first row of `stmt` (a select with bound parameters), or None, on a DBAPI connection this thread
        keeps: SQLAlchemy's checkout, execution context and result objects cost several times a one-row query
        by primary key (profiled on loadTable). Autocommit, as `read()`: every commit made before is seen."""
        kept = getattr(self._local, "conn", None)  # (pid, connection): a forked child never uses its parent's
        conn = kept[1] if kept is not None and kept[0] == os.getpid() else self._lookup_connection()
        if conn is None:
            with self.read() as pooled:
                row = pooled.execute(stmt, params).first()
            return None if row is None else tuple(row)
        sql, names = self._sql(stmt)
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(sql, tuple(params[n] for n in names) if names is not None else params)
                return cursor.fetchone()
            finally:
                cursor.close()
        except Exception:  # a dropped server connection, say: read through the pool, which reconnects
            self._drop_lookup_connection(conn)
            with self.read() as pooled:
                row = pooled.execute(stmt, params).first()
            return None if row is None else tuple(row)

    def lookup_generation(self) -> bytes | None:
        """SQLite: a value that changes whenever any connection, of any process, commits (the WAL index header,
        wal_changes.py), so a thread may keep what it looked up until it changes. Read only while this
        thread's lookup connection holds the database open. None where there is no such value (PostgreSQL, an
        in-memory database, a thread past LOOKUP_THREADS, a header caught mid-commit): look up every time."""
        if self._wal is None:
            return None
        kept = getattr(self._local, "conn", None)
        conn = kept[1] if kept is not None and kept[0] == os.getpid() else self._lookup_connection()
        if conn is None:
            return None
        if kept is None or kept[0] != os.getpid():  # a new connection: it has the -shm file open after a statement
            self.lookup(self._probe, {})
            self._wal.refresh()
        return self._wal.header()

    def insert_many(self, conn: Connection, stmt, columns: tuple[str, ...], rows: list[tuple]) -> None:
        """`rows` (tuples in `columns` order) through the DBAPI's executemany on `conn`: SQLAlchemy's own
        executemany processes every row's parameters in Python, which cost the audit log more per loadTable than
        the insert itself (profiled). Values must already be what the driver takes (str, float, bool, None)."""
        sql, names = self._sql(stmt)
        if names is None:  # named parameters (PostgreSQL's pyformat)
            conn.exec_driver_sql(sql, [dict(zip(columns, row)) for row in rows])
        elif names == columns:
            conn.exec_driver_sql(sql, rows)
        else:
            order = [columns.index(n) for n in names]
            conn.exec_driver_sql(sql, [tuple(row[i] for i in order) for row in rows])

    def _sql(self, stmt) -> tuple[str, tuple[str, ...] | None]:
        """The statement's SQL for this dialect, compiled once, with its positional parameter order (or None
        for named parameters). The statement object is kept with it, so its id is never reused meanwhile."""
        found = self._compiled.get(id(stmt))
        if found is None:
            compiled = stmt.compile(dialect=self.engine.dialect)
            names = tuple(compiled.positiontup) if compiled.positional else None
            found = self._compiled[id(stmt)] = (stmt, compiled.string, names)
        return found[1], found[2]

    def _lookup_connection(self):
        """A connection of this thread's own, out of the pool (detached), in autocommit; None past LOOKUP_THREADS."""
        with self._lookup_lock:
            if len(self._lookup_conns) >= LOOKUP_THREADS:
                return None
            fairy = self.engine.raw_connection()
            fairy.detach()  # configured as every pooled connection is (the engine's connect hook), then ours
            conn = fairy.dbapi_connection
            if self.is_postgres:
                conn.autocommit = True
            self._lookup_conns.append(conn)
        self._local.conn = (os.getpid(), conn)
        return conn

    def _drop_lookup_connection(self, conn) -> None:
        self._local.conn = None
        with self._lookup_lock:
            if conn in self._lookup_conns:
                self._lookup_conns.remove(conn)
        try:
            conn.close()
        except Exception:  # already broken
            pass

    def close(self) -> None:
        self._wal = None  # its map stays (wal_changes.py): only read while a connection of ours is open
        with self._lookup_lock:
            conns, self._lookup_conns = self._lookup_conns, []
        for conn in conns:
            try:
                conn.close()
            except Exception:  # already broken
                pass
        self.engine.dispose()


def page_by_name(stmt, name, after: str | None, limit: int | None):
    """Keyset pagination by name: the rows after `after`, in name order, at most `limit`."""
    if after is not None:
        stmt = stmt.where(name > after)
    stmt = stmt.order_by(name)
    return stmt.limit(limit) if limit is not None else stmt


def idents_in(db: Database, table, warehouse: str, ns: Namespace, after: str | None,
              limit: int | None) -> list[TableIdent]:
    """One page of the names in namespace `ns` of a pointer table (tables or views) with `warehouse`,
    `namespace` and `name` columns, as TableIdents."""
    c = table.c
    stmt = page_by_name(select(c.name).where(c.warehouse == warehouse, c.namespace == ns.key), c.name, after, limit)
    with db.connect() as conn:
        return [TableIdent(ns, r.name) for r in conn.execute(stmt)]


def idents_under(db: Database, table, warehouse: str, ns: Namespace) -> list[TableIdent]:
    """Every name in `ns` and in the namespaces nested below it, of a pointer table (tables or views)."""
    c = table.c
    stmt = select(c.namespace, c.name).where(c.warehouse == warehouse).where(
        (c.namespace == ns.key) | (c.namespace.startswith(ns.key + "\x1f", autoescape=True)))
    with db.connect() as conn:
        return [TableIdent(Namespace.from_key(r.namespace), r.name) for r in conn.execute(stmt)]
