"""CSRF tokens for the portal's forms. Login has no session yet: a double-submit token (a random value in an
HttpOnly SameSite=Strict cookie and in the form). A logged-in form carries a token bound to the session: a hash
of the session's token under a fixed label, which another site can neither read nor compute."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

LOGIN_COOKIE = "icemesh_portal_csrf"
FIELD = "csrf"
REFUSED = "This form did not come from the portal's own page (or it is too old): reload the page and try again"


def new_login_token() -> str:
    return secrets.token_urlsafe(32)


def set_login_cookie(response: Response, token: str) -> None:
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict", path="/")


def clear_login_cookie(response: Response) -> None:
    response.delete_cookie(LOGIN_COOKIE, path="/", httponly=True, samesite="strict")


def session_token(session: str) -> str:
    return hashlib.sha256(b"icemesh-portal-csrf\0" + session.encode("utf-8")).hexdigest()


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


def _same_origin(request: Request) -> bool:
    """A browser names the page a POST came from; one from another site is refused even with a token."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def login_ok(request: Request, form: dict[str, str]) -> bool:
    return _same_origin(request) and _same(request.cookies.get(LOGIN_COOKIE), form.get(FIELD))


def session_ok(request: Request, session: str | None, form: dict[str, str]) -> bool:
    return _same_origin(request) and session is not None and _same(session_token(session), form.get(FIELD))
