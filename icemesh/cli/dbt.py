"""`icemesh dbt init [PROJECT_DIR]`: make an existing dbt-duckdb or dbt-spark project publish to the mesh."""

from __future__ import annotations

import click

from icemesh.cli.output import emit, output_option


@click.group("dbt")
def dbt() -> None:
    """dbt projects in the mesh."""


@dbt.command("init")
@click.argument("project_dir", default=".", type=click.Path(exists=True, file_okay=False))
@click.option("--profiles-dir", default=None, help="Where profiles.yml is (default: as dbt looks for it).")
@click.option("--style", type=click.Choice(["iceberg", "catalogs"]), default="iceberg", show_default=True,
              help="How models say they are products: materialized='iceberg', or dbt's catalogs.yml and "
                   "catalog_name='mesh' on table/incremental models (writes catalogs.yml). Both work either way.")
@output_option
def init(project_dir, profiles_dir, style, output):
    """Add the icemesh package, dispatch, duckdb plugin or spark session settings, macros/icemesh.sql; idempotent."""
    from icemesh.dbt.project_setup import set_up

    report = set_up(project_dir, profiles_dir, style)
    lines = [f"{report.project}: " + ("set up for icemesh" if report.changes else "already set up (nothing changed)")]
    lines += [f"  + {change}" for change in report.changes]
    lines += [f"  note: {note}" for note in report.notes]
    if report.changes:
        how = "catalog_name='mesh' (materialized table or incremental)" if style == "catalogs" else "materialized='iceberg'"
        lines.append(f"  next: `dbt deps`, then set {how} on the models to publish, with "
                     "ICEMESH_CATALOG_URI and the project's ICEMESH_CLIENT_ID / ICEMESH_CLIENT_SECRET in the environment")
    emit(report.as_dict(), output, text="\n".join(lines))
