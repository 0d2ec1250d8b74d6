"""What icemesh costs a dbt command it has nothing to do with, and the logins a publishing run makes."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pyarrow as pa
import requests

from icemesh.client import CatalogClient


def _imports_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code` (so no test's imports leak in)."""
    done = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
                          capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_dbt_plugins_of_a_duckdb_project_import_neither_dbt_spark_nor_httpx():
    modules = _imports_after(
        "import click\n"
        "from types import SimpleNamespace\n"
        "profile = SimpleNamespace(credentials=SimpleNamespace(type='duckdb'))\n"
        "with click.Context(click.Command('parse'), obj={'profile': profile}):\n"
        "    import dbt_icemesh, dbt_icemesh_spark\n"
        "    dbt_icemesh_spark.IcemeshSpark(project_name='p')\n")
    assert "dbt.adapters.spark" not in modules
    assert "httpx" not in modules


def test_the_spark_plugin_still_installs_for_a_spark_profile():
    modules = _imports_after(
        "import click\n"
        "from types import SimpleNamespace\n"
        "profile = SimpleNamespace(credentials=SimpleNamespace(type='spark'))\n"
        "with click.Context(click.Command('run'), obj={'profile': profile}):\n"
        "    import dbt_icemesh_spark\n"
        "    dbt_icemesh_spark.IcemeshSpark(project_name='p')\n"
        "from dbt.adapters.spark.impl import SparkAdapter\n"
        "assert 'icemesh_publish' in SparkAdapter._available_\n")
    assert "dbt.adapters.spark" in modules


def test_a_catalog_reusing_the_clients_token_never_logs_in_again(sqlite_server, monkeypatch):
    client = CatalogClient(sqlite_server.uri, client_id="admin", client_secret=sqlite_server.admin_secret)
    client.token()
    sent = []
    send = requests.Session.send

    def recording(self, request, **kwargs):
        sent.append((request.method, request.url, request.headers.get("Authorization")))
        return send(self, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", recording)
    catalog = client.rest_catalog(reuse_token=True)
    ns = f"tok_{uuid.uuid4().hex[:8]}"
    catalog.create_namespace(ns)
    table = catalog.create_table(f"{ns}.t", schema=pa.schema([("a", pa.int64())]))
    table.append(pa.table({"a": [1, 2, 3]}))
    assert catalog.load_table(f"{ns}.t").scan().to_arrow().num_rows == 3
    assert not [url for _m, url, _a in sent if "/oauth/tokens" in url]
    assert {auth for _m, _u, auth in sent} == {f"Bearer {client.token()}"}


def test_the_client_makes_a_verifying_tls_context_only_for_https(sqlite_server):
    """http:// to the catalog needs no CA bundle (50 ms a dbt invocation); an https URL still gets the default,
    verifying transport, never the plain one."""
    import ssl

    import httpx
    import pytest

    from icemesh.client import _TlsWhenNeeded

    client = CatalogClient(sqlite_server.uri, client_id="admin", client_secret=sqlite_server.admin_secret)
    assert client.config()["overrides"]["prefix"]
    transport = client._http._transport
    assert isinstance(transport, _TlsWhenNeeded) and transport._tls is None
    with pytest.raises(httpx.ConnectError):
        transport.handle_request(httpx.Request("GET", "https://127.0.0.1:9/"))
    assert transport._tls._pool._ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert transport._tls._pool._ssl_context.check_hostname
