"""Who owns a namespace or table, read from SQL a namespace at a time when a decision first asks.

The policy snapshot used to hold every owner: at 100,000 tables that read took ~1.4 s at a server's first
request, while a decision needs the owners of one namespace. A namespace's owners are read once and kept
for the snapshot's life, so they are never older than the snapshot; a create or an owner change bumps the
policy version, and the next snapshot reads afresh.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

from sqlalchemy import select

from icemesh.backends.sql.database import Database
from icemesh.backends.sql.schema import namespaces_t, tables_t, views_t
from icemesh.governance.resources import NamespaceRef, TableRef
from icemesh.names import Namespace


class LazyOwners(Mapping):
    """A read-only mapping NamespaceRef | TableRef -> owner, as `SqlPointerStore.owners` returns eagerly."""

    def __init__(self, db: Database, warehouse: str) -> None:
        self.db = db
        self.warehouse = warehouse
        self._namespaces: dict[NamespaceRef, str] | None = None
        self._tables: dict[NamespaceRef, dict[str, str]] = {}
        self._lock = threading.Lock()

    def _namespace_owners(self) -> dict[NamespaceRef, str]:
        found = self._namespaces
        if found is None:
            c = namespaces_t.c
            with self.db.connect() as conn:
                rows = conn.execute(select(c.name, c.owner).where(c.warehouse == self.warehouse,
                                                                  c.owner.is_not(None))).all()
            found = self._namespaces = {NamespaceRef(Namespace.from_key(r.name).levels): r.owner for r in rows}
        return found

    def _table_owners(self, ns: NamespaceRef) -> dict[str, str]:
        found = self._tables.get(ns)
        if found is None:
            key = Namespace(ns.levels).key
            found = {}
            with self.db.connect() as conn:
                for t in (tables_t, views_t):  # a view and a table never share a name
                    found.update(conn.execute(select(t.c.name, t.c.owner).where(
                        t.c.warehouse == self.warehouse, t.c.namespace == key, t.c.owner.is_not(None))).tuples().all())
            with self._lock:
                if len(self._tables) > 10000:  # bounded: a snapshot is replaced at the next policy change anyway
                    self._tables.clear()
                self._tables[ns] = found
        return found

    def __getitem__(self, resource: NamespaceRef | TableRef) -> str:
        if isinstance(resource, TableRef):
            return self._table_owners(resource.namespace)[resource.name]
        if isinstance(resource, NamespaceRef):
            return self._namespace_owners()[resource]
        raise KeyError(resource)

    def __iter__(self) -> Iterator[NamespaceRef | TableRef]:
        """Every owned resource (reads every namespace's tables: for whole-catalog views only)."""
        yield from self._namespace_owners()
        with self.db.connect() as conn:
            spaces = [r[0] for r in conn.execute(select(tables_t.c.namespace).where(
                tables_t.c.warehouse == self.warehouse).distinct())]
            spaces += [r[0] for r in conn.execute(select(views_t.c.namespace).where(
                views_t.c.warehouse == self.warehouse).distinct())]
        for key in sorted(set(spaces)):
            ns = NamespaceRef(Namespace.from_key(key).levels)
            for name in self._table_owners(ns):
                yield TableRef(ns, name)

    def __len__(self) -> int:
        return sum(1 for _ in self)
