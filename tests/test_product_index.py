"""The product index (issue 24): kept with every commit, create, drop, rename and tag change; paged, filtered and
searched; never showing a product, a column or a lineage edge the caller may not see. A real `icemesh serve`
(SQLite and PostgreSQL) over HTTP, written with pyiceberg; the CLI as a user runs it."""

from __future__ import annotations

import json
import os
import sqlite3

import httpx
import pyarrow as pa
import pytest
from pyiceberg.exceptions import ForbiddenError
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

from icemesh.backends.sql.schema import CURRENT
from icemesh.server.process import CatalogProcess
from tests.cli_helpers import As
from tests.conftest import start_catalog

M = "/management/v1"
SCHEMA = Schema(NestedField(1, "id", LongType(), required=True, doc="the key"),
                NestedField(2, "amount", LongType(), doc="in cents"),
                NestedField(3, "ssn_hidden", StringType(), doc="never shown to partners"))
ROWS = pa.Table.from_pylist([{"id": 1, "amount": 5, "ssn_hidden": "x"}],
                            schema=pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("amount", pa.int64()),
                                              pa.field("ssn_hidden", pa.string())]))


def product_props(project: str, model: str, upstream=(), description: str = "", owner: str = "team@example.com",
                  tags=()) -> dict[str, str]:
    props = {"icemesh.dbt.project": project, "icemesh.dbt.model": model, "icemesh.dbt.access": "public",
             "icemesh.dbt.owner": json.dumps({"email": owner}), "icemesh.dbt.upstream": json.dumps(list(upstream)),
             "icemesh.dbt.tags": json.dumps(list(tags))}
    if description:
        props["comment"] = description
    return props


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def mesh(request, tmp_path_factory):
    db = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    server = start_catalog(tmp_path_factory, db, f"index-{request.param}")
    try:
        yield _world(server)
    finally:
        server.stop()


def _world(server) -> dict:
    admin = server.client()
    cat = admin.rest_catalog()
    admin.request("POST", f"{M}/tags", json={"key": "dom", "values": ["sales", "finance", "hr"]})
    admin.request("POST", f"{M}/tags", json={"key": "sens", "values": ["public", "confidential"]})
    for ns in ("sales", "finance", "hr"):
        cat.create_namespace(ns)
        admin.request("POST", f"{M}/tag-assignments", json={"key": "dom", "value": ns, "namespace": ns})
    cat.create_table("sales.orders", SCHEMA, properties=product_props(
        "sales", "orders", description="Every order placed", tags=["core"]))
    cat.create_table("hr.payroll", SCHEMA, properties=product_props("hr", "payroll", description="Salaries by person"))
    cat.create_table("finance.revenue", SCHEMA, properties=product_props(
        "finance", "revenue", ["sales.orders", "hr.payroll"], "Revenue by day", owner="cfo@example.com"))
    cat.create_table("finance.forecast", SCHEMA, properties=product_props("finance", "forecast", ["finance.revenue"]))
    cat.create_table("sales.report", SCHEMA, properties=product_props("sales", "report", ["finance.forecast"]))
    cat.create_table("sales.scratch", SCHEMA)  # a table, not a product
    admin.request("POST", f"{M}/tag-assignments", json={"key": "sens", "value": "public", "table": "sales.orders"})
    admin.request("POST", f"{M}/tag-assignments", json={"key": "sens", "value": "confidential",
                                                       "table": "sales.orders", "column": "ssn_hidden"})
    secret = admin.request("POST", f"{M}/principals", json={"name": "svc_fin"})["client_secret"]
    admin.request("POST", f"{M}/grants", json={"permissions": "SELECT,DESCRIBE", "principal": "svc_fin",
                                               "tags": ["dom=finance"]})
    admin.request("POST", f"{M}/grants", json={"permissions": "SELECT,DESCRIBE", "principal": "svc_fin",
                                               "tags": ["dom=sales", "sens=public"]})
    fin = server.client("svc_fin", secret)
    return {"server": server, "admin": admin, "cat": cat, "fin": fin, "fin_secret": secret}


def names(client, **params) -> list[str]:
    return [p["name"] for p in client.request("GET", f"{M}/products", params=params)]


def pages(client, size: int, **params) -> list[list[str]]:
    out, token = [], None
    while True:
        answer = client.request("GET", f"{M}/products", params={**params, "page-size": size,
                                                               **({"page-token": token} if token else {})})
        out.append([p["name"] for p in answer["products"]])
        token = answer["next-page-token"]
        if token is None:
            return out


def test_index_follows_create_commit_rename_and_drop(mesh):
    admin, cat = mesh["admin"], mesh["cat"]
    table = cat.create_table("sales.fresh", SCHEMA, properties=product_props("sales", "fresh", description="new one"))
    assert "sales.fresh" in names(admin)
    table.append(ROWS)
    shown = admin.request("GET", f"{M}/products/sales.fresh")
    assert shown["current_snapshot_id"] == table.current_snapshot().snapshot_id and shown["snapshots"] == 1
    assert shown["last_updated_ms"] == table.current_snapshot().timestamp_ms
    assert [c["name"] for c in shown["columns"]] == ["id", "amount", "ssn_hidden"]
    assert shown["columns"][1] == {"name": "amount", "type": "long", "required": False, "doc": "in cents"}
    with table.transaction() as tx:
        tx.set_properties(comment="renewed description")
    assert names(admin, q="renewed description") == ["sales.fresh"]
    with table.update_schema() as update:
        update.add_column("region", StringType(), doc="where it was sold")
    assert names(admin, q="where it was sold") == ["sales.fresh"]
    cat.rename_table("sales.fresh", "sales.fresher")
    assert "sales.fresh" not in names(admin) and "sales.fresher" in names(admin)
    assert names(admin, q="renewed") == ["sales.fresher"]
    cat.drop_table("sales.fresher")
    assert "sales.fresher" not in names(admin) and names(admin, q="renewed") == []


def test_listing_reads_no_metadata_file(mesh):
    """The answer comes from the index: with the current metadata file gone, the product is still listed."""
    admin, cat = mesh["admin"], mesh["cat"]
    table = cat.create_table("sales.filegone", SCHEMA, properties=product_props("sales", "filegone"))
    table.append(ROWS)
    location = admin.request("GET", f"{M}/products/sales.filegone")  # noqa: F841 - warm nothing: the file goes
    os.remove(table.metadata_location.removeprefix("file://"))
    try:
        found = [p for p in admin.request("GET", f"{M}/products") if p["name"] == "sales.filegone"]
        assert found and found[0]["current_snapshot_id"] == table.current_snapshot().snapshot_id
    finally:
        cat.drop_table("sales.filegone")


def test_tag_changes_reach_the_tag_filter(mesh):
    admin = mesh["admin"]
    assert names(admin, tag="dom=finance") == ["finance.forecast", "finance.revenue"]
    assert names(admin, tag="dom=sales,hr") == ["hr.payroll", "sales.orders", "sales.report"]
    assert names(admin, tag=["dom=sales", "sens=public"]) == ["sales.orders"]
    admin.request("POST", f"{M}/tag-assignments", json={"key": "sens", "value": "public", "table": "finance.forecast"})
    assert names(admin, tag="sens=public") == ["finance.forecast", "sales.orders"]
    admin.request("POST", f"{M}/tag-assignments/remove", json={"key": "sens", "table": "finance.forecast"})
    assert names(admin, tag="sens=public") == ["sales.orders"]
    assert names(admin, tag="core") == ["sales.orders"]  # a dbt tag


def test_denied_and_failed_commits_leave_the_index_unchanged(mesh):
    admin, fin, cat = mesh["admin"], mesh["fin"], mesh["cat"]
    before = admin.request("GET", f"{M}/products/sales.orders")
    with pytest.raises(ForbiddenError):
        with fin.rest_catalog().load_table("sales.orders").transaction() as tx:
            tx.set_properties(comment="defaced")
    uuid = cat.load_table("sales.orders").metadata.table_uuid
    response = httpx.post(f"{admin.uri}/v1/{admin.prefix()}/namespaces/sales/tables/orders",
                          headers=admin.headers(), json={
                              "requirements": [{"type": "assert-table-uuid", "uuid": str(uuid)},
                                               {"type": "assert-current-schema-id", "current-schema-id": 99}],
                              "updates": [{"action": "set-properties", "updates": {"comment": "conflicted"}}]})
    assert response.status_code == 409, response.text
    assert admin.request("GET", f"{M}/products/sales.orders") == before
    assert names(admin, q="defaced") == [] and names(admin, q="conflicted") == []


def test_paging_round_trip_without_duplicates_or_misses(mesh):
    admin, cat = mesh["admin"], mesh["cat"]
    if "bulk" not in [n[0] for n in cat.list_namespaces()]:
        cat.create_namespace("bulk")
        for i in range(23):
            cat.create_table(f"bulk.p{i:02d}", SCHEMA, properties=product_props("bulk", f"p{i:02d}"))
    everything = names(admin)
    got = pages(admin, 7)
    assert [len(p) for p in got[:-1]] == [7] * (len(got) - 1) and len(got[-1]) <= 7  # the last may be empty (keyset)
    flat = [n for p in got for n in p]
    assert flat == everything and len(set(flat)) == len(flat)
    assert [n for p in pages(admin, 5, project="bulk") for n in p] == [f"bulk.p{i:02d}" for i in range(23)]
    bad = httpx.get(f"{admin.uri}{M}/products", headers=admin.headers(), params={"page-token": "garbage!"})
    assert bad.status_code == 400 and "page-token" in bad.json()["error"]["message"]
    too_big = httpx.get(f"{admin.uri}{M}/products", headers=admin.headers(), params={"page-size": 5000})
    assert too_big.status_code == 400 and "page-size" in too_big.json()["error"]["message"]


def test_filters_and_search(mesh):
    admin = mesh["admin"]
    assert names(admin, project="finance") == ["finance.forecast", "finance.revenue"]
    assert names(admin, project=["finance", "hr"]) == ["finance.forecast", "finance.revenue", "hr.payroll"]
    assert names(admin, owner="CFO@example.com") == ["finance.revenue"]
    assert names(admin, q="REVENUE BY") == ["finance.revenue"]  # description, any case
    assert names(admin, q="payroll") == ["hr.payroll"]  # name
    assert "sales.orders" in names(admin, q="ssn_hidden")  # a column, for who may see it
    assert names(admin, q="in cents", project="sales") == ["sales.orders", "sales.report"]  # a column's doc
    assert names(admin, q="100%_") == []  # LIKE wildcards are text
    assert "sales.scratch" not in names(admin) and "sales.scratch" in names(admin, include_tables="true")


def test_ref_filter_selects_dbt_models_every_version(mesh):
    """`ref=project.model` (repeatable): the products of those dbt models, every version of each, as the dbt
    resolver asks for what a consumer's models ref."""
    admin, cat = mesh["admin"], mesh["cat"]
    for v in (1, 2):
        cat.create_table(f"finance.budget_v{v}", SCHEMA, properties={
            **product_props("finance", "budget"), "icemesh.dbt.version": str(v), "icemesh.dbt.latest_version": "2"})
    try:
        budget = admin.request("GET", f"{M}/products", params={"ref": "finance.budget"})
        assert [(p["name"], p["dbt"]["version"]) for p in budget] == [("finance.budget_v1", "1"),
                                                                      ("finance.budget_v2", "2")]
        assert names(admin, ref=["sales.orders", "finance.revenue"]) == ["finance.revenue", "sales.orders"]
        assert names(admin, ref="finance.budget", project="sales") == []  # with the other filters: ANDed
        assert names(admin, ref="finance.budget", q="budget_v2") == ["finance.budget_v2"]
        assert names(admin, ref="sales.revenue") == [] and names(admin, ref="finance.nothing") == []
        assert names(admin, ref="sales.scratch", include_tables="true") == []  # a table that claims no model
        assert [n for p in pages(admin, 1, ref=["finance.budget", "hr.payroll"]) for n in p] == [
            "finance.budget_v1", "finance.budget_v2", "hr.payroll"]
        many = ["finance.revenue", "sales.orders"] + [f"nowhere.m{i}" for i in range(450)]  # several index queries
        assert names(admin, ref=many) == ["finance.revenue", "sales.orders"]
        assert [n for p in pages(admin, 1, ref=many) for n in p] == ["finance.revenue", "sales.orders"]
    finally:
        for v in (1, 2):
            cat.drop_table(f"finance.budget_v{v}")
    for bad in ("finance", "finance.revenue.v2", ".revenue", "finance.", "fin ance.revenue", "finance.rev-enue",
                "1st.revenue", "finance.revenue\nInjected: yes"):
        answer = httpx.get(f"{admin.uri}{M}/products", headers=admin.headers(), params={"ref": ["sales.orders", bad]})
        message = answer.json()["error"]["message"]
        assert answer.status_code == 400 and message.startswith("Invalid ref filter"), (bad, answer.text)
        assert "use project.model" in message and "\n" not in message, message


def test_a_principal_never_sees_what_it_may_not_describe(mesh):
    fin = mesh["fin"]
    assert names(fin) == ["finance.forecast", "finance.revenue", "sales.orders"]
    assert [n for p in pages(fin, 1) for n in p] == ["finance.forecast", "finance.revenue", "sales.orders"]
    for params in ({"q": "payroll"}, {"q": "salaries"}, {"project": "hr"}, {"tag": "dom=hr"},
                   {"name": "hr.payroll"}, {"ref": "hr.payroll"}, {"ref": "hr.payroll", "page-size": 5},
                   {"ref": "hr.payroll", "include_tables": "true"}):
        found = fin.request("GET", f"{M}/products", params=params)
        assert (found["products"] if "page-size" in params else found) == [], params
        assert "payroll" not in json.dumps(found), params
    assert names(fin, ref=["hr.payroll", "finance.revenue"]) == ["finance.revenue"]  # what it may describe, only
    # finance's own ssn_hidden columns are not hidden from it; sales.orders' is, so neither its name nor its
    # doc finds sales.orders
    assert names(fin, q="ssn_hidden") == names(fin, q="never shown to partners") == ["finance.forecast",
                                                                                     "finance.revenue"]
    orders = fin.request("GET", f"{M}/products/sales.orders")
    assert [c["name"] for c in orders["columns"]] == ["id", "amount"]
    assert "ssn_hidden" not in json.dumps(orders)
    revenue = fin.request("GET", f"{M}/products/finance.revenue")
    assert revenue["dbt"]["upstream"] == ["sales.orders"]  # hr.payroll is not named to it
    with pytest.raises(Exception, match="does not exist"):
        fin.request("GET", f"{M}/products/hr.payroll")
    edges = fin.request("GET", f"{M}/lineage", params={"product": "finance.revenue", "depth": 3})
    assert edges == [{"upstream": "finance.revenue", "downstream": "finance.forecast"},
                     {"upstream": "sales.orders", "downstream": "finance.revenue"}]  # sales.report: not visible
    everything = fin.request("GET", f"{M}/lineage")
    assert "hr." not in json.dumps(everything) and "sales.report" not in json.dumps(everything)
    with pytest.raises(Exception, match="does not exist"):
        fin.request("GET", f"{M}/lineage", params={"product": "hr.payroll"})
    assert "unreadable" not in fin.request("GET", f"{M}/products", params={"page-size": 50})


def test_lineage_depth_from_the_index(mesh):
    admin = mesh["admin"]
    one = admin.request("GET", f"{M}/lineage", params={"product": "sales.orders", "depth": 1})
    assert one == [{"upstream": "sales.orders", "downstream": "finance.revenue"}]
    three = admin.request("GET", f"{M}/lineage", params={"product": "sales.orders", "depth": 3})
    assert {(e["upstream"], e["downstream"]) for e in three} == {
        ("sales.orders", "finance.revenue"), ("finance.revenue", "finance.forecast"),
        ("finance.forecast", "sales.report")}
    up = admin.request("GET", f"{M}/lineage", params={"product": "finance.forecast", "depth": 1})
    assert {(e["upstream"], e["downstream"]) for e in up} == {("finance.revenue", "finance.forecast"),
                                                              ("finance.forecast", "sales.report")}
    assert admin.request("GET", f"{M}/products/sales.orders")["downstream"] == ["finance.revenue"]


def test_cli_products_list_and_lineage(mesh):
    server = mesh["server"]
    fin = As.principal(server, "svc_fin", mesh["fin_secret"])
    listed = fin.json("products", "list", "--project", "finance", "--tag", "dom=finance", "--search", "revenue")
    assert [p["name"] for p in listed] == ["finance.revenue"]
    paged = fin.json("products", "list", "--page-size", "2")
    assert len(paged["products"]) == 2 and paged["next-page-token"]
    assert "finance.revenue" in fin.ok("products", "list", "--search", "revenue")
    edges = fin.json("lineage", "sales.orders", "--depth", "2")
    assert {"upstream": "sales.orders", "downstream": "finance.revenue"} in edges
    assert "hr.payroll" not in json.dumps(edges)
    error = fin.fails("products", "list", "--tag", "=oops")
    assert "tag filter" in error
    assert [p["name"] for p in fin.json("products", "list", "--ref", "finance.revenue", "--ref", "hr.payroll")] == [
        "finance.revenue"]
    error = fin.fails("products", "list", "--ref", "finance/revenue")
    assert "Invalid ref filter 'finance/revenue'" in error and len(error.strip().splitlines()) == 1, error
    assert "does not exist" in fin.fails("lineage", "hr.payroll")


def test_an_older_catalog_is_indexed_and_one_broken_file_is_reported_not_fatal(tmp_path):
    """A catalog from before the index (its rows removed here): the first listing fills the index from the
    metadata files; the table whose file is broken is skipped for everyone and reported to who may see it."""
    db = f"sqlite:///{tmp_path}/catalog.db"
    warehouse = str(tmp_path / "warehouse")
    with CatalogProcess(db=db, warehouse=warehouse, cwd=str(tmp_path)) as server:
        cat = server.client().rest_catalog()
        cat.create_namespace("old")
        cat.create_table("old.good", SCHEMA, properties=product_props("old", "good", description="fine"))
        broken = cat.create_table("old.broken", SCHEMA, properties=product_props("old", "broken"))
        secret = server.admin_secret
    with sqlite3.connect(f"{tmp_path}/catalog.db") as conn:  # as icemesh left it before the index (version 4)
        for table in ("icemesh_products", "icemesh_product_upstream", "icemesh_product_words"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DROP INDEX ix_icemesh_tables_updated")
        conn.execute("UPDATE icemesh_schema_version SET version = 4")
    with open(broken.metadata_location.removeprefix("file://"), "w") as f:
        f.write("{not json")
    with CatalogProcess(db=db, warehouse=warehouse, cwd=str(tmp_path), admin_secret=secret) as server:
        admin = server.client()
        assert names(admin) == ["old.good"]
        answer = admin.request("GET", f"{M}/products", params={"page-size": 10})
        assert [p["name"] for p in answer["products"]] == ["old.good"]
        assert answer["unreadable"] == [{"name": "old.broken", "reason": "cannot read its metadata (JSONDecodeError)"}]
        assert names(admin, q="fine") == ["old.good"]
    with sqlite3.connect(f"{tmp_path}/catalog.db") as conn:
        assert conn.execute("SELECT version FROM icemesh_schema_version").fetchone() == (CURRENT,)
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'ix_icemesh_tables_updated'").fetchone() == (1,)


def test_a_backend_without_an_index_answers_the_same(tmp_path):
    """Glue lists from the metadata files behind the same calls: the same answers, pages and filters included
    (in-process: the SQL backend with its index switched off)."""
    from tests.inprocess import shop_world

    catalog, admin, who, client = shop_world(tmp_path)
    try:
        http = catalog.http
        for i in range(5):
            props = product_props("shop", f"m{i}", [f"shop.m{i - 1}"] if i else [], f"model number {i}",
                                  tags=["core"] if i % 2 else [])
            if i % 2:
                props["icemesh.tags"] = json.dumps([{"column": "", "key": "sens", "value": "public"}])
            body = {"name": f"m{i}", "schema": {"type": "struct", "schema-id": 0, "fields": [
                {"id": 1, "name": "id", "type": "long", "required": False, "doc": "identity"}]}, "properties": props}
            assert http.post(catalog.rest("/namespaces/shop/tables"), json=body, headers=admin).status_code == 200

        from tests.test_inprocess_views import SCHEMA as VIEW_SCHEMA, version

        view = {"name": "v_totals", "schema": VIEW_SCHEMA, "view-version": version("SELECT id FROM shop.m0"),
                "properties": product_props("shop", "v_totals", ["shop.m0"], "a view product")}
        assert http.post(catalog.rest("/namespaces/shop/views"), json=view, headers=admin).status_code == 200

        def answers() -> list:
            out = []
            for headers in (admin, who["reader"], who["outsider"]):
                for params in ({}, {"q": "number 3"}, {"tag": "sens=public"}, {"tag": "core"}, {"project": "shop"},
                               {"name": "shop.m1"}, {"ref": ["shop.m1", "shop.v_totals"]}):
                    out.append(http.get(f"{M}/products", params=params, headers=headers).json())
                token, pages = None, []
                while True:
                    page = http.get(f"{M}/products", params={"page-size": 2, **({"page-token": token} if token else {})},
                                    headers=headers).json()
                    pages.append([p["name"] for p in page["products"]])
                    token = page["next-page-token"]
                    if token is None:
                        break
                out.append([n for p in pages for n in p])
                out.append(http.get(f"{M}/lineage", params={"product": "shop.m2", "depth": 2}, headers=headers).json())
            return out

        indexed = answers()
        assert [p["name"] for p in indexed[0]] == [f"shop.m{i}" for i in range(5)] + ["shop.v_totals"]
        assert indexed[0][-1]["kind"] == "view" and indexed[0][-1]["description"] == "a view product"
        renamed = http.post(catalog.rest("/views/rename"), headers=admin, json={
            "source": {"namespace": ["shop"], "name": "v_totals"}, "destination": {"namespace": ["shop"], "name": "v_sum"}})
        assert renamed.status_code in (200, 204), renamed.text
        listed = [p["name"] for p in http.get(f"{M}/products", headers=admin).json()]
        assert "shop.v_sum" in listed and "shop.v_totals" not in listed
        assert http.delete(catalog.rest("/namespaces/shop/views/v_sum"), headers=admin).status_code == 204
        assert "shop.v_sum" not in [p["name"] for p in http.get(f"{M}/products", headers=admin).json()]
        assert http.post(catalog.rest("/namespaces/shop/views"), json=view, headers=admin).status_code == 200
        indexed = answers()
        assert [p["name"] for p in indexed[9]] == ["shop.m1", "shop.m3"]  # the reader: sens=public only
        assert [p["name"] for p in indexed[6]] == ["shop.m1", "shop.v_totals"]  # ref=, admin
        client.app.state.products.index = None
        assert answers() == indexed
    finally:
        client.__exit__(None, None, None)


def test_a_search_counts_its_words_once_and_an_older_count_loses_no_row(tmp_path):
    """The word counts that pick a search's index range are kept a few seconds (a page of several batches, and
    the next pages, count once); a count made before new rows only picks a range, and the rows still match."""
    from sqlalchemy import event

    from icemesh.backends.sql import open_database
    from icemesh.backends.sql.products import SqlProductIndex
    from icemesh.catalog.ports import ProductQuery
    from icemesh.names import Namespace, TableIdent
    from icemesh.tables import product_summary

    db = open_database(f"sqlite:///{tmp_path}/catalog.db")
    index = SqlProductIndex(db)

    def product(ns: str, name: str, description: str):
        doc = {"properties": product_props(ns, name, description=description),
               "schema": {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long"}]}}
        return TableIdent(Namespace((ns,)), name), "table", f"file:///m/{ns}/{name}", product_summary.from_document(doc), None

    counted = []
    event.listen(db.engine, "before_cursor_execute", lambda c, cur, stmt, *a: counted.append(stmt) if "count(" in stmt else None)
    with db.write() as conn, conn.begin():  # "rare" is the rarer word: the range read
        index.insert_many(conn, "w", [product("a", f"p{i}", "common words") for i in range(6)]
                          + [product("a", "q", "rare common")])
    query = ProductQuery(text="rare common")
    assert [str(r.ident) for r in index.find("w", query, None, 10)] == ["a.q"]
    assert [str(r.ident) for r in index.find("w", query, ("a", "p"), 10)] == ["a.q"]
    assert len(counted) == 1  # the second batch reused the count
    with db.write() as conn, conn.begin():  # now "rare" is the common one, but the count says otherwise
        index.insert_many(conn, "w", [product("b", f"r{i}", "rare rare") for i in range(10)] + [product("b", "z", "rare common")])
    found = [str(r.ident) for r in index.find("w", query, None, 20)]  # a superset: the service matches exactly
    assert {"a.q", "b.z"} <= set(found) and "a.p0" not in found
    assert len(counted) == 1
    db.close()
