"""Running a test dbt project the way a user would: a copy in a scratch directory, `icemesh dbt init`,
`dbt deps`, then `dbt ...` commands as the project's principal (all in subprocesses)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

PROJECTS = os.path.join(os.path.dirname(__file__), "dbt_projects")
BIN = os.path.dirname(sys.executable)


def dbt_project(name: str, directory, server, client_id: str, client_secret: str):
    """A callable `project(*dbt_args, check=True)`; `.path`, `.env` and `.init` (the init run) are attached."""
    path = directory / name
    shutil.copytree(os.path.join(PROJECTS, name), path)
    env = {**os.environ, "DBT_PROFILES_DIR": str(path), "ICEMESH_CATALOG_URI": server.uri,
           "ICEMESH_CLIENT_ID": client_id, "ICEMESH_CLIENT_SECRET": client_secret,
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}

    def dbt(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([os.path.join(BIN, "dbt"), *args], cwd=path, env=env, capture_output=True, text=True,
                              timeout=300)
        if check:
            assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        return done

    dbt.init = icemesh_dbt_init(path, env)
    assert dbt.init.returncode == 0, dbt.init.stderr
    dbt("deps")
    dbt.path = path
    dbt.env = env
    return dbt


def icemesh_dbt_init(path, env, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([os.path.join(BIN, "icemesh"), "dbt", "init", str(path), *options, "--output", "json"], env=env,
                          capture_output=True, text=True, timeout=60)


def rows(table, *columns):
    """A pyiceberg table's rows (or some columns), sorted: how tests compare products."""
    scan = table.scan(selected_fields=columns) if columns else table.scan()
    return sorted(tuple(r.values()) for r in scan.to_arrow().to_pylist())


def commits(table) -> int:
    """How many metadata versions the table went through (one per catalog commit)."""
    return len(table.metadata.metadata_log) + 1
