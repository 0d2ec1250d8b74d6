"""Governance commands: principals, roles, tags, grant, revoke, grants, access, audit."""

from __future__ import annotations

import datetime as dt

import click

from icemesh.cli.lakeformation import lakeformation_options
from icemesh.cli.output import client_command, echo_lines, emit, output_option

API = "/management/v1"


def _split(values: str | None) -> list[str]:
    return [v.strip() for v in (values or "").split(",") if v.strip()]


# -- principals ------------------------------------------------------------------------------------

@click.group()
def principals() -> None:
    """Principals: people and the service accounts of dbt projects."""


@principals.command("create")
@click.argument("name")
@click.option("--role", "roles", multiple=True, help="Role to join (repeatable); it must exist unless --create-role.")
@click.option("--create-role", "create_roles", is_flag=True, help="Create the --role roles that do not exist yet.")
@output_option
@client_command
def principals_create(name, roles, create_roles, output, client):
    """Create a principal; its client secret is shown once."""
    created = client.request("POST", f"{API}/principals", json={"name": name, "roles": list(roles),
                                                                  "create_roles": create_roles})
    emit(created, output, text=(f"created principal {created['name']}\n"
                                f"client_id:     {created['client_id']}\n"
                                f"client_secret: {created['client_secret']}   (shown once: store it now)"))


@principals.command("list")
@output_option
@client_command
def principals_list(output, client):
    rows = client.request("GET", f"{API}/principals")
    emit(rows, output, ["name", "roles"])


@principals.command("delete")
@click.argument("name")
@output_option
@client_command
def principals_delete(name, output, client):
    """Delete a principal, its tokens and its grants."""
    client.request("DELETE", f"{API}/principals/{name}")
    emit({"deleted": name}, output, text=f"deleted principal {name}")


@principals.command("rotate-secret")
@click.argument("name")
@output_option
@client_command
def principals_rotate(name, output, client):
    """Issue a new client secret; the old one and every token of the principal stop working."""
    rotated = client.request("POST", f"{API}/principals/{name}/rotate-secret")
    emit(rotated, output, text=f"client_secret: {rotated['client_secret']}   (shown once: store it now)")


@principals.command("set-roles")
@click.argument("name")
@click.option("--role", "roles", multiple=True, help="Every role the principal is to have (repeatable); none: no roles.")
@click.option("--create-role", "create_roles", is_flag=True, help="Create the --role roles that do not exist yet.")
@output_option
@client_command
def principals_set_roles(name, roles, create_roles, output, client):
    """Replace the principal's roles."""
    result = client.request("PUT", f"{API}/principals/{name}/roles", json={"roles": list(roles), "create_roles": create_roles})
    emit(result, output, text=f"{name}: roles {', '.join(result['roles']) or '(none)'}")


@click.command()
@output_option
@client_command
def whoami(output, client):
    """Who the current credentials log in as: roles, and the namespaces and tables you own."""
    me = client.request("GET", f"{API}/whoami")
    owns = me.get("owns") or {}
    emit(me, output, text="\n".join([
        f"{me['name']}{' (admin)' if me['admin'] else ''} roles: {', '.join(me['roles']) or '-'}",
        f"  owns namespaces: {', '.join(owns.get('namespaces') or []) or '-'}",
        f"  owns tables: {', '.join(owns.get('tables') or []) or '-'}"]))


# -- roles -----------------------------------------------------------------------------------------

@click.group()
def roles() -> None:
    """Roles: grants given to a role apply to every member."""


@roles.command("create")
@click.argument("name")
@output_option
@client_command
def roles_create(name, output, client):
    emit(client.request("POST", f"{API}/roles", json={"name": name}), output, text=f"created role {name}")


@roles.command("list")
@output_option
@client_command
def roles_list(output, client):
    emit(client.request("GET", f"{API}/roles"), output, ["name", "members"])


@roles.command("delete")
@click.argument("name")
@output_option
@client_command
def roles_delete(name, output, client):
    client.request("DELETE", f"{API}/roles/{name}")
    emit({"deleted": name}, output, text=f"deleted role {name}")


# -- tags ------------------------------------------------------------------------------------------

@click.group()
def tags() -> None:
    """LF-tags: keys with allowed values, assigned to namespaces, tables and columns."""


@tags.command("create")
@click.argument("key")
@click.option("--values", required=True, help="Allowed values, comma-separated.")
@output_option
@client_command
def tags_create(key, values, output, client):
    created = client.request("POST", f"{API}/tags", json={"key": key, "values": _split(values)})
    emit(created, output, text=f"created tag {key}: {', '.join(created['values'])}")


@tags.command("update")
@click.argument("key")
@click.option("--values", required=True, help="The new full list of allowed values.")
@output_option
@client_command
def tags_update(key, values, output, client):
    updated = client.request("PUT", f"{API}/tags/{key}", json={"values": _split(values)})
    emit(updated, output, text=f"tag {key}: {', '.join(updated['values'])}")


@tags.command("list")
@output_option
@lakeformation_options
@client_command
def tags_list(output, direct, client):
    rows = direct.list_tags() if direct is not None else client.request("GET", f"{API}/tags")
    emit(rows, output, ["key", "values"])


@tags.command("delete")
@click.argument("key")
@output_option
@client_command
def tags_delete(key, output, client):
    client.request("DELETE", f"{API}/tags/{key}")
    emit({"deleted": key}, output, text=f"deleted tag {key}")


def _target_options(func):
    func = click.option("--column", help="A column of --table.")(func)
    func = click.option("--table", help="NS.TABLE")(func)
    func = click.option("--namespace", help="NS")(func)
    return func


@tags.command("assign")
@click.argument("assignment", metavar="KEY=VALUE")
@_target_options
@output_option
@client_command
def tags_assign(assignment, namespace, table, column, output, client):
    """Tag a namespace, a table or a column (replaces an earlier value of the key there)."""
    key, sep, value = assignment.partition("=")
    if not sep or not key or not value:
        raise click.UsageError("Write the tag as KEY=VALUE, e.g. sensitivity=confidential")
    done = client.request("POST", f"{API}/tag-assignments", json={
        "key": key, "value": value, "namespace": namespace, "table": table, "column": column})
    emit(done, output, text=f"{done['resource']}: {key}={value}")


@tags.command("unassign")
@click.argument("key")
@_target_options
@output_option
@client_command
def tags_unassign(key, namespace, table, column, output, client):
    done = client.request("POST", f"{API}/tag-assignments/remove", json={
        "key": key, "namespace": namespace, "table": table, "column": column})
    emit(done, output, text=f"{done['resource']}: {key} {'removed' if done['removed'] else 'was not set'}")


@tags.command("show")
@click.argument("resource")
@output_option
@lakeformation_options
@client_command
def tags_show(resource, output, direct, client):
    """Effective tags of a table (and its columns) or namespace, with where each was inherited from."""
    shown = direct.show_tags(resource) if direct is not None else \
        client.request("GET", f"{API}/effective-tags", params={"resource": resource})
    if output == "json":
        emit(shown, output)
        return
    lines = [f"{shown['type']} {shown['resource']}"]
    lines += [f"  {k}={t['value']}  (from {t['from']})" for k, t in shown["tags"].items()] or ["  (no tags)"]
    for column, col_tags in shown.get("columns", {}).items():
        own = {k: t for k, t in col_tags.items() if t["from"].startswith("column ")}
        summary = ", ".join(f"{k}={t['value']}" + ("" if k in own else " (inherited)") for k, t in col_tags.items())
        lines.append(f"  column {column}: {summary or '(no tags)'}")
    echo_lines(lines)


# -- grants ----------------------------------------------------------------------------------------

def _grant_spec(permissions, to, role, catalog, namespace, table, columns, tag_conditions) -> dict:
    return {"permissions": permissions, "principal": to, "role": role, "catalog": catalog, "namespace": namespace,
            "table": table, "columns": _split(columns) or None, "tags": list(tag_conditions) or None}


def _grant_options(func):
    func = click.option("--tags", "tag_conditions", multiple=True,
                        help="Tag condition KEY=V1[,V2]; repeat to AND several keys.")(func)
    func = click.option("--columns", help="Only these columns of --table (SELECT/DESCRIBE).")(func)
    func = click.option("--table", help="NS.TABLE")(func)
    func = click.option("--namespace", help="NS (and everything in it)")(func)
    func = click.option("--catalog", is_flag=True, help="The whole catalog.")(func)
    func = click.option("--role", help="Grantee role.")(func)
    func = click.option("--to", help="Grantee principal.")(func)
    return func


@click.command()
@click.argument("permissions")
@_grant_options
@click.option("--rows", help="SELECT only the rows this Iceberg expression keeps, e.g. \"region = 'EU'\".")
@click.option("--mask", "masks", multiple=True, help="COLUMN=ACTION: show the column masked (null, default, sha256, "
              "first4, last4, year, month, day); repeat for several.")
@click.option("--mask-tag", "mask_tags", multiple=True, help="KEY=VALUE:ACTION: mask every column with that tag.")
@output_option
@client_command
def grant(permissions, to, role, catalog, namespace, table, columns, tag_conditions, rows, masks, mask_tags, output,
          client):
    """Grant PERMISSIONS (e.g. SELECT,DESCRIBE) to a principal or role on a resource or tag expression; a SELECT
    grant may show only some rows (--rows) and mask columns (--mask, --mask-tag), as Lake Formation's data filters."""
    spec = _grant_spec(permissions, to, role, catalog, namespace, table, columns, tag_conditions)
    spec.update({"rows": rows, "masks": list(masks) or None, "mask_tags": list(mask_tags) or None})
    created = client.request("POST", f"{API}/grants", json=spec)
    emit(created, output, text=created["description"])


@click.command()
@click.argument("permissions", required=False, default="")
@_grant_options
@click.option("--id", "grant_id", type=int, help="Remove grant #ID entirely.")
@output_option
@client_command
def revoke(permissions, to, role, catalog, namespace, table, columns, tag_conditions, grant_id, output, client):
    """Revoke PERMISSIONS from the matching grant, or a whole grant with --id."""
    spec = _grant_spec(permissions or "DESCRIBE", to, role, catalog, namespace, table, columns, tag_conditions)
    if grant_id is not None:
        spec = {"permissions": "DESCRIBE", "id": grant_id}
    elif not permissions:
        raise click.UsageError("Name the permissions to revoke (e.g. SELECT) or use --id")
    result = client.request("POST", f"{API}/grants/revoke", json=spec)
    emit(result, output, text="\n".join(f"revoked from {g['description']}" for g in result["revoked"]))


@click.group()
def grants() -> None:
    """Inspect grants."""


@grants.command("list")
@click.option("--principal", help="Only grants that apply to this principal (directly or through its roles); "
                                   "another principal's need ADMIN. Default: all (ADMIN), else your own.")
@click.option("--role", help="Only grants to this role (one of yours, unless ADMIN).")
@output_option
@lakeformation_options
@client_command
def grants_list(principal, role, output, direct, client):
    if direct is not None:
        rows = direct.list_grants(principal, role)
    else:
        rows = client.request("GET", f"{API}/grants", params={k: v for k, v in (("principal", principal), ("role", role)) if v})
    emit(rows, output, text="\n".join(g["description"] for g in rows) or "(none)")


@click.group()
def filters() -> None:
    """Data filters: the grants that show only some rows or mask columns."""


@filters.command("list")
@click.option("--principal", help="Only filters that apply to this principal (another principal's need ADMIN).")
@output_option
@client_command
def filters_list(principal, output, client):
    rows = client.request("GET", f"{API}/grants", params={"principal": principal} if principal else {})
    found = [g for g in rows if g.get("data_filter")]
    emit(found, output, text="\n".join(g["description"] for g in found) or "(no data filters)")


# -- access and audit ------------------------------------------------------------------------------

@click.group()
def access() -> None:
    """Ask the catalog what a principal may do."""


@access.command("check")
@click.argument("principal")
@click.argument("resource")
@click.option("--action", default="SELECT", show_default=True)
@output_option
@lakeformation_options
@client_command
def access_check(principal, resource, action, output, direct, client):
    """ALLOW or DENY, the grant that decided, and the visible columns."""
    if direct is not None:
        result = direct.check_access(principal, resource, action)
    else:
        result = client.request("GET", f"{API}/access", params={"principal": principal, "resource": resource, "action": action})
    lines = [f"{result['decision']}: {principal} {result['action']} on {result['resource']}", f"  {result['reason']}"]
    if result.get("visible_columns") is not None:
        lines.append(f"  visible columns: {', '.join(result['visible_columns']) or '(none)'}")
    if result.get("hidden_columns"):
        lines.append(f"  hidden columns:  {', '.join(result['hidden_columns'])}")
    if result.get("row_filter"):
        lines.append(f"  rows:            {result['row_filter']}")
    if result.get("masks"):
        lines.append("  masked columns:  " + ", ".join(f"{c} ({a})" for c, a in result["masks"].items()))
    lines += [f"  note: {n}" for n in result.get("notes", [])]
    emit(result, output, text="\n".join(lines))


@click.command()
@click.option("--principal", help="Only this principal's decisions (another principal's need ADMIN; without ADMIN "
                                   "you see only your own).")
@click.option("--denied", is_flag=True, help="Only denials.")
@click.option("--limit", default=50, show_default=True, type=int)
@output_option
@client_command
def audit(principal, denied, limit, output, client):
    """Recent authorization decisions, newest first."""
    params = {"limit": limit, "denied": str(denied).lower()}
    if principal:
        params["principal"] = principal
    rows = client.request("GET", f"{API}/audit", params=params)
    for row in rows:
        row["when"] = dt.datetime.fromtimestamp(row["at"], dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        row["decision"] = "ALLOW" if row["allowed"] else "DENY"
    emit(rows, output, ["when", "principal", "decision", "action", "resource", "reason"])
