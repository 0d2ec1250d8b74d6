"""`icemesh products list|show` and `icemesh lineage`: the catalog as the registry of data products."""

from __future__ import annotations

import time
from urllib.parse import quote

import click

from icemesh.cli.output import client_command, emit, output_option


def _age(ms: int | None) -> str:
    if not ms:
        return "-"
    seconds = max(0, time.time() - ms / 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def _owner(dbt: dict) -> str:
    owner = dbt.get("owner")
    if isinstance(owner, dict):
        return owner.get("email") or owner.get("name") or "-"
    return owner or "-"


@click.group()
def products() -> None:
    """Data products: the tables dbt projects published, as the caller may see them."""


WAREHOUSE_HELP = "The warehouse to look in (name or root URI); default: ICEMESH_CATALOG_WAREHOUSE, else the server's default."


@products.command("list")
@click.option("--namespace", default=None, help="Only this namespace.")
@click.option("--project", "projects", multiple=True, help="Only this dbt project's products (repeatable).")
@click.option("--tag", "tags", multiple=True,
              help="key=value[,value] (an LF-tag, values ORed; repeated tags ANDed) or a dbt tag name.")
@click.option("--owner", default=None, help="Only products of this dbt owner (email or name).")
@click.option("--ref", "refs", multiple=True, help="project.model: only this dbt model's products, every version "
              "(repeatable).")
@click.option("--search", default=None, help="Text found in a name, description, column or its doc.")
@click.option("--page-size", type=click.IntRange(1, 1000), default=None,
              help="At most this many (the answer then says the next page's token).")
@click.option("--page-token", default=None, help="The next-page-token of the previous page.")
@click.option("--warehouse", default=None, help=WAREHOUSE_HELP)
@output_option
@client_command
def products_list(namespace, projects, tags, owner, refs, search, page_size, page_token, warehouse, output, client):
    """Every product you may see (or those that match), with whether you may read it."""
    params: dict = {"namespace": namespace, "project": list(projects), "tag": list(tags), "owner": owner,
                    "ref": list(refs),
                    "q": search, "page-size": page_size, "page-token": page_token}
    if warehouse or client.warehouse:
        params["warehouse"] = warehouse or client.warehouse
    params = {k: v for k, v in params.items() if v not in (None, [])}
    answer = client.request("GET", "/management/v1/products", params=params)
    found = answer["products"] if isinstance(answer, dict) else answer
    rows = [{"product": p["name"], "project": p["dbt"].get("project"), "access": p["dbt"].get("access"),
             "owner": _owner(p["dbt"]), "read": "all" if p["select"]["all_columns"] else
             ("some columns" if p["select"]["allowed"] else "no"),
             "snapshots": p["snapshots"], "updated": _age(p["last_updated_ms"])} for p in found]
    if output == "json":
        emit(answer, output)
    elif isinstance(answer, dict) and answer.get("next-page-token"):
        emit(rows, output)
        click.echo(f"more: --page-token {answer['next-page-token']}")
    else:
        emit(rows, output)


@products.command("show")
@click.argument("name")
@click.option("--warehouse", default=None, help=WAREHOUSE_HELP)
@output_option
@client_command
def products_show(name, warehouse, output, client):
    """One product: owner, contract, columns, tags, snapshots, freshness, upstream and downstream."""
    where = warehouse or client.warehouse
    product = client.request("GET", f"/management/v1/products/{quote(name, safe='')}",
                             params={"warehouse": where} if where else None)
    tags = client.request("GET", "/management/v1/effective-tags", params={"resource": name})
    product["tags"] = {k: v["value"] for k, v in tags.get("tags", {}).items()}
    dbt = product["dbt"]
    contract = dbt.get("contract") or {}
    lines = [
        f"{product['name']}  ({dbt.get('project')}.{dbt.get('model')}, access {dbt.get('access', '-')}"
        f"{', version ' + str(dbt['version']) if dbt.get('version') else ''})",
        f"  {product['description']}" if product["description"] else None,
        f"  owner:       {_owner(dbt)}{'  group ' + dbt['group'] if dbt.get('group') else ''}",
        f"  contract:    {'enforced' if contract.get('enforced') else 'none'}",
        f"  tags:        {' '.join(f'{k}={v}' for k, v in sorted(product['tags'].items())) or '-'}",
        f"  snapshots:   {product['snapshots']} (current {product['current_snapshot_id']}, updated "
        f"{_age(product['last_updated_ms'])})",
        f"  upstream:    {', '.join(dbt.get('upstream') or []) or '-'}",
        f"  downstream:  {', '.join(product['downstream']) or '-'}",
        f"  you may read: {'all columns' if product['select']['all_columns'] else product['select']['message']}",
        "  columns:",
    ]
    width = max((len(c["name"]) for c in product["columns"]), default=4)
    for column in product["columns"]:
        flag = " required" if column["required"] else ""
        lines.append(f"    {column['name'].ljust(width)}  {column['type']}{flag}{'  ' + column['doc'] if column['doc'] else ''}")
    emit(product, output, text=[line for line in lines if line is not None])


@click.command()
@click.argument("name", required=False)
@click.option("--depth", type=click.IntRange(1, 20), default=3, show_default=True,
              help="Hops upstream and downstream of NAME.")
@click.option("--warehouse", default=None, help=WAREHOUSE_HELP)
@output_option
@client_command
def lineage(name, depth, warehouse, output, client):
    """Product-to-product lineage across projects (around NAME, or of everything you may see), from the
    catalog's product index."""
    params: dict = {"depth": depth}
    if name:
        params["product"] = name
    if warehouse or client.warehouse:
        params["warehouse"] = warehouse or client.warehouse
    edges = client.request("GET", "/management/v1/lineage", params=params)
    emit(edges, output)
