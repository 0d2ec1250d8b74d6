"""OpenLineage run events for the products dbt publishes: START before the model's SQL runs, then COMPLETE with
the snapshot it committed, or FAIL with the reason dbt shows.

Why here and not in a dbt-wide integration: only the publish path knows what a product is in the mesh (its name in
the catalog, the upstream products it read, the snapshot it wrote). Tools that derive lineage from dbt-duckdb name
the datasets after the local DuckDB file, so a producer's output and its consumer's input never meet.

Naming (OpenLineage's naming spec has no entry for Iceberg REST catalogs; this follows its rule that the namespace
is the data source as `scheme://authority` and the name is the path within it, as for Trino):
dataset namespace `iceberg://{catalog host:port}{catalog path}/{warehouse}` (the warehouse as the server names it,
its `/v1/config` prefix, so the default warehouse and the same warehouse named explicitly agree), dataset name
`{namespace}.{table}`; job namespace the dbt project, job name `{project}.{model}`; the dbt invocation is the
parent run. Every run with the same catalog therefore names a product identically, on DuckDB and on Spark.

Off unless OpenLineage is configured the ways its client looks for configuration (OPENLINEAGE_URL,
OPENLINEAGE_CONFIG, `openlineage.yml` in the working directory or ~/.openlineage, OPENLINEAGE__* variables), and
off with OPENLINEAGE_DISABLED=true; then nothing of openlineage is imported. Lineage never fails a build: a
receiver that cannot be reached (or a broken configuration) gives one dbt warning and no more events from this
process, and the model publishes as usual.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import uuid
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from icemesh import __version__
from icemesh.dbt.product import ProductSpec

PRODUCER = f"urn:icemesh:{__version__}"  # the producer is a URI; icemesh publishes no source URL of its own
CONFIG_FILE = "openlineage.yml"

_lock = threading.Lock()
_client: Any = None
_broken = False  # emitting failed once: the rest of this dbt invocation publishes without lineage


def configured() -> bool:
    """Whether the openlineage client would find a configuration (a cheap look, no import)."""
    env = os.environ
    if env.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OPENLINEAGE_URL") or env.get("OPENLINEAGE_CONFIG"):
        return True
    if any(key.startswith("OPENLINEAGE__") for key in env):
        return True
    return any(os.path.isfile(path) for path in (
        os.path.join(os.getcwd(), CONFIG_FILE), os.path.join(os.path.expanduser("~/.openlineage"), CONFIG_FILE)))


def begin(spec: ProductSpec, client, catalog, engine: str, upstream_client=None) -> "ProductRun | None":
    """The lineage of one publish, its START sent; None when OpenLineage is not configured (or has given up)."""
    if not configured() or _broken:
        return None
    try:
        run = ProductRun(spec, client, catalog, engine, upstream_client or client)
    except Exception as exc:  # noqa: BLE001 (lineage never fails a build)
        _give_up(exc)
        return None
    run.start()
    return run


def dataset_namespace(client) -> str:
    """`iceberg://host:port[/path]/{warehouse}` for the catalog `client` speaks to."""
    parts = urlsplit(client.uri)
    path = parts.path.rstrip("/")
    return f"iceberg://{parts.netloc}{path}/{client.prefix()}"


def job_name(spec: ProductSpec) -> str:
    """`{project}.{model}`, with dbt's `.v{n}` for a versioned model (each version is its own product)."""
    name = f"{spec.project}.{spec.model}"
    return f"{name}.v{spec.version}" if spec.version not in (None, "") else name


def _best_effort(event):
    """Lineage never fails a build: an error building or sending an event ends this run's events (and, through
    _give_up, this process's) with one warning; once START is lost, a lone COMPLETE would only confuse."""
    @functools.wraps(event)
    def guarded(self, *args, **kwargs) -> None:
        if not self.sent:
            return
        try:
            event(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            self.sent = False
            _give_up(exc)
    return guarded


class ProductRun:
    """One model publishing one product, as an OpenLineage run of the job `{project}.{model}`."""

    def __init__(self, spec: ProductSpec, client, catalog, engine: str, upstream_client) -> None:
        self.spec = spec
        self.client = client
        self.catalog = catalog  # pyiceberg, as the project's principal: the inputs' current snapshots and schemas
        self.upstream_client = upstream_client
        self.engine = engine
        self.run_id = str(_new_run_id())
        self.output_namespace = dataset_namespace(client)
        self.input_namespace = dataset_namespace(upstream_client)
        self.inputs = [_Input(name, spec.upstream_snapshots.get(name)) for name in spec.upstream]
        self.sent = True

    # -- the three events (none of them ever raises: see _best_effort) -------------------------------------

    @_best_effort
    def start(self) -> None:
        catalog = self._input_catalog()
        for product in self.inputs:
            product.look_up(catalog)
        self._send("START", output_facets=self._contract_facets())

    @_best_effort
    def complete(self, table, rows: int) -> None:
        """After the commit: the schema as written, the snapshot, column lineage where the SQL shows it."""
        from openlineage.client.facet_v2 import output_statistics_output_dataset as statistics

        schema = table.schema()
        snapshot = table.current_snapshot()
        facets = {"schema": _schema_facet([(f.name, str(f.field_type), f.doc) for f in schema.fields])}
        if snapshot is not None:
            facets["version"] = _version_facet(snapshot.snapshot_id)
        lineage = self._column_lineage([f.name for f in schema.fields])
        if lineage is not None:
            facets["columnLineage"] = lineage
        self._send("COMPLETE", output_facets=facets, output_statistics={
            "outputStatistics": statistics.OutputStatisticsOutputDatasetFacet(rowCount=rows)})

    @_best_effort
    def fail(self, message: str) -> None:
        from openlineage.client.facet_v2 import error_message_run

        self._send("FAIL", run_facets={"errorMessage": error_message_run.ErrorMessageRunFacet(
            message=message, programmingLanguage="python")})

    # -- building events ----------------------------------------------------------------------------------

    def _send(self, state: str, output_facets: dict | None = None, run_facets: dict | None = None,
              output_statistics: dict | None = None) -> None:
        from openlineage.client.event_v2 import InputDataset, OutputDataset, RunEvent, RunState

        event = RunEvent(
            eventType=RunState[state], eventTime=_now(), producer=PRODUCER,
            run=self._run(run_facets or {}), job=self._job(),
            inputs=[InputDataset(namespace=self.input_namespace, name=p.name, facets=p.facets()) for p in self.inputs],
            outputs=[OutputDataset(namespace=self.output_namespace, name=self.spec.identifier,
                                   facets={**self._catalog_facets(), **(output_facets or {})},
                                   outputFacets=output_statistics or {})])
        self.sent = emit(event)

    def _run(self, facets: dict):
        from openlineage.client.event_v2 import Run
        from openlineage.client.facet_v2 import parent_run, processing_engine_run

        facets = {**facets, "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version=_dbt_version(), name="dbt", openlineageAdapterVersion=__version__)}
        if _is_uuid(self.spec.invocation_id):  # the dbt invocation: every model of one `dbt run` shares it
            facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=self.spec.invocation_id),
                job=parent_run.Job(namespace=self.spec.project, name=self.spec.project))
        return Run(runId=self.run_id, facets=facets)

    def _job(self):
        from openlineage.client.event_v2 import Job
        from openlineage.client.facet_v2 import job_type_job, sql_job

        return Job(namespace=self.spec.project, name=job_name(self.spec), facets={
            "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="DBT", jobType="MODEL"),
            "sql": sql_job.SQLJobFacet(query=self.spec.sql, dialect=self.engine)})

    def _catalog_facets(self) -> dict:
        from openlineage.client.facet_v2 import catalog_dataset

        return {"catalog": catalog_dataset.CatalogDatasetFacet(
            framework="iceberg", type="rest", name=self.client.prefix(), metadataUri=self.client.uri,
            warehouseUri=self.client.warehouse_root(), source=self.engine)}

    def _input_catalog(self):
        """Where the inputs are read: the target's own warehouse, or (a dev target) the upstream one. A dev target's
        inputs are all named in the upstream warehouse, its own project's products too (a known simplification)."""
        if self.upstream_client is self.client:
            return self.catalog
        try:
            return self.upstream_client.rest_catalog()
        except Exception:  # noqa: BLE001 (then the inputs carry their names only)
            return None

    def _contract_facets(self) -> dict:
        """At START the product's schema is what its contract declares (if it has one)."""
        if not self.spec.contract_enforced or not self.spec.columns:
            return {}
        return {"schema": _schema_facet([(c.name, c.data_type, c.description) for c in self.spec.columns])}

    def _column_lineage(self, columns: list[str]):
        from icemesh.dbt.sql_lineage import column_sources
        from icemesh.dbt.target import DEFAULT_ALIAS

        known = {p.name: [c[0] for c in p.columns] for p in self.inputs if p.columns is not None}
        aliases = (DEFAULT_ALIAS, f"{DEFAULT_ALIAS}_upstream")  # the names the engines give the mesh (target.py)
        sources = column_sources(self.spec.sql, self.engine, known, columns, aliases)
        if not sources:
            return None
        from openlineage.client.facet_v2 import column_lineage_dataset as cl

        return cl.ColumnLineageDatasetFacet(fields={
            column: cl.Fields(inputFields=[cl.InputField(namespace=self.input_namespace, name=product, field=field)
                                           for product, field in found])
            for column, found in sources.items()})


class _Input:
    """An upstream product the model reads: its snapshot (pinned, else the current one) and schema."""

    def __init__(self, name: str, pinned: int | None) -> None:
        self.name = name
        self.snapshot_id = pinned
        self.columns: list[tuple[str, str, str | None]] | None = None

    def look_up(self, catalog) -> None:
        """One loadTable per input; a product the principal cannot load keeps only its name."""
        if catalog is None:
            return
        try:
            table = catalog.load_table(self.name)
        except Exception:  # noqa: BLE001 (lineage is best effort; the model itself reports real failures)
            return
        if self.snapshot_id is None:
            current = table.current_snapshot()
            self.snapshot_id = current.snapshot_id if current is not None else None
        schema = table.schema()
        if self.snapshot_id is not None:
            snapshot = table.snapshot_by_id(self.snapshot_id)
            if snapshot is not None and snapshot.schema_id is not None:
                schema = next((s for s in table.schemas().values() if s.schema_id == snapshot.schema_id), schema)
        self.columns = [(f.name, str(f.field_type), f.doc) for f in schema.fields]

    def facets(self) -> dict:
        facets = {}
        if self.columns is not None:
            facets["schema"] = _schema_facet(self.columns)
        if self.snapshot_id is not None:
            facets["version"] = _version_facet(self.snapshot_id)
        return facets


def emit(event) -> bool:
    """Send through the client OpenLineage configures for itself; False (and one warning) when that fails."""
    if _broken:
        return False
    try:
        client = _openlineage_client()
        with _retries_unlogged():
            client.emit(event)
        return True
    except Exception as exc:  # noqa: BLE001 (any transport's failure: lineage must not fail the build)
        _give_up(exc)
        return False


def _give_up(exc: BaseException) -> None:
    """No more events from this process, and one warning (dbt's own WARN event) the first time."""
    global _broken
    with _lock:
        first, _broken = not _broken, True
    if first:
        url = getattr(getattr(_client, "transport", None), "url", None)
        _warn(f"OpenLineage events could not be sent{f' to {url}' if url else ''} ({_reason(exc)}); "
              "the models publish as usual, without lineage events from this run")


def _openlineage_client():
    global _client
    with _lock:
        if _client is None:
            from openlineage.client import OpenLineageClient

            _client = OpenLineageClient()
            logging.getLogger("urllib3.connectionpool").addFilter(_RETRIES)
        return _client


class _RetriesOfEmit(logging.Filter):
    """urllib3 logs every retry of the HTTP transport to stderr: while icemesh emits, its one warning says it all."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread not in self.threads


_RETRIES = _RetriesOfEmit()


@contextmanager
def _retries_unlogged():
    thread = threading.get_ident()
    _RETRIES.threads.add(thread)
    try:
        yield
    finally:
        _RETRIES.threads.discard(thread)


def _reason(exc: BaseException) -> str:
    """The innermost cause in a few words (requests nests urllib3's errors in long reprs)."""
    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\] ([^\"')]+)", text)
    if errno:
        return errno.group(1).strip()
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return f"{exc.__class__.__name__}: {line[:200]}" if line else exc.__class__.__name__


def _version_facet(snapshot_id: int):
    """An Iceberg snapshot is the dataset's version (as OpenLineage's Spark integration reports Iceberg tables)."""
    from openlineage.client.facet_v2 import dataset_version_dataset

    return dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=str(snapshot_id))


def _schema_facet(columns):
    from openlineage.client.facet_v2 import schema_dataset

    return schema_dataset.SchemaDatasetFacet(fields=[
        schema_dataset.SchemaDatasetFacetFields(name=name, type=type_ or None, description=doc or None)
        for name, type_, doc in columns])


def _warn(message: str) -> None:
    """A dbt warning line (the same event the DuckDB plugin warns with), on either engine."""
    from dbt_common.events.base_types import EventLevel
    from dbt_common.events.functions import fire_event
    from dbt_common.events.types import Note

    from icemesh.terminal import plain

    fire_event(Note(msg=plain(f"icemesh: {message}")), level=EventLevel.WARN)


def _new_run_id():
    from openlineage.client.uuid import generate_new_uuid  # UUIDv7: run ids sort by time

    return generate_new_uuid()


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat()


def _dbt_version() -> str:
    try:
        from dbt.version import __version__ as version
    except ImportError:
        return "unknown"
    return str(version)


def _is_uuid(value: str | None) -> bool:
    try:
        return value is not None and str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False
