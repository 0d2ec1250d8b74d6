"""Principals, roles and tokens in SQL: who may log in, with which secret (hashed), in which roles.

Secrets are stored scrypt-hashed and tokens SHA-256-hashed (see icemesh.security.secrets); nothing here
ever sees a secret in clear.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from icemesh.backends.sql.database import Database
from icemesh.backends.sql.schema import bump_policy_version, grants_t, principals_t, roles_t, tokens_t
from icemesh.catalog.ports import PrincipalRecord
from icemesh.errors import AlreadyExists, NotFound
from icemesh.governance.policy import ROLE


class SqlIdentities:
    def __init__(self, database: Database) -> None:
        self.db = database

    def create_principal(self, name: str, secret_hash: str, roles: list[str], created_by: str | None) -> None:
        try:
            with self.db.write() as conn, conn.begin():
                for role in roles:
                    if conn.execute(select(roles_t.c.name).where(roles_t.c.name == role)).first() is None:
                        conn.execute(insert(roles_t).values(name=role, created_at=time.time()))
                conn.execute(insert(principals_t).values(name=name, secret_hash=secret_hash, roles=json.dumps(sorted(roles)),
                                                         created_at=time.time(), created_by=created_by))
                bump_policy_version(conn)
        except IntegrityError:
            raise AlreadyExists(f"Principal {name} already exists") from None

    def principal_secret_hash(self, name: str) -> str | None:
        with self.db.connect() as conn:
            row = conn.execute(select(principals_t.c.secret_hash).where(principals_t.c.name == name)).first()
        return row[0] if row else None

    def principal_exists(self, name: str) -> bool:
        """One indexed row, not the list: asked on every `access check` (1,000 principals cost ~15 ms to list)."""
        return self.principal_secret_hash(name) is not None

    def set_secret(self, name: str, secret_hash: str) -> None:
        with self.db.write() as conn, conn.begin():
            result = conn.execute(update(principals_t).where(principals_t.c.name == name).values(secret_hash=secret_hash))
            if result.rowcount != 1:
                raise NotFound(f"Principal {name} does not exist")
            conn.execute(delete(tokens_t).where(tokens_t.c.principal == name))

    def set_roles(self, name: str, roles: list[str]) -> None:
        with self.db.write() as conn, conn.begin():
            for role in roles:
                if conn.execute(select(roles_t.c.name).where(roles_t.c.name == role)).first() is None:
                    conn.execute(insert(roles_t).values(name=role, created_at=time.time()))
            result = conn.execute(update(principals_t).where(principals_t.c.name == name).values(roles=json.dumps(sorted(roles))))
            if result.rowcount != 1:
                raise NotFound(f"Principal {name} does not exist")
            bump_policy_version(conn)

    def list_principals(self) -> list[PrincipalRecord]:
        with self.db.connect() as conn:
            rows = conn.execute(select(principals_t.c.name, principals_t.c.roles, principals_t.c.created_at)
                                .order_by(principals_t.c.name)).all()
        return [PrincipalRecord(r.name, tuple(json.loads(r.roles)), r.created_at) for r in rows]

    def delete_principal(self, name: str, also: Callable[[Any], None] | None = None) -> None:
        """Its tokens end with it; `also(conn)` ends the rest in the same transaction (grants, what it tagged,
        what it owned), so a new principal of the same name inherits nothing."""
        with self.db.write() as conn, conn.begin():
            result = conn.execute(delete(principals_t).where(principals_t.c.name == name))
            if result.rowcount != 1:
                raise NotFound(f"Principal {name} does not exist")
            conn.execute(delete(tokens_t).where(tokens_t.c.principal == name))
            if also is not None:
                also(conn)
            bump_policy_version(conn)

    def create_role(self, name: str) -> None:
        try:
            with self.db.write() as conn, conn.begin():
                conn.execute(insert(roles_t).values(name=name, created_at=time.time()))
        except IntegrityError:
            raise AlreadyExists(f"Role {name} already exists") from None

    def list_roles(self) -> dict[str, list[str]]:
        roles = {}
        with self.db.connect() as conn:
            for (name,) in conn.execute(select(roles_t.c.name).order_by(roles_t.c.name)):
                roles[name] = []
        for p in self.list_principals():
            for role in p.roles:
                roles.setdefault(role, []).append(p.name)
        return roles

    def delete_role(self, name: str) -> None:
        with self.db.write() as conn, conn.begin():
            if conn.execute(delete(roles_t).where(roles_t.c.name == name)).rowcount != 1:
                raise NotFound(f"Role {name} does not exist")
            for row in conn.execute(select(principals_t.c.name, principals_t.c.roles)).all():
                roles = [r for r in json.loads(row.roles) if r != name]
                conn.execute(update(principals_t).where(principals_t.c.name == row.name).values(roles=json.dumps(roles)))
            conn.execute(delete(grants_t).where(grants_t.c.grantee_kind == ROLE, grants_t.c.grantee == name))
            bump_policy_version(conn)

    def store_token(self, token_hash: str, principal: str, expires_at: float, scopes: str) -> None:
        now = time.time()
        with self.db.write() as conn, conn.begin():
            conn.execute(delete(tokens_t).where(tokens_t.c.expires_at < now - 3600))
            conn.execute(insert(tokens_t).values(token_hash=token_hash, principal=principal, expires_at=expires_at,
                                                 scopes=scopes, created_at=now))

    def lookup_token(self, token_hash: str) -> tuple[str, float, str, tuple[str, ...]] | None:
        """(principal, expires_at, scopes, roles) for a stored token of an existing principal."""
        with self.db.read() as conn:
            row = conn.execute(
                select(tokens_t.c.principal, tokens_t.c.expires_at, tokens_t.c.scopes, principals_t.c.roles)
                .join(principals_t, principals_t.c.name == tokens_t.c.principal)
                .where(tokens_t.c.token_hash == token_hash)
            ).first()
        return None if row is None else (row.principal, row.expires_at, row.scopes, tuple(json.loads(row.roles)))

    def revoke_tokens(self, principal: str) -> int:
        with self.db.write() as conn, conn.begin():
            return conn.execute(delete(tokens_t).where(tokens_t.c.principal == principal)).rowcount
