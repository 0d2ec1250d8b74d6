"""Round-trip YAML edits that keep a file's own layout: its indentation, list style, comments and quotes.

`icemesh dbt init` edits files a team wrote by hand (packages.yml, dbt_project.yml, profiles.yml). ruamel keeps
comments and key order, but re-indents every block to one fixed style, so an edit of one line would show as a
rewrite of the whole file in review. The style is therefore read from the file itself first: how far nested
mappings are indented, and where a list's dashes sit (`- a` under its key, or `  - a`).
"""

from __future__ import annotations

import io
import re

from ruamel.yaml import YAML

DEFAULT = (2, 4, 2)  # mapping indent, sequence indent, dash offset: the style of a file we create
_KEY = re.compile(r"^(?P<indent> *)[^\s#-][^#]*:\s*(#.*)?$")  # `key:` opening a block
_ITEM = re.compile(r"^(?P<indent> *)-(?P<gap> +)\S")


def layout(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) for ruamel's `YAML.indent`, from the first nested mapping and list in `text`."""
    mapping = sequence = offset = None
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for parent, child in zip(lines, lines[1:]):
        opened = _KEY.match(parent)
        if not opened:
            continue
        depth = len(opened["indent"])
        item = _ITEM.match(child)
        if item and sequence is None:
            offset = len(item["indent"]) - depth
            sequence = offset + 1 + len(item["gap"])
        elif not item and mapping is None:
            indent = len(child) - len(child.lstrip(" "))
            if indent > depth:
                mapping = indent - depth
        if mapping is not None and sequence is not None:
            break
    mapping = mapping or DEFAULT[0]
    if sequence is None:  # no list yet: dashes indented like a nested mapping's keys
        return mapping, mapping + 2, mapping
    return mapping, sequence, offset


def yaml_for(text: str = "") -> YAML:
    """A round-trip YAML that writes in the style of `text` (the defaults for a new file)."""
    yaml = YAML()
    yaml.preserve_quotes = True
    mapping, sequence, offset = layout(text) if text.strip() else DEFAULT
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    yaml.width = 4096  # never fold a long value (a jar path, a Jinja expression) over lines
    return yaml


def dumps(document, like: str = "") -> str:
    buffer = io.StringIO()
    yaml_for(like).dump(document, buffer)
    return buffer.getvalue()
