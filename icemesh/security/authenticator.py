"""Who is calling: OAuth2 client credentials in, expiring bearer tokens out, tokens back to principals.

Tokens are opaque random strings; only their SHA-256 is stored. A short in-process cache keeps
token checks off the database on hot paths; revocation (secret rotation, principal deletion) takes
effect everywhere within `cache_ttl_s`.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from dataclasses import dataclass

from icemesh.protocol import COLUMN_LIMITS_SCOPE, Principal
from icemesh.errors import IcemeshError, NotAuthorized
from icemesh.governance.permissions import Permission
from icemesh.governance.policy import PRINCIPAL, Grant, Grantee
from icemesh.security import secrets
from icemesh.security.identities import GrantStore, IdentityStore

ADMIN = "admin"
ADMIN_SECRET_ENV = "ICEMESH_ADMIN_SECRET"
# Scopes a token may carry: "catalog" (every Iceberg client's default) and the column-limits promise.
KNOWN_SCOPES = frozenset({"catalog", COLUMN_LIMITS_SCOPE})


class OAuthError(IcemeshError):
    """Token endpoint failures use OAuth2's own error model: {"error", "error_description"}."""

    def __init__(self, error: str, description: str, code: int = 401) -> None:
        super().__init__(description)
        self.error = error
        self.code = code


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str
    principal: str = ""


class Authenticator:
    def __init__(self, identities: IdentityStore, grants: GrantStore, token_ttl_s: int = 3600, cache_ttl_s: float = 2.0) -> None:
        self.identities = identities
        self.grants = grants  # only to give the first `admin` its ADMIN grant
        self.token_ttl_s = token_ttl_s
        self.cache_ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[Principal, float, float]] = {}
        self._lock = threading.Lock()
        self._decoy = secrets.hash_secret(secrets.new_secret())  # verified for unknown ids: same cost as a wrong secret

    # -- bootstrap ---------------------------------------------------------------------------------

    def ensure_admin(self, secret_file: str | None) -> str | None:
        """Create `admin` with ADMIN on the catalog on first start; returns a newly generated secret to show once.

        With ICEMESH_ADMIN_SECRET set, the admin's secret is (re)set to it on every start.
        """
        wanted = os.environ.get(ADMIN_SECRET_ENV)
        existing = self.identities.principal_secret_hash(ADMIN)
        if existing is not None:
            if wanted and not secrets.verify_secret(wanted, existing):
                self.identities.set_secret(ADMIN, secrets.hash_secret(wanted))
            return None
        secret = wanted or secrets.new_secret()
        self.identities.create_principal(ADMIN, secrets.hash_secret(secret), [], created_by=None)
        self.grants.add_grant(Grant(0, Grantee(PRINCIPAL, ADMIN), frozenset({Permission.ADMIN}), catalog=True), None)
        if wanted:
            return None
        if secret_file:
            folder = os.path.dirname(os.path.abspath(secret_file))
            if not os.path.isdir(folder):
                os.makedirs(folder, mode=0o700, exist_ok=True)
            fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secret + "\n")
        return secret

    # -- token endpoint ----------------------------------------------------------------------------

    def client_credentials(self, client_id: str | None, client_secret: str | None, scope: str | None) -> IssuedToken:
        if not client_id or not client_secret:
            raise OAuthError("invalid_client", "client_id and client_secret are required (client credentials grant)")
        stored = self.identities.principal_secret_hash(client_id)
        matches = secrets.verify_secret(client_secret, stored or self._decoy)
        if stored is None or not matches:
            raise OAuthError("invalid_client", "Unknown client_id or wrong client_secret")
        # Clients send their own defaults (DuckDB: PRINCIPAL_ROLE:ALL): unknown scopes are not granted.
        return self._issue(client_id, " ".join(s for s in (scope or "catalog").split() if s in KNOWN_SCOPES) or "catalog")

    def token_exchange(self, subject_token: str | None, scope: str | None) -> IssuedToken:
        """Refresh: a valid token is exchanged for a new one of the same principal, with no scope it does not
        know and no later expiry than the token it came from (a refresh never extends a session)."""
        if not subject_token:
            raise OAuthError("invalid_request", "subject_token is required for token exchange", 400)
        unknown = sorted(set((scope or "").split()) - KNOWN_SCOPES)
        if unknown:
            raise OAuthError("invalid_scope", f"Unknown scope {unknown[0]!r}: known scopes are "
                             f"{', '.join(sorted(KNOWN_SCOPES))}", 400)
        try:
            principal = self.principal_for_token(subject_token)
        except NotAuthorized as exc:
            raise OAuthError("invalid_grant", exc.message) from None
        found = self.identities.lookup_token(secrets.hash_token(subject_token))
        expires_at = found[1] if found else time.time()
        wanted = scope or " ".join(sorted(principal.scopes)) or "catalog"
        return self._issue(principal.name, wanted, expires_at)

    def _issue(self, principal: str, scope: str | None, not_after: float | None = None) -> IssuedToken:
        token = secrets.new_token()
        scopes = " ".join(sorted(set((scope or "catalog").split())))
        now = time.time()
        expires_at = now + self.token_ttl_s
        if not_after is not None:
            expires_at = min(expires_at, not_after)
        self.identities.store_token(secrets.hash_token(token), principal, expires_at, scopes)
        return IssuedToken(token, max(0, int(round(expires_at - now))), scopes, principal)

    # -- requests ----------------------------------------------------------------------------------

    def principal_for_header(self, authorization: str | None) -> Principal:
        if not authorization:
            raise NotAuthorized("Authentication required: send a bearer token (get one from POST /v1/oauth/tokens "
                                "with client credentials, or set ICEMESH_TOKEN)")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise NotAuthorized("Unsupported Authorization header: use 'Bearer <token>'")
        return self.principal_for_token(value.strip())

    def principal_for_token(self, token: str) -> Principal:
        token_hash = secrets.hash_token(token)
        now = time.time()
        with self._lock:
            hit = self._cache.get(token_hash)
        if hit is not None and now - hit[2] < self.cache_ttl_s:
            principal, expires_at, _ = hit
            if expires_at <= now:
                raise NotAuthorized("Token expired: request a new one from POST /v1/oauth/tokens")
            return principal
        found = self.identities.lookup_token(token_hash)
        if found is None:
            with self._lock:
                self._cache.pop(token_hash, None)
            raise NotAuthorized("Invalid or revoked token: request a new one from POST /v1/oauth/tokens")
        name, expires_at, scopes, roles = found
        if expires_at <= now:
            raise NotAuthorized("Token expired: request a new one from POST /v1/oauth/tokens")
        principal = Principal(name, roles, scopes=frozenset(scopes.split()))
        with self._lock:
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[token_hash] = (principal, expires_at, now)
        return principal

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()


def basic_credentials(authorization: str | None) -> tuple[str | None, str | None]:
    """client_id/secret from an HTTP Basic header, which some OAuth2 clients use instead of the form."""
    if not authorization or not authorization.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(authorization.split(" ", 1)[1]).decode("utf-8")
    except (ValueError, UnicodeError):
        return None, None
    client_id, _, client_secret = decoded.partition(":")
    return client_id or None, client_secret or None
