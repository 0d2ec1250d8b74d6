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


def mesh_world(tmp_path_factory, label: str):
    """The three-project mesh of tests/dbt_projects/mesh on a new server, set up with least privilege as a platform
    team would: each domain may create tables in its own namespace and see it (it owns what it creates); orders may
    read inventory's public and internal products; reporting may see both domains' products and read the public and
    internal ones. Returns (server, {name: project}, {name: client secret}); nothing is built yet."""
    from tests.conftest import start_catalog

    m = "/management/v1"
    server = start_catalog(tmp_path_factory, None, label)
    admin = server.client()
    admin.request("POST", f"{m}/tags", json={"key": "domain", "values": ["inventory", "orders"]})
    admin.request("POST", f"{m}/tags", json={"key": "sensitivity", "values": ["public", "internal", "confidential"]})
    secrets = {}
    rest = admin.rest_catalog()
    for name in ("inventory", "orders", "reporting"):
        secrets[name] = admin.request("POST", f"{m}/principals", json={"name": f"svc_{name}"})["client_secret"]
        rest.create_namespace(name)
        admin.request("POST", f"{m}/grants", json={"permissions": "CREATE_TABLE,DESCRIBE", "principal": f"svc_{name}",
                                                   "namespace": name})
    admin.request("POST", f"{m}/grants", json={"permissions": "DESCRIBE,SELECT", "principal": "svc_orders",
                                               "tags": ["domain=inventory", "sensitivity=public,internal"]})
    admin.request("POST", f"{m}/grants", json={"permissions": "DESCRIBE", "principal": "svc_reporting",
                                               "tags": ["domain=inventory,orders"]})
    admin.request("POST", f"{m}/grants", json={"permissions": "SELECT", "principal": "svc_reporting",
                                               "tags": ["domain=inventory,orders", "sensitivity=public,internal"]})
    home = tmp_path_factory.mktemp(f"{label}-projects")
    projects = {n: dbt_project(f"mesh/{n}", home, server, f"svc_{n}", secrets[n]) for n in ("inventory", "orders", "reporting")}
    server.secrets = secrets
    return server, projects, secrets
