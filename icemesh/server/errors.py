"""Render every failure in the Iceberg REST error model: `{"error": {"message", "type", "code"}}`."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from icemesh.errors import IcemeshError

log = logging.getLogger("icemesh.server")

_HTTP_TYPES = {
    400: "BadRequestException",
    401: "NotAuthorizedException",
    403: "ForbiddenException",
    404: "NoSuchEndpointException",
    405: "MethodNotAllowedException",
    406: "UnsupportedOperationException",
    413: "BadRequestException",
    415: "BadRequestException",
}


def error_body(message: str, type_: str, code: int) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "code": code}})


def error_response(exc: IcemeshError) -> Response:
    return Response(error_body(exc.message, exc.type, exc.code), status_code=exc.code, media_type="application/json")


def _validation_message(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "Malformed request"
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    message = first.get("msg", "invalid value")
    return f"Malformed request: {where}: {message}" if where else f"Malformed request: {message}"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(IcemeshError)
    async def _icemesh(_request: Request, exc: IcemeshError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        return Response(error_body(_validation_message(exc), "BadRequestException", 400), 400, media_type="application/json")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        type_ = _HTTP_TYPES.get(exc.status_code, "ServerErrorException" if exc.status_code >= 500 else "BadRequestException")
        message = exc.detail if isinstance(exc.detail, str) else "Request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = "No such endpoint: check the URL against GET /v1/config endpoints"
        return Response(error_body(message, type_, exc.status_code), exc.status_code, media_type="application/json")

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> Response:
        return unexpected_response(exc)


def unexpected_response(exc: Exception) -> Response:
    """A 500 in the spec's error model that names the exception's class only; the details go to the log."""
    log.exception("unexpected error")
    return Response(error_body(f"Internal error ({exc.__class__.__name__}); see the server log", "ServerErrorException",
                               500), 500, media_type="application/json")
