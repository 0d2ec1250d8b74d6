"""The Glue backend: namespaces, tables and metadata pointers in the AWS Glue Data Catalog.

Tables are written exactly the way pyiceberg's GlueCatalog writes them (its own table-input
builders are used: `table_type=ICEBERG`, `metadata_location`, `previous_metadata_location`, the
columns, the table properties as parameters), so pyiceberg's GlueCatalog, Athena, EMR and Redshift
see the same tables. A pointer swap passes the Glue `VersionId` it read (Glue's optimistic
concurrency) after checking the current `metadata_location` is the expected one.

Owners are recorded in the local SQL database (icemesh.backends.aws.owners), where only icemesh writes:
the `icemesh.owner` parameter icemesh also puts on a database or table is a label for people reading Glue
(and for the direct Lake Formation tooling, which has no database), never what the server decides by, since
any Glue writer can change it. Idempotency keys, warehouses and the policy version stay there too.

Limits (Glue's): one namespace level (databases are not nested); names in lower case; a multi-table
commit is applied table by table, with the earlier tables put back if a later one conflicts (Glue has
no multi-table transaction).
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Callable, Iterable, Iterator

from icemesh.compat.pyiceberg import glue_database_input, glue_rename_input, glue_table_input

from icemesh.backends.aws.owners import OwnerLedger
from icemesh.backends.aws.settings import AwsError, AwsSettings, describe, error_code
from icemesh.backends.sql.database import Database
from icemesh.backends.sql.pointers import SqlPointerStore
from icemesh.backends.sql.schema import ACCESS_PROPERTY, RESTRICTED_ACCESS, bump_policy_version
from icemesh.names import Namespace, TableIdent
from icemesh.tables.locations import overlaps, refuse_overlap
from icemesh.catalog.ports import PointerChange, PointerConflict, TableRecord, create_by_swap
from icemesh.errors import AlreadyExists, BadRequest, CommitStateUnknown, NamespaceNotEmpty, NoSuchNamespace, NoSuchTable
from icemesh.governance.resources import NamespaceRef, TableRef

log = logging.getLogger("icemesh.glue")

OWNER_PARAMETER = "icemesh.owner"
TABLE_TYPE = "table_type"
METADATA_LOCATION = "metadata_location"


def is_iceberg(table: dict) -> bool:
    return table.get("Parameters", {}).get(TABLE_TYPE, "").lower() == "iceberg"


def current_columns(table: dict) -> list[str]:
    """The current schema's top-level columns, as pyiceberg records them (`iceberg.field.current`)."""
    columns = table.get("StorageDescriptor", {}).get("Columns", [])
    return [c["Name"] for c in columns if c.get("Parameters", {}).get("iceberg.field.current", "true") == "true"]


class GlueCatalog:
    """Plain Glue calls with icemesh's errors. Used by the server (with its owner ledger) and by the CLI
    directly (without one: owners are then the Glue parameters)."""

    def __init__(self, settings: AwsSettings, ledger: OwnerLedger | None = None) -> None:
        self.settings = settings
        self.glue = settings.client("glue")
        self._catalog = {"CatalogId": settings.catalog_id} if settings.catalog_id else {}
        self.ledger = ledger

    def call(self, operation: str, **params: Any) -> dict:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.glue, operation)(**self._catalog, **params)
        except (ClientError, BotoCoreError) as exc:
            raise _GlueCallError(operation, exc) from None

    # -- databases ---------------------------------------------------------------------------------

    def databases(self) -> list[dict]:
        try:
            return list(self._paged("get_databases", "DatabaseList"))
        except _GlueCallError as exc:
            raise exc.as_icemesh() from None

    def database(self, name: str) -> dict | None:
        try:
            return self.call("get_database", Name=name)["Database"]
        except _GlueCallError as exc:
            if exc.code == "EntityNotFoundException":
                return None
            raise exc.as_icemesh() from None

    def create_database(self, name: str, properties: dict[str, str], owner: str | None) -> None:
        database_input = glue_database_input(name, properties)
        if owner:
            database_input["Parameters"][OWNER_PARAMETER] = owner
        try:
            self.call("create_database", DatabaseInput=database_input)
        except _GlueCallError as exc:
            if exc.code == "AlreadyExistsException":
                raise AlreadyExists(f"Namespace {name} already exists") from None
            raise exc.as_icemesh() from None
        if self.ledger is not None:
            self.ledger.forget(name)  # a record left by a database deleted outside icemesh ends here
            if owner:
                self.ledger.set(name, "", owner)

    def update_database(self, name: str, properties: dict[str, str], owner: str | None) -> None:
        database_input = glue_database_input(name, properties)
        if owner:
            database_input["Parameters"][OWNER_PARAMETER] = owner
        try:
            self.call("update_database", Name=name, DatabaseInput=database_input)
        except _GlueCallError as exc:
            if exc.code == "EntityNotFoundException":
                raise NoSuchNamespace(f"Namespace does not exist: {name}") from None
            raise exc.as_icemesh() from None

    @staticmethod
    def database_properties(database: dict) -> dict[str, str]:
        """A database as namespace properties (pyiceberg's mapping), without icemesh's owner parameter."""
        props = {k: v for k, v in database.get("Parameters", {}).items() if k != OWNER_PARAMETER}
        if "LocationUri" in database:
            props["location"] = database["LocationUri"]
        if "Description" in database:
            props["Description"] = database["Description"]
        return props

    # -- tables ------------------------------------------------------------------------------------

    def tables(self, database: str) -> list[dict]:
        """Every table of a database (Iceberg or not); [] when the database does not exist."""
        try:
            return list(self._paged("get_tables", "TableList", DatabaseName=database))
        except _GlueCallError as exc:
            if exc.code == "EntityNotFoundException":
                return []
            raise exc.as_icemesh() from None

    def table(self, database: str, name: str) -> dict | None:
        try:
            return self.call("get_table", DatabaseName=database, Name=name)["Table"]
        except _GlueCallError as exc:
            if exc.code == "EntityNotFoundException":
                return None
            raise exc.as_icemesh() from None

    def iceberg_tables(self) -> Iterator[tuple[dict, dict]]:
        """(database, table) for every Iceberg table in the catalog."""
        for database in self.databases():
            for table in self.tables(database["Name"]):
                if is_iceberg(table):
                    yield database, table

    def owner_labels(self) -> dict[tuple[str, str], str]:
        """Every database ('' for its table) and Iceberg table, with its `icemesh.owner` parameter ('' if none)."""
        labels: dict[tuple[str, str], str] = {}
        for database in self.databases():
            labels[(database["Name"], "")] = database.get("Parameters", {}).get(OWNER_PARAMETER, "")
            for table in self.tables(database["Name"]):
                if is_iceberg(table):
                    labels[(database["Name"], table["Name"])] = (table.get("Parameters") or {}).get(OWNER_PARAMETER, "")
        return labels

    def owners(self) -> dict[NamespaceRef | TableRef, str]:
        """Owners of databases and Iceberg tables: the ledger's record for the server; the parameters otherwise."""
        labels = self.owner_labels()
        if self.ledger is not None:
            return self.ledger.decide(labels)
        return {(TableRef(NamespaceRef((db,)), t) if t else NamespaceRef((db,))): owner
                for (db, t), owner in labels.items() if owner}

    def restricted(self) -> list[TableRef]:
        """Iceberg tables whose dbt access level is not public (their `icemesh.dbt.access` parameter)."""
        return [TableRef(NamespaceRef((database["Name"],)), table["Name"]) for database, table in self.iceberg_tables()
                if (table.get("Parameters") or {}).get(ACCESS_PROPERTY) in RESTRICTED_ACCESS]

    def set_database_owner(self, name: str, owner: str | None) -> None:
        database = self.database(name)
        if database is None:
            raise NoSuchNamespace(f"Namespace does not exist: {name}")
        self.update_database(name, self.database_properties(database), owner)
        if owner and self.ledger is not None:
            self.ledger.set(name, "", owner)

    def _paged(self, operation: str, key: str, **params: Any) -> Iterator[dict]:
        token = None
        while True:
            page = self.call(operation, **params, **({"NextToken": token} if token else {}))
            yield from page.get(key, [])
            token = page.get("NextToken")
            if not token:
                return


class _GlueCallError(Exception):
    def __init__(self, operation: str, exc: BaseException) -> None:
        super().__init__(describe(exc))
        self.operation = operation
        self.code = error_code(exc)
        self.detail = describe(exc)

    def as_icemesh(self) -> AwsError:
        return AwsError(f"Glue {self.operation} failed: {self.detail}")


def database_name(ns: Namespace | NamespaceRef) -> str:
    if len(ns.levels) != 1:
        raise BadRequest(f"Namespace {'.'.join(ns.levels)} is nested: Glue databases have one level; use e.g. "
                         f"{'_'.join(ns.levels).lower()}")
    return _lower(ns.levels[0], "namespace")


def _lower(name: str, what: str) -> str:
    if name != name.lower():
        raise BadRequest(f"Invalid {what} {name!r}: Glue stores names in lower case; use {name.lower()!r}")
    return name


class GlueCatalogStore:
    """The pointer store of `icemesh serve --backend glue` (see the module docstring)."""

    def __init__(self, glue: GlueCatalog, local: SqlPointerStore, database: Database) -> None:
        self.glue = glue
        self.local = local  # warehouses and retired locations are icemesh's own bookkeeping, in the SQL database
        self.db = database

    def upsert_warehouse(self, name: str, root: str, properties: dict[str, str]) -> None:
        self.local.upsert_warehouse(name, root, properties)

    def _owners_changed(self) -> None:
        with self.db.write() as conn, conn.begin():
            bump_policy_version(conn)

    # -- namespaces --------------------------------------------------------------------------------

    def create_namespace(self, warehouse: str, ns: Namespace, properties: dict[str, str], owner: str | None = None,
                         also: Callable[[Any], None] | None = None) -> None:
        _refuse_owner_property(properties)
        self.glue.create_database(database_name(ns), properties, owner)
        self._owners_changed()
        if also is not None:
            also(None)

    def namespace_properties(self, warehouse: str, ns: Namespace) -> dict[str, str] | None:
        if len(ns.levels) != 1:
            return None
        database = self.glue.database(ns.levels[0])
        return None if database is None else self.glue.database_properties(database)

    def list_namespaces(self, warehouse: str, parent: Namespace | None, after: str | None, limit: int | None) -> list[Namespace]:
        if parent is not None:
            return []
        names = sorted(d["Name"] for d in self.glue.databases())
        names = [n for n in names if after is None or n > after]
        return [Namespace((n,)) for n in (names[:limit] if limit is not None else names)]

    def namespaces_with_owners(self, warehouse: str) -> list[tuple[Namespace, str | None]]:
        owners = self.glue.owners()
        return sorted(((Namespace((d["Name"],)), owners.get(NamespaceRef((d["Name"],)))) for d in self.glue.databases()),
                      key=lambda pair: pair[0].key)

    def _recorded_owner(self, database: str, table: str = "") -> str | None:
        """The owner to label a resource with: the ledger's record (a Glue parameter may have been changed)."""
        ledger = self.glue.ledger
        return ledger.get(database, table) if ledger is not None else None

    def update_namespace_properties(self, warehouse: str, ns: Namespace, removals: Iterable[str],
                                    updates: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
        removals = list(removals)
        _refuse_owner_property({**updates, **dict.fromkeys(removals, "")})
        database = self.glue.database(database_name(ns))
        if database is None:
            raise NoSuchNamespace(f"Namespace does not exist: {ns}")
        props = self.glue.database_properties(database)
        removed = [k for k in removals if k in props]
        missing = [k for k in removals if k not in props]
        for key in removed:
            del props[key]
        props.update(updates)
        label = self._recorded_owner(database["Name"]) if self.glue.ledger else database.get("Parameters", {}).get(OWNER_PARAMETER)
        self.glue.update_database(database["Name"], props, label)
        return list(updates), removed, missing

    def drop_namespace(self, warehouse: str, ns: Namespace, also: Callable[[Any], None] | None = None) -> None:
        name = database_name(ns)
        if self.glue.database(name) is None:
            raise NoSuchNamespace(f"Namespace does not exist: {ns}")
        tables = self.glue.tables(name)
        if tables:
            raise NamespaceNotEmpty(f"Namespace {ns} is not empty: it contains table {tables[0]['Name']}; drop its tables first")
        try:
            self.glue.call("delete_database", Name=name)
        except _GlueCallError as exc:
            if exc.code == "EntityNotFoundException":
                raise NoSuchNamespace(f"Namespace does not exist: {ns}") from None
            raise exc.as_icemesh() from None
        if self.glue.ledger is not None:
            self.glue.ledger.forget(name)
        if also is not None:
            also(None)
        self._owners_changed()

    # -- tables ------------------------------------------------------------------------------------

    def _iceberg_table(self, ident: TableIdent) -> dict | None:
        if len(ident.namespace.levels) != 1:
            return None
        table = self.glue.table(ident.namespace.levels[0], ident.name)
        return table if table is not None and is_iceberg(table) else None

    def get_table(self, warehouse: str, ident: TableIdent) -> TableRecord | None:
        table = self._iceberg_table(ident)
        if table is None:
            return None
        return TableRecord(table["Parameters"][METADATA_LOCATION], table.get("StorageDescriptor", {}).get("Location", ""))

    def list_tables(self, warehouse: str, ns: Namespace, after: str | None, limit: int | None) -> list[TableIdent]:
        if len(ns.levels) != 1:
            return []
        names = sorted(t["Name"] for t in self.glue.tables(ns.levels[0]) if is_iceberg(t))
        names = [n for n in names if after is None or n > after]
        return [TableIdent(ns, n) for n in (names[:limit] if limit is not None else names)]

    def tables_under(self, warehouse: str, ns: Namespace) -> list[TableIdent]:
        return self.list_tables(warehouse, ns, None, None)

    def table_location_in_use(self, warehouse: str, location: str) -> bool:
        return any(t.get("StorageDescriptor", {}).get("Location") == location for _db, t in self.glue.iceberg_tables())

    def tables_overlapping(self, location: str) -> list[tuple[str, TableIdent, str]]:
        found = []
        for db, table in self.glue.iceberg_tables():
            other = table.get("StorageDescriptor", {}).get("Location") or ""
            if other and overlaps(other, location):
                found.append(("", TableIdent(Namespace((db["Name"],)), table["Name"]), other))
        return found

    def owners(self, warehouse: str) -> dict[NamespaceRef | TableRef, str]:
        return self.glue.owners()

    def restricted(self, warehouse: str) -> list[TableRef]:
        return self.glue.restricted()

    def reassign_owner(self, conn, old: str, new: str) -> None:
        """Databases and tables `old` owned become `new`'s: in the ledger, and on their Glue labels."""
        if self.glue.ledger is not None:
            self.glue.ledger.reassign(old, new, conn)
        for database in self.glue.databases():
            if (database.get("Parameters") or {}).get(OWNER_PARAMETER) == old:
                self.glue.set_database_owner(database["Name"], new)
        for database, table in self.glue.iceberg_tables():
            if (table.get("Parameters") or {}).get(OWNER_PARAMETER) == old:
                table_input = glue_rename_input(table["Name"], table)
                table_input.setdefault("Parameters", {})[OWNER_PARAMETER] = new
                self.glue.call("update_table", DatabaseName=database["Name"], TableInput=table_input,
                               VersionId=table["VersionId"])
        bump_policy_version(conn)  # inside the caller's transaction (a second writer would wait for it forever)

    # Locations of tables dropped without purge are icemesh's own bookkeeping: the local database keeps them.
    def retire_location(self, warehouse: str, ident: TableIdent, location: str) -> None:
        self.local.retire_location(warehouse, ident, location)

    def retired_locations_overlapping(self, location: str) -> list[str]:
        return self.local.retired_locations_overlapping(location)

    def release_location(self, location: str) -> None:
        self.local.release_location(location)

    def swap_pointers(self, warehouse: str, changes: list[PointerChange]) -> None:
        """Apply each change with Glue's optimistic concurrency; on a conflict put back what was applied."""
        for ch in changes:  # Glue has no transaction: checked just before (a race between two creates is possible)
            if ch.claims_location and any(other != ch.ident for _wh, other, _l in self.tables_overlapping(ch.location)):
                raise refuse_overlap(ch.location)
        applied: list[tuple[PointerChange, dict | None]] = []
        try:
            for ch in changes:
                applied.append((ch, self._swap_one(ch)))
        except PointerConflict:
            self._put_back(applied)
            raise
        except (_GlueCallError, AwsError) as exc:
            self._put_back(applied)
            raise CommitStateUnknown(f"Glue failed during commit ({exc}); reload the table before retrying") from None
        for ch in changes:
            if ch.also is not None:
                ch.also(None)  # no transaction in Glue: governance follows right after the pointer
        if any(ch.expected is None for ch in changes):
            self._owners_changed()

    def _swap_one(self, ch: PointerChange) -> dict | None:
        """Returns the Glue table as it was before (None for a create)."""
        database, name = database_name(ch.ident.namespace), _lower(ch.ident.name, "table name")
        if ch.expected is None:
            table_input = self._table_input(name, ch, None)
            table_input["Parameters"].pop(OWNER_PARAMETER, None)  # a client's property is never an owner
            if ch.owner:
                table_input["Parameters"][OWNER_PARAMETER] = ch.owner
            try:
                self.glue.call("create_table", DatabaseName=database, TableInput=table_input)
            except _GlueCallError as exc:
                if exc.code in ("AlreadyExistsException", "EntityNotFoundException"):
                    raise PointerConflict(str(ch.ident)) from None
                raise
            if self.glue.ledger is not None:
                self.glue.ledger.forget(database, name)
                if ch.owner:
                    self.glue.ledger.set(database, name, ch.owner)
            return None
        current = self.glue.table(database, name)
        if current is None or not is_iceberg(current) or current["Parameters"].get(METADATA_LOCATION) != ch.expected:
            raise PointerConflict(str(ch.ident))
        before = copy.deepcopy(current)
        table_input = self._table_input(name, ch, current)
        owner = self._recorded_owner(database, name) if self.glue.ledger else before["Parameters"].get(OWNER_PARAMETER)
        table_input["Parameters"].pop(OWNER_PARAMETER, None)
        if owner:
            table_input["Parameters"][OWNER_PARAMETER] = owner
        try:
            self.glue.call("update_table", DatabaseName=database, TableInput=table_input, VersionId=current["VersionId"])
        except _GlueCallError as exc:
            if exc.code in ("ConcurrentModificationException", "EntityNotFoundException"):
                raise PointerConflict(str(ch.ident)) from None
            raise
        return before

    @staticmethod
    def _table_input(name: str, ch: PointerChange, current: dict | None) -> dict:
        glue_table = copy.deepcopy(current) if current else None
        if ch.metadata is not None:
            return glue_table_input(name, ch.new, ch.metadata.properties, ch.metadata, glue_table, ch.expected)
        # No metadata at hand (a pointer moved back): keep everything but the pointers.
        table_input = glue_rename_input(name, glue_table) if glue_table else {"Name": name, "TableType": "EXTERNAL_TABLE"}
        params = dict(table_input.get("Parameters", {}))
        params.update({TABLE_TYPE: "ICEBERG", METADATA_LOCATION: ch.new})
        if ch.expected:
            params["previous_metadata_location"] = ch.expected
        table_input["Parameters"] = params
        return table_input

    def _put_back(self, applied: list[tuple[PointerChange, dict | None]]) -> None:
        for ch, before in reversed(applied):
            database = ch.ident.namespace.levels[0]
            try:
                if before is None:
                    self.glue.call("delete_table", DatabaseName=database, Name=ch.ident.name)
                else:
                    now = self.glue.table(database, ch.ident.name)
                    if now is not None and now["Parameters"].get(METADATA_LOCATION) == ch.new:
                        self.glue.call("update_table", DatabaseName=database, VersionId=now["VersionId"],
                                       TableInput=glue_rename_input(ch.ident.name, before))
            except Exception:  # the commit failed anyway; say which table may be left moved
                log.exception("could not put back %s after a failed multi-table commit", ch.ident)

    def create_table(self, warehouse: str, ident: TableIdent, metadata_location: str, location: str,
                     owner: str | None = None, metadata: Any = None, also: Callable[[Any], None] | None = None) -> None:
        create_by_swap(self, warehouse, ident, metadata_location, location, owner, metadata, also)

    def drop_table(self, warehouse: str, ident: TableIdent, also: Callable[[Any], None] | None = None) -> TableRecord:
        record = self.get_table(warehouse, ident)
        if record is None:
            raise NoSuchTable(f"Table does not exist: {ident}")
        try:
            self.glue.call("delete_table", DatabaseName=ident.namespace.levels[0], Name=ident.name)
        except _GlueCallError as exc:
            if exc.code == "EntityNotFoundException":
                raise NoSuchTable(f"Table does not exist: {ident}") from None
            raise exc.as_icemesh() from None
        if self.glue.ledger is not None:
            self.glue.ledger.forget(ident.namespace.levels[0], ident.name)
        if also is not None:
            also(None)
        self._owners_changed()
        return record

    def rename_table(self, warehouse: str, source: TableIdent, destination: TableIdent,
                     also: Callable[[Any], None] | None = None) -> None:
        """Glue cannot rename: create the new table from the old one's definition, then delete the old one
        (as pyiceberg's GlueCatalog does). `also(None)` moves governance along (tags and grants)."""
        dst_db, dst_name = database_name(destination.namespace), _lower(destination.name, "table name")
        if self.glue.database(dst_db) is None:
            raise NoSuchNamespace(f"Namespace does not exist: {destination.namespace}")
        table = self._iceberg_table(source)
        if table is None:
            raise NoSuchTable(f"Table does not exist: {source}")
        try:
            self.glue.call("create_table", DatabaseName=dst_db, TableInput=glue_rename_input(dst_name, table))
        except _GlueCallError as exc:
            if exc.code == "AlreadyExistsException":
                raise AlreadyExists(f"Table already exists: {destination}") from None
            raise exc.as_icemesh() from None
        try:
            if also is not None:
                also(None)
            self.glue.call("delete_table", DatabaseName=source.namespace.levels[0], Name=source.name)
        except Exception as exc:
            self.glue.call("delete_table", DatabaseName=dst_db, Name=dst_name)
            raise exc.as_icemesh() if isinstance(exc, _GlueCallError) else exc from None
        if self.glue.ledger is not None:
            self.glue.ledger.move((source.namespace.levels[0], source.name), (dst_db, dst_name))
        self._owners_changed()


def _refuse_owner_property(properties: dict[str, str]) -> None:
    if OWNER_PARAMETER in properties:
        raise BadRequest(f"Property {OWNER_PARAMETER} is managed by icemesh (namespace owners are set with a policy file)")
