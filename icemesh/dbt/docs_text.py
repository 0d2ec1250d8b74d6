"""Text another domain wrote, made inert before it enters the consumer's dbt graph.

A product's description and column docs come from its producer. dbt renders node descriptions as Jinja
(with `env_var` in reach) and dbt-docs shows them, and column names, as trusted HTML in its search results:
so what the resolver injects is plain text. Tags are dropped (scripts and styles with their content), `&`, `<`, `>` escaped (dbt-docs shows them as
the characters they were), Jinja's delimiters broken apart, script URL schemes disarmed, and control
characters (other than newlines and tabs) removed. Ordinary prose passes unchanged. The catalog dbt docs
reads from DuckDB (column names and comments of the producer's tables) gets the same cleaning in SQL:
`icemesh_clean_text` in macros/catalog.sql.
"""

from __future__ import annotations

import re

_TAG = re.compile(r"(?is)<script\b[^>]*>.*?</script\s*>|<style\b[^>]*>.*?</style\s*>|<!--.*?-->|</?[A-Za-z][^<>]*>")
_JINJA = re.compile(r"\{(?=[{%#])")
_SCRIPT_SCHEME = re.compile(r"\b(javascript|vbscript|data)(\s*):", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: object) -> str:
    """`text` (a description, a column doc) as inert plain text for dbt's manifest, its Jinja and dbt-docs."""
    if text is None:
        return ""
    value = _TAG.sub("", _CONTROL.sub("", str(text)))
    return _SCRIPT_SCHEME.sub(r"\1 :", _escape(value))


def clean_name(name: object) -> str:
    """A name (a column's, a type's) as inert text: escaped, never shortened, so distinct names stay distinct."""
    return _escape(_CONTROL.sub("", str(name)))


def _escape(value: str) -> str:
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _JINJA.sub("{ ", value)

