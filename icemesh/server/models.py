"""Request bodies of the Iceberg REST API, so FastAPI validates them and documents them in /openapi.json.

Table schemas, specs, updates and requirements stay as JSON here; the catalog parses them with
pyiceberg's models so that one definition of Iceberg semantics is used everywhere.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class TableIdentifierBody(_Body):
    namespace: list[str]
    name: str


class CreateNamespaceRequest(_Body):
    namespace: list[str]
    properties: dict[str, str] = Field(default_factory=dict)


class UpdateNamespacePropertiesRequest(_Body):
    removals: list[str] = Field(default_factory=list)
    updates: dict[str, str] = Field(default_factory=dict)


class CreateTableRequest(_Body):
    name: str
    location: str | None = None
    table_schema: dict[str, Any] = Field(alias="schema")
    partition_spec: dict[str, Any] | None = Field(default=None, alias="partition-spec")
    write_order: dict[str, Any] | None = Field(default=None, alias="write-order")
    stage_create: bool = Field(default=False, alias="stage-create")
    properties: dict[str, str] = Field(default_factory=dict)


class CommitTableRequest(_Body):
    identifier: TableIdentifierBody | None = None
    requirements: list[dict[str, Any]] = Field(default_factory=list)
    updates: list[dict[str, Any]] = Field(default_factory=list)


class CommitTransactionRequest(_Body):
    table_changes: list[CommitTableRequest] = Field(alias="table-changes")


class RenameTableRequest(_Body):
    source: TableIdentifierBody
    destination: TableIdentifierBody


class CreateViewRequest(_Body):
    name: str
    location: str | None = None
    view_schema: dict[str, Any] = Field(alias="schema")
    view_version: dict[str, Any] = Field(alias="view-version")
    properties: dict[str, str] = Field(default_factory=dict)


class RegisterTableRequest(_Body):
    name: str
    metadata_location: str = Field(alias="metadata-location")
    overwrite: bool = False


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: int


class ErrorModel(BaseModel):
    """The Iceberg REST error model, used for every failure the catalog answers."""

    error: ErrorDetail


class OAuthErrorModel(BaseModel):
    error: str
    error_description: str


def _errors(model: type, codes: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": model, "description": text} for code, text in codes.items()}


# Documented on every catalog and management route, so /openapi.json describes what clients really get.
ERROR_RESPONSES = _errors(ErrorModel, {
    400: "Malformed request", 401: "Missing, invalid, expired or revoked token", 403: "Not permitted",
    404: "No such namespace, table, warehouse or endpoint", 406: "Unsupported operation",
    409: "Conflict: already exists, not empty, or a commit requirement failed (retry)", 413: "Request body too large",
    422: "Unprocessable request", 500: "Server error; for a commit, its state is unknown",
    503: "A request with the same Idempotency-Key is still running",
})
OAUTH_ERROR_RESPONSES = _errors(OAuthErrorModel, {400: "Unsupported grant or malformed request",
                                                  401: "Unknown client or wrong secret"})
