"""Cross-project refs resolved from the catalog: three dbt-duckdb projects, each its own principal with only
CREATE_TABLE and DESCRIBE on its own namespace (least privilege) and SELECT through tag grants.

inventory (producer) -> orders (producer and consumer: refs inventory.items) -> reporting (consumer: refs
orders.order_lines and inventory.items, latest and v1). reporting may read inventory and orders products
except confidential ones, and may only DESCRIBE those; items.unit_cost is tagged confidential.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import stat
import subprocess

import duckdb
import pytest

from tests.dbt_helpers import BIN, mesh_world

M = "/management/v1"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    server, projects, _secrets = mesh_world(tmp_path_factory, "dbt-mesh")
    for name in ("inventory", "orders"):
        projects[name]("run")
    projects["reporting_run"] = projects["reporting"]("run")
    yield server, projects
    server.stop()


def local_rows(dbt, table: str) -> list[tuple]:
    con = duckdb.connect(str(dbt.path / "target" / f"{dbt.path.name}.duckdb"), read_only=True)
    try:
        return sorted(con.execute(f'select * from main."{table}"').fetchall())
    finally:
        con.close()


def manifest(dbt) -> dict:
    return json.loads((dbt.path / "target" / "manifest.json").read_text())


def test_refs_resolve_to_the_products_in_place(mesh):
    server, projects = mesh
    # orders read the latest version of inventory.items (upper-case labels) and published order_lines.
    lines = server.client().rest_catalog().load_table("orders.order_lines")
    assert sorted(r["label"] for r in lines.scan().to_arrow().to_pylist())[:2] == ["ITEM 0", "ITEM 0"]
    assert json.loads(lines.properties["icemesh.dbt.upstream"]) == ["inventory.items_v2"]
    # reporting joined two other projects' products; v=1 pinned the older version.
    assert local_rows(projects["reporting"], "item_demand") == [
        (0, "ITEM 0", 1 + 5), (1, "ITEM 1", 2 + 6), (2, "ITEM 2", 3), (3, "ITEM 3", 4)]
    assert local_rows(projects["reporting"], "legacy_labels") == [(i, f"item {i}") for i in range(4)]


def test_injected_nodes_carry_engine_names_columns_docs_and_lineage(mesh):
    _server, projects = mesh
    nodes = manifest(projects["reporting"])["nodes"]
    items = nodes["model.inventory.items.v2"]
    assert items["relation_name"] == '"mesh"."inventory"."items_v2"'  # the consumer's name, not the producer's
    assert items["description"] == "Items we stock." and items["access"] == "public"
    assert items["latest_version"] == 2 and items["contract"]["enforced"]
    # Only the columns reporting may read: unit_cost is confidential and is not even named.
    assert {n: c["description"] for n, c in items["columns"].items()} == {
        "item_id": "The item's id.", "label": "What the item is called."}
    # The types the producer's contract declared (not Iceberg's `int` and `string`), and its not_null.
    assert {n: c["data_type"] for n, c in items["columns"].items()} == {"item_id": "integer", "label": "varchar"}
    assert [c["type"] for c in items["columns"]["item_id"]["constraints"]] == ["not_null"]
    assert items["columns"]["label"]["constraints"] == []
    assert nodes["model.inventory.items.v1"]["deprecation_date"].startswith("2026-01-01")
    assert "model.orders.order_lines" in nodes["model.reporting.item_demand"]["depends_on"]["nodes"]
    assert nodes["model.orders.order_lines"]["relation_name"] == '"mesh"."orders"."order_lines"'
    # Multi-hop: the injected product carries what it read (orders.order_lines read inventory's items v2).
    assert nodes["model.orders.order_lines"]["depends_on"]["nodes"] == ["model.inventory.items.v2"]


def test_lineage_reaches_past_the_projects_a_consumer_declares(mesh):
    """A consumer that declares only `orders` still sees, in `dbt ls --select +model`, the inventory product that
    orders' product was built from (as far as it may see it), without reading it."""
    _server, projects = mesh
    dbt = projects["reporting"]
    dependencies = dbt.path / "dependencies.yml"
    kept = dependencies.read_text()
    probe = dbt.path / "models" / "probe_lineage.sql"
    moved = [(p, p.read_text()) for p in (dbt.path / "models").glob("*.sql")]
    try:
        dependencies.write_text("projects:\n  - name: orders\n")
        for path, _text in moved:
            path.unlink()  # the consumer's own models ref inventory too: leave only the probe
        probe.write_text("select * from {{ ref('orders', 'order_lines') }}")
        listed = dbt("ls", "--select", "+probe_lineage", "--output", "name", "--resource-type", "model")
        names = listed.stdout.split()
        assert "order_lines" in names and "items.v2" in names, listed.stdout[-2000:]
    finally:
        probe.unlink(missing_ok=True)
        for path, text in moved:
            path.write_text(text)
        dependencies.write_text(kept)


def test_deprecated_version_and_stale_product_warn(mesh):
    _server, projects = mesh
    out = projects["reporting_run"].stdout
    assert "deprecat" in out.lower()
    assert "inventory.items_v2, last updated" in out and "past its freshness warn_after" in out


def test_product_past_its_freshness_error_fails_the_consumer(mesh):
    _server, projects = mesh
    done = _consumer_model(projects, "select * from {{ ref('inventory', 'item_counts') }}")
    assert done.returncode != 0 and "past its freshness error_after" in done.stdout


def test_docs_generate_describes_upstream_products(mesh):
    _server, projects = mesh
    projects["reporting"]("docs", "generate")
    nodes = manifest(projects["reporting"])["nodes"]
    assert set(nodes["model.orders.order_lines"]["columns"]) == {"line_id", "item_id", "label", "quantity"}


def _consumer_model(projects, sql: str, command: str = "parse") -> subprocess.CompletedProcess:
    dbt = projects["reporting"]
    model = dbt.path / "models" / "probe.sql"
    model.write_text(sql)
    try:
        return dbt(command, *(["--select", "probe"] if command == "run" else []), check=False)
    finally:
        model.unlink()


def test_ref_to_a_missing_product_suggests_near_names(mesh):
    _server, projects = mesh
    done = _consumer_model(projects, "select * from {{ ref('inventory', 'itemz') }}")
    assert done.returncode != 0
    assert "no product 'itemz' in project 'inventory'; did you mean 'items'?" in done.stdout


def test_ref_to_an_unreadable_product_names_the_missing_grant(mesh):
    _server, projects = mesh
    done = _consumer_model(projects, "select * from {{ ref('inventory', 'supplier_prices') }}")
    assert done.returncode != 0
    assert ("svc_reporting lacks SELECT on table inventory.supplier_prices; an admin can allow it with: "
            "icemesh grant SELECT --to svc_reporting --table inventory.supplier_prices (or by its tags: "
            "icemesh grant SELECT --to svc_reporting --tags domain=inventory --tags sensitivity=confidential)") in done.stdout


def test_ref_to_a_protected_model_is_refused(mesh):
    _server, projects = mesh
    done = _consumer_model(projects, "select * from {{ ref('inventory', 'stock_audit') }}")
    assert done.returncode != 0 and "stock_audit" in done.stdout and "protected" in done.stdout
    # Not only dbt's rule: the catalog keeps it from every engine, though reporting's grants match its tags.
    server, _projects = mesh
    reporting = server.client("svc_reporting", projects["reporting"].env["ICEMESH_CLIENT_SECRET"]).rest_catalog()
    with pytest.raises(Exception, match="lacks SELECT"):
        reporting.load_table("inventory.stock_audit")
    assert reporting.load_table("inventory.item_counts").scan().to_arrow().num_rows > 0  # a public sibling


def test_selecting_a_hidden_column_fails_naming_it(mesh):
    _server, projects = mesh
    done = _consumer_model(projects, "{{ config(materialized='table') }}\n"
                                     "select item_id, unit_cost from {{ ref('inventory', 'items') }}", "run")
    assert done.returncode != 0 and "unit_cost" in done.stdout


def test_a_filtered_grant_reaches_a_ref_as_a_view_that_applies_it(mesh):
    """reporting may not read supplier_prices (confidential) until a grant lets it read items 0-1 with the
    price nulled: its ref then reads a view that applies both; the catalog table itself stays refused."""
    server, projects = mesh
    admin = server.client()
    every = sorted(admin.rest_catalog().load_table("inventory.supplier_prices").scan().to_arrow().to_pylist(),
                   key=lambda r: r["item_id"])
    expected = [(r["item_id"], None) for r in every if r["item_id"] < 2]
    assert expected and len(expected) < len(every)
    grant = admin.request("POST", M + "/grants", json={
        "permissions": "SELECT,DESCRIBE", "principal": "svc_reporting", "table": "inventory.supplier_prices",
        "rows": "item_id < 2", "masks": ["supplier_price=null"]})
    try:
        dbt = projects["reporting"]
        done = _consumer_model(projects, "{{ config(materialized='table') }}\n"
                                         "select * from {{ ref('inventory', 'supplier_prices') }}", "run")
        assert done.returncode == 0, done.stdout[-2000:]
        assert local_rows(dbt, "probe") == expected
        compiled = (dbt.path / "target" / "compiled" / "reporting" / "models" / "probe.sql").read_text()
        assert '"icemesh_filtered"' in compiled and "supplier_prices" in compiled
        con = duckdb.connect(str(dbt.path / "target" / "reporting.duckdb"), read_only=True)
        try:
            [(definition,)] = con.execute("select sql from duckdb_views() where schema_name = 'icemesh_filtered' "
                                          "and view_name like 'inventory__supplier_prices%'").fetchall()
        finally:
            con.close()
        assert 'WHERE (item_id < 2)' in definition and 'CAST(NULL AS' in definition
        # the catalog's own table, read around the view, is refused: DuckDB's attach does not apply restrictions
        done = _consumer_model(projects, "{{ config(materialized='table') }}\n"
                                         'select * from "mesh"."inventory"."supplier_prices"', "run")
        assert done.returncode != 0 and "does not apply read restrictions" in done.stdout
    finally:
        admin.request("POST", M + "/grants/revoke", json={"permissions": "SELECT,DESCRIBE", "id": grant["id"]})
    # revoked: the ref is refused again at parse, naming the missing grant
    done = _consumer_model(projects, "select * from {{ ref('inventory', 'supplier_prices') }}")
    assert done.returncode != 0 and "lacks SELECT on table inventory.supplier_prices" in done.stdout


def test_the_registry_names_no_hidden_column_and_no_invisible_upstream(mesh):
    """reporting may not read items.unit_cost: no field of the product (its contract included) names it. A
    principal that may see orders.order_lines only is not told which inventory product it was built from."""
    server, _projects = mesh
    admin = server.client()
    reporting = server.client("svc_reporting", _projects["reporting"].env["ICEMESH_CLIENT_SECRET"])
    items = reporting.request("GET", M + "/products/inventory.items_v2")
    assert "unit_cost" not in json.dumps(items)
    assert [c["name"] for c in items["dbt"]["contract"]["columns"]] == ["item_id", "label"]
    assert "unit_cost" in json.dumps(admin.request("GET", M + "/products/inventory.items_v2"))  # it is there
    secret = admin.request("POST", M + "/principals", json={"name": "svc_peeker"})["client_secret"]
    admin.request("POST", M + "/grants", json={"permissions": "DESCRIBE", "principal": "svc_peeker",
                                               "table": "orders.order_lines"})
    peeker = server.client("svc_peeker", secret)
    [lines] = [p for p in peeker.request("GET", M + "/products") if p["name"] == "orders.order_lines"]
    assert lines["dbt"]["upstream"] == [] and "items" not in json.dumps(lines)
    # Asking by dbt model tells it nothing more: not the product it may not describe, nor that one exists.
    assert peeker.request("GET", M + "/products", params={"ref": "inventory.items"}) == []
    assert peeker.request("GET", M + "/products", params={"ref": ["orders.order_lines", "inventory.items"]}) == [lines]
    assert admin.request("GET", M + "/products/orders.order_lines")["dbt"]["upstream"] == ["inventory.items_v2"]


@contextlib.contextmanager
def _only_models(dbt, models: dict[str, str]):
    """The consumer with only these models (name: SQL) for the block; its own models put back after."""
    kept = [(p, p.read_text()) for p in (dbt.path / "models").glob("*.sql")]
    for path, _text in kept:
        path.unlink()
    try:
        for name, sql in models.items():
            (dbt.path / "models" / f"{name}.sql").write_text(sql)
        yield
    finally:
        for name in models:
            (dbt.path / "models" / f"{name}.sql").unlink(missing_ok=True)
        for path, text in kept:
            path.write_text(text)


def _cached_names(dbt) -> list[str]:
    """The products the last online parse was answered (the parse cache holds exactly what it fetched)."""
    cache = json.loads((dbt.path / "target" / "icemesh_products.json").read_text())
    return sorted(p["name"] for p in cache["products"])


def _injected(dbt) -> list[str]:
    return sorted(uid for uid in manifest(dbt)["nodes"] if not uid.startswith("model.reporting."))


def test_a_consumer_is_sent_only_the_products_its_models_ref_and_their_upstream(mesh):
    """reporting declares inventory and orders (several products each) and refs one model: the catalog answers
    that product and what it was built from, not the declared projects' other products."""
    _server, projects = mesh
    dbt = projects["reporting"]
    with _only_models(dbt, {"probe": "select * from {{ ref('orders', 'order_lines') }}"}):
        dbt("parse", "--no-partial-parse")
        assert _cached_names(dbt) == ["inventory.items_v2", "orders.order_lines"]
        assert _injected(dbt) == ["model.inventory.items.v2", "model.orders.order_lines"]
        assert manifest(dbt)["nodes"]["model.orders.order_lines"]["depends_on"]["nodes"] == ["model.inventory.items.v2"]
        # What only the chain reaches has its columns for the docs, not for every parse (they cost dbt's parse).
        nodes = manifest(dbt)["nodes"]
        assert nodes["model.orders.order_lines"]["columns"] and not nodes["model.inventory.items.v2"]["columns"]
        dbt("docs", "generate")
        assert set(manifest(dbt)["nodes"]["model.inventory.items.v2"]["columns"]) == {"item_id", "label"}


def test_a_versioned_ref_and_a_ref_without_version_pick_their_version(mesh):
    _server, projects = mesh
    dbt = projects["reporting"]
    with _only_models(dbt, {"old": "select * from {{ ref('inventory', 'items', v=1) }}",
                            "new": "select * from {{ ref('inventory', 'items') }}"}):
        dbt("parse", "--no-partial-parse")
        nodes = manifest(dbt)["nodes"]
        assert nodes["model.reporting.old"]["depends_on"]["nodes"] == ["model.inventory.items.v1"]
        assert nodes["model.reporting.new"]["depends_on"]["nodes"] == ["model.inventory.items.v2"]
        assert _cached_names(dbt) == ["inventory.items_v1", "inventory.items_v2"]  # every version, nothing else
    with _only_models(dbt, {"old": "select * from {{ ref('inventory', 'items', v=1) }}"}):
        dbt("parse", "--no-partial-parse")  # the model's versions are nodes together (dbt knows which is latest)
        assert _injected(dbt) == ["model.inventory.items.v1", "model.inventory.items.v2"]
        assert manifest(dbt)["nodes"]["model.reporting.old"]["depends_on"]["nodes"] == ["model.inventory.items.v1"]
    with _only_models(dbt, {"gone": "select * from {{ ref('inventory', 'items', v=3) }}"}):
        done = dbt("parse", "--no-partial-parse", check=False)
        assert done.returncode != 0
        assert "gone refs inventory.items: no product 'items' version 3 in project 'inventory'" in done.stdout


def test_a_ref_not_found_still_names_the_projects_products(mesh):
    """Only the refs are asked for, yet a misspelled one is answered as before: near names, or every product of
    that project the consumer may see."""
    server, projects = mesh
    dbt = projects["reporting"]
    reporting = server.client("svc_reporting", dbt.env["ICEMESH_CLIENT_SECRET"])
    listed = reporting.request("GET", M + "/products", params={"project": "inventory"})
    visible = sorted({p["dbt"]["model"] for p in listed})
    assert {"items", "item_counts", "supplier_prices"} <= set(visible)
    with _only_models(dbt, {"probe": "select * from {{ ref('inventory', 'itemz') }}"}):
        done = dbt("parse", "--no-partial-parse", check=False)
        assert done.returncode != 0
        assert ("probe refs inventory.itemz: no product 'itemz' in project 'inventory'; "
                "did you mean 'items'?") in done.stdout
    with _only_models(dbt, {"probe": "select * from {{ ref('orders', 'order_lines') }}",
                            "other": "select * from {{ ref('inventory', 'zzz_nothing_like_it') }}"}):
        done = dbt("parse", "--no-partial-parse", check=False)
        assert done.returncode != 0
        assert (f"other refs inventory.zzz_nothing_like_it: no product 'zzz_nothing_like_it' in project 'inventory'; "
                f"its products you may see: {', '.join(visible)}") in done.stdout
        assert "Traceback" not in done.stdout + done.stderr


def test_offline_a_ref_the_cached_parse_did_not_ask_for_fails_in_one_line(mesh):
    _server, projects = mesh
    dbt = projects["reporting"]
    with _only_models(dbt, {"probe": "select * from {{ ref('orders', 'order_lines') }}"}):
        dbt("parse", "--no-partial-parse")
        listed = _offline(dbt, "ls", "--output", "name")
        assert listed.returncode == 0 and "order_lines" in listed.stdout, listed.stdout[-3000:]
        (dbt.path / "models" / "more.sql").write_text("select * from {{ ref('inventory', 'item_counts') }}")
        try:
            done = _offline(dbt, "parse", "--no-partial-parse")
        finally:
            (dbt.path / "models" / "more.sql").unlink()
    assert done.returncode != 0
    [line] = [line for line in done.stdout.splitlines() if "more refs inventory.item_counts" in line]
    assert ("more refs inventory.item_counts: not in the products cached by the last parse that reached the catalog "
            "(that parse did not ref it); parse once with the catalog reachable") in line
    assert "Traceback" not in done.stdout + done.stderr


def test_pinned_runs_record_and_repeat_the_upstream_snapshots(mesh):
    """Last in this module: it changes inventory's products."""
    server, projects = mesh
    catalog = server.client().rest_catalog()
    items_v1 = catalog.load_table("inventory.items_v1").current_snapshot().snapshot_id
    projects["orders"]("run", "--vars", "{icemesh_pin: snapshot}")
    lines = catalog.load_table("orders.order_lines")
    assert json.loads(lines.properties["icemesh.dbt.upstream_snapshots"]) == {
        "inventory.items_v2": catalog.load_table("inventory.items_v2").current_snapshot().snapshot_id}
    projects["reporting"]("run", "--vars", "{icemesh_pin: snapshot}")
    pins = json.loads((projects["reporting"].path / "target" / "icemesh_pins.json").read_text())["snapshots"]
    assert pins["inventory.items_v1"] == items_v1

    projects["inventory"]("run", "--vars", "{items: 5}")  # the producer publishes a fifth item
    projects["reporting"]("run", "--select", "legacy_labels")
    assert len(local_rows(projects["reporting"], "legacy_labels")) == 5
    projects["reporting"]("run", "--select", "legacy_labels", "--vars", "{icemesh_pin: target/icemesh_pins.json}")
    assert local_rows(projects["reporting"], "legacy_labels") == [(i, f"item {i}") for i in range(4)]  # as pinned



def _offline(dbt, *args: str) -> subprocess.CompletedProcess:
    """`dbt ...` as the project's principal with the catalog unreachable (a port nothing listens on)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**dbt.env, "ICEMESH_CATALOG_URI": f"http://127.0.0.1:{port}"}
    return subprocess.run([os.path.join(BIN, "dbt"), *args], cwd=dbt.path, env=env, capture_output=True, text=True,
                          timeout=300)


def _names(output: str) -> list[str]:
    return [line for line in output.splitlines() if re.fullmatch(r"[\w.]+", line)]


def test_parse_only_commands_work_offline_from_the_parse_cache(mesh):
    """As dbt-loom parses from manifest files: with the catalog down, `dbt ls`, `compile`, `docs generate` and `parse`
    build the same graph from what the last parse resolved (one warning naming its age); `build` refuses."""
    _server, projects = mesh
    dbt = projects["reporting"]
    online = _names(dbt("ls", "--output", "name").stdout)
    cache = dbt.path / "target" / "icemesh_products.json"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600  # what this principal may see, private to its owner
    listed = _offline(dbt, "ls", "--output", "name")
    assert listed.returncode == 0, listed.stdout[-3000:]
    assert _names(listed.stdout) == online and {"items.v2", "order_lines", "item_demand"} <= set(online)
    warnings = [line for line in listed.stdout.splitlines() if "icemesh:" in line]
    assert len(warnings) == 1 and "unreachable" in warnings[0] and " ago in target/icemesh_products.json" in warnings[0]

    docs = _offline(dbt, "docs", "generate")
    assert docs.returncode == 0, docs.stdout[-3000:]
    nodes = manifest(dbt)["nodes"]  # written from the cache: the cross-domain chain and the declared types
    assert nodes["model.orders.order_lines"]["depends_on"]["nodes"] == ["model.inventory.items.v2"]
    assert nodes["model.inventory.items.v2"]["columns"]["item_id"]["data_type"] == "integer"
    compiled = _offline(dbt, "compile", "--select", "item_demand")
    assert compiled.returncode == 0, compiled.stdout[-3000:]
    sql = (dbt.path / "target" / "compiled" / "reporting" / "models" / "item_demand.sql").read_text()
    assert '"mesh"."orders"."order_lines"' in sql

    built = _offline(dbt, "build")
    assert built.returncode != 0
    assert "`dbt build` reads the products' data and must be authorized by the catalog" in built.stdout
    assert "Traceback" not in built.stdout + built.stderr


def test_offline_without_a_parse_cache_says_how_to_get_one(mesh):
    _server, projects = mesh
    dbt = projects["orders"]
    (dbt.path / "target" / "icemesh_products.json").unlink(missing_ok=True)
    listed = _offline(dbt, "ls")
    assert listed.returncode != 0
    assert "no parse cache at" in listed.stdout and "one parse with the catalog reachable writes it" in listed.stdout
