"""How client commands print: a readable table by default, `--output json` for scripts.

Everything printed here passes through `icemesh.terminal.plain`: names, docs, owners and reasons come from
the catalog, written by other principals, and must not move the cursor or redraw a line. JSON output is left
to `json.dumps`, which escapes control characters itself.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Callable

import click

from icemesh.terminal import plain

output_option = click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table",
                             show_default=True, help="Output format.")


def emit(data: Any, output: str, columns: list[str] | None = None, text: "str | list[str] | None" = None) -> None:
    """`data` as JSON, or as `text` (a list: one line per item, a value's own newlines folded into it), or as a
    table of `columns`."""
    if output == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
        return
    if text is not None:
        echo_lines(text if isinstance(text, list) else text.split("\n"))
        return
    rows = data if isinstance(data, list) else [data]
    if not rows:
        click.echo("(none)")
        return
    columns = columns or list(rows[0].keys())
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(plain(c).upper().ljust(w) for c, w in zip(columns, widths)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def echo_lines(lines: list[str]) -> None:
    """Print each line on its own, whatever control characters the values in it carried."""
    for line in lines:
        click.echo(plain(line))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(_cell(v) for v in value) or "-"
    if isinstance(value, dict):
        return " ".join(f"{plain(k)}={_cell(v)}" for k, v in value.items()) or "-"
    return plain(value)


def client_command(func: Callable) -> Callable:
    """Client commands share connection options; the session is built lazily from env and flags."""

    @click.option("--uri", envvar="ICEMESH_CATALOG_URI", default=None, help="Catalog URI [env ICEMESH_CATALOG_URI].")
    @functools.wraps(func)
    def wrapper(*args, uri: str | None = None, **kwargs):
        from icemesh.client import CatalogClient
        from icemesh.errors import IcemeshError

        client = kwargs["client"] = CatalogClient.from_env(uri)
        try:
            return func(*args, **kwargs)
        except IcemeshError as exc:  # an engine's or loader's error too: say which catalog when it was not chosen
            if kwargs.get("direct") is None:
                exc.message = client.where(exc.message)
            raise
        except Exception as exc:  # pyiceberg could not open its session (icemesh query): one line, not a traceback
            explained = client.explain(exc)
            if explained is None:
                raise
            raise explained from None

    return wrapper
