"""The words client and server share: the request context every service call receives (who is calling and
how), and the wire names (headers, scopes) icemesh adds to the Iceberg REST protocol. Both sides import this
module, so a client never imports the server to know what to send."""

from __future__ import annotations

from dataclasses import dataclass


# A token scope a client asks for when it promises to read only the columns the catalog shows it
# (icemesh's own engine adapters do); the header X-Icemesh-Column-Limits: apply says the same per request.
COLUMN_LIMITS_SCOPE = "icemesh:column-limits"
COLUMN_LIMITS_HEADER = "X-Icemesh-Column-Limits"
COLUMN_LIMITS_APPLY = "apply"
# The same promise for the REST spec's read restrictions (a row filter and column masks the reader applies): a
# client that does not make it is refused a table it may read only filtered or masked (fail closed).
READ_RESTRICTIONS_SCOPE = "icemesh:read-restrictions"
READ_RESTRICTIONS_HEADER = "X-Icemesh-Read-Restrictions"
ACCESS_DELEGATION_HEADER = "X-Iceberg-Access-Delegation"  # clients always send it: accepted, never required
# The change feed's `operation-type`s (GET /management/v1/events): the catalog's, then governance's (`x-`).
EVENT_TYPES = ("create-namespace", "drop-namespace", "create-table", "register-table", "update-table", "drop-table",
               "rename-table", "x-tag-key", "x-tag-assignment", "x-grant", "x-policy-apply")
SNAPSHOT_EVENTS = ("create-table", "register-table", "update-table")  # those that can bring a table a new snapshot


@dataclass(frozen=True)
class Principal:
    name: str
    roles: tuple[str, ...] = ()
    anonymous: bool = False
    scopes: frozenset[str] = frozenset()


ANONYMOUS = Principal("anonymous", anonymous=True)


@dataclass(frozen=True)
class RequestContext:
    principal: Principal = ANONYMOUS
    # e.g. "vended-credentials": clients always send it; accepted, never required.
    access_delegation: str | None = None
    request_id: str | None = None
    applies_column_limits: bool = False
    applies_read_restrictions: bool = False
