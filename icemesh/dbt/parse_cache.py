"""The products a project last resolved, kept under `target/` so parse-only commands work offline.

Each parse that reaches the catalog writes what it was answered (the products its models ref and their upstream
chain, as this principal may see them, with their snapshot ids, columns and whether it may read them; and
which refs it asked for) to `target/icemesh_products.json`, private to its owner. When the catalog cannot be
reached, `dbt ls`, `compile`, `docs generate` and `parse` build the graph from that file and say so in one
warning line naming its age, as dbt-loom parses from manifest files; a ref that parse did not ask for fails
in one line (nothing is known of it offline).
`build`, `run` and the other commands that read data still require the catalog: they must be authorized now,
not as of the last parse. A catalog that answers but refuses (a login, a permission) never falls back.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

CACHE_FILE = "icemesh_products.json"
# dbt's command names (`flags.WHICH`) that only parse and render: nothing they do reads a product's data.
PARSE_ONLY = frozenset({"list", "ls", "compile", "generate", "parse"})
FORMAT = 1
# Set when this process parsed from the cache: the dbt-duckdb plugin then opens its connection without the
# catalog (the parse already said why, once) instead of failing a `dbt compile` that reads no data.
OFFLINE = threading.Event()


@dataclass(frozen=True)
class Cached:
    products: list[dict[str, Any]]
    saved_at: float
    catalog: dict[str, Any]

    @property
    def asked(self) -> set[tuple[str, str]] | None:
        """The (project, model) refs that parse asked for; None: every product of its declared projects."""
        refs = self.catalog.get("refs")
        if not isinstance(refs, list):
            return None
        return {(str(r[0]), str(r[1])) for r in refs if isinstance(r, list) and len(r) == 2}

    @property
    def alias(self) -> str:
        """The name the refs of that parse gave the catalog (`mesh`, or `mesh_upstream` for a dev target)."""
        from icemesh.dbt.target import DEFAULT_ALIAS

        return str(self.catalog.get("alias") or DEFAULT_ALIAS)

    def age(self, now: float | None = None) -> str:
        seconds = max(0.0, (now or time.time()) - self.saved_at)
        if seconds < 120:
            return f"{seconds:.0f} s"
        if seconds < 7200:
            return f"{seconds / 60:.0f} min"
        if seconds < 172800:
            return f"{seconds / 3600:.1f} h"
        return f"{seconds / 86400:.1f} days"


def command() -> str | None:
    """The dbt command running (`list`, `run`, `generate`...), or None outside dbt."""
    try:
        from dbt.flags import get_flags

        return getattr(get_flags(), "WHICH", None)
    except Exception:  # noqa: BLE001 - no flags: not under dbt's CLI
        return None


def parse_only(which: str | None) -> bool:
    return which in PARSE_ONLY


def path(project_dir: str) -> str:
    """`target/icemesh_products.json`, under the project's target path (dbt's `--target-path` when given)."""
    target = None
    try:
        from dbt.flags import get_flags

        target = getattr(get_flags(), "TARGET_PATH", None)
    except Exception:  # noqa: BLE001
        pass
    target = str(target or "target")
    return os.path.join(target if os.path.isabs(target) else os.path.join(project_dir, target), CACHE_FILE)


def save(project_dir: str, catalog: dict[str, Any], products: list[dict[str, Any]],
         asked: set[tuple[str, str]] | None = None) -> None:
    """Replace the cache atomically, readable by its owner only (it holds what this principal may see). `asked`:
    the refs the products were fetched for (None: whole projects), so an offline parse knows what is missing."""
    if asked is not None:
        catalog = {**catalog, "refs": sorted([p, m] for p, m in asked)}
    full = path(project_dir)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    partial = f"{full}.{os.getpid()}.tmp"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"format": FORMAT, "saved_at": time.time(), "catalog": catalog, "products": products}, f)
    os.replace(partial, full)


def load(project_dir: str) -> Cached | None:
    """The cache, or None when there is none this version can read."""
    try:
        with open(path(project_dir), encoding="utf-8") as f:
            document = json.load(f)
        if document.get("format") != FORMAT or not isinstance(document.get("products"), list):
            return None
        return Cached(document["products"], float(document["saved_at"]), dict(document.get("catalog") or {}))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
