"""The audit log in SQL: every decision, login and refused request, buffered and written in batches by a background
thread, so recording every decision costs a request almost nothing (and a failed batch is retried, never lost)."""

from __future__ import annotations

import logging
import os
import threading
import time

from sqlalchemy import bindparam, func, insert, select

from icemesh.backends.sql.database import Database
from icemesh.backends.sql.schema import audit_t
from icemesh.catalog.ports import AuditRecord

log = logging.getLogger("icemesh.audit")
BATCH = 500  # records a busy server writes in one transaction
# A buffered record is a tuple in this order (AuditRecord's fields), inserted as it is (Database.insert_many).
_COLUMNS = ("at", "principal", "action", "resource", "allowed", "reason", "request_id")
_INSERT = insert(audit_t).values({name: bindparam(name) for name in _COLUMNS})


class SqlAudit:
    def __init__(self, database: Database, flush_s: float | None = None) -> None:
        self.db = database
        self.audit_flush_s = flush_s if flush_s is not None else float(os.environ.get("ICEMESH_AUDIT_FLUSH_SECONDS", "0.2"))
        self._audit_buffer: list[tuple] = []
        self._audit_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._audit_wakeup = threading.Event()
        self._audit_stop = False
        self._audit_thread = threading.Thread(target=self._audit_writer, name="icemesh-audit", daemon=True)
        self._audit_thread.start()

    def audit(self, record: AuditRecord) -> None:
        """Buffer the record; a full buffer is written by the thread that filled it. Handing it to the writer
        thread instead made the two trade the GIL at every row's SQLite step, and a busy server lost a third of
        its loadTable throughput to that (benchmarks/catalog.py); the writer thread only writes what waits
        longer than `audit_flush_s` on a quiet server."""
        with self._audit_lock:
            self._audit_buffer.append((record.at, record.principal, record.action, record.resource, record.allowed,
                                       record.reason, record.request_id))
            full = len(self._audit_buffer) >= BATCH
        if full and self._flush_lock.acquire(blocking=False):  # another thread writing: it takes these next time
            try:
                self._write_buffered()
            finally:
                self._flush_lock.release()

    def audit_login(self, principal: str, address: str, how: str) -> None:
        """A successful login, in the name of the principal it authenticated."""
        self.audit(AuditRecord(time.time(), principal, "LOGIN", "the catalog", True, f"{how} from {address}"))

    def audit_failed_login(self, client_id: str, address: str, reason: str) -> None:
        """A failed login names the id it tried, but is never recorded as that principal's (anyone can type it)."""
        shown = "".join(ch for ch in client_id if ch.isprintable())[:64]
        self.audit(AuditRecord(time.time(), "anonymous", "LOGIN", "the catalog", False,
                               f"failed login as {shown!r} from {address}: {reason}"))

    def audit_rejected_token(self, reason: str, request_id: str | None) -> None:
        """A request without a valid token (missing, forged, expired, revoked): a denial like any other."""
        self.audit(AuditRecord(time.time(), "anonymous", "AUTHENTICATE", "the catalog", False, reason, request_id))

    def flush_audit(self) -> None:
        """Write what is buffered. One flush at a time: a reader's flush (audit_records, audit_count) waits for a
        batch the writer thread has taken but not yet committed, so it counts every record made before it."""
        with self._flush_lock:
            self._write_buffered()

    def _write_buffered(self) -> None:
        """Under `_flush_lock`."""
        with self._audit_lock:
            batch, self._audit_buffer = self._audit_buffer, []
        if batch:
            try:
                with self.db.write() as conn, conn.begin():
                    self.db.insert_many(conn, _INSERT, _COLUMNS, batch)
            except Exception:  # never lose the batch silently
                log.exception("could not write %d audit records; will retry", len(batch))
                with self._audit_lock:
                    self._audit_buffer[:0] = batch

    def _audit_writer(self) -> None:
        while not self._audit_stop:
            self._audit_wakeup.wait(self.audit_flush_s)
            self._audit_wakeup.clear()
            self.flush_audit()

    def close(self) -> None:
        self._audit_stop = True
        self._audit_wakeup.set()
        self._audit_thread.join(timeout=5)
        self.flush_audit()

    def audit_records(self, principal: str | None = None, allowed: bool | None = None, limit: int = 100,
                      since: float | None = None) -> list[AuditRecord]:
        self.flush_audit()
        c = audit_t.c
        stmt = select(c.at, c.principal, c.action, c.resource, c.allowed, c.reason, c.request_id)
        if principal:
            stmt = stmt.where(c.principal == principal)
        if allowed is not None:
            stmt = stmt.where(c.allowed == allowed)
        if since is not None:
            stmt = stmt.where(c.at >= since)
        stmt = stmt.order_by(c.id.desc()).limit(limit)
        with self.db.connect() as conn:
            return [AuditRecord(*r) for r in conn.execute(stmt).all()]

    def audit_count(self) -> int:
        self.flush_audit()
        with self.db.connect() as conn:
            return conn.execute(select(func.count()).select_from(audit_t)).scalar_one()
