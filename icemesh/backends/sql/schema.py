"""Every table of the SQL backend, and the versioned migrations that bring an older catalog database to this schema.

`migrate(database)` runs at start: a new database is created at the current version; an older one (recorded in
`icemesh_schema_version`, or from before versions were recorded) runs each later migration in order, once.
Migrations use fixed names only, never input.
"""

from __future__ import annotations

import time

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    insert,
    select,
    text,
    update,
)

from icemesh.backends.sql.database import Database

schema = MetaData()
ACCESS_PROPERTY = "icemesh.dbt.access"
RESTRICTED_ACCESS = ("protected", "private")

warehouses_t = Table(
    "icemesh_warehouses",
    schema,
    Column("name", String(255), primary_key=True),
    Column("root", Text, nullable=False),
    Column("properties", Text, nullable=False, default="{}"),
)


namespaces_t = Table(
    "icemesh_namespaces",
    schema,
    Column("warehouse", String(255), primary_key=True),
    Column("name", String(4200), primary_key=True),
    Column("parent", String(4200), nullable=False, index=True),
    Column("properties", Text, nullable=False, default="{}"),
    Column("created_at", Float, nullable=False),
    Column("owner", String(255)),
)


tables_t = Table(
    "icemesh_tables",
    schema,
    Column("warehouse", String(255), primary_key=True),
    Column("namespace", String(4200), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("metadata_location", Text, nullable=False),
    Column("previous_metadata_location", Text),
    Column("location", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("owner", String(255)),
    # The dbt access level the table's metadata declares (icemesh.dbt.access), kept with every pointer move:
    # protected and private models are not products (see Policy.restricted).
    Column("access", String(16)),
    ForeignKeyConstraint(["warehouse", "namespace"], ["icemesh_namespaces.warehouse", "icemesh_namespaces.name"]),
    Index("ix_icemesh_tables_updated", "warehouse", "updated_at"),  # what moved lately (the product index's check)
    Index("ix_icemesh_tables_access", "warehouse", "access"),  # the restricted tables, at every policy snapshot
)


views_t = Table(
    # Iceberg views: a pointer to the view's current metadata file, like a table's (the name is unique among
    # a namespace's tables and views alike).
    "icemesh_views",
    schema,
    Column("warehouse", String(255), primary_key=True),
    Column("namespace", String(4200), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("metadata_location", Text, nullable=False),
    Column("location", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("owner", String(255)),
    ForeignKeyConstraint(["warehouse", "namespace"], ["icemesh_namespaces.warehouse", "icemesh_namespaces.name"]),
    Index("ix_icemesh_views_updated", "warehouse", "updated_at"),
)


owners_t = Table(
    # Who owns each Glue database and table (the Glue backend): recorded here, where only icemesh writes, not
    # in a Glue parameter any Glue writer can change. name '' is the namespace itself.
    "icemesh_owners",
    schema,
    Column("namespace", String(255), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("owner", String(255), nullable=False),
)


retired_locations_t = Table(
    "icemesh_retired_locations",
    schema,
    Column("location", String(2048), primary_key=True),
    Column("warehouse", String(255), nullable=False),
    Column("namespace", String(4200), nullable=False),
    Column("name", String(255), nullable=False),
    Column("retired_at", Float, nullable=False),
)


policy_version_t = Table(
    "icemesh_policy_version",
    schema,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)


# SQLite: a counter that triggers on icemesh_tables raise with every insert, update and delete, by any process
# (pointer_triggers), so a server that kept the pointers it read knows in one select whether any moved.
pointer_version_t = Table(
    "icemesh_pointer_version",
    schema,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)


idempotency_t = Table(
    "icemesh_idempotency_keys",
    schema,
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(512), nullable=False),
    Column("status", Integer),
    Column("body", LargeBinary),
    Column("created_at", Float, nullable=False),
)


principals_t = Table(
    "icemesh_principals", schema,
    Column("name", String(255), primary_key=True),
    Column("secret_hash", Text, nullable=False),
    Column("roles", Text, nullable=False, default="[]"),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(255)),
)


roles_t = Table(
    "icemesh_roles", schema,
    Column("name", String(255), primary_key=True),
    Column("created_at", Float, nullable=False),
)


tokens_t = Table(
    "icemesh_tokens", schema,
    Column("token_hash", String(64), primary_key=True),
    Column("principal", String(255), nullable=False, index=True),
    Column("expires_at", Float, nullable=False),
    Column("scopes", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False),
)


tag_keys_t = Table(
    "icemesh_tag_keys", schema,
    Column("key", String(128), primary_key=True),
    Column("allowed_values", Text, nullable=False),
)


tag_assignments_t = Table(
    "icemesh_tag_assignments", schema,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Where it applies: '' = in every warehouse (governance's namespace and table tags); a warehouse name =
    # there only (an owner's tags apply where it owns the resource; column tags bind to that table's field ids).
    Column("warehouse", String(255), nullable=False, default=""),
    Column("namespace", String(4200), nullable=False),
    Column("table_name", String(255), nullable=False, default=""),
    Column("column_name", String(255), nullable=False, default=""),
    # The Iceberg field id the column tag protects: renames follow it, a dropped column's tags go with it.
    # NULL until the next commit binds it (tags from an older catalog, still matched by name).
    Column("field_id", Integer, nullable=True),
    Column("key", String(128), nullable=False),
    Column("value", String(128), nullable=False),
    # Who set it when not an admin (a product's owner tagging its own product); NULL = set by governance,
    # which only an admin may change.
    Column("assigned_by", String(255), nullable=True),
    # Declared in the table's own `icemesh.tags` property (kept equal to it at every commit), not assigned by hand.
    Column("declared", Boolean, nullable=False, default=False),
    UniqueConstraint("warehouse", "namespace", "table_name", "column_name", "key", name="uq_icemesh_tag_assignment"),
)


grants_t = Table(
    "icemesh_grants", schema,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("grantee_kind", String(16), nullable=False),
    Column("grantee", String(255), nullable=False),
    Column("permissions", Text, nullable=False),
    Column("target_kind", String(16), nullable=False),  # catalog | namespace | table | tags
    Column("namespace", String(4200)),
    Column("table_name", String(255)),
    Column("columns", Text),
    Column("expression", Text),
    Column("data_filter", Text),  # JSON {rows, masks} of a SELECT grant that shows some rows or masks columns
    Column("created_at", Float, nullable=False),
    Column("created_by", String(255)),
    sqlite_autoincrement=True,  # grant ids appear in decisions and audit rows: never reuse one
)


projects_t = Table(
    "icemesh_projects", schema,
    # A dbt project name belongs to one domain: the namespace its products live in and the principal that
    # publishes them, bound when it first publishes (into the namespace of its own name) or by an admin.
    Column("project", String(255), primary_key=True),
    Column("namespace", String(4200), nullable=False),
    Column("owner", String(255), nullable=False),
    Column("bound_by", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
)


audit_t = Table(
    "icemesh_audit", schema,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False, index=True),
    Column("principal", String(255), nullable=False, index=True),
    Column("action", String(64), nullable=False),
    Column("resource", Text, nullable=False),
    Column("allowed", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("request_id", String(64)),
)


events_t = Table(
    "icemesh_events", schema,
    Column("id", Integer, primary_key=True, autoincrement=True),  # the feed's cursor
    Column("at", Float, nullable=False, index=True),
    Column("type", String(64), nullable=False),
    Column("principal", String(255), nullable=False),
    Column("warehouse", String(255), nullable=False),
    Column("namespace", Text, nullable=False),  # Namespace.key
    Column("name", String(255), nullable=False),  # '' for a namespace's event
    Column("snapshot_id", BigInteger, nullable=True),
    Column("detail", Text, nullable=False),  # JSON
)


products_t = Table(
    # The product index: what each table's (or view's) current metadata says about it as a product, written in
    # the transaction that moves its pointer, so listing and searching products reads no metadata file.
    "icemesh_products", schema,
    Column("warehouse", String(255), primary_key=True),
    Column("namespace", String(4200), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("kind", String(8), nullable=False),  # table | view
    Column("metadata_location", Text, nullable=False),  # the file the row was computed from
    Column("product", Boolean, nullable=False),  # dbt published it (it names a model)
    Column("project", String(255)),
    Column("model", String(255)),
    Column("version", String(64)),
    Column("access", String(16)),
    Column("owner_email", String(255)),
    Column("owner_name", String(255)),
    Column("search", Text, nullable=False, default=""),  # lower-case words a search may match (a superset)
    Column("snapshot_id", BigInteger),
    Column("last_updated_ms", BigInteger),
    Column("summary", Text),  # JSON (tables/product_summary.py); NULL when the metadata could not be read
    Column("error", Text),  # why the metadata could not be read (the row is skipped, and reported)
    Index("ix_icemesh_products_listing", "warehouse", "product", "namespace", "name"),  # pages of products
    Index("ix_icemesh_products_claim", "warehouse", "project", "model", "version", "namespace"),  # twins
)


product_upstream_t = Table(
    # Product lineage: one row per upstream product a product records (icemesh.dbt.upstream), for downstream
    # and lineage lookups without reading every product.
    "icemesh_product_upstream", schema,
    Column("warehouse", String(255), primary_key=True),
    Column("upstream", String(1024), primary_key=True),  # 'namespace.table', as dbt records it
    Column("namespace", String(4200), primary_key=True),
    Column("name", String(255), primary_key=True),
    Index("ix_icemesh_product_upstream_of", "warehouse", "namespace", "name"),
)


product_words_t = Table(
    # Search: every word of a product's searchable text (tables/product_summary.words), so a search looks up
    # word prefixes in an index instead of scanning every product's text.
    "icemesh_product_words", schema,
    Column("warehouse", String(255), primary_key=True),
    # Byte order on PostgreSQL too, so a prefix is one index range (as SQLite's default)
    Column("word", String(64).with_variant(String(64, collation="C"), "postgresql"), primary_key=True),
    Column("namespace", String(4200), primary_key=True),
    Column("name", String(255), primary_key=True),
    Index("ix_icemesh_product_words_of", "warehouse", "namespace", "name"),
)


schema_version_t = Table(
    "icemesh_schema_version",
    schema,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("migrated_at", Float, nullable=False),
)


def bump_policy_version(conn) -> None:
    """Owners, tags and grants feed authorization: any change to them invalidates cached policies."""
    conn.execute(update(policy_version_t).where(policy_version_t.c.id == 1).values(version=policy_version_t.c.version + 1))


def _tag_assignments_per_warehouse(database: Database) -> None:
    """Catalogs created by an earlier icemesh keep tag assignments without a warehouse or field id: move them
    to the current table (fixed names only, no user input). Column tags and owners' tags applied in every
    warehouse then: they are copied to each known warehouse; field ids are bound at the next commit."""
    from sqlalchemy import inspect, text

    inspector = inspect(database.engine)
    if tag_assignments_t.name not in inspector.get_table_names():
        return
    columns = {c["name"] for c in inspector.get_columns(tag_assignments_t.name)}
    if "warehouse" in columns:
        return
    old = "icemesh_tag_assignments_v1"
    with database.write() as conn, conn.begin():
        conn.execute(text(f"ALTER TABLE {tag_assignments_t.name} RENAME TO {old}"))
        if database.engine.dialect.name == "postgresql":  # index and sequence names are per schema there
            conn.execute(text(f"ALTER INDEX {tag_assignments_t.name}_pkey RENAME TO {old}_pkey"))
            conn.execute(text(f"ALTER SEQUENCE {tag_assignments_t.name}_id_seq RENAME TO {old}_id_seq"))
    schema.create_all(database.engine, tables=[tag_assignments_t])
    with database.write() as conn, conn.begin():
        warehouses = [r[0] for r in conn.execute(text("SELECT name FROM icemesh_warehouses"))] or [""]
        by = "assigned_by" if "assigned_by" in columns else "NULL"
        rows = conn.execute(text(f"SELECT namespace, table_name, column_name, key, value, {by} AS assigned_by "
                                 f"FROM {old}")).all()
        for r in rows:
            scopes = warehouses if (r.column_name or r.assigned_by) else [""]
            for wh in scopes:
                conn.execute(insert(tag_assignments_t).values(
                    warehouse=wh, namespace=r.namespace, table_name=r.table_name, column_name=r.column_name,
                    field_id=None, key=r.key, value=r.value, assigned_by=r.assigned_by, declared=False))
        conn.execute(text(f"DROP TABLE {old}"))


def _tables_access_column(database: Database) -> None:
    """Catalogs made by an earlier icemesh lack `access` (fixed names, no user input); it fills in at the
    next commit of each table."""
    from sqlalchemy import inspect

    if "access" not in {c["name"] for c in inspect(database.engine).get_columns(tables_t.name)}:
        with database.write() as conn, conn.begin():
            conn.execute(text(f"ALTER TABLE {tables_t.name} ADD COLUMN access VARCHAR(16)"))


def _grants_data_filter_column(database: Database) -> None:
    """Catalogs made by an earlier icemesh lack `data_filter` (fixed names, no user input): their grants have none."""
    from sqlalchemy import inspect

    if "data_filter" not in {c["name"] for c in inspect(database.engine).get_columns(grants_t.name)}:
        with database.write() as conn, conn.begin():
            conn.execute(text(f"ALTER TABLE {grants_t.name} ADD COLUMN data_filter TEXT"))


def _product_index(database: Database) -> None:
    """The index tables are created with the others (create_all); the pointer tables gain the index on what
    moved lately (fixed names, no user input). An existing catalog's index rows are filled from the tables'
    metadata on the first listing (ProductService), one unreadable table skipped and reported."""
    with database.write() as conn, conn.begin():
        for table in ("icemesh_tables", "icemesh_views"):
            if table in set(inspect(database.engine).get_table_names()):
                conn.execute(text(f"CREATE INDEX IF NOT EXISTS ix_{table}_updated ON {table} (warehouse, updated_at)"))


def _tables_access_index(database: Database) -> None:
    """Each policy snapshot reads the restricted tables (access protected or private): an index range, not a
    scan of every pointer (~30-50 ms at 100,000 tables on PostgreSQL). Fixed names, no user input."""
    with database.write() as conn, conn.begin():
        conn.execute(text(f"CREATE INDEX IF NOT EXISTS ix_{tables_t.name}_access ON {tables_t.name} (warehouse, access)"))


def pointer_triggers(database: Database) -> None:
    """SQLite: every change to a table's pointer row raises icemesh_pointer_version (fixed names, no user input).
    Triggers, not code on each write path, so every writer counts, whatever it is."""
    if database.is_postgres:
        return
    with database.write() as conn, conn.begin():
        if conn.execute(select(pointer_version_t.c.id).where(pointer_version_t.c.id == 1)).first() is None:
            conn.execute(insert(pointer_version_t).values(id=1, version=1))
        for event in ("INSERT", "UPDATE", "DELETE"):
            conn.execute(text(
                f"CREATE TRIGGER IF NOT EXISTS {tables_t.name}_{event.lower()}_counted AFTER {event} ON {tables_t.name} "
                f"BEGIN UPDATE {pointer_version_t.name} SET version = version + 1 WHERE id = 1; END"))


# Each migration brings a database from the version before it to its own; the first is the schema as it was
# before versions were recorded (created by `create_all`).
MIGRATIONS = [
    (2, "tag assignments per warehouse, bound to field ids", _tag_assignments_per_warehouse),
    (3, "tables record their dbt access level", _tables_access_column),
    (4, "grants carry data filters (row filters, column masks)", _grants_data_filter_column),
    (5, "the product index", _product_index),
    (6, "the tables' dbt access level is indexed", _tables_access_index),
]
CURRENT = MIGRATIONS[-1][0]


def migrate(database: Database) -> int:
    """Bring the database to CURRENT; returns the version it was at."""
    engine = database.engine
    existing = set(inspect(engine).get_table_names())
    if schema_version_t.name in existing:
        with database.connect() as conn:
            found = conn.execute(select(schema_version_t.c.version)).scalar()
    elif "icemesh_tables" in existing:
        found = 1  # a catalog from before versions were recorded
    else:
        found = None
    if found is None:  # a new database: the current schema at once
        schema.create_all(engine)
        _record(database, CURRENT)
        pointer_triggers(database)
        return CURRENT
    for version, _what, step in MIGRATIONS:
        if version > found:
            step(database)
    schema.create_all(engine)  # tables added since (no data to move)
    _record(database, CURRENT)
    pointer_triggers(database)  # idempotent: also where an earlier icemesh made the database
    return found


def _record(database: Database, version: int) -> None:
    with database.write() as conn, conn.begin():
        if conn.execute(select(schema_version_t.c.id)).first() is None:
            conn.execute(insert(schema_version_t).values(id=1, version=version, migrated_at=time.time()))
        else:
            conn.execute(update(schema_version_t).values(version=version, migrated_at=time.time()))
        if conn.execute(select(policy_version_t.c.id).where(policy_version_t.c.id == 1)).first() is None:
            conn.execute(insert(policy_version_t).values(id=1, version=1))
