"""dbt commands run inside this process (dbt's `dbtRunner`) as one principal, instead of a `dbt` subprocess.

Why: a dbt-spark project with `method: session` runs Spark in dbt's own process, so every `dbt` subprocess starts
a JVM and loses the session's seeds and views when it exits. In-process, the commands of one process share its
JVM and what the session made. The principal's settings (ICEMESH_*, DBT_PROFILES_DIR) are in os.environ and the
working directory is the project's only while a command runs, so commands run one at a time per process.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any, Callable

_one_at_a_time = threading.Lock()  # os.environ and the working directory are the process's


class DbtCommandError(RuntimeError):
    """A dbt command that failed; `lines` are dbt's info/warn/error messages, for the caller to show."""

    def __init__(self, message: str, lines: list[str]) -> None:
        super().__init__(message)
        self.lines = lines


def invoke(project_dir: str, args: list[str], env: dict[str, str],
           on_event: Callable[[dict[str, Any]], None] | None = None) -> list[str]:
    """Run `dbt <args>` on the project at `project_dir` with `env` set; each event goes to `on_event` as dbt's JSON
    log record (what `dbt --log-format json` prints). Returns dbt's info/warn/error messages; raises
    DbtCommandError when the command fails. dbt prints nothing itself; its file log (logs/dbt.log) is kept."""
    from dbt.cli.main import dbtRunner
    from dbt_common.events.functions import msg_to_dict

    lines: list[str] = []

    def callback(msg) -> None:
        if msg.info.level in ("info", "warn", "error"):
            lines.append(msg.info.msg)
        if on_event is not None:
            on_event(msg_to_dict(msg))

    command = [args[0], "--project-dir", project_dir, *args[1:]]
    with _one_at_a_time, environment(env, project_dir):
        done = dbtRunner(callbacks=[callback]).invoke(["--no-use-colors", "--log-level", "none", "--log-level-file", "debug",
                                                      *command])
    if not done.success:
        reason = f": {done.exception}" if done.exception is not None else ""
        raise DbtCommandError(f"dbt {' '.join(args)} failed in {os.path.basename(project_dir)}{reason}", lines)
    return lines


@contextlib.contextmanager
def environment(env: dict[str, str], cwd: str | None = None):
    """`env` in os.environ (and `cwd` the working directory) for the block; what was there before comes back."""
    saved = {key: os.environ.get(key) for key in env}
    previous = os.getcwd()
    os.environ.update(env)
    if cwd is not None:
        os.chdir(cwd)
    try:
        yield
    finally:
        if cwd is not None:
            os.chdir(previous)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
