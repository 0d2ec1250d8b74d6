"""The product index in SQL: one row per table or view with what its current metadata says about it as a
product, and its upstream links. The pointer and view stores write it inside the transaction that moves the
pointer (see `put`), so a listing, a search or a lineage question is one indexed query, never a file read.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from typing import Any, Iterable

import orjson

from sqlalchemy import and_, bindparam, case, delete, func, insert, or_, select, tuple_, update

from icemesh.backends.sql.database import Database
from icemesh.backends.sql.schema import product_upstream_t, product_words_t, products_t, tables_t, views_t
from icemesh.catalog.ports import IndexedProduct, ProductQuery
from icemesh.names import Namespace, TableIdent
from icemesh.tables import product_summary

log = logging.getLogger("icemesh.products")
REFS_PER_QUERY = 200  # (project, model) pairs ORed in one statement (SQLite refuses an expression 1,000 deep)
# A search's word counts only choose which word's index range to read (every word is matched afterwards,
# exactly): kept this long, so a page that takes several batches, and the next pages, count once.
WORD_COUNTS_TTL_S = 10.0


def _row_values(summary: dict[str, Any] | None, name: str) -> dict[str, Any]:
    if summary is None:  # unreadable: listed with the products, to be reported
        return {"product": True, "search": "", "summary": None}
    dbt = summary["dbt"]
    email, owner_name = product_summary.owner_text(dbt)
    return {
        "product": "model" in dbt,
        "project": str(dbt["project"])[:255] if dbt.get("project") else None,
        "model": str(dbt["model"])[:255] if dbt.get("model") else None,
        "version": str(dbt["version"])[:64] if dbt.get("version") not in (None, "") else None,
        "access": str(dbt["access"])[:16] if dbt.get("access") else None,
        "owner_email": email[:255] or None, "owner_name": owner_name[:255] or None,
        "search": product_summary.search_text(name, summary),
        "snapshot_id": summary.get("current_snapshot_id"), "last_updated_ms": summary.get("last_updated_ms"),
        "summary": json.dumps(summary),
    }


def _unmoved(summary: dict[str, Any]) -> dict[str, Any]:
    """What a row's words, columns and upstream links are made of: all of a summary but its snapshot."""
    return {k: v for k, v in summary.items() if k not in _SNAPSHOT_KEYS}


_SNAPSHOT_KEYS = frozenset({"snapshots", "current_snapshot_id", "last_updated_ms"})


def _upstream(summary: dict[str, Any] | None) -> list[str]:
    found = (summary or {}).get("dbt", {}).get("upstream") or []
    return sorted({str(u)[:1024] for u in found}) if isinstance(found, list) else []


class SqlProductIndex:
    def __init__(self, database: Database) -> None:
        self.db = database
        c = products_t.c
        self._get_stmt = select(c.namespace, c.name, c.kind, c.metadata_location, c.summary, c.error).where(
            c.warehouse == bindparam("w"), c.namespace == bindparam("n"), c.name == bindparam("t"))
        self._word_counts: dict[tuple[str, tuple[str, ...]], tuple[float, dict[str, int]]] = {}

    # -- writes (inside the caller's transaction) --------------------------------------------------

    def put(self, conn, warehouse: str, ident: TableIdent, kind: str, metadata_location: str,
            summary: dict[str, Any] | None, error: str | None = None) -> None:
        self.forget(conn, warehouse, ident)
        self.insert_many(conn, warehouse, [(ident, kind, metadata_location, summary, error)])

    @staticmethod
    def insert_many(conn, warehouse: str,
                    entries: list[tuple[TableIdent, str, str, dict[str, Any] | None, str | None]]) -> None:
        """New rows (none of them indexed yet), in three statements."""
        rows, words, ups = [], [], []
        for ident, kind, metadata_location, summary, error in entries:
            key = {"warehouse": warehouse, "namespace": ident.namespace.key, "name": ident.name}
            rows.append({**key, "kind": kind, "metadata_location": metadata_location, "error": error, "project": None,
                         "model": None, "version": None, "access": None, "owner_email": None, "owner_name": None,
                         "snapshot_id": None, "last_updated_ms": None, **_row_values(summary, str(ident))})
            if summary:
                words += [{**key, "word": w} for w in product_summary.words(product_summary.search_text(str(ident), summary))]
            ups += [{**key, "upstream": u} for u in _upstream(summary)]
        for table, values in ((products_t, rows), (product_words_t, words), (product_upstream_t, ups)):
            if values:
                conn.execute(insert(table), values)

    def put_table(self, conn, warehouse: str, ident: TableIdent, metadata_location: str, metadata: Any,
                  previous: str | None = None) -> None:
        """A commit's new TableMetadata. A summary that cannot be made never fails the commit: the row is
        recorded as unreadable (skipped by listings, reported) until the next commit. `previous`: the metadata
        location the commit replaced, whose row may only need its snapshot moved (`_advance`)."""
        try:
            summary, error = product_summary.from_metadata(metadata), None
        except Exception as exc:  # noqa: BLE001 - the commit itself is valid; only its summary is missing
            summary, error = None, f"cannot summarize its metadata ({exc.__class__.__name__})"
            log.warning("product index: %s: %s", ident, error)
        if summary is not None and previous is not None and self._advance(conn, warehouse, ident, previous,
                                                                          metadata_location, summary):
            return
        self.put(conn, warehouse, ident, "table", metadata_location, summary, error)

    def _advance(self, conn, warehouse: str, ident: TableIdent, previous: str, metadata_location: str,
                 summary: dict[str, Any]) -> bool:
        """Move the row to the new version in one UPDATE when only the snapshot changed (an append, an
        overwrite): its words and upstream links stay. Two statements instead of six on every append
        (profiled: benchmarks/commit_path.py). False, with nothing written, when anything else moved or the
        row is not the previous version's."""
        c = products_t.c
        key = (c.warehouse == warehouse, c.namespace == ident.namespace.key, c.name == ident.name)
        stored = conn.execute(select(c.summary).where(*key, c.kind == "table", c.metadata_location == previous,
                                                      c.error.is_(None))).scalar()
        if stored is None or _unmoved(orjson.loads(stored)) != _unmoved(summary):
            return False
        conn.execute(update(products_t).where(*key).values(
            metadata_location=metadata_location, summary=json.dumps(summary),
            snapshot_id=summary.get("current_snapshot_id"), last_updated_ms=summary.get("last_updated_ms")))
        return True

    def put_view(self, conn, warehouse: str, ident: TableIdent, metadata_location: str, doc: dict[str, Any]) -> None:
        try:
            summary, error = product_summary.from_view_document(doc), None
        except Exception as exc:  # noqa: BLE001
            summary, error = None, f"cannot summarize its metadata ({exc.__class__.__name__})"
        self.put(conn, warehouse, ident, "view", metadata_location, summary, error)

    def forget(self, conn, warehouse: str, ident: TableIdent) -> None:
        for t in (products_t, product_upstream_t, product_words_t):
            conn.execute(delete(t).where(t.c.warehouse == warehouse, t.c.namespace == ident.namespace.key,
                                         t.c.name == ident.name))

    def move(self, conn, warehouse: str, source: TableIdent, destination: TableIdent) -> None:
        """A rename: the row follows the table, and products that named it upstream now name the new name
        (dbt records upstream by catalog name; the next publish of each rewrites it anyway)."""
        self.forget(conn, warehouse, destination)
        for t in (products_t, product_upstream_t, product_words_t):
            conn.execute(update(t).where(t.c.warehouse == warehouse, t.c.namespace == source.namespace.key,
                                         t.c.name == source.name)
                         .values(namespace=destination.namespace.key, name=destination.name))

    # -- reads -------------------------------------------------------------------------------------

    @staticmethod
    def _indexed(row) -> IndexedProduct:
        summary = orjson.loads(row.summary) if row.summary else None
        return IndexedProduct(TableIdent(Namespace.from_key(row.namespace), row.name), row.kind,
                              row.metadata_location, summary, row.error)

    @staticmethod
    def _ghosts(conn, warehouse: str) -> list[TableIdent]:
        """Rows whose table or view is gone (dropped or renamed by a writer without the index)."""
        p, t, v = products_t.c, tables_t.c, views_t.c
        rows = conn.execute(select(p.namespace, p.name).where(
            p.warehouse == warehouse,
            ~select(t.name).where(t.warehouse == p.warehouse, t.namespace == p.namespace, t.name == p.name).exists(),
            ~select(v.name).where(v.warehouse == p.warehouse, v.namespace == p.namespace, v.name == p.name).exists()))
        return [TableIdent(Namespace.from_key(r.namespace), r.name) for r in rows]

    def find(self, warehouse: str, query: ProductQuery, after: tuple[str, str] | None,
             limit: int) -> list[IndexedProduct]:
        """Summaries undecoded (`raw`): the caller decides what it may see first, then decodes only those."""
        if len(query.refs) > REFS_PER_QUERY:  # one query per slice, merged in order (SQLite bounds an expression)
            slices = [query.refs[i:i + REFS_PER_QUERY] for i in range(0, len(query.refs), REFS_PER_QUERY)]
            rows = [r for part in slices for r in self.find(warehouse, replace(query, refs=part), after, limit)]
            return sorted(rows, key=lambda r: (r.ident.namespace.key, r.ident.name))[:limit]
        c = products_t.c
        stmt = select(c.namespace, c.name, c.kind, c.metadata_location, c.error, c.summary).where(
            c.warehouse == warehouse)
        if query.products_only:  # and the unreadable, to report them (see _row_values)
            stmt = stmt.where(c.product == True)  # noqa: E712 - `= 1` lets SQLite use the listing index
        if query.namespace is not None:
            stmt = stmt.where(c.namespace == query.namespace.key)
        if query.projects:
            stmt = stmt.where(c.project.in_(query.projects))
        if query.refs:
            stmt = stmt.where(tuple_(c.namespace, c.name).in_(self._claimed(warehouse, query.refs)))
        if query.owner:
            owner = query.owner.lower()
            stmt = stmt.where(or_(c.owner_email == owner, c.owner_name == owner))
        if query.text:
            stmt = self._search(stmt, warehouse, query.text)
        if after is not None:
            stmt = stmt.where(or_(c.namespace > after[0], and_(c.namespace == after[0], c.name > after[1])))
        stmt = stmt.order_by(c.namespace, c.name).limit(limit)
        with self.db.read() as conn:
            rows = conn.execute(stmt).all()  # at once, unpacked by position: ~5 ms less per 1,000 rows than row by row
        return [IndexedProduct(TableIdent(Namespace.from_key(namespace), name), kind, location, None, error, raw)
                for namespace, name, kind, location, error, raw in rows]

    @staticmethod
    def _claimed(warehouse: str, refs):
        """The rows claiming one of these (project, model) pairs, any version: one claim-index range per pair.
        A subquery, not a condition of the listing: without statistics SQLite would rather walk the listing
        index in order, every product of the warehouse, than look the few claims up."""
        k = products_t.alias("claims").c
        return select(k.namespace, k.name).where(or_(*[
            and_(k.warehouse == warehouse, k.project == project, k.model == model) for project, model in refs]))

    def _search(self, stmt, warehouse: str, text: str):
        """Rows where every word of `text` begins some word of theirs (an index range per word); a text with
        no word at all is matched as it is, by scanning."""
        c = products_t.c
        found = product_summary.words(text)
        if not found:
            return stmt.where(c.search.contains(text.lower(), autoescape=True))
        return stmt.where(tuple_(c.namespace, c.name).in_(self._rarest(warehouse, found)))

    def _rarest(self, warehouse: str, found: list[str]):
        """The rows of the word that begins the fewest words (counted up to a cap): one index range, small."""
        w = product_words_t.c

        def rows(word: str):
            return select(w.namespace, w.name).where(w.warehouse == warehouse, w.word >= word,
                                                     w.word < word + "\U0010ffff")
        if len(found) == 1:
            return rows(found[0])
        key, now = (warehouse, tuple(found)), time.monotonic()
        cached = self._word_counts.get(key)
        if cached is not None and now - cached[0] < WORD_COUNTS_TTL_S:
            counts = cached[1]
        else:
            counting = select(*[select(func.count()).select_from(rows(word).limit(2000).subquery()).scalar_subquery()
                                for word in found])
            with self.db.read() as conn:
                counts = dict(zip(found, conn.execute(counting).one()))  # one round trip
            if len(self._word_counts) >= 256:
                self._word_counts.clear()
            self._word_counts[key] = (now, counts)
        return rows(min(found, key=lambda word: (counts[word], -len(word))))

    def get(self, warehouse: str, ident: TableIdent) -> IndexedProduct | None:
        with self.db.read() as conn:
            row = conn.execute(self._get_stmt, {"w": warehouse, "n": ident.namespace.key, "t": ident.name}).first()
        return None if row is None else self._indexed(row)

    def downstream(self, warehouse: str, names: Iterable[str]) -> dict[str, list[str]]:
        """For each name: the products that record it upstream."""
        names = sorted(set(names))
        c = product_upstream_t.c
        found: dict[str, list[str]] = {n: [] for n in names}
        if not names:
            return found
        with self.db.connect() as conn:
            for start in range(0, len(names), 500):
                rows = conn.execute(select(c.upstream, c.namespace, c.name).where(
                    c.warehouse == warehouse, c.upstream.in_(names[start:start + 500]))).all()
                for r in rows:
                    found[r.upstream].append(str(TableIdent(Namespace.from_key(r.namespace), r.name)))
        return found

    def duplicate_claims(self, warehouse: str) -> list[tuple[str, str, str, Namespace]]:
        """(project, model, version, namespace) claimed by more than one table of one namespace (a catalog from
        before claims were checked at commit), counted on the claim index."""
        c = products_t.c
        version = func.coalesce(c.version, "")
        with self.db.read() as conn:
            groups = conn.execute(select(c.project, c.model, version.label("version"), c.namespace)
                                  .where(c.warehouse == warehouse, c.project.is_not(None), c.product == True)  # noqa: E712
                                  .group_by(c.project, c.model, version, c.namespace)
                                  .having(func.count() > 1)).all()
        return [(g.project, g.model or "", g.version, Namespace.from_key(g.namespace)) for g in groups]

    def unindexed(self, warehouse: str, since: float | None = None) -> list[tuple[TableIdent, str, str]]:
        """Tables and views whose index row is missing or was made from another metadata file (a catalog from
        before the index, or a writer without it: an older icemesh on the same database), among those whose
        pointer moved after `since` (None: all of them)."""
        p = products_t.c
        out = []
        with self.db.connect() as conn:
            for kind, t in (("table", tables_t), ("view", views_t)):
                c = t.c
                stmt = select(c.namespace, c.name, c.metadata_location).select_from(t.outerjoin(products_t, and_(
                    p.warehouse == c.warehouse, p.namespace == c.namespace, p.name == c.name))).where(
                    c.warehouse == warehouse,
                    or_(p.name.is_(None), p.metadata_location != c.metadata_location, p.error.is_not(None)))
                if since is not None:
                    stmt = stmt.where(c.updated_at > since)
                out += [(TableIdent(Namespace.from_key(r.namespace), r.name), kind, r.metadata_location)
                        for r in conn.execute(stmt)]
        return out

    def fill(self, warehouse: str, entries: list[tuple[TableIdent, str, str, dict[str, Any] | None, str | None]],
             ) -> None:
        """Record summaries read from metadata files (ident, kind, location, summary, error), in one transaction,
        only where the pointer still names that file (a commit meanwhile wrote its own row)."""
        with self.db.write() as conn, conn.begin():
            for ident, kind, location, summary, error in entries:
                t = tables_t if kind == "table" else views_t
                current = conn.execute(select(t.c.metadata_location).where(
                    t.c.warehouse == warehouse, t.c.namespace == ident.namespace.key, t.c.name == ident.name)).scalar()
                if current == location:
                    self.put(conn, warehouse, ident, kind, location, summary, error)
            for ghost in self._ghosts(conn, warehouse):
                self.forget(conn, warehouse, ghost)

