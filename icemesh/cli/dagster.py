"""`icemesh dagster init PROJECT_DIR`: the Dagster definitions file of a domain's dbt project (icemesh[dagster])."""

from __future__ import annotations

import os

import click

from icemesh.cli.output import emit, output_option
from icemesh.errors import BadRequest

FILE = "definitions.py"
TEMPLATE = '''"""The {project} domain's Dagster code location (written by `icemesh dagster init`).

Run it with `dagster dev -f {file}` (or add it to your workspace.yaml); it runs as the domain's principal from
ICEMESH_CATALOG_URI, ICEMESH_CLIENT_ID and ICEMESH_CLIENT_SECRET in the code location's environment.
"""

import os

from icemesh.dagster import domain_definitions

defs = domain_definitions(project_dir=os.path.dirname(os.path.abspath(__file__)))
'''


@click.group("dagster")
def dagster() -> None:
    """Dagster code locations for domains."""


@dagster.command("init")
@click.argument("project_dir", default=".", type=click.Path(exists=True, file_okay=False))
@output_option
def init(project_dir, output):
    """Write PROJECT_DIR/definitions.py: the domain's code location (refuses to replace a different file)."""
    import yaml

    project_file = os.path.join(project_dir, "dbt_project.yml")
    if not os.path.exists(project_file):
        raise BadRequest(f"{project_dir} is not a dbt project (no dbt_project.yml): pass the project's directory")
    with open(project_file, encoding="utf-8") as f:
        project = (yaml.safe_load(f) or {}).get("name") or os.path.basename(os.path.abspath(project_dir))
    path = os.path.join(project_dir, FILE)
    text = TEMPLATE.format(project=project, file=FILE)
    changed = True
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            current = f.read()
        if current != text:
            raise BadRequest(f"{path} exists and is not the one icemesh writes: move it, or add "
                             "`defs = domain_definitions(project_dir=...)` from icemesh.dagster to it yourself")
        changed = False
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    emit({"project": project, "path": path, "changed": changed}, output,
         text=f"{project}: {'wrote' if changed else 'already has'} {path}; run `dagster dev -f {path}`")
