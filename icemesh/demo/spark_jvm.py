"""The demo's one JVM: Spark starts once, in the background while the first domain builds on DuckDB, and all the
demo's Spark work runs in it: manufacturing's `dbt build`, its Dagster rebuild (in-process dbt, icemesh.dbt.in_process)
and svc_marketing's query. Each JVM start costs seconds on 2 cores, and the rebuild finds the seeds and staging
views of the build in the JVM's in-memory session catalog instead of loading them again.

Each principal works in its own Spark session of the JVM (`newSession()`: its own conf, catalogs and temporary
views), made the process's default while its work runs, so dbt-spark's and icemesh's `getOrCreate()` land in it:
one principal's catalog credentials are never in another's session, and the JVM's own conf holds none. The driver
binds 127.0.0.1; the JVM's output goes to a log file; `stop()` ends the JVM.
"""

from __future__ import annotations

import contextlib
import threading

from icemesh.compat import pyspark as pyspark_compat


class SparkJvm:
    def __init__(self, warehouse_dir: str, log_path: str) -> None:
        self.warehouse_dir = warehouse_dir  # the session catalog's tables (seeds), inside the demo directory
        self.log_path = log_path
        self.starts = 0  # JVMs this object started: the demo's test checks there was one
        self._base = None
        self._error: BaseException | None = None
        self._sessions: dict[str, object] = {}
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "SparkJvm":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()  # also when the demo fails

    def start(self) -> None:
        """Start the JVM on a thread (it mostly waits on the JVM's own start-up)."""
        self._thread = threading.Thread(target=self._start, name="spark-jvm", daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
            from pyspark import SparkConf, SparkContext
            from pyspark.java_gateway import launch_gateway
            from pyspark.sql import SparkSession

            from icemesh.runtimes import spark

            conf = SparkConf().setMaster("local[2]").setAppName("icemesh-demo")
            conf.setAll(list(spark.local_conf(extra_conf={
                "spark.sql.catalogImplementation": "in-memory", "spark.sql.warehouse.dir": self.warehouse_dir,
                "spark.ui.showConsoleProgress": "false", "spark.sql.session.timeZone": "UTC"}).items()))
            with open(self.log_path, "ab") as log:
                gateway = launch_gateway(conf, popen_kwargs={"stdout": log, "stderr": log})
            self.starts += 1
            context = SparkContext(conf=conf, gateway=gateway)
            context.setLogLevel("ERROR")
            self._base = SparkSession(context)
        except BaseException as exc:  # noqa: BLE001 - reported where the session is first needed
            self._error = exc

    def _wait(self):
        if self._thread is None:
            self.start()
        self._thread.join()
        if self._base is None:
            from icemesh.demo.console import DemoError

            raise DemoError(f"Spark did not start ({self._error}): see {self.log_path}")
        return self._base

    @contextlib.contextmanager
    def as_principal(self, principal: str):
        """While the block runs, `SparkSession.builder.getOrCreate()` in this process returns `principal`'s own
        session (the same one every time for that principal)."""
        base = self._wait()
        own = self._sessions.get(principal)
        if own is None:
            own = self._sessions[principal] = base.newSession()
        pyspark_compat.make_default_session(own)
        try:
            yield own
        finally:
            pyspark_compat.make_default_session(base)

    def stop(self) -> None:
        """Stop Spark and its JVM (waits for a start still under way)."""
        if self._thread is None:
            return
        self._thread.join()
        if self._base is None:
            return
        self._base.stop()
        self._base, self._sessions = None, {}
        pyspark_compat.end_gateway()
