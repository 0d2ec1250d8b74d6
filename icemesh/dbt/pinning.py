"""Reproducible reads: `icemesh_pin` pins the upstream products a consumer reads to one snapshot each.

`--vars '{icemesh_pin: snapshot}'` (or `vars:` in dbt_project.yml) reads every upstream product at the
snapshot that is current when the run parses, and records them in `target/icemesh_pins.json` (and, for the
products the run publishes, in their `icemesh.dbt.upstream_snapshots` property). Passing that file,
`--vars '{icemesh_pin: target/icemesh_pins.json}'`, repeats a run against exactly those snapshots.

On DuckDB a pinned product is read through a view in the project's own database (product_views.py),
because dbt renders a ref from database, schema and identifier and has no place for a time-travel clause.
The resolver decides the pins at parse time; the dbt-duckdb plugin creates the views when dbt opens its
connection.
"""

from __future__ import annotations

import json
import os
from typing import Any

PINS_FILE = os.path.join("target", "icemesh_pins.json")


def setting(project_dir: str, project_vars: dict[str, Any]) -> str | None:
    """`icemesh_pin` from --vars, else from dbt_project.yml's vars."""
    try:
        from dbt.flags import get_flags

        cli = getattr(get_flags(), "VARS", None) or {}
    except Exception:  # noqa: BLE001 - no flags (not under dbt)
        cli = {}
    value = cli.get("icemesh_pin", project_vars.get("icemesh_pin"))
    return str(value) if value else None


def load(project_dir: str, path: str) -> dict[str, int]:
    full = os.path.join(project_dir, path)
    try:
        with open(full, encoding="utf-8") as f:
            return {k: int(v) for k, v in json.load(f)["snapshots"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"icemesh_pin {path!r} is not a pins file written by a pinned run "
                         f"(use icemesh_pin: snapshot first): {exc}") from None


def save(project_dir: str, snapshots: dict[str, int]) -> str:
    full = os.path.join(project_dir, PINS_FILE)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w", encoding="utf-8") as f:
        json.dump({"snapshots": dict(sorted(snapshots.items()))}, f, indent=2)
    return full
