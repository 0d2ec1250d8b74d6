"""Audit records survive a graceful stop: the last batch is flushed before the process exits."""

from __future__ import annotations

import sqlite3
import uuid

import pytest

from icemesh.client import ClientError
from icemesh.server.process import CatalogProcess


def test_denial_just_before_shutdown_is_kept(tmp_path):
    name = f"svc_{uuid.uuid4().hex[:6]}"
    # A long flush interval: only the flush at shutdown can save the record.
    with CatalogProcess(db=f"sqlite:///{tmp_path}/catalog.db", warehouse=str(tmp_path / "wh"), cwd=str(tmp_path),
                        env={"ICEMESH_AUDIT_FLUSH_SECONDS": "60"}) as server:
        admin = server.client()
        created = admin.request("POST", "/management/v1/principals", json={"name": name})
        intruder = server.client(name, created["client_secret"])
        with pytest.raises(ClientError) as denied:
            intruder.request("POST", "/management/v1/tags", json={"key": "k", "values": ["v"]})
        assert denied.value.code == 403
    # The server was stopped (SIGTERM) right after the denial, before a periodic flush could run.
    with sqlite3.connect(tmp_path / "catalog.db") as db:
        rows = db.execute("SELECT action, allowed FROM icemesh_audit WHERE principal = ?", (name,)).fetchall()
    assert ("ADMIN", 0) in rows


def test_a_full_buffer_is_written_by_the_thread_that_filled_it(tmp_path):
    """A busy server writes its audit batches itself (no hand-off to the writer thread, whose GIL trades cost
    loadTable a third of its throughput); a quiet one still gets them written by the thread at its interval."""
    import time

    from icemesh.backends.sql import audit as sql_audit
    from icemesh.backends.sql.database import Database
    from icemesh.backends.sql.schema import migrate
    from icemesh.catalog.ports import AuditRecord

    db = Database(f"sqlite:///{tmp_path}/audit.db")
    migrate(db)
    log = sql_audit.SqlAudit(db, flush_s=3600)  # the writer thread would not write for an hour

    def written() -> int:
        with sqlite3.connect(tmp_path / "audit.db") as raw:
            return raw.execute("SELECT count(*) FROM icemesh_audit").fetchone()[0]

    try:
        for i in range(sql_audit.BATCH - 1):
            log.audit(AuditRecord(time.time(), "p", "SELECT", f"table t{i}", True, "granted", f"r{i}"))
        assert written() == 0  # buffered
        log.audit(AuditRecord(time.time(), "p", "SELECT", "table last", True, "granted", "r-last"))
        assert written() == sql_audit.BATCH  # the filling call wrote them, in one transaction
    finally:
        log.close()
    db.close()
