"""Namespace and table identifiers: parsing from URLs and validation.

Names reach the database only as bound parameters and reach storage paths only through
`path_segment`, so a hostile name can neither inject SQL nor escape the warehouse.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from icemesh.errors import BadRequest
from icemesh.governance.resources import parse_namespace, parse_table

NAMESPACE_SEPARATOR = "\x1f"
MAX_NAME_LENGTH = 255
MAX_NAMESPACE_DEPTH = 16

_UNSAFE_PATH_CHARS = re.compile(r"[^A-Za-z0-9_\-]")
# Names every engine and every consumer can carry safely: a name is spliced into other domains' SQL, Jinja and
# terminals, so quotes, semicolons, spaces, dots and control characters are refused outright.
SAFE_NAME = re.compile(r"^[A-Za-z0-9_$-]+$")
SAFE_NAME_RULE = "letters, digits, '_', '-' and '$'"


def validate_name(name: object, what: str) -> str:
    """Return `name` if it is a usable identifier part, else raise a one-line BadRequest."""
    if not isinstance(name, str) or not name:
        raise BadRequest(f"Invalid {what}: it must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise BadRequest(f"Invalid {what}: longer than {MAX_NAME_LENGTH} characters")
    if name in (".", ".."):
        raise BadRequest(f"Invalid {what} {name!r}: '.' and '..' are reserved")
    if NAMESPACE_SEPARATOR in name or "/" in name or "\\" in name:
        raise BadRequest(f"Invalid {what} {name!r}: '/', '\\' and the unit separator are not allowed")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in name):
        raise BadRequest(f"Invalid {what} {name!r}: control characters are not allowed")
    if not SAFE_NAME.match(name):
        raise BadRequest(f"Invalid {what} {name!r}: use only {SAFE_NAME_RULE} (1-{MAX_NAME_LENGTH} characters)")
    return name


def is_safe_name(name: str) -> bool:
    return isinstance(name, str) and 0 < len(name) <= MAX_NAME_LENGTH and bool(SAFE_NAME.match(name))


@dataclass(frozen=True, order=True)
class Namespace:
    levels: tuple[str, ...]

    @classmethod
    def of(cls, levels: object) -> "Namespace":
        if isinstance(levels, str):
            levels = [levels]
        if not isinstance(levels, (list, tuple)) or not levels:
            raise BadRequest("Invalid namespace: it must be a non-empty list of names")
        if len(levels) > MAX_NAMESPACE_DEPTH:
            raise BadRequest(f"Invalid namespace: deeper than {MAX_NAMESPACE_DEPTH} levels")
        return cls(tuple(validate_name(level, "namespace name") for level in levels))

    @classmethod
    def from_url(cls, encoded: str) -> "Namespace":
        """Decode the `{namespace}` path parameter: levels joined by the unit separator (0x1F)."""
        return cls.of(encoded.split(NAMESPACE_SEPARATOR))

    @property
    def key(self) -> str:
        """The form stored in the database; unit separator cannot occur inside a level."""
        return NAMESPACE_SEPARATOR.join(self.levels)

    @classmethod
    def from_key(cls, key: str) -> "Namespace":
        return cls(tuple(key.split(NAMESPACE_SEPARATOR)))

    @property
    def parent_key(self) -> str:
        return NAMESPACE_SEPARATOR.join(self.levels[:-1])

    def __str__(self) -> str:
        return ".".join(self.levels)


@dataclass(frozen=True, order=True)
class TableIdent:
    namespace: Namespace
    name: str

    @classmethod
    def of(cls, namespace: object, name: object) -> "TableIdent":
        ns = namespace if isinstance(namespace, Namespace) else Namespace.of(namespace)
        return cls(ns, validate_name(name, "table name"))

    @classmethod
    def from_json(cls, data: object) -> "TableIdent":
        if not isinstance(data, dict):
            raise BadRequest("Invalid table identifier: expected {\"namespace\": [...], \"name\": ...}")
        return cls.of(data.get("namespace"), data.get("name"))

    def to_json(self) -> dict:
        return {"namespace": list(self.namespace.levels), "name": self.name}

    def __str__(self) -> str:
        return f"{self.namespace}.{self.name}"


def path_segment(name: str) -> str:
    """A storage-safe rendering of a name: ASCII letters, digits, '_' and '-' only."""
    safe = _UNSAFE_PATH_CHARS.sub("_", name)
    return safe[:64] or "_"


def parse_namespace_arg(text: str) -> Namespace:
    """A namespace named in a request; a bad name is a 400 that says why."""
    try:
        return Namespace.of(list(parse_namespace(text or "").levels))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def parse_table_arg(text: str) -> TableIdent:
    """A table named `ns.table` in a request; a bad name is a 400 that says why."""
    try:
        ref = parse_table(text or "")
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return TableIdent.of(list(ref.namespace.levels), ref.name)


def maybe_table_arg(text: str) -> TableIdent | None:
    try:
        return parse_table_arg(text)
    except BadRequest:
        return None

