"""Who is calling and how: passed to every service call so authorization can be added in one place."""

from __future__ import annotations

from dataclasses import dataclass


# A token scope a client asks for when it promises to read only the columns the catalog shows it
# (icemesh's own engine adapters do); the header X-Icemesh-Column-Limits: apply says the same per request.
COLUMN_LIMITS_SCOPE = "icemesh:column-limits"


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
