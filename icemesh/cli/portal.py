"""`icemesh portal open`: where the portal is (the catalog's own address, `/`), and a browser on it if asked."""

from __future__ import annotations

import os
import webbrowser

import click

from icemesh.cli.output import emit, output_option
from icemesh.client import DEFAULT_URI
from icemesh.errors import IcemeshError


@click.group()
def portal() -> None:
    """The data product portal that `icemesh serve` serves at /."""


@portal.command("open")
@click.option("--uri", envvar="ICEMESH_CATALOG_URI", default=None, help="Catalog URI [env ICEMESH_CATALOG_URI].")
@click.option("--browser", is_flag=True, help="Also open it in the default web browser.")
@output_option
def portal_open(uri, browser, output):
    """Print the portal's URL (log in there with a client id and secret, or a token)."""
    url = (uri or os.environ.get("ICEMESH_CATALOG_URI") or DEFAULT_URI).rstrip("/") + "/"
    opened = False
    if browser:
        opened = webbrowser.open(url)
        if not opened:
            raise IcemeshError(f"No web browser could be started here: open {url} yourself")
    emit({"url": url, "opened": opened}, output, text=[url])
