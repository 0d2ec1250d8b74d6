"""schemathesis against the served OpenAPI document, as admin (benchmarks/fuzz.py runs thousands of cases)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from typing import Any

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
TARGET = {"prefix": "default", "namespace": "fuzz", "table": "t"}


def seed_target(server) -> None:
    """The namespace and table the targeted pass addresses."""
    from icemesh.reliability.workload import append_batch, append_schema

    catalog = server.client().rest_catalog()
    catalog.create_namespace(TARGET["namespace"])
    catalog.create_table(f"{TARGET['namespace']}.{TARGET['table']}", schema=append_schema()).append(append_batch(0, 0))


def run_schemathesis(uri: str, token: str, max_examples: int, workdir: str, parameters: dict[str, str] | None = None,
                     seed: int | None = None) -> dict[str, Any]:
    """One `st run` over the whole API; returns the cases generated, passed and the failures it printed."""
    config = os.path.join(workdir, "schemathesis.toml")
    with open(config, "w") as f:
        f.write('[warnings]\nenabled = false\n')
        if parameters:
            f.write("[parameters]\n" + "".join(f'{k} = "{v}"\n' for k, v in parameters.items()))
    st = os.path.join(os.path.dirname(sys.executable), "st")
    args = [st, "--config-file", config, "run", f"{uri}/openapi.json", "-H", f"Authorization: Bearer {token}",
            "--checks", CHECKS, "--max-examples", str(max_examples), "--workers", "1", "--continue-on-failure",
            "--phases", "coverage,fuzzing,stateful"]
    if seed is not None:
        args += ["--seed", str(seed)]
    started = time.monotonic()
    done = subprocess.run(args, cwd=workdir, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    output = done.stdout + done.stderr
    counts = re.search(r"(\d+) generated, (\d+) passed", output)
    failed = re.search(r"(\d+) failed", output.split("SUMMARY")[-1])
    return {"exit_code": done.returncode, "generated": int(counts.group(1)) if counts else 0,
            "passed": int(counts.group(2)) if counts else 0, "failed": int(failed.group(1)) if failed else 0,
            "seconds": round(time.monotonic() - started, 1),
            "failures": output.split("FAILURES")[1].split("SUMMARY")[0][:6000] if "FAILURES" in output else "",
            "output_tail": output[-1500:]}


def run_fuzz(server, max_examples: int, workdir: str, seed: int | None = None) -> dict[str, Any]:
    seed_target(server)
    token = server.client().token()
    free = run_schemathesis(server.uri, token, max_examples, workdir, seed=seed)
    targeted = run_schemathesis(server.uri, token, max_examples, workdir, TARGET, seed=seed)
    return {"free": free, "targeted": targeted, "cases": free["generated"] + targeted["generated"],
            "ok": free["exit_code"] == 0 and targeted["exit_code"] == 0}

