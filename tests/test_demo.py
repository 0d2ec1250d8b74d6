"""`make demo` end to end at a small scale: the story runs, its summary holds, and it runs again."""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys
from pathlib import Path

import pytest

from icemesh.demo import data

ROOT = Path(__file__).resolve().parent.parent
PRODUCTS = ["manufacturing.batch_quality", "manufacturing.batches", "product_360.unified_product",
            "supply_chain.lot_inventory", "supply_chain.shipments"]


def _demo(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "icemesh.demo", "--scale", "0.1", "--workdir", str(workdir),
                           "--projects", str(ROOT / "dbt_projects"), "--policies", str(ROOT / "config" / "policies.yml"),
                           *extra], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.spark
def test_demo_tells_the_whole_story_and_reruns(tmp_path):
    workdir = tmp_path / "demo"
    done = _demo(workdir)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["products"] == PRODUCTS
    assert summary["engines"] == ["duckdb", "polars", "datafusion", "daft", "chdb", "spark"]
    assert summary["snapshots"] >= len(PRODUCTS) and summary["bytes_copied_between_domains"] == 0
    assert summary["denials_audited"] >= 1
    out = done.stdout
    # Each domain built as its own principal, in dependency order.
    assert out.index("supply_chain builds on DuckDB as svc_supply_chain") < \
        out.index("manufacturing builds on Spark as svc_manufacturing") < \
        out.index("product_360 builds on DuckDB as svc_product_360")
    assert out.count("same rows") == 6
    assert "svc_marketing lacks SELECT on table manufacturing.batches" in out
    assert "column supplier_cost of manufacturing.batches is hidden from svc_product_360 by policy" in out
    assert "except 1 column(s) hidden by policy" in out  # products show, as svc_product_360
    assert "supply_chain.lot_inventory   manufacturing.batches" in out  # lineage across projects
    assert "bytes copied between domains: 0" in out
    # The mesh runs itself: after supply_chain publishes again, both downstream domains rebuild through Dagster.
    assert set(summary["rebuilt_by_dagster"]) == {"manufacturing", "product_360"}
    assert "manufacturing rebuilt" in out and "because supply_chain/" in out
    assert out.index("manufacturing rebuilt") < out.index("product_360 rebuilt")
    # All the Spark work (manufacturing's build and Dagster rebuild, svc_marketing's query) ran in one JVM, and the
    # rebuild reused the build's seeds instead of loading them again.
    assert summary["spark_jvms"] == 1
    assert "in the demo's one JVM, svc_marketing's own Spark session" in out
    assert "loaded seed file" not in (workdir / "projects" / "manufacturing" / "logs" / "dagster-run.log").read_text()
    # Each step says its own time, and the summary adds them up.
    assert len(summary["step_seconds"]) == 10 and out.count("s)\n\n[") == 10
    assert abs(sum(s for _t, s in summary["step_seconds"]) - summary["seconds"]) < 1.0


def test_a_second_run_starts_over_in_its_own_directory(tmp_path):
    """What lets `make demo` run twice: the directory it made (and only that) is emptied, the marker kept."""
    from icemesh.demo.story import MARKER, _reset

    workdir = tmp_path / "demo"
    _reset(str(workdir))
    (workdir / "catalog.db").write_text("last run's catalog")
    (workdir / "warehouse").mkdir()
    _reset(str(workdir))
    assert sorted(p.name for p in workdir.iterdir()) == [MARKER]


def test_demo_refuses_to_reset_a_directory_that_is_not_its_own(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    done = _demo(tmp_path)
    assert done.returncode == 1 and "is not a demo directory" in done.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_generator_is_deterministic_and_scales(tmp_path):
    first, second, bigger = (data.generate(str(tmp_path / d), s) for d, s in (("a", 0.1), ("b", 0.1), ("c", 0.3)))
    assert first == second and all(bigger[k] > first[k] for k in first)
    for name in first:
        project, seed = name.split("/")
        assert filecmp.cmp(tmp_path / "a" / project / "seeds" / f"{seed}.csv",
                           tmp_path / "b" / project / "seeds" / f"{seed}.csv", shallow=False)
    with pytest.raises(ValueError, match="--scale must be above 0"):
        data.generate(str(tmp_path / "d"), 0)


@pytest.mark.spark
def test_one_jvm_gives_each_principal_its_own_session_and_stops(tmp_path):
    """What lets principals share the demo's JVM: a catalog set in one principal's session is absent from another's
    and from the JVM's own conf; the same principal gets its session back; stop() ends the JVM process. In a fresh
    interpreter: a test worker may already hold another module's SparkContext (one per process)."""
    root = str(Path(__file__).resolve().parent.parent)
    done = subprocess.run([sys.executable, "-c", f"from tests.test_demo import _one_jvm_check; _one_jvm_check({str(tmp_path)!r})"],
                          cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _one_jvm_check(home: str) -> None:
    tmp_path = Path(home)
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    from icemesh.demo.spark_jvm import SparkJvm

    key = "spark.sql.catalog.mesh.credential"
    with SparkJvm(str(tmp_path / "spark-warehouse"), str(tmp_path / "spark.log")) as jvm:
        jvm.start()
        with jvm.as_principal("svc_a") as a:
            assert SparkSession.builder.config(key, "svc_a:secret").getOrCreate() is a  # what dbt-spark does
        with jvm.as_principal("svc_b") as b:
            assert b is not a and SparkSession.builder.getOrCreate() is b
            assert b.conf.get(key, None) is None
        with jvm.as_principal("svc_a") as again:
            assert again is a and a.conf.get(key) == "svc_a:secret"
        assert a.sparkContext.getConf().get(key) is None
        proc = SparkContext._gateway.proc
    assert jvm.starts == 1 and proc.poll() is not None
