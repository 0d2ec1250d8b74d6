"""Iceberg views over REST, governed like tables (the fast tier: the app in process, raw REST JSON).

The world: namespace `shop` tagged domain=shop; a producer with CREATE_TABLE,DESCRIBE on it; a reader with
SELECT,DESCRIBE on domain=shop; an outsider with nothing.
"""

from __future__ import annotations

import pytest

from tests.inprocess import M, start

SCHEMA = {"type": "struct", "schema-id": 0, "fields": [
    {"id": 1, "name": "id", "type": "long", "required": False},
    {"id": 2, "name": "total", "type": "double", "required": False}]}


def version(sql: str, version_id: int = 1, schema_id: int = 0) -> dict:
    return {"version-id": version_id, "schema-id": schema_id, "timestamp-ms": 1_700_000_000_000,
            "summary": {"engine-name": "spark"}, "default-namespace": ["shop"],
            "representations": [{"type": "sql", "sql": sql, "dialect": "spark"}]}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    catalog, admin, client = start(tmp_path_factory.mktemp("views"))
    http = catalog.http
    http.post(f"{M}/tags", json={"key": "domain", "values": ["shop"]}, headers=admin)
    who = {name: catalog.principal(admin, f"svc_{name}") for name in ("producer", "reader", "outsider", "other")}
    assert http.post(catalog.rest("/namespaces"), json={"namespace": ["shop"]}, headers=admin).status_code == 200
    http.post(f"{M}/tag-assignments", json={"key": "domain", "value": "shop", "namespace": "shop"}, headers=admin)
    for body in ({"permissions": "CREATE_TABLE,DESCRIBE", "principal": "svc_producer", "namespace": "shop"},
                 {"permissions": "CREATE_TABLE,DESCRIBE", "principal": "svc_other", "namespace": "shop"},
                 {"permissions": "SELECT,DESCRIBE", "principal": "svc_reader", "tags": ["domain=shop"]}):
        assert http.post(f"{M}/grants", json=body, headers=admin).status_code in (200, 201)
    yield catalog, admin, who
    client.__exit__(None, None, None)


def create(catalog, headers, name: str, sql: str = "SELECT id, total FROM shop.orders", **extra):
    body = {"name": name, "schema": SCHEMA, "view-version": version(sql), **extra}
    return catalog.http.post(catalog.rest("/namespaces/shop/views"), json=body, headers=headers)


def names(catalog, headers) -> list[str]:
    response = catalog.http.get(catalog.rest("/namespaces/shop/views"), headers=headers)
    return [i["name"] for i in response.json().get("identifiers", [])] if response.status_code == 200 else []


def message(response, status: int) -> str:
    assert response.status_code == status, response.text
    return response.json()["error"]["message"]


def test_config_lists_the_view_endpoints(world):
    catalog, admin, _who = world
    endpoints = catalog.http.get("/v1/config", headers=admin).json()["endpoints"]
    assert "POST /v1/{prefix}/namespaces/{namespace}/views" in endpoints
    assert "POST /v1/{prefix}/views/rename" in endpoints


def test_a_view_is_created_by_its_owner_and_read_as_its_grants_allow(world):
    catalog, admin, who = world
    created = create(catalog, who["producer"], "order_totals")
    assert created.status_code == 200, created.text
    metadata = created.json()["metadata"]
    assert metadata["current-version-id"] == 1 and metadata["versions"][0]["representations"][0]["dialect"] == "spark"
    # The reader lists and loads it through its tag grant; the outsider learns nothing, not even that it exists.
    assert names(catalog, who["reader"]) == ["order_totals"]
    loaded = catalog.http.get(catalog.rest("/namespaces/shop/views/order_totals"), headers=who["reader"])
    assert loaded.status_code == 200 and loaded.json()["metadata"]["view-uuid"] == metadata["view-uuid"]
    assert loaded.json()["labels"]["object-labels"] == {"domain": "shop"}  # its namespace's tag, as the spec's labels
    assert catalog.http.head(catalog.rest("/namespaces/shop/views/order_totals"), headers=who["reader"]).status_code == 204
    for answer in (catalog.http.get(catalog.rest("/namespaces/shop/views/order_totals"), headers=who["outsider"]),
                   catalog.http.head(catalog.rest("/namespaces/shop/views/order_totals"), headers=who["outsider"]),
                   catalog.http.get(catalog.rest("/namespaces/shop/views/nothing_here"), headers=who["reader"])):
        assert answer.status_code == 404
    assert catalog.http.get(catalog.rest("/namespaces/shop/views"), headers=who["outsider"]).status_code == 404
    # Seeing a view is not reading it: a principal with DESCRIBE only is told what it lacks.
    described = catalog.http.get(catalog.rest("/namespaces/shop/views/order_totals"), headers=who["other"])
    assert "lacks SELECT" in message(described, 403) and "metadata" not in described.text
    # The name is taken for tables too, and a view cannot take a table's.
    table = catalog.http.post(catalog.rest("/namespaces/shop/tables"), headers=admin,
                              json={"name": "order_totals", "schema": SCHEMA})
    assert "A view named shop.order_totals exists" in message(table, 409)
    assert catalog.http.post(catalog.rest("/namespaces/shop/tables"), headers=admin,
                             json={"name": "orders", "schema": SCHEMA}).status_code == 200
    assert "A table named shop.orders exists" in message(create(catalog, who["producer"], "orders"), 409)
    assert "View already exists" in message(create(catalog, who["producer"], "order_totals"), 409)


def test_replacing_needs_alter_and_resolves_the_last_added_references(world):
    catalog, admin, who = world
    assert create(catalog, who["producer"], "daily").status_code == 200
    base = catalog.http.get(catalog.rest("/namespaces/shop/views/daily"), headers=who["producer"]).json()
    wider = {"type": "struct", "schema-id": 1, "fields": SCHEMA["fields"] + [
        {"id": 3, "name": "day", "type": "date", "required": False}]}
    replace = {"requirements": [{"type": "assert-view-uuid", "uuid": base["metadata"]["view-uuid"]}],
               "updates": [{"action": "add-schema", "schema": wider, "last-column-id": 3},
                           {"action": "add-view-version", "view-version": version(
                               "SELECT id, total, day FROM shop.orders", 2, -1)},
                           {"action": "set-current-view-version", "view-version-id": -1}]}
    path = catalog.rest("/namespaces/shop/views/daily")
    # Another domain principal with the same namespace rights, the reader, the outsider: none may replace it.
    assert "lacks ALTER on view shop.daily" in message(catalog.http.post(path, json=replace, headers=who["other"]), 403)
    assert "lacks ALTER" in message(catalog.http.post(path, json=replace, headers=who["reader"]), 403)
    assert catalog.http.post(path, json=replace, headers=who["outsider"]).status_code == 404
    unchanged = catalog.http.get(path, headers=admin).json()
    assert unchanged["metadata-location"] == base["metadata-location"]

    replaced = catalog.http.post(path, json=replace, headers=who["producer"])
    assert replaced.status_code == 200, replaced.text
    doc = replaced.json()["metadata"]
    assert doc["current-version-id"] == 2 and doc["versions"][-1]["schema-id"] == 1
    assert [entry["version-id"] for entry in doc["version-log"]] == [1, 2]
    # A replace against a view that is no longer the one it loaded (another uuid) is a 409 and changes nothing.
    stale = {**replace, "requirements": [{"type": "assert-view-uuid", "uuid": "00000000-0000-0000-0000-000000000000"}]}
    assert catalog.http.post(path, json=stale, headers=who["producer"]).status_code == 409
    for updates, text in (([{"action": "set-location", "location": "file:///elsewhere"}], "location"),
                          ([{"action": "set-current-view-version", "view-version-id": 7}], "version 7"),
                          ([{"action": "upgrade-format-version", "format-version": 2}], "format version 2"),
                          ([{"action": "frobnicate"}], "Unknown view update")):
        assert text in message(catalog.http.post(path, json={"updates": updates}, headers=who["producer"]), 400)
    assert catalog.http.get(path, headers=admin).json()["metadata-location"] == replaced.json()["metadata-location"]


def test_rename_and_drop_are_the_owners_and_grants_end_with_the_view(world):
    catalog, admin, who = world
    assert create(catalog, who["producer"], "weekly").status_code == 200
    grant = {"permissions": "SELECT,DESCRIBE", "principal": "svc_outsider", "table": "shop.weekly"}
    assert catalog.http.post(f"{M}/grants", json=grant, headers=admin).status_code in (200, 201)
    assert names(catalog, who["outsider"]) == ["weekly"]
    rename = {"source": {"namespace": ["shop"], "name": "weekly"}, "destination": {"namespace": ["shop"], "name": "week"}}
    assert "lacks ALTER" in message(catalog.http.post(catalog.rest("/views/rename"), json=rename, headers=who["other"]), 403)
    assert catalog.http.post(catalog.rest("/views/rename"), json=rename, headers=who["producer"]).status_code == 204
    assert names(catalog, who["outsider"]) == ["week"]  # the grant followed the view
    assert "DROP" in message(catalog.http.delete(catalog.rest("/namespaces/shop/views/week"), headers=who["other"]), 403)
    assert catalog.http.delete(catalog.rest("/namespaces/shop/views/week"), headers=who["producer"]).status_code == 204
    assert catalog.http.get(catalog.rest("/namespaces/shop/views/week"), headers=who["producer"]).status_code == 404
    grants = catalog.http.get(f"{M}/grants", params={"principal": "svc_outsider"}, headers=admin).json()
    assert not [g for g in grants if "week" in str(g)]
    # A view of the same name created later starts with no grants.
    assert create(catalog, who["producer"], "week").status_code == 200
    assert names(catalog, who["outsider"]) == []


def test_a_namespace_with_a_view_is_not_empty(world):
    catalog, admin, _who = world
    catalog.http.post(catalog.rest("/namespaces"), json={"namespace": ["scratch"]}, headers=admin)
    body = {"name": "v", "schema": SCHEMA, "view-version": {**version("SELECT 1"), "default-namespace": ["scratch"]}}
    assert catalog.http.post(catalog.rest("/namespaces/scratch/views"), json=body, headers=admin).status_code == 200
    assert "contains view v" in message(catalog.http.delete(catalog.rest("/namespaces/scratch"), headers=admin), 409)
    assert catalog.http.delete(catalog.rest("/namespaces/scratch/views/v"), headers=admin).status_code == 204
    assert catalog.http.delete(catalog.rest("/namespaces/scratch"), headers=admin).status_code == 204


def test_a_view_cannot_be_placed_among_a_tables_files_or_named_unsafely(world):
    catalog, admin, who = world
    table = catalog.http.get(catalog.rest("/namespaces/shop/tables/orders"), headers=admin).json()
    inside = table["metadata"]["location"] + "/metadata"
    assert "overlaps a table's or another view's files" in message(create(catalog, who["producer"], "squatter", location=inside), 403)
    assert "outside the warehouse" in message(create(catalog, who["producer"], "away", location="file:///tmp/away"), 400)
    assert create(catalog, who["producer"], "bad name").status_code == 400
    bad_column = {"name": "cols", "view-version": version("SELECT 1"), "schema": {
        "type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "a;b", "type": "long", "required": False}]}}
    assert "Invalid column name" in message(
        catalog.http.post(catalog.rest("/namespaces/shop/views"), json=bad_column, headers=who["producer"]), 400)
    assert not {"squatter", "away", "cols"} & set(names(catalog, admin))
    # Nor can a table (and a later purge) take a view's folder, or a view another view's.
    view = create(catalog, who["producer"], "located").json()["metadata"]["location"]
    squat = catalog.http.post(catalog.rest("/namespaces/shop/tables"), headers=who["producer"],
                              json={"name": "squat", "schema": SCHEMA, "location": view})
    assert "overlaps a view's location" in message(squat, 400)
    assert "another view's files" in message(create(catalog, who["producer"], "twin", location=view + "/sub"), 403)
