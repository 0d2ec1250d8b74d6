"""Running `icemesh` as a user would (a subprocess with the environment as its only input), as any principal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass


@dataclass
class As:
    """The CLI logged in as one principal against one server (or with the environment given)."""

    env: dict[str, str]

    @classmethod
    def principal(cls, server, name: str = "admin", secret: str | None = None) -> "As":
        env = {k: v for k, v in os.environ.items() if not k.startswith("ICEMESH_")}
        env.update(ICEMESH_CATALOG_URI=server.uri, ICEMESH_CLIENT_ID=name,
                   ICEMESH_CLIENT_SECRET=secret if secret is not None else server.admin_secret)
        return cls(env)

    def run(self, *args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "icemesh.cli.main", *args], env=self.env, capture_output=True,
                              text=True, timeout=120, cwd=cwd)

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, f"icemesh {' '.join(args)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def json(self, *args: str):
        return json.loads(self.ok(*args, "--output", "json"))

    def fails(self, *args: str, cwd: str | None = None, code: int = 1) -> str:
        """A refused command: exit `code` (2: a usage error), nothing on stdout, exactly one stderr line
        `error: ...`; returns it."""
        done = self.run(*args, cwd=cwd)
        lines = done.stderr.splitlines()
        assert done.returncode == code, f"icemesh {' '.join(args)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        assert len(lines) == 1 and lines[0].startswith("error: "), f"icemesh {' '.join(args)}: stderr {done.stderr!r}"
        assert done.stdout == ""
        return lines[0]
