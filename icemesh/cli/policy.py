"""`icemesh policy apply FILE [--plan]`: governance as code, idempotent and all-or-nothing."""

from __future__ import annotations

import click

from icemesh.cli.lakeformation import lakeformation_options
from icemesh.cli.output import client_command, emit, output_option


@click.group()
def policy() -> None:
    """Declarative tags, principals, roles, namespaces, tag assignments and grants."""


@policy.command("apply")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--plan", "plan_only", is_flag=True, help="Show what would be added and removed; change nothing.")
@output_option
@lakeformation_options
@client_command
def apply(path, plan_only, output, direct, client):
    """Make the catalog (or with --lakeformation, Glue and Lake Formation) match FILE (sections left out are not touched)."""
    with open(path, encoding="utf-8") as f:
        document = f.read()
    if direct is not None:
        result = direct.apply_policy(document, plan_only)
    else:
        result = client.request("POST", "/management/v1/policy", json={"document": document, "dry_run": plan_only})
    lines = [c["line"] for c in result["changes"]]
    verb = "would change" if plan_only else "applied"
    summary = f"{path}: {len(lines)} change(s) {verb}" if lines else f"{path}: no changes (the catalog already matches)"
    lines += [f"  note: {n}" for n in result.get("notes", [])]
    for p in result["created_principals"]:
        lines.append(f"  created principal {p['name']}: client_secret {p['client_secret']}   (shown once: store it now)")
    emit(result, output, text="\n".join([summary, *lines]))
