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
