"""Idempotency keys in SQL: a retried mutation replays its first outcome instead of running twice."""

from __future__ import annotations

import time

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from icemesh.backends.sql.database import Database
from icemesh.backends.sql.schema import idempotency_t


class SqlIdempotency:
    def __init__(self, database: Database) -> None:
        self.db = database

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
            with self.db.write() as conn, conn.begin():
                conn.execute(delete(idempotency_t).where(c.created_at < now - lifetime_s))
                conn.execute(insert(idempotency_t).values(key=key, fingerprint=fingerprint, status=None, body=None, created_at=now))
            return "new", None, None
        except IntegrityError:
            pass
        with self.db.connect() as conn:
            row = conn.execute(select(c.fingerprint, c.status, c.body, c.created_at).where(c.key == key)).first()
        if row is None:
            return self.claim_idempotency_key(key, fingerprint, lifetime_s, lease_s)
        if row.fingerprint != fingerprint:
            return "mismatch", None, None
        if row.status is None and row.created_at < now - lease_s:
            with self.db.write() as conn, conn.begin():
                taken = conn.execute(update(idempotency_t).where(c.key == key, c.status.is_(None), c.created_at < now - lease_s)
                                     .values(created_at=time.time())).rowcount
            return ("new" if taken == 1 else "pending"), None, None
        if row.status is None:
            return "pending", None, None
        return "done", row.status, row.body

    def finish_idempotency_key(self, key: str, status: int | None, body: bytes | None) -> None:
        """Record the outcome (status None releases the claim so a retry runs again)."""
        c = idempotency_t.c
        with self.db.write() as conn, conn.begin():
            if status is None:
                conn.execute(delete(idempotency_t).where(c.key == key))
            else:
                conn.execute(update(idempotency_t).where(c.key == key).values(status=status, body=body))
