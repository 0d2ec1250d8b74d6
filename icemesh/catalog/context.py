"""Who is calling and how: passed to every service call so authorization can be added in one place."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Principal:
    name: str
    roles: tuple[str, ...] = ()
    anonymous: bool = False


ANONYMOUS = Principal("anonymous", anonymous=True)


@dataclass(frozen=True)
class RequestContext:
    principal: Principal = ANONYMOUS
    # e.g. "vended-credentials": clients always send it; accepted, never required.
    access_delegation: str | None = None
    request_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
