"""`icemesh events tail`: the catalog's change feed (commits, creates, drops, renames, registers), as far as the
caller may see it; `--follow` keeps reading (long polls), the way `tail -f` does."""

from __future__ import annotations

import datetime as dt
import json

import click

from icemesh.cli.output import client_command, echo_lines, emit, output_option
from icemesh.protocol import EVENT_TYPES

API = "/management/v1/events"
TYPES = list(EVENT_TYPES)
WAIT_S = 20  # one long poll; below the client's 60 s timeout


@click.group()
def events() -> None:
    """The catalog's change feed."""


@events.command("tail")
@click.option("--follow", "-f", is_flag=True, help="Keep printing events as they happen (Ctrl-C stops).")
@click.option("--type", "types", multiple=True, type=click.Choice(TYPES), help="Only this operation type (repeatable).")
@click.option("--after", default=0, show_default=True, type=click.IntRange(min=0),
              help="Start after this event-id (0: the oldest kept).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000), help="Events per read.")
@output_option
@client_command
def tail(follow, types, after, limit, output, client):
    """Events after --after, oldest first (with --output json and --follow: one JSON object per line)."""
    params = {"after": after, "limit": limit, "type": list(types)}
    page = client.request("GET", API, params=params)
    if not follow:
        if output == "json":
            emit(page, output)
        else:
            echo_lines([_line(e) for e in page["events"]] or ["(no events)"])
        return
    try:
        while True:
            for event in page["events"]:
                click.echo(json.dumps(event) if output == "json" else _line(event))
            params["after"] = page["next-after"]
            page = client.request("GET", API, params={**params, "wait": WAIT_S})
    except KeyboardInterrupt:
        return


def _line(event: dict) -> str:
    when = dt.datetime.fromtimestamp(event["timestamp-ms"] / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    ident = event["identifier"]
    name = ".".join([*ident["namespace"], *([ident["name"]] if "name" in ident else [])])
    extra = ""
    if "destination" in event:
        extra = f" -> {'.'.join([*event['destination']['namespace'], event['destination']['name']])}"
    if "grant" in event:
        extra = f" {event['change']} {event['grant']}"
    elif "key" in event:
        where = f" column {event['column']}" if "column" in event else ""
        extra = f" {event.get('change', '')} {event['key']}" + (f"={event['value']}" if "value" in event else "") + where
    elif "changes" in event:
        extra = f" {len(event['changes'])} change(s)"
    if "snapshot-id" in event:
        summary = event.get("summary", {})
        added = summary.get("added-records")
        extra += f"  snapshot {event['snapshot-id']} ({summary.get('operation', '?')}" + \
                 (f", +{added} rows)" if added else ")")
    return f"{when}  #{event['event-id']}  {event['operation-type']:<16} {name}{extra}  by {event['principal']}"
