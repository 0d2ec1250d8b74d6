"""Resolving the products a query names: loaded as the caller, so the catalog's policies decide.

A product the caller may not read fails with the catalog's own reason; a caller limited to some columns gets a
schema without the others (the client declares it applies column limits), and `Product.columns` is what every
engine adapter exposes. `--as-of` picks, for each product, the snapshot current at that moment.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from pyiceberg.exceptions import RESTError, NoSuchNamespaceError, NoSuchTableError

from icemesh.query.errors import QueryError
from icemesh.query.references import Reference


@dataclass(frozen=True)
class AsOf:
    """A moment in the mesh's history: a snapshot id (and with it the moment it was committed) or a timestamp."""

    snapshot_id: int | None = None
    timestamp_ms: int | None = None

    @classmethod
    def parse(cls, value: "str | int | dt.datetime | AsOf | None") -> "AsOf | None":
        if value is None or isinstance(value, AsOf):
            return value
        if isinstance(value, dt.datetime):
            return cls(timestamp_ms=_epoch_ms(value))
        if isinstance(value, int) or str(value).strip().lstrip("-").isdigit():
            return cls(snapshot_id=int(value))
        try:
            moment = dt.datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise QueryError(f"Invalid --as-of {value!r}: give a snapshot id or an ISO-8601 timestamp "
                             "such as 2024-05-01T12:00:00Z") from None
        return cls(timestamp_ms=_epoch_ms(moment))


def _epoch_ms(moment: dt.datetime) -> int:
    if moment.tzinfo is None:  # a timestamp without a zone is read as UTC, like the catalog's own times
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return int(moment.timestamp() * 1000)


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class Product:
    """One product as the caller may read it: the pruned table, the snapshot to read and the visible columns."""

    ref: Reference
    table: Any  # pyiceberg Table, loaded as the caller
    snapshot_id: int | None  # the snapshot to read; None: an empty table
    pinned: bool  # True when --as-of chose the snapshot (else: the current one)
    columns: list[str] = field(default_factory=list)
    restrictions: Any = None  # restricted.ReadRestrictions the catalog holds this reader to, or None

    @property
    def name(self) -> str:
        return self.ref.dotted

    @property
    def version(self) -> tuple:
        """What an engine reads for this product: equal versions read the same bytes with the same columns, so
        an adapter may keep what it built for one (a planned scan, a provider, a view) while this is unchanged."""
        return (self.table.metadata_location, self.snapshot_id, self.pinned, tuple(self.columns),
                self.restrictions.raw if self.restrictions else None)

    @property
    def location(self) -> str:
        return self.table.metadata.location

    @property
    def io_properties(self) -> dict[str, str]:
        """The table's FileIO settings as plain strings (pyiceberg also keeps objects there, e.g. its auth manager)."""
        return {k: v for k, v in self.table.io.properties.items() if isinstance(v, str)}


def metadata_location(product: Product, engine: str) -> str:
    """The metadata file whose current snapshot is the one to read (the table's own unless --as-of), for engines
    that read a table from its metadata file rather than at a snapshot."""
    table = product.table
    if not product.pinned or product.snapshot_id == table.metadata.current_snapshot_id:
        return table.metadata_location
    for entry in reversed(table.metadata.metadata_log):
        with table.io.new_input(entry.metadata_file).open() as stream:
            if json.load(stream).get("current-snapshot-id") == product.snapshot_id:
                return entry.metadata_file
    raise QueryError(f"{product.name}: snapshot {product.snapshot_id} is no longer in the table's metadata log, "
                     f"so {engine} cannot read it; use another engine for this --as-of")


def reason(exc: Exception) -> str:
    """The catalog's message, one line, without pyiceberg's `SomethingException: ` prefix."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    return re.sub(r"^[A-Za-z]+(Exception|Error): ", "", text)


def load(catalog, ref: Reference):
    try:
        return catalog.load_table((*ref.namespace, ref.name))
    except (NoSuchTableError, NoSuchNamespaceError, RESTError) as exc:
        raise QueryError(f"{ref.dotted}: {reason(exc)}") from None
    except OSError as exc:
        raise QueryError(f"Cannot reach the catalog to load {ref.dotted}: {exc}") from None


def resolve(load_table: Callable[[Reference], Any], refs: list[Reference], as_of: AsOf | None = None,
            restrictions: Callable[[Reference, Any], Any] = lambda ref, schema: None) -> list[Product]:
    """Load every named product as the caller (`load_table(ref)`) and choose the snapshot each engine must read;
    `restrictions(ref, schema)` gives the row filter and masks the catalog sent with it."""
    tables = {ref: load_table(ref) for ref in refs}
    moment = _moment(tables, as_of)
    products = []
    for ref, table in tables.items():
        if moment is None:
            snapshot = table.current_snapshot()
        elif as_of.snapshot_id is not None and table.snapshot_by_id(as_of.snapshot_id) is not None:
            snapshot = table.snapshot_by_id(as_of.snapshot_id)
        else:
            snapshot = table.snapshot_as_of_timestamp(moment)
            if snapshot is None:
                raise QueryError(f"{ref.dotted} has no snapshot at or before {_iso(moment)}")
        schema = table.schema()
        if moment is not None and snapshot.schema_id is not None:
            schema = table.schemas().get(snapshot.schema_id, schema)
        products.append(Product(ref, table, snapshot.snapshot_id if snapshot else None, moment is not None,
                                [f.name for f in schema.fields], restrictions(ref, table.schema())))
    return products


def _moment(tables: dict[Reference, Any], as_of: AsOf | None) -> int | None:
    """The as-of moment in epoch ms: a snapshot id stands for the moment it was committed."""
    if as_of is None:
        return None
    if as_of.timestamp_ms is not None:
        return as_of.timestamp_ms
    for table in tables.values():
        snapshot = table.snapshot_by_id(as_of.snapshot_id)
        if snapshot is not None:
            return snapshot.timestamp_ms
    names = ", ".join(ref.dotted for ref in tables) or "(none)"
    raise QueryError(f"No product the query reads has snapshot {as_of.snapshot_id} (products: {names}); "
                     "give one of their snapshot ids or a timestamp")


def list_products(catalog) -> list[str]:
    """Every product the caller may see (the catalog filters listings), as `<namespace>.<table>`."""
    names = []
    pending = list(catalog.list_namespaces())
    while pending:
        namespace = pending.pop(0)
        names += [".".join(ident) for ident in catalog.list_tables(namespace)]
        try:
            pending += [n for n in catalog.list_namespaces(namespace) if n != namespace]
        except RESTError:
            pass
    return sorted(names)
