"""Run `icemesh serve` as a child process and wait until it answers: for tests, benchmarks and the demo."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CatalogProcess:
    """`with CatalogProcess(db=..., warehouse=...) as server: server.uri` starts and stops a real server."""

    def __init__(self, db: str | None = None, warehouse: str | list[str] | None = None, port: int | None = None,
                 cwd: str | None = None, extra_args: list[str] | None = None, env: dict[str, str] | None = None,
                 log_path: str | None = None, startup_timeout: float = 30.0, admin_secret: str | None = None) -> None:
        self.port = port or free_port()
        self.admin_secret = admin_secret or secrets.token_urlsafe(16)
        self.uri = f"http://127.0.0.1:{self.port}"
        self.cwd = cwd or os.getcwd()
        self.log_path = log_path or os.path.join(self.cwd, f"icemesh-serve-{self.port}.log")
        args = [sys.executable, "-m", "icemesh.cli.main", "serve", "--port", str(self.port)]
        if db:
            args += ["--db", db]
        for wh in ([warehouse] if isinstance(warehouse, str) else warehouse or []):
            args += ["--warehouse", wh]
        self.args = args + list(extra_args or [])
        self.env = {**os.environ, "ICEMESH_ADMIN_SECRET": self.admin_secret, **(env or {})}
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None

    def start(self) -> "CatalogProcess":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, cwd=self.cwd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"icemesh serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.uri + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"icemesh serve did not answer within {self.startup_timeout}s:\n{self.log()}")

    def client(self, client_id: str = "admin", client_secret: str | None = None, **kwargs):
        """A logged-in CatalogClient (admin by default)."""
        from icemesh.client import CatalogClient

        secret = client_secret if client_secret is not None else (self.admin_secret if client_id == "admin" else None)
        return CatalogClient(self.uri, client_id=client_id, client_secret=secret, **kwargs)

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> "CatalogProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
