"""Who may log in: the identity port the authenticator (and the management service) depend on.

Principals with their secrets (hashed), roles, and bearer tokens (hashed). Backends implement it
(icemesh/backends/sql/identities.py); nothing here knows how it is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from icemesh.governance.policy import Grant


@dataclass(frozen=True)
class PrincipalRecord:
    name: str
    roles: tuple[str, ...]
    created_at: float



class IdentityStore(Protocol):
    """Principals (their secrets hashed), roles and bearer tokens (hashed)."""

    def create_principal(self, name: str, secret_hash: str, roles: list[str], created_by: str | None) -> None: ...
    def principal_secret_hash(self, name: str) -> str | None: ...
    def set_secret(self, name: str, secret_hash: str) -> None: ...
    def set_roles(self, name: str, roles: list[str]) -> None: ...
    def list_principals(self) -> list[PrincipalRecord]: ...
    def delete_principal(self, name: str, also: Callable[[Any], None] | None = None) -> None: ...
    def create_role(self, name: str) -> None: ...
    def list_roles(self) -> dict[str, list[str]]: ...
    def delete_role(self, name: str) -> None: ...
    def store_token(self, token_hash: str, principal: str, expires_at: float, scopes: str) -> None: ...
    def lookup_token(self, token_hash: str) -> tuple[str, float, str, tuple[str, ...]] | None: ...
    def revoke_tokens(self, principal: str) -> int: ...




class GrantStore(Protocol):
    """The one governance write the authenticator needs: the first `admin`'s ADMIN grant."""

    def add_grant(self, grant: Grant, created_by: str | None) -> int: ...
