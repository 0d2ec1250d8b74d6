"""How the demo talks: a numbered line per step, indented detail, and real `icemesh` commands it runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

_started = time.monotonic()
_steps: list[tuple[str, float]] = []  # (title, monotonic start) per step, so each step's own time can be told


def step(message: str) -> None:
    """Open step N; the previous step's own time is printed as it closes."""
    now = time.monotonic()
    if _steps:
        print(f"    ({now - _steps[-1][1]:.1f}s)", flush=True)
    _steps.append((message, now))
    print(f"\n[{len(_steps)}] {message}   (at {now - _started:.0f}s)", flush=True)


def step_seconds() -> list[tuple[str, float]]:
    """Each step's own seconds so far (the open step up to now): what the summary reports."""
    ends = [start for _title, start in _steps[1:]] + [time.monotonic()]
    return [(title, round(end - start, 1)) for (title, start), end in zip(_steps, ends)]


def say(message: str = "", indent: int = 4) -> None:
    for line in message.splitlines() or [""]:
        print(" " * indent + line, flush=True)


def elapsed() -> float:
    return time.monotonic() - _started


class DemoError(RuntimeError):
    """A step that did not do what the story says: the demo stops with this one line."""


def icemesh(args: list[str], env: dict[str, str], show: bool = True, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real `icemesh` CLI, print the command as the user would type it, and its output indented."""
    if show:
        say("$ icemesh " + " ".join(a if " " not in a else repr(a) for a in args if a not in ("--output", "json")))
    done = subprocess.run([sys.executable, "-m", "icemesh.cli.main", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300)
    if check and done.returncode != 0:
        raise DemoError(f"icemesh {' '.join(args)} failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    if show and "json" not in args:
        say(done.stdout.rstrip(), indent=6)
    return done


def icemesh_json(args: list[str], env: dict[str, str], show: bool = True):
    return json.loads(icemesh([*args, "--output", "json"], env, show=show).stdout)
