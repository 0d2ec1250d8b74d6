"""LF-tags: keys with a fixed list of allowed values, and the expressions grants are written in."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TAG_TOKEN = re.compile(r"^[A-Za-z0-9_\-:./ ]{1,128}$")


def check_token(text: str, what: str) -> str:
    if not isinstance(text, str) or not _TAG_TOKEN.match(text):
        raise ValueError(f"Invalid {what} {text!r}: use 1-128 letters, digits, spaces or _-:./")
    return text


@dataclass(frozen=True)
class TagKey:
    key: str
    values: tuple[str, ...]

    def check(self, value: str) -> None:
        if value not in self.values:
            raise ValueError(f"Tag {self.key} has no value {value!r}: allowed values are {', '.join(self.values)}")


@dataclass(frozen=True)
class TagExpression:
    """Keys are ANDed; the values listed for one key are ORed: `domain=sales,finance AND sensitivity=public`."""

    clauses: tuple[tuple[str, frozenset[str]], ...]

    @classmethod
    def parse(cls, parts: list[str] | str) -> "TagExpression":
        """From CLI-style parts (`["domain=sales", "sensitivity=public,internal"]`) or one string joined by AND."""
        if isinstance(parts, str):
            parts = [p for p in re.split(r"\s+AND\s+", parts.strip(), flags=re.IGNORECASE) if p]
        clauses: dict[str, set[str]] = {}
        for part in parts:
            key, sep, values = part.partition("=")
            key = key.strip()
            if not sep or not key or not values.strip():
                raise ValueError(f"Invalid tag condition {part!r}: use key=value[,value...]")
            check_token(key, "tag key")
            vals = {check_token(v.strip(), "tag value") for v in values.split(",") if v.strip()}
            clauses.setdefault(key, set()).update(vals)
        if not clauses:
            raise ValueError("Empty tag expression: give at least one key=value")
        return cls(tuple(sorted((k, frozenset(v)) for k, v in clauses.items())))

    @classmethod
    def from_dict(cls, data: dict[str, list[str]]) -> "TagExpression":
        return cls(tuple(sorted((k, frozenset(v)) for k, v in data.items())))

    def to_dict(self) -> dict[str, list[str]]:
        return {k: sorted(v) for k, v in self.clauses}

    def matches(self, tags: dict[str, str]) -> bool:
        return all(tags.get(key) in values for key, values in self.clauses)

    def keys(self) -> set[str]:
        return {k for k, _ in self.clauses}

    def __str__(self) -> str:
        return " AND ".join(f"{k}={','.join(sorted(v))}" for k, v in self.clauses)
