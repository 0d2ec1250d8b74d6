"""The catalog's governance rules, in process (the fast tier: no server process, raw Iceberg REST JSON).

The world: governance tags namespace `shop` domain=shop; a producer with a least-privilege CREATE_TABLE,DESCRIBE
grant on it (it owns only what it creates, and declares each product's sensitivity); a reader with SELECT on
`domain=shop AND sens=public`; an outsider with nothing.
"""

from __future__ import annotations

import json

import pytest

from tests.inprocess import M, shop_world

SCHEMA = {"type": "struct", "schema-id": 0, "fields": [
    {"id": 1, "name": "id", "type": "long", "required": False},
    {"id": 2, "name": "email", "type": "string", "required": False}]}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    catalog, admin, who, client = shop_world(tmp_path_factory.mktemp("inprocess"),
                                             ("producer", "reader", "outsider", "appender"))
    yield catalog, admin, who
    client.__exit__(None, None, None)


PUBLIC = {"icemesh.tags": json.dumps([{"column": "", "key": "sens", "value": "public"}])}


def create(catalog, headers, name: str, **extra):
    body = {"name": name, "schema": SCHEMA, "properties": dict(PUBLIC), **extra}
    return catalog.http.post(catalog.rest("/namespaces/shop/tables"), json=body, headers=headers)


def commit(catalog, headers, name: str, updates: list, requirements: list | None = None, **kw):
    return catalog.http.post(catalog.rest(f"/namespaces/shop/tables/{name}"),
                             json={"updates": updates, "requirements": requirements or []}, headers=headers, **kw)


def pointer(catalog, admin, name: str) -> str:
    return catalog.http.get(catalog.rest(f"/namespaces/shop/tables/{name}"), headers=admin).json()["metadata-location"]


def message(response, status: int) -> str:
    assert response.status_code == status, response.text
    return response.json()["error"]["message"]


def test_a_least_privilege_producer_creates_a_tagged_product_in_one_step(world):
    catalog, admin, who = world
    declared = json.dumps([{"column": "", "key": "sens", "value": "public"},
                           {"column": "email", "key": "sens", "value": "confidential"}])
    assert create(catalog, who["producer"], "customers", properties={"icemesh.tags": declared}).status_code == 200
    tags = catalog.http.get(f"{M}/effective-tags", params={"resource": "shop.customers"}, headers=admin).json()
    assert tags["columns"]["email"]["sens"]["value"] == "confidential"
    limited = catalog.http.get(catalog.rest("/namespaces/shop/tables/customers"),
                               headers={**who["reader"], "X-Icemesh-Column-Limits": "apply"}).json()
    assert [f["name"] for f in limited["metadata"]["schemas"][-1]["fields"]] == ["id"]
    assert "may read only columns id" in message(
        catalog.http.get(catalog.rest("/namespaces/shop/tables/customers"), headers=who["reader"]), 403)
    # A declaration governance would have to approve, or an unknown value, creates nothing at all.
    lowered = json.dumps([{"column": "", "key": "domain", "value": "billing"}])
    assert "was set by governance" in message(create(catalog, who["producer"], "lowered",
                                                     properties={"icemesh.tags": lowered}), 403)
    unknown = json.dumps([{"column": "", "key": "sens", "value": "secretish"}])
    assert "not an allowed value" in message(create(catalog, who["producer"], "unknown",
                                                    properties={"icemesh.tags": unknown}), 400)
    for name in ("lowered", "unknown"):
        assert catalog.http.get(catalog.rest(f"/namespaces/shop/tables/{name}"), headers=admin).status_code == 404


def test_what_a_caller_may_not_see_answers_as_missing(world):
    catalog, admin, who = world
    create(catalog, who["producer"], "orders")
    outsider = catalog.http.get(catalog.rest("/namespaces/shop/tables/orders"), headers=who["outsider"])
    missing = catalog.http.get(catalog.rest("/namespaces/shop/tables/nothing"), headers=who["outsider"])
    assert message(outsider, 404) == "no table shop.orders you may see"
    assert message(missing, 404) == "no table shop.nothing you may see"
    near = catalog.http.get(catalog.rest("/namespaces/shop/tables/ordrs"), headers=who["reader"])
    assert message(near, 404) == "no table shop.ordrs you may see; did you mean shop.orders?"
    assert message(catalog.http.get(catalog.rest("/namespaces/shop/tables"), headers=who["outsider"]), 404) == \
        "no namespace shop you may see"


def test_each_effect_needs_its_permission_and_nothing_is_written_without_it(world):
    catalog, admin, who = world
    create(catalog, who["producer"], "ledger")
    grant = {"permissions": "SELECT,INSERT", "principal": "svc_appender", "table": "shop.ledger"}
    catalog.http.post(f"{M}/grants", json=grant, headers=admin)
    before = pointer(catalog, admin, "ledger")
    cases = [([{"action": "set-properties", "updates": {"owner": "me"}}], "lacks ALTER", "changes properties"),
             ([{"action": "add-sort-order", "sort-order": {"order-id": 1, "fields": [
                 {"source-id": 1, "transform": "identity", "direction": "asc", "null-order": "nulls-first"}]}}],
              "lacks ALTER", "changes the sort order"),
             ([{"action": "remove-snapshot-ref", "ref-name": "main"}], None, None)]
    for updates, lacks, effect in cases:
        response = commit(catalog, who["appender"], "ledger", updates)
        if lacks is None:  # a ref that does not exist: nothing to remove, nothing written
            assert response.status_code in (200, 400), response.text
            continue
        text = message(response, 403)
        assert lacks in text and effect in text, text
    assert pointer(catalog, admin, "ledger") == before
    # The owner's commit that changes nothing writes nothing, and answers the table as it is.
    same = commit(catalog, who["producer"], "ledger", [{"action": "set-properties", "updates": {}}])
    assert same.status_code == 200 and same.json()["metadata-location"] == before


def test_tags_follow_the_field_id_through_a_rename(world):
    catalog, admin, who = world
    create(catalog, who["producer"], "people")
    catalog.http.post(f"{M}/tag-assignments", json={"key": "sens", "value": "confidential", "table": "shop.people",
                                                    "column": "email"}, headers=admin)
    renamed = {**SCHEMA, "schema-id": 1, "fields": [SCHEMA["fields"][0], {**SCHEMA["fields"][1], "name": "contact"}]}
    response = commit(catalog, who["producer"], "people", [{"action": "add-schema", "schema": renamed},
                                                           {"action": "set-current-schema", "schema-id": -1}])
    assert response.status_code == 200, response.text
    tags = catalog.http.get(f"{M}/effective-tags", params={"resource": "shop.people"}, headers=admin).json()
    assert tags["columns"]["contact"]["sens"]["value"] == "confidential"
    limited = catalog.http.get(catalog.rest("/namespaces/shop/tables/people"),
                               headers={**who["reader"], "X-Icemesh-Column-Limits": "apply"}).json()
    assert [f["name"] for f in limited["metadata"]["schemas"][-1]["fields"]] == ["id"]


def test_front_door_rules(world):
    catalog, admin, who = world
    assert "use only letters, digits" in message(create(catalog, who["producer"], 'x"; drop'), 400)
    claim = {"icemesh.dbt.project": "billing", "icemesh.dbt.model": "invoices"}
    assert "cannot claim dbt project 'billing'" in message(create(catalog, who["producer"], "invoices",
                                                                  properties=claim), 403)
    key = {"Idempotency-Key": "k-1"}
    a = catalog.http.post(catalog.rest("/namespaces/shop/tables"), json={"name": "once", "schema": SCHEMA},
                          headers={**who["producer"], **key})
    b = catalog.http.post(catalog.rest("/namespaces/shop/tables"), json={"name": "twice", "schema": SCHEMA},
                          headers={**who["producer"], **key})
    assert a.status_code == 200 and b.status_code == 422


def test_dropping_a_table_ends_its_grants_and_tags(world):
    catalog, admin, who = world
    create(catalog, who["producer"], "temp")
    catalog.http.post(f"{M}/grants", json={"permissions": "SELECT", "principal": "svc_outsider", "table": "shop.temp"},
                      headers=admin)
    assert catalog.http.delete(catalog.rest("/namespaces/shop/tables/temp"), headers=who["producer"]).status_code == 204
    create(catalog, who["producer"], "temp")
    assert catalog.http.get(catalog.rest("/namespaces/shop/tables/temp"), headers=who["outsider"]).status_code == 404
    grants = catalog.http.get(f"{M}/grants", params={"principal": "svc_outsider"}, headers=admin).json()
    assert not [g for g in grants if g.get("table") == "shop.temp"]


def test_the_registry_shows_a_product_as_its_reader_may_see_it(world):
    catalog, admin, who = world
    declared = json.dumps([{"column": "", "key": "sens", "value": "public"},
                           {"column": "email", "key": "sens", "value": "confidential"}])
    props = {"icemesh.tags": declared, "icemesh.dbt.project": "shop", "icemesh.dbt.model": "invoices",
             "comment": "one row per invoice"}
    assert create(catalog, who["producer"], "invoices", properties=props).status_code == 200
    listed = catalog.http.get(f"{M}/products", headers=who["reader"])
    assert listed.status_code == 200, listed.text
    assert [p["name"] for p in listed.json()] == ["shop.invoices"]
    shown = catalog.http.get(f"{M}/products/shop.invoices", headers=who["reader"])
    assert shown.status_code == 200, shown.text
    product = shown.json()
    assert product["dbt"]["model"] == "invoices" and product["description"] == "one row per invoice"
    assert [c["name"] for c in product["columns"]] == ["id"] and "email" not in shown.text
    assert product["downstream"] == [] and "refused" not in product
    # Another domain's principal sees neither the product nor that it exists.
    assert catalog.http.get(f"{M}/products", headers=who["outsider"]).json() == []
    assert "does not exist" in message(catalog.http.get(f"{M}/products/shop.invoices", headers=who["outsider"]), 404)


def test_an_admin_binds_a_dbt_project_to_another_namespace_in_the_policy_file(world):
    catalog, admin, who = world

    def apply(document: str, dry_run: bool = False):
        return catalog.http.post(f"{M}/policy", json={"document": document, "dry_run": dry_run}, headers=admin)

    def publish(headers, name: str, project: str):
        return create(catalog, headers, name, properties={**PUBLIC, "icemesh.dbt.project": project,
                                                          "icemesh.dbt.model": name})

    def products():
        return [p["name"] for p in catalog.http.get(f"{M}/products", headers=who["reader"]).json()]

    bind = "projects:\n  web_shop: {namespace: shop, owner: svc_producer}\n"
    # Unbound, project web_shop may not publish from shop: its products would live in namespace web_shop.
    assert "namespace of its name" in message(publish(who["producer"], "web_orders", "web_shop"), 403)
    # Mistakes name their line and change nothing; a plan changes nothing either.
    assert "line 2" in message(apply("projects:\n  web_shop: {namespace: shopp, owner: svc_producer}\n"), 400)
    assert "unknown owner 'svc_produce'" in message(apply(bind.replace("svc_producer", "svc_produce")), 400)
    assert "unknown key" in message(apply("projects:\n  web_shop: {namespaces: shop}\n"), 400)
    planned = apply(bind, dry_run=True).json()
    assert [c["line"] for c in planned["changes"]] == ["+ project web_shop"] and not planned["applied"]
    assert "namespace of its name" in message(publish(who["producer"], "web_orders", "web_shop"), 403)
    # Without owner:, the namespace's owner (here the admin that created it) publishes the project.
    assert apply("projects:\n  web_shop: {namespace: shop}\n").json()["applied"]
    assert "only its own principal" in message(publish(who["producer"], "web_orders", "web_shop"), 403)

    applied = apply(bind)
    assert applied.status_code == 200 and [c["line"] for c in applied.json()["changes"]] == ["~ project web_shop"]
    assert publish(who["producer"], "web_orders", "web_shop").status_code == 200
    assert "shop.web_orders" in products()
    # The binding names its principal: another one with the same rights on shop may not publish as web_shop.
    catalog.http.post(f"{M}/grants", json={"permissions": "CREATE_TABLE,DESCRIBE", "principal": "svc_appender",
                                           "namespace": "shop"}, headers=admin)
    assert "only its own principal" in message(publish(who["appender"], "web_refunds", "web_shop"), 403)
    # The same file again changes nothing, and leaves the project shop (bound by its first publish) alone.
    assert apply(bind).json()["changes"] == []
    assert "shop.invoices" in products()
    # Bound elsewhere, the project's old tables are no longer offered as its products.
    moved = apply("namespaces:\n  web: {}\nprojects:\n  web_shop: {namespace: web, owner: svc_producer}\n")
    assert moved.status_code == 200, moved.text
    assert "shop.web_orders" not in products() and "shop.invoices" in products()


def test_a_create_transaction_resolves_each_last_added_reference(world):
    """`-1` in set-current-schema / set-default-spec / set-default-sort-order means the last one added in the
    same commit (the REST spec): a create transaction with a second schema, spec and order ends on those."""
    catalog, admin, who = world
    wider = {"type": "struct", "schema-id": 1, "fields": SCHEMA["fields"] + [
        {"id": 3, "name": "country", "type": "string", "required": False}]}
    by_id = {"spec-id": 0, "fields": [{"source-id": 1, "field-id": 1000, "transform": "bucket[4]", "name": "id_bucket"}]}
    by_country = {"spec-id": 1, "fields": [{"source-id": 3, "field-id": 1001, "transform": "identity", "name": "country"}]}
    order = {"order-id": 1, "fields": [{"source-id": 3, "transform": "identity", "direction": "asc",
                                        "null-order": "nulls-first"}]}
    updates = [{"action": "assign-uuid", "uuid": "9c12d441-03fe-4693-9a96-a0705ddf69c1"},
               {"action": "upgrade-format-version", "format-version": 2},
               {"action": "add-schema", "schema": {**SCHEMA, "schema-id": 0}, "last-column-id": 2},
               {"action": "set-current-schema", "schema-id": -1},
               {"action": "add-spec", "spec": by_id}, {"action": "set-default-spec", "spec-id": -1},
               {"action": "add-sort-order", "sort-order": {"order-id": 0, "fields": []}},
               {"action": "set-default-sort-order", "sort-order-id": -1},
               {"action": "set-properties", "updates": PUBLIC},
               {"action": "add-schema", "schema": wider, "last-column-id": 3},
               {"action": "set-current-schema", "schema-id": -1},
               {"action": "add-spec", "spec": by_country}, {"action": "set-default-spec", "spec-id": -1},
               {"action": "add-sort-order", "sort-order": order}, {"action": "set-default-sort-order", "sort-order-id": -1}]
    staged = catalog.http.post(catalog.rest("/namespaces/shop/tables"), headers=who["producer"],
                               json={"name": "visits", "schema": SCHEMA, "stage-create": True, "properties": dict(PUBLIC)})
    assert staged.status_code == 200, staged.text
    response = commit(catalog, who["producer"], "visits", updates, [{"type": "assert-create"}])
    assert response.status_code == 200, response.text
    loaded = catalog.http.get(catalog.rest("/namespaces/shop/tables/visits"), headers=admin).json()["metadata"]
    assert loaded["current-schema-id"] == 1 and [f["name"] for f in loaded["schemas"][-1]["fields"]][-1] == "country"
    assert loaded["default-spec-id"] == 1 and loaded["default-sort-order-id"] == 1
    # With one of each, `-1` and the explicit id mean the same first one.
    single = [u for u in updates[:9]]
    catalog.http.post(catalog.rest("/namespaces/shop/tables"), headers=who["producer"],
                      json={"name": "visits_one", "schema": SCHEMA, "stage-create": True, "properties": dict(PUBLIC)})
    single[0] = {"action": "assign-uuid", "uuid": "0d4c2a43-5d1e-4d8e-8a39-5b7f3f0b2c11"}
    assert commit(catalog, who["producer"], "visits_one", single, [{"type": "assert-create"}]).status_code == 200
    one = catalog.http.get(catalog.rest("/namespaces/shop/tables/visits_one"), headers=admin).json()["metadata"]
    assert (one["current-schema-id"], one["default-spec-id"], one["default-sort-order-id"]) == (0, 0, 0)
