"""Opaque page tokens for list endpoints (the spec's `pageToken` / `next-page-token`)."""

from __future__ import annotations

import base64
from typing import Callable, TypeVar

from icemesh.errors import BadRequest

T = TypeVar("T")

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


def filtered_page(fetch: Callable[[str | None, int | None], list[T]], keep: Callable[[T], bool],
                  key: Callable[[T], str], page_token: str | None, page_size: int | None) -> tuple[list[T], str | None]:
    """One page of the items a caller may see, read from the store in batches until the page is full.

    `fetch(after, limit)` returns items in key order; returns the page and the next-page token (None at the end
    or when the client did not ask for pages).
    """
    paginate, after, limit = page_bounds(page_token, page_size)
    batch_size = (limit + 1) * 2 if limit else None
    visible: list[T] = []
    while True:
        batch = fetch(after, batch_size)
        visible += [item for item in batch if keep(item)]
        if not batch or limit is None or len(visible) > limit or len(batch) < batch_size:
            break
        after = key(batch[-1])
    if paginate and limit is not None and len(visible) > limit:
        visible = visible[:limit]
        return visible, encode(key(visible[-1]))
    return visible, None


def encode(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii")


def decode(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (ValueError, UnicodeError):
        raise BadRequest("Invalid pageToken: pass back the next-page-token from the previous page") from None
