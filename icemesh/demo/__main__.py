"""`python -m icemesh.demo [--scale N] [--no-spark]`: what `make demo` runs."""

from __future__ import annotations

import argparse
import sys

from icemesh.demo.console import DemoError
from icemesh.demo.story import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m icemesh.demo", description="The icemesh demo mesh, end to end.")
    parser.add_argument("--scale", type=float, default=1.0, help="raw data size (1: about 9,400 rows)")
    parser.add_argument("--workdir", default=".icemesh/demo", help="where the demo keeps its state (reset every run)")
    parser.add_argument("--projects", default="dbt_projects", help="the dbt projects to build")
    parser.add_argument("--policies", default="config/policies.yml", help="the governance policy file")
    parser.add_argument("--no-spark", action="store_true", help="leave Spark out of the engines that read (manufacturing still builds on it)")
    args = parser.parse_args(argv)
    try:
        run(args.workdir, args.projects, args.policies, args.scale, with_spark=not args.no_spark)
    except (DemoError, ValueError, OSError) as exc:
        print(f"error: demo failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
