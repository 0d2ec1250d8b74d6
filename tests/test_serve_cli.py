"""`icemesh serve` as a user runs it: the embedded default with no flags, and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys

from icemesh.server.process import CatalogProcess, free_port


def test_serve_with_no_flags_uses_the_embedded_default_and_duckdb_writes(tmp_path):
    port = free_port()  # passed through the environment, so the command line carries no flags
    server = CatalogProcess(cwd=str(tmp_path), port=port, env={"ICEMESH_PORT": str(port)})
    server.args = server.args[: server.args.index("--port")]  # exactly `icemesh serve`
    assert server.args[-1] == "serve"
    with server:
        con = server.client().duckdb()
        con.execute("CREATE SCHEMA mesh.sales")
        con.execute("CREATE TABLE mesh.sales.orders AS SELECT range AS id FROM range(3)")
        assert con.execute("SELECT sum(id) FROM mesh.sales.orders").fetchone() == (3,)
    assert os.path.isfile(tmp_path / ".icemesh" / "catalog.db")
    written = [f for _b, _d, fs in os.walk(tmp_path / ".icemesh" / "warehouse" / "sales") for f in fs]
    assert any(f.endswith(".parquet") for f in written) and any(f.endswith(".metadata.json") for f in written)


def run_serve(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "icemesh.cli.main", "serve", "--port", str(free_port()), *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)


def test_bad_settings_fail_with_one_line(tmp_path):
    for args, expected in [
        (["--db", "mysql://x"], "Unsupported catalog database"),
        (["--db", "postgresql://postgres@127.0.0.1:5432/icemesh_no_such_db"], "Cannot open the catalog database"),
        (["--warehouse", "ftp://host/wh"], "Unsupported warehouse scheme"),
    ]:
        result = run_serve(tmp_path, *args)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.stderr


def test_an_idle_client_connection_stays_open_past_a_few_seconds(sqlite_server):
    """A pooled connection a client left idle a few seconds (a writer rebuilding its snapshot under load) is still
    open for its next call; closed after 5 s, the client's commit would meet "connection reset by peer"."""
    import http.client
    import time

    conn = http.client.HTTPConnection("127.0.0.1", sqlite_server.port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        first = conn.getresponse()
        assert first.status == 200 and first.read()
        local_port = conn.sock.getsockname()[1]
        time.sleep(6.5)
        conn.request("GET", "/healthz")  # on the same socket: http.client reconnects only once it saw it closed
        second = conn.getresponse()  # RemoteDisconnected if the server had closed it
        assert second.status == 200 and second.read()
        assert conn.sock.getsockname()[1] == local_port
    finally:
        conn.close()


def test_a_port_in_use_fails_before_creating_anything_and_names_the_flag(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "icemesh.cli.main", "serve", "--port", str(port)], cwd=tmp_path,
                                capture_output=True, text=True, timeout=60,
                                env={k: v for k, v in os.environ.items() if k != "ICEMESH_ADMIN_SECRET"})
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: Port {port} on 127.0.0.1 is already in use (another icemesh serve?): stop it, or choose another port "
        "with --port"]
    assert list(tmp_path.iterdir()) == []  # no database, no warehouse, no admin secret
