"""`icemesh dbt init [PROJECT_DIR]`: the edits an existing dbt-duckdb or dbt-spark project needs to publish products.

1. icemesh_package/ and packages.yml: a copy of the icemesh macros package (`materialized='iceberg'`) in the
   project, named by its relative path (`local: icemesh_package`), so the entry works on every machine.
2. dbt_project.yml: `dispatch` so dbt takes icemesh's naming macros (catalog `mesh`, namespace = project).
3. profiles.yml: the `icemesh.dbt.duckdb` plugin on every duckdb output of the project's profile; on every
   spark output (`method: session`), `server_side_parameters` that give the session the Iceberg runtime and
   the catalog `mesh` as the project's principal (credentials read from the environment when dbt runs).
4. macros/icemesh.sql: one-line overrides dbt lets only the project make: `is_incremental()`, and the `table` and
   `incremental` materializations, which publish a model with `catalog_name` (catalogs.yml) and are dbt's own
   for every other model.
5. With `--style catalogs`: catalogs.yml, an `iceberg_rest` entry `mesh` pointing at the catalog (catalogs.py).

Every edit checks first and changes nothing that is already right, so running it twice is safe; YAML is
edited round-trip in each file's own indentation (yaml_layout.py), so the project's comments and layout stay as
they were.
"""

from __future__ import annotations

import filecmp
import os
import shutil
from dataclasses import dataclass, field

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from icemesh.dbt import PACKAGE_DIR, adapters, yaml_layout
from icemesh.errors import BadRequest

VENDORED_DIR = "icemesh_package"  # the macros package, copied into the project (see _vendor_package)
SHIM_FILE = "icemesh.sql"
SHIM_MARK = "Written by `icemesh dbt init`"
SHIM = ("{#- " + SHIM_MARK + ": dbt lets only the project itself override these. A table, incremental or view model with\n"
        "    catalog_name (catalogs.yml) is published as an icemesh product (a view: on Spark); every other model gets\n"
        "    dbt's own. -#}\n"
        "{% macro is_incremental() %}{{ return(icemesh.is_incremental()) }}{% endmacro %}\n"
        + "".join(f"{{% materialization {kind}, adapter='{adapter}' %}}{{{{ return(icemesh.icemesh_table('{adapter}')) }}}}"
                  "{% endmaterialization %}\n" for adapter in ("duckdb", "spark") for kind in ("table", "incremental", "view")))
CATALOGS = """# Written by `icemesh dbt init --style catalogs`: models with `catalog_name: mesh` (materialized table or
# incremental) are published to the icemesh catalog as products. Credentials stay in the profile / environment.
catalogs:
  - name: mesh
    active_write_integration: icemesh
    write_integrations:
      - name: icemesh
        catalog_type: iceberg_rest
        table_format: iceberg
        adapter_properties:
          uri: "{{ env_var('ICEMESH_CATALOG_URI', 'http://127.0.0.1:8181') }}"
"""
STYLES = ("iceberg", "catalogs")


@dataclass
class SetupReport:
    project: str
    project_dir: str
    profiles_path: str
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"project": self.project, "project_dir": self.project_dir, "profiles": self.profiles_path,
                "changed": bool(self.changes), "changes": self.changes, "notes": self.notes}


def _load(path: str):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        return yaml_layout.yaml_for(text).load(text) if text.strip() else CommentedMap()
    except Exception as exc:  # ruamel's errors are multi-line: keep the first
        raise BadRequest(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None


def _dump(path: str, document) -> None:
    """Write in the file's own layout (indentation and list style), so the edit is only the lines it changes."""
    before = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            before = f.read()
    with open(path, "w", encoding="utf-8") as f:
        f.write(yaml_layout.dumps(document, like=before))


def find_profiles(project_dir: str, profiles_dir: str | None) -> str:
    """Where dbt itself would look: --profiles-dir, $DBT_PROFILES_DIR, the project, then ~/.dbt."""
    candidates = [profiles_dir, os.environ.get("DBT_PROFILES_DIR"), project_dir, os.path.expanduser("~/.dbt")]
    for directory in candidates:
        if directory and os.path.exists(os.path.join(directory, "profiles.yml")):
            return os.path.join(directory, "profiles.yml")
    raise BadRequest(f"No profiles.yml found (looked in {', '.join(d for d in candidates if d)}): "
                     "pass --profiles-dir")


def set_up(project_dir: str, profiles_dir: str | None = None, style: str = "iceberg") -> SetupReport:
    """`style`: how models say they are products, `materialized='iceberg'` (the default) or dbt's catalogs.yml with
    `catalog_name` (then catalogs.yml is written too); a project set up either way accepts both."""
    if style not in STYLES:
        raise BadRequest(f"Unknown style {style!r}: use {' or '.join(STYLES)}")
    project_dir = os.path.abspath(project_dir)
    project_file = os.path.join(project_dir, "dbt_project.yml")
    if not os.path.exists(project_file):
        raise BadRequest(f"{project_dir} is not a dbt project (no dbt_project.yml): pass the project's directory")
    project = _load(project_file)
    name, profile_name = project.get("name"), project.get("profile") or project.get("name")
    if not name:
        raise BadRequest(f"{project_file} has no `name`")
    report = SetupReport(name, project_dir, find_profiles(project_dir, profiles_dir))
    _vendor_package(project_dir, report)
    _package_line(project_dir, report)
    if _dispatch(project, name, report):
        _dump(project_file, project)
    _plugin(report.profiles_path, profile_name, report)
    macro_dir = (project.get("macro-paths") or ["macros"])[0]
    _shim(project_dir, macro_dir, report)
    if style == "catalogs":
        _catalogs_file(project_dir, report)
    return report


def _is_icemesh_package(entry, project_dir: str) -> bool:
    """A `local:` entry whose dbt_project.yml names the package icemesh (wherever it was installed)."""
    local = entry.get("local") if isinstance(entry, dict) else None
    if not local:
        return False
    manifest = os.path.join(project_dir, os.path.expanduser(str(local)), "dbt_project.yml")
    if not os.path.exists(manifest):
        return os.path.normpath(str(local)).endswith(os.path.join("icemesh", "dbt", "package"))
    return (_load(manifest) or {}).get("name") == "icemesh"


def _package_line(project_dir: str, report: SetupReport) -> None:
    path = os.path.join(project_dir, "packages.yml")
    dependencies = os.path.join(project_dir, "dependencies.yml")
    if not os.path.exists(path) and os.path.exists(dependencies) and "packages" in (_load(dependencies) or {}):
        path = dependencies  # dbt reads packages from one of the two files, never both
    document = _load(path) if os.path.exists(path) else CommentedMap()
    packages = document.get("packages")
    if packages is None:
        packages = document["packages"] = CommentedSeq()
    existing = next((entry for entry in packages if _is_icemesh_package(entry, project_dir)), None)
    if existing is not None and str(existing["local"]).rstrip("/") == VENDORED_DIR:
        return
    if existing is not None:  # written by an earlier init as this machine's install path: make it portable
        existing["local"] = VENDORED_DIR
        report.changes.append(f"{os.path.basename(path)}: the icemesh package is now read from {VENDORED_DIR}/")
    else:
        packages.append(CommentedMap(local=VENDORED_DIR))
        report.changes.append(f"{os.path.basename(path)}: added the icemesh package (local: {VENDORED_DIR})")
    _dump(path, document)
    report.notes.append("run `dbt deps` to install the package")


def _vendor_package(project_dir: str, report: SetupReport) -> None:
    """Copy the macros package into the project, to be committed with it. packages.yml then names it by a path
    relative to the project, the same on every machine and in CI: an install path (`.../site-packages/...`)
    would be one machine's, and dbt resolves packages.yml (and writes package-lock.yml) before any icemesh
    code runs, so no plugin can point dbt at the installed copy. Running init again after upgrading icemesh
    refreshes the copy."""
    target = os.path.join(project_dir, VENDORED_DIR)
    if os.path.exists(target) and _package_name(target) != "icemesh":
        raise BadRequest(f"{target} exists and is not icemesh's macros package: move it, then run `icemesh dbt init` again")
    if os.path.exists(target) and not _differs(PACKAGE_DIR, target):
        return
    existed = os.path.exists(target)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(PACKAGE_DIR, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    report.changes.append(f"{VENDORED_DIR}/: {'updated' if existed else 'added'} icemesh's dbt macros "
                          "(commit it with the project)")


def _package_name(directory: str) -> str | None:
    manifest = os.path.join(directory, "dbt_project.yml")
    return (_load(manifest) or {}).get("name") if os.path.exists(manifest) else None


def _differs(source: str, copy: str) -> bool:
    """Whether the copy's files are not exactly the source's (added, removed or changed)."""
    compared = filecmp.dircmp(source, copy, ignore=["__pycache__"])
    if compared.left_only or compared.right_only or compared.funny_files:
        return True
    if filecmp.cmpfiles(source, copy, compared.common_files, shallow=False)[1:] != ([], []):
        return True
    return any(_differs(os.path.join(source, d), os.path.join(copy, d)) for d in compared.common_dirs)


def _dispatch(project, name: str, report: SetupReport) -> bool:
    dispatch = project.get("dispatch")
    if dispatch is None:
        dispatch = project["dispatch"] = CommentedSeq()
    entry = next((d for d in dispatch if isinstance(d, dict) and d.get("macro_namespace") == "dbt"), None)
    if entry is None:
        dispatch.append(CommentedMap(macro_namespace="dbt", search_order=CommentedSeq([name, "icemesh", "dbt"])))
    else:
        order = entry.get("search_order") or CommentedSeq()
        if "icemesh" in order:
            return False
        position = order.index("dbt") if "dbt" in order else len(order)
        order.insert(position, "icemesh")
        if "dbt" not in order:
            order.append("dbt")
        entry["search_order"] = order
    report.changes.append("dbt_project.yml: dispatch puts icemesh's macros before dbt's (products go to the mesh catalog)")
    return True


def _plugin(profiles_path: str, profile_name: str, report: SetupReport) -> None:
    profiles = _load(profiles_path)
    profile = profiles.get(profile_name) if profiles else None
    if not profile or not profile.get("outputs"):
        raise BadRequest(f"{profiles_path} has no profile {profile_name!r} with outputs: create it first (dbt init)")
    changed = False
    for target, output in profile["outputs"].items():
        adapter = adapters.for_type(output.get("type"))
        if adapter is None:
            report.notes.append(f"target {target} is type {output.get('type')}: "
                                f"only {' and '.join(adapters.ADAPTERS)} targets can publish")
            continue
        changed = adapter.setup_output(target, output, report) or changed
    if changed:
        _dump(profiles_path, profiles)






def _shim(project_dir: str, macro_dir: str, report: SetupReport) -> None:
    """Write macros/icemesh.sql, or bring an earlier init's up to date; a file of the same name that is not ours stays."""
    path = os.path.join(project_dir, macro_dir, SHIM_FILE)
    existed = os.path.exists(path)
    if existed:
        with open(path, encoding="utf-8") as f:
            current = f.read()
        if current == SHIM:
            return
        if SHIM_MARK not in current:
            raise BadRequest(f"{path} exists and is not icemesh's: move it, then run `icemesh dbt init` again")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(SHIM)
    report.changes.append(f"{os.path.join(macro_dir, SHIM_FILE)}: {'updated' if existed else 'added'} (is_incremental() "
                          "knows materialized='iceberg'; table and incremental models with catalog_name publish)")


def _catalogs_file(project_dir: str, report: SetupReport) -> None:
    """catalogs.yml with the icemesh entry, unless the project has one (its catalogs are its own: a note then)."""
    path = os.path.join(project_dir, "catalogs.yml")
    if os.path.exists(path):
        document = _load(path) or {}
        entries = [c for c in document.get("catalogs") or [] if isinstance(c, dict)]
        if not any(w.get("catalog_type") == "iceberg_rest" for c in entries for w in c.get("write_integrations") or []
                   if isinstance(w, dict)):
            report.notes.append("catalogs.yml exists without an iceberg_rest entry: add one for icemesh "
                                "(see `icemesh dbt init --help`), or name it with catalog_name")
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write(CATALOGS)
    report.changes.append("catalogs.yml: catalog `mesh` (iceberg_rest, the icemesh catalog): models with "
                          "catalog_name='mesh' publish as products")
