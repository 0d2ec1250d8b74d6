"""Text from the catalog, made safe to print: names, docs and reasons were written by other principals.

A carriage return, a backspace or an ANSI escape sequence in a product's description or owner can redraw what
a terminal shows (a product made to look like another owner's). Every line icemesh prints that carries
catalog-supplied text goes through `plain`: escape sequences and control characters are removed, newlines and
tabs inside a value become spaces, so one value stays on its own line or cell.
"""

from __future__ import annotations

import re

_ESCAPE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def plain(text: object, keep_newlines: bool = False) -> str:
    """`text` without escape sequences or control characters (bidirectional overrides included)."""
    value = _ESCAPE.sub("", str(text))
    if not keep_newlines:
        value = value.replace("\n", " ").replace("\t", " ")
    else:
        value = value.replace("\t", " ")
    return _CONTROL.sub("", value)
