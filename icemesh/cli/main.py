"""`icemesh`: the entry point; each subcommand lives in its own module."""

from __future__ import annotations

import sys

import click

from icemesh import __version__
from icemesh.cli import governance
from icemesh.cli.check import check
from icemesh.cli.dagster import dagster
from icemesh.cli.dbt import dbt
from icemesh.cli.events import events
from icemesh.cli.namespaces import namespaces
from icemesh.cli.policy import policy
from icemesh.cli.portal import portal
from icemesh.cli.products import lineage, products
from icemesh.cli.query import query
from icemesh.cli.serve import serve
from icemesh.errors import IcemeshError
from icemesh.terminal import plain


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="icemesh")
def cli() -> None:
    """icemesh: one governed Iceberg catalog for a data mesh."""


cli.add_command(serve)
for command in (namespaces, governance.principals, governance.roles, governance.whoami, governance.tags, governance.grant,
                governance.revoke, governance.grants, governance.filters, governance.access, governance.audit, events,
                policy, query, dbt, products, lineage, check, dagster, portal):
    cli.add_command(command)


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:  # usage errors: one line, like every other failure
        click.echo(f"error: {plain(exc.format_message())}", err=True)
        sys.exit(exc.exit_code)
    except IcemeshError as exc:
        click.echo(f"error: {plain(exc.message)}", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(plain(f"error: {exc.strerror or exc}{': ' + str(exc.filename) if getattr(exc, 'filename', None) else ''}"), err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
