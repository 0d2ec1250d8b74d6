"""Spark's start-up time: a JVM class-data archive of the classes a session loads, and C1-only compilation.

A local SparkSession spends most of its first seconds loading and JIT-compiling classes; every dbt-spark
run and every `icemesh query --engine spark` starts a JVM. Two JVM options halve that start (8.2 s -> 3.5 s
for a session and two queries on this project's 2-core machine): a dynamic CDS archive (JDK 13+) written once
by `python -m icemesh.runtimes.spark_classes` (`make install` runs it), and `-XX:TieredStopAtLevel=1`, which
suits the small, short jobs of a local session. A missing or stale archive is skipped silently by the JVM,
so sessions work the same without it, only slower. `ICEMESH_SPARK_JAVA_OPTIONS` replaces the options.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

OPTIONS_ENV = "ICEMESH_SPARK_JAVA_OPTIONS"
FAST_START = "-XX:TieredStopAtLevel=1"


def archive_path() -> str | None:
    """Where the archive of this Java and this pyspark lives (named by both, so another JVM never reads it)."""
    java = _java()
    if java is None:
        return None
    try:
        import pyspark
    except ImportError:
        return None
    key = hashlib.sha256(f"{os.path.realpath(java)}|{os.path.getmtime(os.path.realpath(java))}|"
                         f"{pyspark.__version__}|{os.path.dirname(pyspark.__file__)}".encode()).hexdigest()[:16]
    return os.path.join(_directory(), f"spark-classes-{key}.jsa")


def java_options() -> str:
    """The driver's extra JVM options for a local session."""
    if OPTIONS_ENV in os.environ:
        return os.environ[OPTIONS_ENV]
    path = archive_path()
    return f"{FAST_START} -XX:SharedArchiveFile={path}" if path and os.path.exists(path) else FAST_START


def is_ours(option: str) -> bool:
    """An option `java_options` writes (a profile written by an earlier install may hold an older archive's)."""
    return option == FAST_START or (option.startswith("-XX:SharedArchiveFile=") and
                                    os.path.basename(option).startswith("spark-classes-"))


def build(progress=print) -> str | None:
    """Write the archive (once: an existing one is kept); None when Java or pyspark is missing."""
    path = archive_path()
    if path is None or os.path.exists(path):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    progress("==> preparing Spark's class archive, once (faster Spark starts; about 30 s)")
    partial = f"{path}.{os.getpid()}.partial"
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run([sys.executable, "-c", _WARM_UP, partial, scratch], capture_output=True, text=True,
                              timeout=600)
    if done.returncode != 0 or not os.path.exists(partial):
        progress(f"==> Spark's class archive was not written (Spark starts as usual): {done.stderr.strip()[-300:]}")
        _remove(partial)
        return None
    os.replace(partial, path)  # readers see the whole archive or none
    return path


# The child: a session that creates, writes and reads an Iceberg table, so the archive holds those classes;
# the JVM writes the archive when it exits.
_WARM_UP = """
import sys
from icemesh.runtimes import spark
archive, scratch = sys.argv[1], sys.argv[2]
session = spark.session(None, extra_conf={
    "spark.driver.extraJavaOptions": f"-XX:TieredStopAtLevel=1 -XX:ArchiveClassesAtExit={archive} -Xlog:cds=off",
    "spark.sql.catalog.warm": "org.apache.iceberg.spark.SparkCatalog",
    "spark.sql.catalog.warm.type": "hadoop",
    "spark.sql.catalog.warm.warehouse": scratch})
session.sql("CREATE TABLE warm.db.t (id BIGINT, name STRING) USING iceberg PARTITIONED BY (name)")
session.sql("INSERT INTO warm.db.t VALUES (1, 'a'), (2, 'b')")
from icemesh.compat.pyspark import to_arrow
to_arrow(session.sql("SELECT name, count(*) AS n FROM warm.db.t GROUP BY name"))
session.sql("SELECT * FROM warm.db.t").collect()
"""


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and os.path.exists(os.path.join(home, "bin", "java")):
        return os.path.join(home, "bin", "java")
    return shutil.which("java")


def _directory() -> str:
    """Beside the environment's packages when it is writable (a virtualenv), else the user's cache."""
    share = os.path.join(sys.prefix, "share", "icemesh")
    if os.access(sys.prefix, os.W_OK):
        return share
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "icemesh")


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


if __name__ == "__main__":
    built = build()
    print(f"==> Spark class archive: {built}" if built else "==> no Spark here (Java or pyspark missing): nothing to do")
