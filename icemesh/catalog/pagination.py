"""Opaque page tokens for list endpoints (the spec's `pageToken` / `next-page-token`)."""

from __future__ import annotations

import base64

from icemesh.errors import BadRequest

DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10000


def page_bounds(page_token: str | None, page_size: int | None) -> tuple[bool, str | None, int | None]:
    """Return (paginate, start-after key, limit). Clients opt in by sending `pageToken` (even empty)."""
    if page_size is not None and (page_size < 1 or page_size > MAX_PAGE_SIZE):
        raise BadRequest(f"pageSize must be between 1 and {MAX_PAGE_SIZE}")
    if page_token is None and page_size is None:
        return False, None, None
    after = decode(page_token) if page_token else None
    return True, after, page_size or DEFAULT_PAGE_SIZE


def encode(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii")


def decode(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (ValueError, UnicodeError):
        raise BadRequest("Invalid pageToken: pass back the next-page-token from the previous page") from None
