"""Every file belongs to one table: a table owns its location prefix, and names only files under it.

Two rules make that hold by construction. No table's location may equal, contain or lie inside another's
(checked by the store inside the transaction that records the location, so two racing creates cannot
both win). And every file a commit or a registration makes part of a table must lie under that table's
own location (`TableFiles.require`), so a table can never be pointed at another table's files, and
purging a table's prefix deletes only its own.
"""

from __future__ import annotations

from typing import Callable
from urllib.parse import urlparse

from icemesh.errors import BadRequest


class LocationInUse(BadRequest):
    """A table location overlaps another table's (the other table is not named: it may be invisible)."""


def ancestors(location: str) -> list[str]:
    """Every proper prefix of `location` that could be a table location: `s3://b/a/b/c` -> `s3://b/a/b`, `s3://b/a`."""
    parsed = urlparse(location)
    head = f"{parsed.scheme}://{parsed.netloc}"
    parts = [p for p in parsed.path.split("/") if p]
    return [head + "/" + "/".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


def overlaps(a: str, b: str) -> bool:
    a, b = a.rstrip("/"), b.rstrip("/")
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def refuse_overlap(location: str) -> LocationInUse:
    return LocationInUse(f"Table location {location} overlaps another table's location: every table owns its own "
                         "prefix; omit the location to get a fresh one")


class TableFiles:
    """The files one table may name: those under its canonical location."""

    def __init__(self, location: str, canonical: Callable[[str], str | None]) -> None:
        self.location = location.rstrip("/")
        self._canonical = canonical

    def contains(self, path: str | None) -> bool:
        canonical = self._canonical(path) if path else None
        return canonical is not None and canonical.startswith(self.location + "/")

    def require(self, path: str | None, what: str) -> None:
        if not self.contains(path):
            raise BadRequest(f"The {what} {path!r} lies outside the table's location {self.location}: a table may only "
                             "name its own files (write them under its location)")
