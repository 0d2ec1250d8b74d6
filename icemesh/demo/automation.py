"""The mesh runs itself: an upstream domain publishes again and the domains that read it rebuild through Dagster,
in this process (an ephemeral instance: no daemon, no webserver), each as its own principal.

One Dagster code location per downstream domain (icemesh.dagster.domain_definitions). The instance first learns the
mesh as the builds left it (every product materialized once); then the upstream domain rebuilds with dbt outside
Dagster, as another team would, and each location, in dependency order, ticks its change-feed sensor and evaluates
its automation conditions (eager), and runs what they request. The line printed per rebuild names what triggered it.
"""

from __future__ import annotations

import contextlib
import os
import sys

from icemesh.demo.console import say

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def prewarm() -> None:
    """Import Dagster in the background while the domains build (the demo mostly waits on dbt's processes then):
    its imports take seconds that the Dagster step would otherwise spend first."""
    import threading

    def load() -> None:
        import dagster  # noqa: F401
        import icemesh.dagster  # noqa: F401

    threading.Thread(target=load, name="dagster-imports", daemon=True).start()


def rebuild_downstream(projects_dir: str, domains: list[str], credentials: dict[str, str], catalog_uri: str,
                       republish, jvm=None) -> dict[str, list[str]]:
    """`republish()` makes the upstream change; returns {domain: [rebuilt asset keys]} of the rebuilds it triggered.
    With `jvm` (icemesh.demo.spark_jvm), a Spark domain's run is dbt in this process, in its principal's session
    there, and rebuilds only what automation asked for: the build's seeds and staging views are still in the JVM."""
    import warnings

    with warnings.catch_warnings():  # Dagster's own beta notices about the evaluation API: not the story
        warnings.filterwarnings("ignore", message=".*currently in beta.*")
        return _rebuild(projects_dir, domains, credentials, catalog_uri, republish, jvm)


def _rebuild(projects_dir: str, domains: list[str], credentials: dict[str, str], catalog_uri: str,
             republish, jvm) -> dict[str, list[str]]:
    import dagster as dg

    from icemesh.dagster import IcemeshResource, domain_definitions
    from icemesh.demo.projects import DbtProject

    instance = dg.DagsterInstance.ephemeral()
    resources = {d: IcemeshResource(catalog_uri=catalog_uri, client_id=f"svc_{d}", client_secret=credentials[f"svc_{d}"])
                 for d in domains}
    in_jvm = {d for d in domains
              if jvm is not None and DbtProject(os.path.join(projects_dir, d), "", "", "").engine == "Spark"}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(domains)) as pool:  # each location's `dbt parse` is its own process
        futures = {d: pool.submit(domain_definitions, os.path.join(projects_dir, d), icemesh=resources[d],
                                  profiles_dir=os.path.join(projects_dir, d), in_process=d in in_jvm)
                   for d in domains}
        defs = {d: future.result() for d, future in futures.items()}
    cursors: dict[str, str | None] = {}
    evaluations = {}
    for domain in domains:  # the mesh as it stands: every product built once, the feed read up to now
        graph = defs[domain].resolve_asset_graph()
        for key in graph.get_all_asset_keys():
            if graph.get(key).is_materializable:
                instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, description="built by the demo"))
        cursors[domain] = _tick(defs[domain], domain, resources[domain], instance, None)[0]
    for domain in domains:
        evaluations[domain] = dg.evaluate_automation_conditions(defs=defs[domain], instance=instance)
    say(f"Dagster: {len(domains)} code locations ({', '.join(domains)}), eager automation, change-feed sensors", indent=6)

    baseline = {k: _latest_id(instance, k) for d in domains for k in defs[d].resolve_asset_graph().get_all_asset_keys()}
    republish()
    rebuilt: dict[str, list[str]] = {}
    for domain in domains:  # upstream first: a domain evaluates after what it reads has rebuilt
        cursors[domain], reported = _tick(defs[domain], domain, resources[domain], instance, cursors[domain])
        evaluations[domain] = result = dg.evaluate_automation_conditions(defs=defs[domain], instance=instance,
                                                                         cursor=evaluations[domain].cursor)
        graph = defs[domain].resolve_asset_graph()
        wanted = [k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable and result.get_num_requested(k)]
        if not wanted:
            say(f"{domain}: nothing to rebuild (no input changed)", indent=6)
            continue
        causes = sorted({p.to_user_string() for k in wanted for p in graph.get(k).parent_keys
                         if _latest_id(instance, p) != baseline.get(p)})
        if domain in in_jvm:
            selection, session = wanted, jvm.as_principal(f"svc_{domain}")
        else:  # a dbt-spark subprocess's staging models live only in that process's session: the whole domain
            selection = [k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable]
            session = contextlib.nullcontext()
            _clear_session_scratch(os.path.join(projects_dir, domain))
        job = defs[domain].resolve_implicit_global_asset_job_def()
        log = os.path.join(projects_dir, domain, "logs", "dagster-run.log")
        with _output_to(log), session:  # dbt's and Spark's lines go to the log, the story keeps one line per rebuild
            done = job.execute_in_process(instance=instance, asset_selection=selection, run_config=QUIET,
                                          raise_on_error=False)
        if not done.success:
            raise RuntimeError(f"the Dagster run of {domain} failed: see {log}")
        rebuilt[domain] = sorted(k.to_user_string() for k in wanted)
        via = f" (reported by its sensor: {', '.join(reported)})" if reported else ""
        say(f"{domain} rebuilt by itself ({len(wanted)} asset(s) asked for by eager automation), because {', '.join(causes)} changed{via}", indent=6)
    return rebuilt


@contextlib.contextmanager
def _output_to(path: str):
    """This process's stdout and stderr (and so its subprocesses') into `path` for the duration."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a", encoding="utf-8") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _clear_session_scratch(project_dir: str) -> None:
    """The demo's Spark domain keeps seeds and staging views in the session (`catalogImplementation: in-memory`): the
    files a finished session left in the demo copy's spark-warehouse/ belong to no table, and a new session could
    not create its seeds over them. (Products are in the mesh catalog, untouched.)"""
    import shutil

    import yaml

    with open(os.path.join(project_dir, "profiles.yml"), encoding="utf-8") as f:
        text = yaml.safe_load(f)
    outputs = [o for profile in text.values() if isinstance(profile, dict) for o in (profile.get("outputs") or {}).values()]
    if any((o.get("server_side_parameters") or {}).get("spark.sql.catalogImplementation") == "in-memory" for o in outputs):
        shutil.rmtree(os.path.join(project_dir, "spark-warehouse"), ignore_errors=True)


def _tick(defs, domain: str, resource, instance, cursor):
    import dagster as dg

    name = f"{domain}_upstream_snapshots"
    try:
        sensor = defs.resolve_sensor_def(name)
    except Exception:  # noqa: BLE001 - a domain with no upstream products has no sensor
        return cursor, []
    result = sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources={"icemesh": resource}))
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    return result.cursor, [e.asset_key.to_user_string() for e in result.asset_events]


def _latest_id(instance, key):
    """When the asset last materialized (a rebuild or a reported snapshot), None if never."""
    event = instance.get_latest_materialization_event(key)
    return event.timestamp if event is not None else None
