"""The private or unstable APIs icemesh leans on, checked against the versions pinned in pyproject.toml: when an
upgrade changes one underneath, this fails naming the module to update (icemesh/compat/)."""

from __future__ import annotations

from importlib.metadata import version

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from icemesh.compat import pyiceberg_core as fast


def test_pyiceberg_core_manifest_readers(tmp_path):
    assert version("pyiceberg-core").startswith(fast.PINNED), \
        f"pyiceberg-core {version('pyiceberg-core')} is not the {fast.PINNED} that icemesh/compat/pyiceberg_core.py was checked with"
    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}")
    catalog.create_namespace("n")
    table = catalog.create_table("n.t", schema=pa.schema([pa.field("id", pa.int64())]))
    table.append(pa.Table.from_pylist([{"id": 1}]))
    snapshot = table.current_snapshot()
    with table.io.new_input(snapshot.manifest_list).open() as f:
        listed = fast.read_manifest_list(f.read())
    assert listed is not None, "pyiceberg_core.manifest.read_manifest_list is gone or changed"
    assert [m.path for m in listed] == [m.manifest_path for m in snapshot.manifests(table.io)]
    with table.io.new_input(listed[0].path).open() as f:
        entries = fast.read_manifest_entries(f.read())
    assert entries is not None and len(entries) == 1
    assert entries[0].path.endswith(".parquet") and entries[0].status == 1 and entries[0].content == 0


@pytest.mark.parametrize("data", [b"not avro", fast.AVRO_MAGIC + b"\x00garbage"])
def test_unreadable_bytes_fall_back_instead_of_raising(data):
    assert fast.read_manifest_list(data) is None
    assert fast.read_manifest_entries(data) is None


@pytest.mark.parametrize("module, distribution", [("pyiceberg", "pyiceberg"), ("pyspark", "pyspark"), ("dbt", "dbt-spark"),
                                                  ("dagster_dbt", "dagster-dbt")])
def test_private_apis_are_where_the_pinned_versions_keep_them(module, distribution):
    import importlib

    compat = importlib.import_module(f"icemesh.compat.{module}")
    assert version(distribution).startswith(compat.PINNED), \
        f"{distribution} {version(distribution)} is not the {compat.PINNED} that icemesh/compat/{module}.py was checked with"
    if module == "pyiceberg":
        from pyiceberg.catalog import Catalog
        from pyiceberg.catalog import glue
        from pyiceberg.catalog.rest import RestCatalog

        for name in ("_construct_database_input", "_construct_table_input", "_construct_rename_table_input"):
            assert callable(getattr(glue, name, None)), f"pyiceberg.catalog.glue.{name} is gone"
        assert callable(getattr(Catalog, "_convert_schema_if_needed", None))
        for name in ("_split_identifier_for_path", "_response_to_table"):
            assert callable(getattr(RestCatalog, name, None)), f"RestCatalog.{name} is gone"
        schema = compat.iceberg_schema_of(pa.schema([pa.field("id", pa.int64())]))
        assert [f.name for f in schema.fields] == ["id"]
        # v3 metadata writes through pydantic's own serializer (0.12's model refuses), and reads back the same.
        from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
        from pyiceberg.table.metadata import TableMetadataUtil, new_table_metadata
        from pyiceberg.table.sorting import UNSORTED_SORT_ORDER

        v3 = new_table_metadata(schema, UNPARTITIONED_PARTITION_SPEC, UNSORTED_SORT_ORDER, "file:///t",
                                {"format-version": "3"}).model_copy(update={"next_row_id": 0})
        assert TableMetadataUtil.parse_raw(compat.metadata_json(v3)) == v3
    elif module == "pyspark":
        from pyspark.sql import DataFrame

        assert callable(getattr(DataFrame, "_collect_as_arrow", None)), "DataFrame._collect_as_arrow is gone"
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        for owner, names in ((SparkSession, ("_instantiatedSession", "_activeSession")), (SparkContext, ("_gateway", "_jvm"))):
            for name in names:  # make_default_session and end_gateway set them
                assert hasattr(owner, name), f"{owner.__name__}.{name} is gone"
    elif module == "dagster_dbt":
        import inspect

        from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage

        assert {"raw_event", "event_history_metadata"} <= set(inspect.signature(DbtCoreCliEventMessage).parameters)
        assert {"manifest", "dagster_dbt_translator", "context"} <= set(
            inspect.signature(DbtCoreCliEventMessage.to_default_asset_events).parameters)
    else:
        from dbt.adapters.spark.impl import SparkAdapter
        from dbt.contracts.graph.nodes import ModelNode

        assert isinstance(SparkAdapter._available_, frozenset | set), "SparkAdapter._available_ changed shape"
        assert version("dbt-core").startswith(compat.PINNED), f"dbt-core {version('dbt-core')} is not {compat.PINNED}"
        assert isinstance(ModelNode.__dict__.get("materialization_enforces_constraints"), property), \
            "ModelNode.materialization_enforces_constraints is no longer a property"


def test_apply_table_updates_is_pyiceberg_update_table_metadata_without_the_deep_copy(tmp_path):
    """The commit path's own update loop (compat.apply_table_updates) against pyiceberg's update_table_metadata on a
    real table's metadata: the same result (but for the clock), and the base metadata left as it was."""
    from pyiceberg.table.update import SetPropertiesUpdate, update_table_metadata

    from icemesh.compat import pyiceberg as compat

    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}")
    catalog.create_namespace("n")
    table = catalog.create_table("n.t", schema=pa.schema([pa.field("id", pa.int64())]))
    table.append(pa.Table.from_pylist([{"id": 1}]))
    base = table.metadata
    before = base.model_dump_json()
    updates = (SetPropertiesUpdate(updates={"owner": "sales"}),)
    ours = compat.apply_table_updates(base, updates, table.metadata_location)
    theirs = update_table_metadata(base, updates, metadata_location=table.metadata_location)
    assert ours.model_copy(update={"last_updated_ms": 0}) == theirs.model_copy(update={"last_updated_ms": 0})
    assert ours.properties["owner"] == "sales" and "owner" not in base.properties
    assert ours.metadata_log[-1].metadata_file == table.metadata_location
    assert base.model_dump_json() == before
    assert compat.apply_table_updates(base, (), table.metadata_location) is base  # nothing changed: nothing made
