"""Errors that cross the service boundary, each carrying the Iceberg REST error type and HTTP code.

The service layer raises these; the HTTP layer renders them as the spec's error model
(`{"error": {"message", "type", "code"}}`), and the CLI prints their message on one line.
"""

from __future__ import annotations


class IcemeshError(Exception):
    """Base error: a message a user can act on, plus the REST type and status code."""

    code = 500
    type = "ServerErrorException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(IcemeshError):
    code = 400
    type = "BadRequestException"


class NotAuthorized(IcemeshError):
    code = 401
    type = "NotAuthorizedException"


class Forbidden(IcemeshError):
    code = 403
    type = "ForbiddenException"


class NoSuchNamespace(IcemeshError):
    code = 404
    type = "NoSuchNamespaceException"


class NoSuchTable(IcemeshError):
    code = 404
    type = "NoSuchTableException"


class NoSuchView(IcemeshError):
    code = 404
    type = "NoSuchViewException"


class NoSuchWarehouse(IcemeshError):
    code = 404
    type = "NoSuchWarehouseException"


class AlreadyExists(IcemeshError):
    code = 409
    type = "AlreadyExistsException"


class NamespaceNotEmpty(IcemeshError):
    code = 409
    type = "NamespaceNotEmptyException"


class CommitFailed(IcemeshError):
    """A requirement no longer holds: the client may refresh and retry."""

    code = 409
    type = "CommitFailedException"


class PayloadTooLarge(IcemeshError):
    code = 413
    type = "BadRequestException"


class UnprocessableEntity(IcemeshError):
    code = 422
    type = "UnprocessableEntityException"


class Unsupported(IcemeshError):
    code = 406
    type = "UnsupportedOperationException"


class CommitStateUnknown(IcemeshError):
    """Storage or database failed mid-commit; the client must not assume either outcome."""

    code = 500
    type = "CommitStateUnknownException"


class InvalidConfiguration(IcemeshError):
    """A server or client setting is unusable (bad database URL, unreachable database...)."""

    code = 500
    type = "ServerErrorException"


class NotFound(IcemeshError):
    """A management resource (principal, role, tag key, grant) that does not exist."""

    code = 404
    type = "NotFoundException"
