"""`icemesh namespaces create | list | show | drop`: a domain's namespace, with its owner, over the management API."""

from __future__ import annotations

from urllib.parse import quote

import click

from icemesh.cli.output import client_command, emit, output_option

API = "/management/v1/namespaces"

warehouse_option = click.option("--warehouse", default=None,
                                help="Warehouse (name or root) when not the server's default; ownership is per warehouse.")


def _properties(values: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.UsageError(f"Write a property as KEY=VALUE, e.g. --property comment=sales: got {item!r}")
        found[key.strip()] = value
    return found


def _params(warehouse: str | None) -> dict[str, str] | None:
    return {"warehouse": warehouse} if warehouse else None


@click.group()
def namespaces() -> None:
    """Namespaces: where a domain publishes its products, owned by the domain's principal."""


@namespaces.command("create")
@click.argument("name")
@click.option("--owner", help="Principal that owns it from the start (needs ADMIN); default: you.")
@click.option("--property", "properties", multiple=True, metavar="KEY=VALUE", help="A namespace property (repeatable).")
@warehouse_option
@output_option
@client_command
def create(name, owner, properties, warehouse, output, client):
    """Create NAME (e.g. sales or sales.emea); its owner holds every permission on it and its tables."""
    created = client.request("POST", API, json={"namespace": name, "owner": owner, "properties": _properties(properties),
                                                "warehouse": warehouse})
    emit(created, output, text=f"created namespace {created['namespace']} (owner {created['owner']})")


@namespaces.command("list")
@warehouse_option
@output_option
@client_command
def list_(warehouse, output, client):
    """The namespaces you may see, with owners and tags."""
    emit(client.request("GET", API, params=_params(warehouse)), output, ["namespace", "owner", "tags"])


@namespaces.command("show")
@click.argument("name")
@warehouse_option
@output_option
@client_command
def show(name, warehouse, output, client):
    """Owner, tags (and where each comes from), properties, and the tables you may see."""
    shown = client.request("GET", f"{API}/{quote(name, safe='')}", params=_params(warehouse))
    lines = [f"namespace {shown['namespace']}", f"  owner: {shown['owner'] or '-'}"]
    lines += [f"  tag {k}={t['value']}  (from {t['from']})" for k, t in shown["tags"].items()] or ["  tags: (none)"]
    lines += [f"  property {k}={v}" for k, v in sorted(shown["properties"].items())]
    lines.append(f"  tables: {', '.join(shown['tables']) or '(none you may see)'}")
    emit(shown, output, text="\n".join(lines))


@namespaces.command("drop")
@click.argument("name")
@warehouse_option
@output_option
@client_command
def drop(name, warehouse, output, client):
    """Drop an empty namespace (needs DROP on it: its owner, or ADMIN)."""
    client.request("DELETE", f"{API}/{quote(name, safe='')}", params=_params(warehouse))
    emit({"dropped": name}, output, text=f"dropped namespace {name}")
