"""Owners of the Glue backend's databases and tables, in the catalog's own database.

Glue parameters are writable by anyone who may update a Glue table (pyiceberg's GlueCatalog writes table
properties as parameters), so the `icemesh.owner` parameter icemesh still writes is only a label for people
reading Glue: the ledger decides. A parameter that disagrees with it is ignored and reported (logged once).
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import delete, insert, select, update

from icemesh.backends.sql.database import Database
from icemesh.backends.sql.schema import owners_t
from icemesh.governance.resources import NamespaceRef, TableRef

log = logging.getLogger("icemesh.glue")


class OwnerLedger:
    def __init__(self, database: Database) -> None:
        self.db = database
        self._reported: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def all(self) -> dict[tuple[str, str], str]:
        with self.db.connect() as conn:
            return {(r.namespace, r.name): r.owner for r in conn.execute(select(owners_t)).all()}

    def get(self, database: str, table: str = "") -> str | None:
        with self.db.connect() as conn:
            return conn.execute(select(owners_t.c.owner).where(owners_t.c.namespace == database,
                                                               owners_t.c.name == table)).scalar()

    def set(self, database: str, table: str, owner: str) -> None:
        with self.db.write() as conn, conn.begin():
            conn.execute(delete(owners_t).where(owners_t.c.namespace == database, owners_t.c.name == table))
            conn.execute(insert(owners_t).values(namespace=database, name=table, owner=owner))

    def forget(self, database: str, table: str | None = None) -> None:
        """A table's record, or (table None) a database's and its tables'."""
        where = [owners_t.c.namespace == database] + ([owners_t.c.name == table] if table is not None else [])
        with self.db.write() as conn, conn.begin():
            conn.execute(delete(owners_t).where(*where))

    def move(self, source: tuple[str, str], destination: tuple[str, str]) -> None:
        with self.db.write() as conn, conn.begin():
            conn.execute(delete(owners_t).where(owners_t.c.namespace == destination[0], owners_t.c.name == destination[1]))
            conn.execute(update(owners_t).where(owners_t.c.namespace == source[0], owners_t.c.name == source[1])
                         .values(namespace=destination[0], name=destination[1]))

    def reassign(self, old: str, new: str, conn=None) -> None:
        """In the caller's transaction when given (a principal's deletion moves its ownership with it)."""
        if conn is not None:
            conn.execute(update(owners_t).where(owners_t.c.owner == old).values(owner=new))
            return
        with self.db.write() as conn, conn.begin():
            conn.execute(update(owners_t).where(owners_t.c.owner == old).values(owner=new))

    def adopt(self, labels: dict[tuple[str, str], str]) -> None:
        """A catalog that kept owners only in Glue parameters (before the ledger): its first start takes them once."""
        with self.db.write() as conn, conn.begin():
            if conn.execute(select(owners_t.c.owner).limit(1)).first() is not None:
                return
            for (database, table), owner in labels.items():
                conn.execute(insert(owners_t).values(namespace=database, name=table, owner=owner))
        if labels:
            log.warning("owners: took %d owner(s) from Glue parameters once, at the first start with the ledger", len(labels))

    def decide(self, labels: dict[tuple[str, str], str]) -> dict[NamespaceRef | TableRef, str]:
        """The owners of the resources Glue holds (`labels`: every existing resource -> its owner parameter, or
        ''), as the ledger records them; a parameter that disagrees is reported and ignored."""
        recorded = self.all()
        owners: dict[NamespaceRef | TableRef, str] = {}
        for (database, table), label in labels.items():
            owner = recorded.get((database, table))
            if label and label != owner:
                self._report(database, table, label, owner)
            if owner:
                owners[TableRef(NamespaceRef((database,)), table) if table else NamespaceRef((database,))] = owner
        return owners

    def _report(self, database: str, table: str, label: str, owner: str | None) -> None:
        key = (database, table, label)
        with self._lock:
            if key in self._reported:
                return
            self._reported.add(key)
        what = f"table {database}.{table}" if table else f"namespace {database}"
        log.warning("owners: %s has the Glue parameter icemesh.owner=%s, set outside icemesh; ignored (its owner is %s)",
                    what, label, owner or "nobody")
