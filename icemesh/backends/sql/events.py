"""The change feed in SQL: one row per catalog change, written in the change's own transaction.

Ids are the cursor. On PostgreSQL two transactions could take ids 10 and 11 and commit 11 first, and a
reader that saw 11 would then skip 10; a transaction-scoped advisory lock taken before the insert makes
events commit in id order (SQLite has one writer at a time anyway). Retention: `prune` deletes old rows.
"""

from __future__ import annotations

import json
import threading
import time

from sqlalchemy import delete, func, insert, select, text

from icemesh.backends.sql.database import Database
from icemesh.backends.sql.schema import events_t
from icemesh.catalog.ports import CatalogEvent
from icemesh.names import Namespace

EVENTS_LOCK = 0x1CE5_E7E7  # PostgreSQL advisory lock key: events commit one at a time, in id order
POLL_S = 0.2  # how often a waiting reader looks for events written by other processes
QUICK_S = 0.005  # how often it looks once a writer of this process said one is coming


class SqlEventLog:
    def __init__(self, database: Database) -> None:
        self.db = database
        self._recorded = threading.Condition()

    def record(self, conn, event: CatalogEvent) -> None:
        if conn is None:
            with self.db.write() as conn, conn.begin():
                self._insert(conn, event)
        else:
            self._insert(conn, event)
        with self._recorded:  # (before the caller's commit: a woken reader that finds nothing waits on)
            self._recorded.notify_all()

    def _insert(self, conn, event: CatalogEvent) -> None:
        if self.db.is_postgres:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENTS_LOCK})
        conn.execute(insert(events_t).values(
            at=time.time(), type=event.type, principal=event.principal, warehouse=event.warehouse,
            namespace=Namespace(tuple(event.namespace)).key, name=event.name, snapshot_id=event.snapshot_id,
            detail=json.dumps(event.detail, sort_keys=True)))

    def read(self, after: int, limit: int, types: frozenset[str] | None = None) -> list[CatalogEvent]:
        stmt = select(events_t).where(events_t.c.id > after)
        if types:
            stmt = stmt.where(events_t.c.type.in_(sorted(types)))
        with self.db.read() as conn:
            rows = conn.execute(stmt.order_by(events_t.c.id).limit(limit)).all()
        return [CatalogEvent(r.type, r.principal, r.warehouse, Namespace.from_key(r.namespace).levels if r.namespace else (),
                             r.name,
                             r.snapshot_id, json.loads(r.detail), r.at, r.id) for r in rows]

    def latest(self) -> int:
        with self.db.read() as conn:
            return conn.execute(select(func.max(events_t.c.id))).scalar() or 0

    def wait(self, after: int, timeout: float) -> None:
        """Return once an event after `after` is there, or `timeout` seconds have passed. This process's writers
        wake the waiters as they record, before their transaction commits, so a woken waiter looks again every
        few milliseconds for a while; events written by other processes are found by polling."""
        deadline = time.monotonic() + timeout
        quick_until = 0.0
        while self.latest() <= after:
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                return
            if now < quick_until:
                time.sleep(min(QUICK_S, left))
                continue
            with self._recorded:
                if self._recorded.wait(min(POLL_S, left)):
                    quick_until = time.monotonic() + 1.0

    def prune(self, older_than: float) -> int:
        with self.db.write() as conn, conn.begin():
            return conn.execute(delete(events_t).where(events_t.c.at < older_than)).rowcount or 0
