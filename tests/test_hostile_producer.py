"""A malicious producer against its consumers: names, docs and owners that other domains publish must not run
code in a consumer's dbt run, its dbt docs, its `icemesh query` or its terminal.

The producer `evil` publishes what a catalog from before the server's name rules may hold (created through the
REST API, and when the server refuses a name, through its store: see `publish`):
- `evil.<HOSTILE>` (model `orders`): a table whose name closes DuckDB's quoting and runs COPY and CREATE (the
  issue's name), with a description and column docs carrying script and Jinja (`env_var` of the consumer's
  secret). A server that refuses such names even to readers (`served` False) makes reading it fail, in one line;
  either way nothing of it runs;
- `evil.shipments`: a plain name, with the same description, an owner carrying terminal escapes and a column
  named as an `<img onerror>` tag;
- `x.y__z` and `x__Y.z`: look-alikes that DuckDB's case-insensitive names made one pinned view.
`shop.customers` has `email` tagged confidential: svc_marketing reads the rest through `icemesh query`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import types
import uuid

import duckdb
import pyarrow as pa
import pytest
from pyiceberg.exceptions import BadRequestError

import icemesh
from icemesh.names import Namespace, TableIdent
from icemesh.backends.sql import open_database
from icemesh.backends.sql.pointers import SqlPointerStore
from icemesh.catalog.ports import PointerChange
from icemesh.query import QueryError
from tests.conftest import start_catalog
from tests.dbt_helpers import dbt_project

M = "/management/v1"
HOSTILE = "orders\"); copy (select 'pwned' as x) to 'PWNED'; create or replace table pwn as (select 1 as \"a"
IMG_COLUMN = "<img src=x onerror=document.title='PWNED'>"
DESCRIPTION = ("<img src=x onerror=\"document.title='PWNED'\">Orders we took. "
               "{{ env_var('ICEMESH_CLIENT_SECRET') }} {% do run_query('select 1') %}")
OWNER = "mallory\r\x1b[2K\x1b[1A  owner:       data-platform-team"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # anything but \t and \n
ENGINES = ["duckdb", "polars", "datafusion", "daft", "chdb"]
HIDDEN = "column email of shop.customers is hidden from svc_marketing by policy"


def _dbt_properties(project: str, model: str, **extra: str) -> dict[str, str]:
    return {"icemesh.dbt.project": project, "icemesh.dbt.model": model, "icemesh.dbt.access": "public", **extra}


def publish(server, namespace: str, name: str, rows: pa.Table, properties: dict[str, str],
            docs: dict[str, str] | None = None) -> None:
    """Create `namespace.name` with `rows`, column docs and properties as the admin through the REST API; if the
    server refuses the name (400), create it under a plain name and give it the hostile names in the store."""
    catalog = server.client().rest_catalog()
    safe = {f: f if re.fullmatch(r"\w+", f) else f"col_{i}" for i, f in enumerate(rows.schema.names)}
    try:
        table = catalog.create_table((namespace, name), rows.schema, properties=properties)
        renamed = False
    except BadRequestError:
        table = catalog.create_table((namespace, f"staging_{uuid.uuid4().hex[:8]}"),
                                     rows.rename_columns([safe[f] for f in rows.schema.names]).schema,
                                     properties=properties)
        renamed = True
    with table.update_schema() as update:
        for column, doc in (docs or {}).items():
            update.update_column(safe[column] if renamed else column, doc=doc)
    table.append(rows.rename_columns([safe[f] for f in rows.schema.names]) if renamed else rows)
    if renamed:
        _rename_in_store(server, table, namespace, name, {v: k for k, v in safe.items() if k != v})


def _rename_in_store(server, table, namespace: str, name: str, columns: dict[str, str]) -> None:
    """What a catalog from before the name rules holds: the table (and its columns) renamed underneath."""
    database = open_database(f"sqlite:///{server.cwd}/catalog.db")
    store = SqlPointerStore(database)
    warehouse = server.client().prefix()
    staged = TableIdent(Namespace((namespace,)), table.name()[-1])
    record = store.get_table(warehouse, staged)
    if columns:
        path = record.metadata_location.removeprefix("file://")
        with open(path, encoding="utf-8") as f:
            metadata = json.load(f)
        for schema in metadata["schemas"]:
            for field in schema["fields"]:
                field["name"] = columns.get(field["name"], field["name"])
        renamed = os.path.join(os.path.dirname(path), f"99999-{uuid.uuid4()}.metadata.json")
        with open(renamed, "w", encoding="utf-8") as f:
            json.dump(metadata, f)
        store.swap_pointers(warehouse, [PointerChange(staged, record.metadata_location, "file://" + renamed,
                                                      record.location)])
    store.rename_table(warehouse, staged, TableIdent(Namespace((namespace,)), name))
    database.close()


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    server = start_catalog(tmp_path_factory, None, "hostile")
    admin = server.client()

    def manage(method, path, **kwargs):
        return admin.request(method, M + path, **kwargs)

    manage("POST", "/tags", json={"key": "domain", "values": ["mesh", "shop"]})
    manage("POST", "/tags", json={"key": "sensitivity", "values": ["public", "confidential"]})
    catalog = admin.rest_catalog()
    for namespace in ("evil", "x", "x__Y", "shop"):
        catalog.create_namespace(namespace)
        manage("POST", "/tag-assignments", json={"key": "domain", "value": "shop" if namespace == "shop" else "mesh",
                                                 "namespace": namespace})
    manage("POST", "/tag-assignments", json={"key": "sensitivity", "value": "public", "namespace": "shop"})
    secrets = {p: manage("POST", "/principals", json={"name": p})["client_secret"] for p in ("svc_consumer", "svc_marketing")}
    manage("POST", "/grants", json={"permissions": "SELECT,DESCRIBE", "principal": "svc_consumer", "tags": ["domain=mesh"]})
    manage("POST", "/grants", json={"permissions": "SELECT,DESCRIBE", "principal": "svc_marketing",
                                    "tags": ["domain=shop", "sensitivity=public"]})

    docs = {"id": "<script>document.title='PWNED'</script>The order's id.",
            "label": "<a href=\"javascript:alert(1)\">What</a> it is {{ env_var('HOME') }}", IMG_COLUMN: "odd"}
    publish(server, "evil", HOSTILE, pa.table({"id": pa.array([1], pa.int64()), "label": ["a"]}),
            {**_dbt_properties("evil", "orders"), "comment": DESCRIPTION}, docs={k: docs[k] for k in ("id", "label")})
    publish(server, "evil", "shipments", pa.table({"id": pa.array([5], pa.int64()), "label": ["s"], IMG_COLUMN: ["x"]}),
            {**_dbt_properties("evil", "shipments", **{"icemesh.dbt.owner": OWNER}), "comment": DESCRIPTION}, docs=docs)
    publish(server, "x", "y__z", pa.table({"v": pa.array([1], pa.int64())}), _dbt_properties("x", "y__z"))
    publish(server, "x__Y", "z", pa.table({"v": pa.array([2], pa.int64())}), _dbt_properties("x__Y", "z"))
    publish(server, "shop", "customers", pa.table({"id": pa.array([1, 2], pa.int64()), "email": ["a@x.org", "b@x.org"]}),
            {})
    manage("POST", "/tag-assignments", json={"key": "sensitivity", "value": "confidential", "table": "shop.customers",
                                             "column": "email"})
    server.secrets = secrets
    try:
        catalog.load_table(("evil", HOSTILE))
        server.served = True
    except BadRequestError:  # the server refuses the name even to readers: the product exists, unreadable
        server.served = False
    yield server
    server.stop()


# -- dbt: a consumer on DuckDB ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def consumer(mesh, tmp_path_factory):
    """The consumer's run (pinned: `icemesh_pinned` views) and docs generate (unpinned: the hostile product through
    an `icemesh_refs` view), once. The run fails (reads_evil only) where the server will not serve the name."""
    dbt = dbt_project("hostile/consumer", tmp_path_factory.mktemp("hostile-dbt"), mesh, "svc_consumer",
                      mesh.secrets["svc_consumer"])
    dbt.env["DBT_USE_COLORS"] = "false"
    before = _files(dbt.path)
    dbt.run = dbt("run", "--vars", "{icemesh_pin: snapshot}", check=mesh.served)
    dbt("docs", "generate", "--no-compile")
    dbt.new_files = _files(dbt.path) - before
    return dbt


def _files(root) -> set[str]:
    return {os.path.relpath(os.path.join(base, f), root) for base, _dirs, files in os.walk(root) for f in files}


def _local(dbt, sql: str) -> list[tuple]:
    con = duckdb.connect(str(dbt.path / "target" / "consumer.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_table_name_that_closes_the_quotes_runs_nothing_in_the_consumers_dbt_run(consumer, mesh):
    models = {"reads_shipments", "pinned_a", "pinned_b"}
    if mesh.served:
        assert sorted(_local(consumer, "select * from main.reads_evil")) == [(1, "a")]  # the product was read
        models.add("reads_evil")
    else:  # the catalog's refusal, on one line, for that model only
        assert consumer.run.returncode != 0 and "Invalid table name" in consumer.run.stdout
        assert re.search(r"(?m)^.*Completed with 1 error", consumer.run.stdout), consumer.run.stdout[-2000:]
    assert not [f for f in consumer.new_files if "PWNED" in f]  # the COPY never ran
    assert all(f.split(os.sep)[0] in ("target", "logs", "dbt_packages") or f in ("package-lock.yml",)
               for f in consumer.new_files), consumer.new_files
    objects = set(_local(consumer, "select schema_name, table_name from duckdb_tables() union all "
                                   "select schema_name, view_name from duckdb_views() where not internal"))
    assert {t for s, t in objects if s == "main"} == models
    assert {s for s, _t in objects} <= {"main", "icemesh_refs", "icemesh_pinned"}  # no `pwn`, nothing else


def test_pinned_look_alikes_each_read_their_own_product(consumer, mesh):
    """`x.y__z` and `x__Y.z` are one name to DuckDB as `<ns>__<table>`: each ref must still read its own rows."""
    assert _local(consumer, "select * from main.pinned_a") == [(1,)]
    assert _local(consumer, "select * from main.pinned_b") == [(2,)]
    pins = json.loads((consumer.path / "target" / "icemesh_pins.json").read_text())["snapshots"]
    catalog = mesh.client().rest_catalog()
    for name in ("x.y__z", "x__Y.z"):  # each recorded at its own snapshot
        assert pins[name] == catalog.load_table(name).current_snapshot().snapshot_id
    views = {v for (v,) in _local(consumer, "select view_name from duckdb_views() where schema_name = 'icemesh_pinned'")}
    readable = len(pins) - (0 if mesh.served else 1)
    assert len(views) == readable and len({v.lower() for v in views}) == readable  # one view per product


def test_producer_docs_reach_the_consumers_dbt_docs_as_inert_text(consumer):
    manifest_text = (consumer.path / "target" / "manifest.json").read_text()
    assert consumer.env["ICEMESH_CLIENT_SECRET"] not in manifest_text  # the description's env_var() never ran
    nodes = json.loads(manifest_text)["nodes"]
    for node in (nodes["model.evil.orders"], nodes["model.evil.shipments"]):
        assert node["description"].startswith("Orders we took.") and "<" not in node["description"]
        assert "{{" not in node["description"] and "{%" not in node["description"]
        assert node["columns"]["id"]["description"] == "The order's id."  # the script is gone, the text stays
        assert "javascript:" not in node["columns"]["label"]["description"]
    assert "&lt;img src=x onerror=document.title='PWNED'&gt;" in nodes["model.evil.shipments"]["columns"]  # shown
    catalog_text = (consumer.path / "target" / "catalog.json").read_text()
    assert "<img" not in catalog_text and "<script" not in catalog_text
    columns = json.loads(catalog_text)["nodes"]["model.evil.shipments"]["columns"]  # as DuckDB lists them
    assert "&lt;img src=x onerror=document.title='PWNED'&gt;" in columns and columns["id"]["comment"] == "The order's id."


def test_relations_render_escaped_on_duckdb_and_spark(monkeypatch):
    """What dbt itself renders (dbt-duckdb's and dbt-spark's Relation) from the nodes the resolver makes."""
    from dbt.adapters.duckdb.relation import DuckDBRelation
    from dbt.adapters.spark.relation import SparkRelation
    from dbt.contracts.graph.nodes import ModelNode

    from icemesh.dbt import adapters, resolver

    resolver._install_node_details()
    monkeypatch.setattr(adapters.DuckDB, "local_database", staticmethod(lambda: "consumer"))

    def rendered(adapter_type: str, relation_cls, namespace: str, table: str, snapshot=None) -> str:
        plugin = object.__new__(resolver.IcemeshResolver)
        plugin.adapter, plugin.alias = adapters.for_type(adapter_type), "mesh"
        database, schema, identifier, name = plugin._location({"namespace": namespace, "table": table}, snapshot)
        node = ModelNode.from_args(resolver.ProductNodeArgs(
            name="m", package_name="p", identifier=identifier, schema=schema, database=database, relation_name=name,
            quoting=plugin.adapter.quoting))
        # the consumer's project turns quoting off: the node's own quoting wins
        return str(relation_cls.create_from(types.SimpleNamespace(quoting={"identifier": False, "schema": False}),
                                            node))

    assert rendered("duckdb", DuckDBRelation, "sales-eu", "orders$v2") == '"mesh"."sales-eu"."orders$v2"'
    hostile = rendered("duckdb", DuckDBRelation, "evil", HOSTILE)
    assert re.fullmatch(r'"consumer"\."icemesh_refs"\."[a-z0-9_]+"', hostile), hostile
    assert rendered("spark", SparkRelation, "evil", "t` union select * from secrets --") == \
        "`mesh`.`evil`.`t`` union select * from secrets --`"
    assert rendered("spark", SparkRelation, "evil", "t`x", snapshot=42) == "`mesh`.`evil`.`t``x`.`snapshot_id_42`"


def test_derived_view_names_are_injective_and_a_clash_is_refused(monkeypatch):
    from icemesh.dbt import product_views
    from icemesh.dbt.resolver import unusable_names

    names = {product_views.view_name(ns, t) for ns, t in [("x", "y__z"), ("x__Y", "z"), ("x__y", "z"), ("X", "y__z")]}
    assert len({n.lower() for n in names}) == 4 and all(re.fullmatch(r"[a-z0-9_]+", n) for n in names)
    monkeypatch.setattr(product_views, "_views", {})
    monkeypatch.setattr(product_views, "view_name", lambda namespace, table: "same")  # a hash clash, forced
    product_views.register("x", "y__z", 1)
    with pytest.raises(product_views.ViewNameCollision) as clash:
        product_views.register("x__Y", "z", 2)
    assert str(clash.value).count("\n") == 0 and "x.y__z and x__Y.z" in str(clash.value)
    # a model name no dbt project could have (dbt-docs shows model names as HTML) keeps a product out of the graph
    assert "not a dbt identifier" in unusable_names({"dbt": {"model": IMG_COLUMN}})
    assert unusable_names({"dbt": {"model": "orders", "version": "2"}}) is None


def test_catalog_text_is_cleaned_alike_in_the_manifest_and_in_the_docs_catalog():
    """docs_text.py cleans what the resolver injects; catalog.sql cleans, in SQL, what DuckDB lists for dbt docs."""
    import jinja2

    from icemesh.dbt.docs_text import clean, clean_name

    macros = os.path.join(os.path.dirname(icemesh.__file__), "dbt", "package", "macros", "catalog.sql")
    with open(macros, encoding="utf-8") as f:
        module = jinja2.Environment(extensions=["jinja2.ext.do"]).from_string(f.read()).module
    con = duckdb.connect()
    for text in (DESCRIPTION, IMG_COLUMN, OWNER, "a < b && c > d", "[x](JavaScript:alert(1))", "plain, it's fine",
                 "<SCRIPT type=x>steal()</script >kept"):
        for names, python in ((False, clean), (True, clean_name)):
            sql = str(module.icemesh_clean_text("x", names=names))
            assert con.execute(f"select {sql} from (select ? as x)", [text]).fetchone()[0] == python(text)
        assert "<" not in clean(text) and "{{" not in clean(text) and not CONTROL.search(clean(text))


# -- the CLI -------------------------------------------------------------------------------------------------------

def _cli(server, *args: str):
    """`icemesh ARGS` as the admin, in process (click's runner: what the terminal would show)."""
    from click.testing import CliRunner

    from icemesh.cli.main import cli

    env = {"ICEMESH_CATALOG_URI": server.uri, "ICEMESH_CLIENT_ID": "admin", "ICEMESH_CLIENT_SECRET": server.admin_secret,
           "ICEMESH_TOKEN": None}
    return CliRunner(env=env).invoke(cli, list(args), catch_exceptions=False)


def test_cli_prints_catalog_strings_without_control_characters(mesh):
    shown = _cli(mesh, "products", "show", "evil.shipments")
    assert shown.exit_code == 0, shown.output
    assert not CONTROL.search(shown.output)
    owner_lines = [line for line in shown.output.splitlines() if "owner:" in line]
    assert len(owner_lines) == 1 and owner_lines[0].strip().startswith("owner:       mallory")  # not forged
    for args in (("products", "list"), ("lineage",), ("tags", "show", "evil.shipments"), ("grants", "list"),
                 ("audit", "--limit", "20")):
        done = _cli(mesh, *args)
        assert done.exit_code == 0, (args, done.output)
        assert not CONTROL.search(done.output), args
    assert "mallory" in _cli(mesh, "products", "list").output


# -- icemesh query ---------------------------------------------------------------------------------------------------

def _connect(server, who: str, **kwargs):
    return icemesh.connect(server.uri, client_id=who, client_secret=server.secrets[who], **kwargs)


def _reaching_out(engine: str, warehouse: str) -> list[str]:
    """What a caller could type to read around the catalog on each engine."""
    table_dir = next(os.path.join(warehouse, "shop", d) for d in os.listdir(os.path.join(warehouse, "shop")))
    if engine == "chdb":
        return ["SELECT * FROM file('/etc/passwd', 'LineAsString')", "SELECT file('/etc/passwd')",
                "SELECT * FROM url('http://127.0.0.1:9/x', 'LineAsString')",
                f"SELECT * FROM file('{warehouse}/shop/**/*.parquet', 'Parquet')",
                f"SELECT email FROM icebergLocal('{table_dir}')", "SELECT * FROM numbers(2) INTO OUTFILE 'x.csv'"]
    if engine == "spark":
        return ["SELECT * FROM csv.`/etc/passwd`", f"SELECT * FROM parquet.`{warehouse}/shop`",
                "SELECT reflect('java.lang.System', 'getenv', 'ICEMESH_CLIENT_SECRET')"]
    return ["SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM '/etc/passwd'",
            "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')",
            f"SELECT * FROM read_parquet('{warehouse}/**/*.parquet')",
            f"SELECT count(*) FROM shop.customers JOIN iceberg_scan('{table_dir}') s ON true",
            "SELECT * FROM glob('/etc/*')"]


STATEMENTS = ["COPY (SELECT 1) TO 'x.csv'", "ATTACH 'x.db' AS x", "INSTALL httpfs", "LOAD httpfs", "PRAGMA version",
              "SET threads = 1", "CREATE TABLE t AS SELECT 1", "INSERT INTO shop.customers VALUES (3, 'c@x.org')",
              "SELECT 1; SELECT 2"]


@pytest.mark.parametrize("engine", [*ENGINES, "spark"])
def test_query_reads_only_the_catalog_on_every_engine(mesh, engine):
    """Local files, URLs, the warehouse's files read directly and statements other than queries: each refused
    with one line, before the engine runs (Spark is never even started)."""
    warehouse = os.path.join(mesh.cwd, "warehouse")
    with _connect(mesh, "svc_marketing") as session:
        for sql in _reaching_out(engine, warehouse) + (STATEMENTS if engine in ("duckdb", "chdb") else []):
            with pytest.raises(QueryError) as refused:
                session.sql(sql, engine=engine)
            message = str(refused.value)
            assert "\n" not in message and "root:" not in message and "a@x.org" not in message, (sql, message)
            assert re.search(r"reads|refused|not a product|statements|names a file|Cannot parse", message), (sql, message)
        if engine != "spark":
            assert session.sql("SELECT count(*) AS n FROM shop.customers", engine=engine).column("n").to_pylist() == [2]


def test_duckdb_and_chdb_refuse_outside_reads_themselves(mesh):
    """Behind the guard: the DuckDB connection has external access off and locked; chDB runs queries readonly."""
    import chdb

    from icemesh.query.chdb import read_only

    with _connect(mesh, "svc_marketing") as session:
        session.sql("SELECT count(*) FROM shop.customers", engine="duckdb")
        con = session.native("duckdb")
        with pytest.raises(duckdb.PermissionException):
            con.execute("SELECT * FROM read_csv('/etc/passwd')")
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute("SET enable_external_access = true")
    with pytest.raises(Exception, match="READONLY|readonly"):
        chdb.connect(":memory:").query(read_only("SELECT * FROM file('/etc/passwd', 'LineAsString')"), "CSV")


def test_local_files_are_an_explicit_opt_in(mesh, tmp_path):
    mine = tmp_path / "mine.csv"
    mine.write_text("id\n1\n2\n")
    with _connect(mesh, "svc_marketing", local_files=True) as session:
        assert session.sql(f"SELECT count(*) AS n FROM read_csv('{mine}')").column("n").to_pylist() == [2]
        joined = session.sql(f"SELECT count(*) AS n FROM shop.customers c JOIN read_csv('{mine}') m ON c.id = m.id")
        assert joined.column("n").to_pylist() == [2]
        with pytest.raises(QueryError, match="COPY is refused"):
            session.sql(f"COPY (SELECT 1) TO '{tmp_path}/out.csv'")


@pytest.mark.parametrize("engine", [*ENGINES, "spark"])
def test_a_hidden_column_is_named_as_hidden_by_policy(mesh, engine):
    with _connect(mesh, "svc_marketing") as session:
        for sql in ("SELECT email FROM shop.customers", "SELECT c.id FROM shop.customers c WHERE c.email LIKE '%x%'"):
            with pytest.raises(QueryError) as refused:
                session.sql(sql, engine=engine)
            message = str(refused.value)  # the column's tags, when the catalog lets the caller see them
            assert message in (HIDDEN, HIDDEN + " (sensitivity=confidential)"), message


def test_sql_errors_are_the_parsers_or_the_engines_own(mesh):
    with _connect(mesh, "svc_marketing") as session:
        with pytest.raises(QueryError) as bad:
            session.sql("SELEC * FROM shop.customers")
        assert str(bad.value).startswith("Cannot parse the query: ") and "<class" not in str(bad.value)
        with pytest.raises(QueryError, match=r'duckdb: Binder Error: Referenced column "nosuch" not found'):
            session.sql("SELECT nosuch FROM shop.customers")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_hostile_product_name_is_queried_as_a_name(mesh, engine):
    """Queries rewritten for an engine (pins, one-part names, views) keep the name quoted: it reads the product."""
    quoted = '"' + HOSTILE.replace('"', '""') + '"'
    sql = f"SELECT id FROM evil.{quoted}" if engine != "chdb" else f"SELECT id FROM evil.`{HOSTILE}`"
    with icemesh.connect(mesh.uri, client_id="svc_consumer", client_secret=mesh.secrets["svc_consumer"]) as session:
        if mesh.served:
            assert session.sql(sql, engine=engine).column("id").to_pylist() == [1]
        else:
            with pytest.raises(QueryError, match="Invalid table name") as refused:
                session.sql(sql, engine=engine)
            assert "\n" not in str(refused.value)
    assert not os.path.exists(os.path.join(mesh.cwd, "PWNED"))


def test_the_consumers_docs_site_runs_no_producer_html(consumer):
    """The consumer opens its `dbt docs` site in a real browser and searches: the producer's description and
    column names show as text, and nothing of theirs runs (dbt-docs binds search results as HTML)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (make install does it)")
    from playwright.sync_api import sync_playwright

    with _serving(consumer.path / "target") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            dialogs = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(f"{url}/index.html#!/model/model.evil.orders")
            page.wait_for_selector("text=Orders we took.", timeout=30_000)
            for term in ("Orders", "img", "order"):  # the description, the column named as a tag, a column doc
                page.fill("#search", term)
                page.wait_for_function("t => [...document.querySelectorAll('.search-result-match')].some("
                                       "e => e.textContent.toLowerCase() === t)", arg=term.lower(), timeout=15_000)
                if term == "img":  # the column named as a tag is listed, as text
                    assert "<img src=x onerror=document.title='PWNED'>" in page.inner_text("body")
            page.wait_for_timeout(500)  # an injected image's onerror fires once its load fails
            assert page.title() != "PWNED" and not dialogs
            assert page.locator("img[src=x]").count() == 0 and page.locator("script:has-text('PWNED')").count() == 0
        finally:
            browser.close()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@contextlib.contextmanager
def _serving(directory):
    """The docs site over HTTP on 127.0.0.1 (it fetches manifest.json and catalog.json, which file:// forbids)."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
