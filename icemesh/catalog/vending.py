"""Vended storage credentials: which loads get table-scoped keys, which keys (read-only or read-write), and the
shape they take in a loadTable answer.

Kept apart from CatalogService so that the service decides *whether* a caller may read or write a table and this
module only turns an allowed access into keys for that table's prefix (minted by a CredentialVendor port, reused
through CredentialCache, every hand-out audited without the keys themselves).
"""

from __future__ import annotations

import time
from urllib.parse import quote

from icemesh.catalog.authorizer import Authorizer
from icemesh.catalog.credential_cache import CredentialCache
from icemesh.catalog.ports import AuditLog, AuditRecord, CredentialVendor
from icemesh.governance.permissions import Permission
from icemesh.names import TableIdent
from icemesh.protocol import RequestContext
from icemesh.storage.warehouse import Warehouse

VENDED_CREDENTIALS = "vended-credentials"  # the X-Iceberg-Access-Delegation mechanism icemesh serves
VEND_AUDIT_ACTION = "VEND_CREDENTIALS"


class CredentialVending:
    def __init__(self, vendor: CredentialVendor, auth: Authorizer, audit: AuditLog) -> None:
        self.vendor = vendor
        self.auth = auth
        self.audit = audit
        self.cache = CredentialCache(vendor)

    @staticmethod
    def asked(ctx: RequestContext, wh: Warehouse) -> bool:
        """Whether this load hands out vended keys: the client asked for them and the table is in S3."""
        asked = {m.strip().lower() for m in (ctx.access_delegation or "").split(",")}
        return VENDED_CREDENTIALS in asked and not wh.is_local

    def writes_files(self, ctx: RequestContext, wh: Warehouse, ident: TableIdent) -> bool:
        """Read-write keys for a principal that may add or remove the table's files (INSERT or DELETE; an owner
        holds both); read-only keys for everyone else who may read it."""
        return any(self.auth.table(ctx, wh.name, p, ident, enforce=False, audit=False).allowed
                   for p in (Permission.INSERT, Permission.DELETE))

    def mint(self, ctx: RequestContext, wh: Warehouse, ident: TableIdent, location: str,
             write: bool | None = None, fresh: bool = False) -> tuple[dict[str, str], list[dict]]:
        """Keys for the table's prefix: (the loadTable `config`, the spec's `storage-credentials`). Both carry the
        same keys: pyiceberg ignores `storage-credentials` for a staged table (no metadata location yet), and
        DuckDB and Iceberg Java prefer them to `config`. The caller has already been allowed to read the table
        (or is creating it: `write=True`)."""
        write = self.writes_files(ctx, wh, ident) if write is None else write
        creds = self.cache.get(location, write, ctx.principal.name, fresh)  # loads reuse keys; refreshes mint
        mode = "read-write" if write else "read-only"
        self.audit.audit(AuditRecord(time.time(), ctx.principal.name, VEND_AUDIT_ACTION, f"table {ident}", True,
                                     f"{mode} storage credentials for {location.rstrip('/')}/ until "
                                     f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(creds.expires_at_ms / 1000))}",
                                     ctx.request_id))
        keys = {**wh.client_settings(), "s3.access-key-id": creds.access_key_id,
                "s3.secret-access-key": creds.secret_access_key, "s3.session-token": creds.session_token,
                "s3.session-token-expires-at-ms": str(creds.expires_at_ms)}
        refresh = (f"v1/{quote(wh.name, safe='')}/namespaces/{quote(ident.namespace.key, safe='')}/tables/"
                   f"{quote(ident.name, safe='')}/credentials")
        config = {**keys, "client.refresh-credentials-endpoint": refresh}  # Iceberg Java refreshes through it
        return config, [{"prefix": location.rstrip("/") + "/", "config": keys}]
