"""The SQLite pointer store keeps the pointers a thread read (SqlPointerStore.get_table): it must never answer a
pointer that moved, whoever moved it (another store, another process, plain SQL), and must not look every pointer
up again when only something else was written (the audit log). Also the WAL index reader it relies on
(backends/sql/wal_changes.py): any commit changes the header, and a header it cannot read whole is None."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading

import pytest
from sqlalchemy import insert

from icemesh.backends.sql import open_database
from icemesh.backends.sql.pointers import SqlPointerStore
from icemesh.backends.sql.schema import audit_t
from icemesh.backends.sql.wal_changes import WalChanges
from icemesh.catalog.ports import PointerChange
from icemesh.names import Namespace, TableIdent

WH = "default"
NS = Namespace(("n",))
T = TableIdent(NS, "t")


@pytest.fixture
def stores(tmp_path):
    """Two stores on one database file, as two server processes have (each its own connections)."""
    url = f"sqlite:///{tmp_path}/catalog.db"
    first, second = open_database(url), open_database(url)
    a, b = SqlPointerStore(first), SqlPointerStore(second)
    a.upsert_warehouse(WH, f"file://{tmp_path}/w", {})
    a.create_namespace(WH, NS, {})
    a.create_table(WH, T, "file:///w/n/t/metadata/1.json", "file:///w/n/t")
    yield a, b, tmp_path / "catalog.db"
    first.close()
    second.close()


def counted(store: SqlPointerStore) -> list[str]:
    """The SQL of every lookup the store makes from now on."""
    seen: list[str] = []
    lookup = store.db.lookup

    def counting(stmt, params):
        seen.append(str(stmt))
        return lookup(stmt, params)

    store.db.lookup = counting
    return seen


def test_a_pointer_moved_by_another_store_is_seen_at_once(stores):
    a, b, _path = stores
    assert a.get_table(WH, T).metadata_location.endswith("1.json")
    b.swap_pointers(WH, [PointerChange(T, "file:///w/n/t/metadata/1.json", "file:///w/n/t/metadata/2.json", "file:///w/n/t")])
    assert a.get_table(WH, T).metadata_location.endswith("2.json")
    b.swap_pointers(WH, [PointerChange(T, "file:///w/n/t/metadata/2.json", "file:///w/n/t/metadata/3.json", "file:///w/n/t")])
    assert a.get_table(WH, T).metadata_location.endswith("3.json")


def test_a_pointer_moved_by_plain_sql_in_another_process_is_seen(stores):
    """Not through icemesh at all: the triggers count every writer."""
    a, _b, path = stores
    assert a.get_table(WH, T).metadata_location.endswith("1.json")
    subprocess.run([sys.executable, "-c", (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "c.execute(\"update icemesh_tables set metadata_location = 'file:///w/n/t/metadata/9.json'\"); c.commit()"),
        str(path)], check=True)
    assert a.get_table(WH, T).metadata_location.endswith("9.json")


@pytest.mark.parametrize("change", ["drop", "rename"])
def test_a_dropped_or_renamed_table_is_gone_at_once(stores, change):
    a, b, _path = stores
    assert a.get_table(WH, T) is not None
    if change == "drop":
        b.drop_table(WH, T)
    else:
        b.rename_table(WH, T, TableIdent(NS, "u"))
        assert a.get_table(WH, TableIdent(NS, "u")) is not None
    assert a.get_table(WH, T) is None


def test_other_writes_do_not_cost_every_pointer_a_lookup(stores):
    a, b, _path = stores
    a.get_table(WH, T)
    seen = counted(a)
    a.get_table(WH, T)
    assert seen == []  # nothing committed: not even the version is asked
    with b.db.write() as conn, conn.begin():  # an audit batch, say
        conn.execute(insert(audit_t).values(at=1.0, principal="p", action="LOAD", resource="t", allowed=True,
                                            reason="", request_id="r"))
    a.get_table(WH, T)
    assert len(seen) == 1 and "icemesh_pointer_version" in seen[0]  # one select for all pointers, none for t's
    a.get_table(WH, T)
    assert len(seen) == 1


def test_each_thread_keeps_its_own(stores):
    a, b, _path = stores
    a.get_table(WH, T)
    b.swap_pointers(WH, [PointerChange(T, "file:///w/n/t/metadata/1.json", "file:///w/n/t/metadata/2.json", "file:///w/n/t")])
    found: list[str] = []
    worker = threading.Thread(target=lambda: found.append(a.get_table(WH, T).metadata_location))
    worker.start()
    worker.join()
    assert found[0].endswith("2.json") and a.get_table(WH, T).metadata_location.endswith("2.json")


def test_the_wal_header_changes_with_every_commit(tmp_path):
    path = str(tmp_path / "x.db")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("create table t (n int)")
    wal = WalChanges(path)
    seen = {wal.header()}
    for n in range(20):
        conn.execute("insert into t values (?)", (n,))
        header = wal.header()
        assert header is not None and header not in seen
        seen.add(header)
    conn.execute("select count(*) from t").fetchone()
    assert wal.header() in seen  # a read changes nothing
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("insert into t values (99)")
    assert wal.header() not in seen  # a restarted WAL too

    conn.close()


@pytest.mark.parametrize("shm", [None, b"", b"\x00" * 200, bytes(range(48)) + bytes(48 * [7]) + b"\x00" * 40])
def test_a_header_that_cannot_be_read_whole_is_none(tmp_path, shm):
    path = str(tmp_path / "y.db")
    if shm is not None:
        (tmp_path / "y.db-shm").write_bytes(shm)
    assert WalChanges(path).header() is None


def _locks_held_on(path: str) -> int:
    """POSIX locks this process holds on the file (from /proc/locks)."""
    import os

    inode, pid = os.stat(path).st_ino, os.getpid()
    with open("/proc/locks") as f:
        rows = [line.split() for line in f]
    return sum(1 for r in rows if len(r) >= 6 and r[1] == "POSIX" and r[4] == str(pid)
               and r[5].rsplit(":", 1)[-1] == str(inode))


def test_reading_the_header_keeps_sqlites_own_locks(stores):
    """POSIX drops every lock a process holds on a file when it closes any descriptor of it. Had the header's
    reader closed its descriptor, this process would have lost SQLite's locks on the -shm file, and the next
    process to connect would have taken the file as the first and truncated it (under a server, a crash at
    its next load: CI saw it)."""
    import os

    a, b, path = stores
    shm = f"{path}-shm"
    b.get_table(WH, T)  # SQLite has the -shm file open and locked (b's connection; a's map is not made yet)
    held = _locks_held_on(shm)
    assert held > 0
    a.get_table(WH, T)  # maps the header
    assert a.db.lookup_generation() is not None
    assert _locks_held_on(shm) == held
    before = os.stat(shm).st_ino
    subprocess.run([sys.executable, "-c", (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "c.execute('select count(*) from icemesh_tables').fetchone(); c.close()"), str(path)], check=True)
    assert os.stat(shm).st_ino == before
    assert a.get_table(WH, T).metadata_location.endswith("1.json")
