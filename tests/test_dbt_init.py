"""`icemesh dbt init` on an existing project: an entry in packages.yml that works on a teammate's machine and in CI,
and edits that keep each YAML file's own layout. No catalog is needed: init and `dbt deps` work offline.

The macros package is copied into the project (`icemesh_package/`, committed with it) and packages.yml names it
by that relative path: dbt reads packages.yml, and writes package-lock.yml, before any icemesh code runs, so an
install path (one machine's site-packages) would be the only alternative, and would break on every other machine.
"""

from __future__ import annotations

import difflib
import filecmp
import json
import os
import shutil
import subprocess
import sys

import pytest

from icemesh.dbt import PACKAGE_DIR
from tests.dbt_helpers import PROJECTS

BIN = os.path.dirname(sys.executable)

PACKAGES = """\
# What this project builds on
packages:
- package: dbt-labs/dbt_utils   # helpers, pinned by the platform team
  version: [">=1.0.0", "<2.0.0"]

- git: "https://example.com/acme/dbt_macros.git"
  revision: v1.2.0
"""

PROFILES = """\
sales:
    target: dev   # CI uses `ci`
    outputs:
        dev:
            type: duckdb
            path: target/sales.duckdb
            threads: 1
        ci:
            type: duckdb
            path: "/tmp/ci.duckdb"
"""


def _init(path) -> dict:
    done = subprocess.run([os.path.join(BIN, "icemesh"), "dbt", "init", str(path), "--output", "json"],
                          env={**os.environ, "DBT_PROFILES_DIR": str(path)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _dbt(path, *args) -> subprocess.CompletedProcess:
    done = subprocess.run([os.path.join(BIN, "dbt"), *args], cwd=path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "DBT_PROFILES_DIR": str(path), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"})
    assert done.returncode == 0, done.stdout[-3000:]
    return done


@pytest.fixture
def project(tmp_path):
    path = tmp_path / "sales"
    shutil.copytree(os.path.join(PROJECTS, "sales"), path)
    (path / "packages.yml").write_text(PACKAGES)
    (path / "profiles.yml").write_text(PROFILES)
    return path


def _only_added(before: str, after: str) -> list[str]:
    """The lines an edit added; fails if it removed or changed any line that was there."""
    diff = [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-?"]
    assert not [line for line in diff if line[:1] in "-?"], "\n".join(diff)
    return [line[2:] for line in diff]


def test_init_adds_lines_in_each_files_own_layout(project):
    before = {name: (project / name).read_text() for name in ("packages.yml", "profiles.yml", "dbt_project.yml")}
    _init(project)
    assert _only_added(before["packages.yml"], (project / "packages.yml").read_text()) == ["- local: icemesh_package"]
    added = _only_added(before["profiles.yml"], (project / "profiles.yml").read_text())
    assert added == ["            plugins:", "                - module: icemesh.dbt.duckdb"] * 2  # dev and ci
    assert _only_added(before["dbt_project.yml"], (project / "dbt_project.yml").read_text())[0] == "dispatch:"


def test_the_package_entry_works_on_another_machine(project, tmp_path):
    first = _init(project)
    assert any(c.startswith("icemesh_package/: added") for c in first["changes"])
    assert not filecmp.dircmp(PACKAGE_DIR, project / "icemesh_package", ignore=["__pycache__"]).diff_files
    (project / "packages.yml").write_text("packages:\n- local: icemesh_package\n")  # no hub access here
    _dbt(project, "deps")
    lock = (project / "package-lock.yml").read_text()
    assert "local: icemesh_package" in lock and str(tmp_path) not in lock and PACKAGE_DIR not in lock
    # A teammate's clone, elsewhere on another machine: the committed files install as they are.
    clone = tmp_path / "elsewhere" / "sales"
    shutil.copytree(project, clone, ignore=shutil.ignore_patterns("dbt_packages", "target", "logs"))
    _dbt(clone, "deps")
    assert os.path.realpath(clone / "dbt_packages" / "icemesh") == str(clone / "icemesh_package")
    assert _init(clone)["changed"] is False


def test_init_moves_an_install_path_entry_to_the_copy_and_refreshes_an_old_copy(project):
    (project / "packages.yml").write_text(f"packages:\n  - local: {PACKAGE_DIR}   # written by an older init\n")
    first = _init(project)
    entry = (project / "packages.yml").read_text().splitlines()[1]  # ruamel keeps the comment in its column
    assert entry.startswith("  - local: icemesh_package ") and entry.endswith("   # written by an older init")
    assert "packages.yml: the icemesh package is now read from icemesh_package/" in first["changes"]
    stale = project / "icemesh_package" / "macros" / "iceberg.sql"
    stale.write_text("{# an older icemesh #}\n")
    again = _init(project)
    assert again["changes"] == ["icemesh_package/: updated icemesh's dbt macros (commit it with the project)"]
    with open(os.path.join(PACKAGE_DIR, "macros", "iceberg.sql"), encoding="utf-8") as current:
        assert stale.read_text() == current.read()
    assert _init(project)["changed"] is False


def test_init_refuses_to_overwrite_a_directory_that_is_not_icemeshs(project):
    (project / "icemesh_package").mkdir()
    (project / "icemesh_package" / "notes.txt").write_text("ours")
    done = subprocess.run([os.path.join(BIN, "icemesh"), "dbt", "init", str(project)], capture_output=True, text=True,
                          env={**os.environ, "DBT_PROFILES_DIR": str(project)}, timeout=120)
    assert done.returncode == 1 and done.stderr.splitlines() == [
        f"error: {project / 'icemesh_package'} exists and is not icemesh's macros package: move it, then run "
        "`icemesh dbt init` again"]
    assert (project / "icemesh_package" / "notes.txt").read_text() == "ours"
