"""The one error a query raises: a one-line reason (the catalog's own, when the catalog refused)."""

from icemesh.errors import IcemeshError


class QueryError(IcemeshError):
    code = 400
    type = "QueryError"
