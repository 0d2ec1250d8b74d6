"""The demo's dbt projects: each a plain dbt project that `icemesh dbt init` sets up, run as its own principal.

`dbt build` output is condensed to a line per seed and model (tests are counted), so the story stays
readable; a failure prints dbt's own lines about it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field

import yaml

from icemesh.demo.console import DemoError, icemesh, say

ORDER = ["supply_chain", "manufacturing", "product_360"]  # producers before their consumers
_TIMESTAMP = re.compile(r"^\d\d:\d\d:\d\d(\s+|$)")
_RESULT = re.compile(r"^\d+ of \d+ (OK|PASS|WARN|ERROR|FAIL|SKIP)\b")
_DOTS = re.compile(r"\s*\.{3,}\s*")


@dataclass
class BuildResult:
    models: list[str] = field(default_factory=list)
    tests_passed: int = 0
    warnings: list[str] = field(default_factory=list)


class DbtProject:
    def __init__(self, path: str, principal: str, secret: str, catalog_uri: str, jvm=None) -> None:
        self.path = path
        self.jvm = jvm  # icemesh.demo.spark_jvm.SparkJvm: a Spark project's dbt then runs in it, in this process
        self.name = os.path.basename(path)
        self.principal = principal
        self.env = {"DBT_PROFILES_DIR": path, "ICEMESH_CATALOG_URI": catalog_uri, "ICEMESH_CLIENT_ID": principal,
                    "ICEMESH_CLIENT_SECRET": secret, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}

    @property
    def engine(self) -> str:
        with open(os.path.join(self.path, "profiles.yml"), encoding="utf-8") as f:
            profile = yaml.safe_load(f)[self.name]
        return {"duckdb": "DuckDB", "spark": "Spark"}.get(profile["outputs"][profile["target"]]["type"], "?")

    def init(self) -> None:
        """`icemesh dbt init`: idempotent, so it runs every time and reports only what it changed."""
        done = icemesh(["dbt", "init", self.path], self.env, show=False)
        changes = [line.strip()[2:] for line in done.stdout.splitlines() if line.strip().startswith("+ ")]
        say(f"$ icemesh dbt init  -> {len(changes)} change(s)" if changes else "$ icemesh dbt init  -> already set up")
        for change in changes:
            say(f"  {change.split(':')[0]}: {change.split(':', 1)[1].strip()[:90]}", indent=6)
        self._dbt(["deps"], quiet=True)

    def build(self) -> BuildResult:
        say("$ dbt build")
        result = BuildResult()
        lines = self._dbt(["build"], on_line=lambda line: self._condense(line, result))
        if not any(line.startswith("Done.") for line in lines):
            raise DemoError(f"dbt build of {self.name} did not finish")
        return result

    @staticmethod
    def _condense(line: str, result: BuildResult) -> None:
        if line.startswith("Done."):
            say(line, indent=6)
            return
        if line.lstrip().startswith("Warning") or "[WARNING]" in line:
            result.warnings.append(line)
            say(line[:200], indent=6)
            return
        match = _RESULT.match(line)
        if not match:
            return
        if " test " in line and match.group(1) == "PASS":
            result.tests_passed += 1
            return
        if match.group(1) == "OK" and " model " in line:
            result.models.append(line)
        say(_DOTS.sub("  ", line), indent=6)

    def _dbt(self, args: list[str], quiet: bool = False, on_line=None) -> list[str]:
        if self.jvm is not None and self.engine == "Spark":
            return self._dbt_in_jvm(args, None if quiet else on_line)
        command = [os.path.join(os.path.dirname(sys.executable), "dbt"), "--no-use-colors", *args]
        proc = subprocess.Popen(command, cwd=self.path, env={**os.environ, **self.env}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        lines = []
        for raw in proc.stdout:
            line = _TIMESTAMP.sub("", raw.rstrip())
            lines.append(line)
            if on_line and not quiet:
                on_line(line)
        if proc.wait() != 0:
            _say_failure(lines)
            raise DemoError(f"dbt {' '.join(args)} failed in {self.name} (log: {self.path}/logs/dbt.log)")
        return lines

    def _dbt_in_jvm(self, args: list[str], on_line=None) -> list[str]:
        """The command in this process, in the principal's session of the demo's one JVM."""
        from icemesh.dbt.in_process import DbtCommandError, invoke

        def event(record: dict) -> None:
            if on_line and record["info"]["level"] in ("info", "warn", "error"):
                on_line(record["info"]["msg"])

        try:
            with self.jvm.as_principal(self.principal):
                return invoke(self.path, args, self.env, on_event=event)
        except DbtCommandError as exc:
            _say_failure(exc.lines)
            raise DemoError(f"{exc} (log: {self.path}/logs/dbt.log)") from None


def _say_failure(lines: list[str]) -> None:
    """dbt's own lines about a failure: from its "Completed with" summary, else the last 25."""
    lines = [line for message in lines for line in message.splitlines() if line.strip()]  # dbt events: multi-line
    start = next((i for i, line in enumerate(lines) if line.startswith("Completed with")), len(lines) - 25)
    say("\n".join([line for line in lines[max(0, start):] if not line.startswith("Done.")][:40]), indent=6)
