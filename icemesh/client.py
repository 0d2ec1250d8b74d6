"""A client session with the mesh catalog: settings from the environment, a token, and handles for
HTTP, pyiceberg and DuckDB. Every client command and engine adapter goes through here.

Environment: ICEMESH_CATALOG_URI (default http://127.0.0.1:8181), and either ICEMESH_TOKEN or
ICEMESH_CLIENT_ID + ICEMESH_CLIENT_SECRET (OAuth2 client credentials); ICEMESH_CATALOG_WAREHOUSE names the
warehouse (name or root URI) when it is not the server's default. S3 settings for the table files this process
reads and writes follow AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL and AWS_REGION (storage/aws_environment.py).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import httpx

from icemesh.protocol import COLUMN_LIMITS_APPLY, COLUMN_LIMITS_HEADER, COLUMN_LIMITS_SCOPE
from icemesh.errors import IcemeshError
from icemesh.storage import aws_environment

DEFAULT_URI = "http://127.0.0.1:8181"


class ClientError(IcemeshError):
    """A failed call, carrying the server's one-line message and status."""

    def __init__(self, message: str, code: int = 1, type_: str = "ClientError") -> None:
        super().__init__(message)
        self.code = code
        self.type = type_


class CatalogUnreachable(ClientError):
    """No answer at all (connection refused, DNS, timeout): unlike a refusal, something a cache may stand in for."""


class CatalogClient:
    def __init__(self, uri: str | None = None, token: str | None = None, client_id: str | None = None,
                 client_secret: str | None = None, scope: str = "catalog", timeout: float = 60.0,
                 column_limits: bool = False, warehouse: str | None = None) -> None:
        self.uri = (uri or DEFAULT_URI).rstrip("/")
        self.uri_is_default = not uri  # then every error says which URI was tried, and why that one
        self.warehouse = warehouse or ""  # "" is the server's default warehouse
        self._token = token
        self.client_id = client_id
        self.client_secret = client_secret
        # icemesh's adapters only ever read the columns the catalog hands them, and say so with this scope,
        # so a principal limited to some columns gets a table whose schema lacks the others.
        self.column_limits = column_limits
        self.scope = f"{scope} {COLUMN_LIMITS_SCOPE}" if column_limits else scope
        self._expires_at = float("inf") if token else 0.0
        self._lock = threading.Lock()
        self._timeout = timeout
        self._http_client: httpx.Client | None = None
        self._config: dict | None = None

    @classmethod
    def from_env(cls, uri: str | None = None, **overrides: Any) -> "CatalogClient":
        env = os.environ
        return cls(uri or env.get("ICEMESH_CATALOG_URI"), token=overrides.get("token") or env.get("ICEMESH_TOKEN"),
                   client_id=overrides.get("client_id") or env.get("ICEMESH_CLIENT_ID"),
                   client_secret=overrides.get("client_secret") or env.get("ICEMESH_CLIENT_SECRET"),
                   column_limits=bool(overrides.get("column_limits")),
                   # "" names the default warehouse (a dev target's upstream: production), None defers to the env
                   warehouse=env.get("ICEMESH_CATALOG_WAREHOUSE") if overrides.get("warehouse") is None
                   else overrides["warehouse"])

    def where(self, message: str) -> str:
        """`message`, naming the catalog's URI when the user did not choose it (ICEMESH_CATALOG_URI unset): a
        refusal from some other server on 127.0.0.1:8181 must not look like the mesh's."""
        if not self.uri_is_default or self.uri in message:
            return message
        return f"{message} (catalog {self.uri}: ICEMESH_CATALOG_URI is unset)"

    def _error(self, message: str, code: int = 1, type_: str = "ClientError") -> ClientError:
        return ClientError(self.where(message), code, type_)

    def _unreachable(self, exc: Exception) -> "CatalogUnreachable":
        why = ("ICEMESH_CATALOG_URI is unset, so this is the default: set it to the catalog's address"
               if self.uri_is_default else "is `icemesh serve` running there?")
        return CatalogUnreachable(f"Cannot reach the catalog at {self.uri} ({exc.__class__.__name__}): {why}")

    @property
    def _http(self) -> httpx.Client:
        """Made at the first call (its TLS context loads the CA bundle): a client that is never used costs nothing."""
        if self._http_client is None:
            self._http_client = httpx.Client(timeout=self._timeout, transport=_TlsWhenNeeded())
        return self._http_client

    @property
    def token_endpoint(self) -> str:
        return f"{self.uri}/v1/oauth/tokens"

    def token(self) -> str:
        with self._lock:
            if self._token and time.time() < self._expires_at - 30:
                return self._token
            if not (self.client_id and self.client_secret):
                if self._token:
                    return self._token
                raise self._error("No credentials: set ICEMESH_TOKEN, or ICEMESH_CLIENT_ID and ICEMESH_CLIENT_SECRET")
            try:
                response = self._http.post(self.token_endpoint, data={
                    "grant_type": "client_credentials", "client_id": self.client_id,
                    "client_secret": self.client_secret, "scope": self.scope})
            except httpx.HTTPError as exc:
                raise self._unreachable(exc) from None
            if response.status_code != 200:
                body = _json(response)
                detail = body.get("error_description") or response.text[:200] or f"HTTP {response.status_code}"
                raise self._error(f"Login as {self.client_id} at {self.uri} failed: {detail}; check ICEMESH_CLIENT_ID "
                                  "and ICEMESH_CLIENT_SECRET", response.status_code)
            body = response.json()
            self._token = body["access_token"]
            self._expires_at = time.time() + float(body.get("expires_in", 3600))
            return self._token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the server; a non-2xx answer raises ClientError with the server's own message."""
        url = path if path.startswith("http") else f"{self.uri}{path}"
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        try:
            response = self._http.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if response.status_code >= 400:
            error = _json(response).get("error") or {}
            message = error.get("message") if isinstance(error, dict) else None
            raise self._error(message or f"HTTP {response.status_code}: {response.text[:200]}", response.status_code,
                              error.get("type", "ClientError") if isinstance(error, dict) else "ClientError")
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def config(self) -> dict:
        """The catalog's `GET /v1/config` for this warehouse (asked once)."""
        if self._config is None:
            params = {"warehouse": self.warehouse} if self.warehouse else None
            self._config = self.request("GET", "/v1/config", params=params)
        return self._config

    def prefix(self) -> str:
        return self.config()["overrides"]["prefix"]

    def warehouse_root(self) -> str | None:
        """Where this warehouse's tables live (`file:///...`, `s3://...`), as the catalog says."""
        overrides = self.config().get("overrides") or {}
        return overrides.get("warehouse") or (self.config().get("defaults") or {}).get("warehouse")

    def rest_catalog(self, name: str = "icemesh", reuse_token: bool = False, **properties: str):
        """A pyiceberg RestCatalog logged in the same way (client credentials, or the token). `reuse_token`: with
        client credentials, pyiceberg sends this client's token (refreshed as it expires) instead of logging in
        itself, twice per catalog (see client_auth.py); the catalog's properties then hold this client object."""
        from pyiceberg.catalog.rest import RestCatalog

        from icemesh.client_auth import auth_property

        auth: dict[str, Any] = {"oauth2-server-uri": self.token_endpoint}
        if self.column_limits:
            auth[f"header.{COLUMN_LIMITS_HEADER}"] = COLUMN_LIMITS_APPLY
        if self.client_id and self.client_secret and reuse_token:
            auth["auth"] = auth_property(self)
        elif self.client_id and self.client_secret:
            auth["credential"] = f"{self.client_id}:{self.client_secret}"
            auth["scope"] = self.scope
        else:
            auth["token"] = self.token()
        if self.warehouse:
            auth["warehouse"] = self.warehouse
        # Table files are read and written by this process: S3 follows AWS_ENDPOINT_URL(_S3) and the region as
        # boto3 would. A table's config from the server (serve --share-storage-keys) still overrides these.
        properties = {**aws_environment.s3_properties(), **properties}
        return RestCatalog(name, uri=self.uri, **auth, **properties)

    def explain(self, exc: BaseException) -> ClientError | None:
        """pyiceberg's failures to open a session through this client (it logs in and reads /v1/config), as the
        same one-line errors as ours; None for anything else. For the CLI: library callers keep pyiceberg's types."""
        from pyiceberg.exceptions import OAuthError, RESTError
        from requests.exceptions import ConnectionError as Unreachable, Timeout

        if isinstance(exc, OAuthError):
            return self._error(f"Login as {self.client_id} at {self.uri} failed: {_reason(exc)}; check "
                               "ICEMESH_CLIENT_ID and ICEMESH_CLIENT_SECRET", 401)
        if isinstance(exc, RESTError):
            return self._error(f"The catalog at {self.uri} refused the session: {_reason(exc)}")
        if isinstance(exc, (Unreachable, Timeout)):
            return self._unreachable(exc)
        return None

    def duckdb(self, alias: str = "mesh"):
        """A DuckDB connection with the catalog attached as `alias`."""
        from icemesh.runtimes import duckdb as duck_engine

        if self.client_id and self.client_secret and not self.column_limits:
            return duck_engine.connect(self.uri, alias, warehouse=self.warehouse, client_id=self.client_id,
                                       client_secret=self.client_secret)
        return duck_engine.connect(self.uri, alias, warehouse=self.warehouse, token=self.token())  # the token carries the column-limits scope

    def close(self) -> None:
        if self._http_client is not None:
            self._http_client.close()


class _TlsWhenNeeded(httpx.BaseTransport):
    """httpx's transport, its verifying TLS context (the CA bundle: 50 ms, paid by every dbt invocation) made only
    when an https URL is first met; plain http:// never needs it."""

    def __init__(self) -> None:
        self._plain = httpx.HTTPTransport(verify=False)  # only ever given http:// requests (no TLS to verify)
        self._tls: httpx.HTTPTransport | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "http":
            return self._plain.handle_request(request)
        if self._tls is None:
            self._tls = httpx.HTTPTransport()
        return self._tls.handle_request(request)

    def close(self) -> None:
        self._plain.close()
        if self._tls is not None:
            self._tls.close()


def _json(response: httpx.Response) -> dict:
    try:
        body = response.json()
        return body if isinstance(body, dict) else {}
    except ValueError:
        return {}


def _reason(exc: Exception) -> str:
    """pyiceberg's message, one line, without its `error_type: ` prefix."""
    text = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
    return text.split(": ", 1)[1] if text.startswith(("invalid_", "unauthorized_")) and ": " in text else text
