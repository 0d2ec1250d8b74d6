"""Row filters as Iceberg expressions: parsed from the text an admin writes (`region = 'EU' and amount > 0`),
never pasted into SQL; served to engines as the REST spec's Expression JSON, and read back from it."""

from __future__ import annotations

import re
from typing import Any

from icemesh.compat.pyiceberg import expression_from_json, expression_to_json


def parse(text: str):
    """The expression `text` names; ValueError with a one-line reason and an example otherwise."""
    from pyiceberg.expressions.parser import parse as parse_expression

    if not text or not text.strip():
        raise ValueError("An empty row filter: give an Iceberg expression such as \"region = 'EU'\"")
    try:
        return parse_expression(text)
    except Exception as exc:  # pyparsing's errors list its whole grammar: keep only the position
        at = re.search(r"at char (\d+)", str(exc))
        where = f"cannot read it at character {int(at.group(1)) + 1}" if at else "cannot read it"
        raise ValueError(f"Invalid row filter {text!r}: {where}; write an Iceberg expression such as "
                         "\"region = 'EU' and amount > 0\"") from None


def columns(expression) -> set[str]:
    """The column names an expression reads."""
    found: set[str] = set()
    pending = [expression]
    while pending:
        node = pending.pop()
        term = getattr(node, "term", None)
        if term is not None and hasattr(term, "name"):
            found.add(term.name)
        for attr in ("left", "right", "child"):
            child = getattr(node, attr, None)
            if child is not None:
                pending.append(child)
    return found


def to_json(text: str) -> Any:
    return expression_to_json(parse(text))


def from_json(data: Any):
    return expression_from_json(data)
