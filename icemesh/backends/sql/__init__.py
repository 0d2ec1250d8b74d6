"""The SQL backend: the whole catalog in one database (SQLite by default, PostgreSQL in production), one
module per port (pointers, identities, policy, audit, idempotency, views, events, products) over a shared schema and its migrations."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from icemesh.backends.sql.audit import SqlAudit
from icemesh.backends.sql.database import Database
from icemesh.backends.sql.events import SqlEventLog
from icemesh.backends.sql.identities import SqlIdentities
from icemesh.backends.sql.idempotency import SqlIdempotency
from icemesh.backends.sql.pointers import SqlPointerStore
from icemesh.backends.sql.products import SqlProductIndex
from icemesh.backends.sql.policy import SqlPolicy
from icemesh.backends.sql.schema import migrate
from icemesh.backends.sql.views import SqlViewStore
from icemesh.catalog.ports import Backend
from icemesh.errors import InvalidConfiguration


def open_database(url: str) -> Database:
    """The database at `url`, migrated to the current schema; a one-line error when it cannot be opened."""
    database = Database(url)
    try:
        migrate(database)
    except SQLAlchemyError as exc:
        database.close()
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise InvalidConfiguration(f"Cannot open the catalog database: {reason}") from None
    return database


def open_sql(url: str) -> Backend:
    database = open_database(url)
    products = SqlProductIndex(database)
    pointers = SqlPointerStore(database, products)
    audit = SqlAudit(database)

    def close() -> None:
        audit.close()
        database.close()

    return Backend(pointers=pointers, identities=SqlIdentities(database), policy=SqlPolicy(database, pointers),
                   audit=audit, idempotency=SqlIdempotency(database), close=close, views=SqlViewStore(database, products),
                   events=SqlEventLog(database), products=products)
