"""`icemesh check names`: find names a catalog accepted before the identifier rule (they should be renamed)."""

from __future__ import annotations

import click

from icemesh.cli.output import client_command, emit, output_option


@click.group()
def check() -> None:
    """Checks an admin runs over the whole catalog."""


@check.command("names")
@output_option
@client_command
def names(output, client):
    """List namespaces, tables and columns whose names are outside letters, digits, '_', '-' and '$'."""
    found = client.request("GET", "/management/v1/checks/names")
    emit(found, output, ["warehouse", "kind", "name"],
         text=None if found else "every name follows the identifier rule (letters, digits, '_', '-' and '$')")
    if found and output != "json":
        click.echo(f"{len(found)} unsafe name(s): rename them (consumers escape them meanwhile)", err=True)
