"""`icemesh query`: SQL over the products the caller may read, on the engine of its choice."""

from __future__ import annotations

import click

from icemesh.cli.output import client_command, emit, output_option
from icemesh.query import ENGINES


@click.command()
@click.argument("sql")
@click.option("--engine", "-e", type=click.Choice(list(ENGINES)), default="duckdb", show_default=True,
              help="Engine that runs the query.")
@click.option("--as-of", "as_of", default=None, metavar="SNAPSHOT_ID|TIMESTAMP",
              help="Read every product as it was at this snapshot (and the moment it was committed) or ISO-8601 time.")
@output_option
@client_command
def query(sql, engine, as_of, output, client):
    """Run SQL naming products as <namespace>.<table>; tables you may not read are absent."""
    from icemesh.query import MeshSession  # pyarrow and the engines load only for a query

    with MeshSession(client) as mesh:
        table = mesh.sql(sql, engine=engine, as_of=as_of)
        rows = table.to_pylist()
    emit(rows, output, columns=table.column_names)
