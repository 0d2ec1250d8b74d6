"""Trust between domains, as the catalog enforces it: a producer cannot pass for another project, and a
scratch warehouse's owner cannot tag production. A server with two warehouses (production `default` and
`scratch`), over plain HTTP."""

from __future__ import annotations

import uuid

import httpx
import pyarrow as pa
import pytest
from pyiceberg.exceptions import ForbiddenError, NoSuchTableError

from icemesh.governance import product_claims
from icemesh.management.products import _without_duplicate_claims
from icemesh.governance.resources import NamespaceRef
from icemesh.server.process import CatalogProcess

M = "/management/v1"
ROWS = pa.Table.from_pylist([{"id": 1, "secret": "s3cr3t"}],
                            schema=pa.schema([pa.field("id", pa.int64()), pa.field("secret", pa.string())]))


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    home = tmp_path_factory.mktemp("trust")
    with CatalogProcess(db=f"sqlite:///{home}/catalog.db", cwd=str(home),
                        warehouse=[f"default={home}/production", f"scratch={home}/scratch"]) as server:
        admin = server.client()
        sfx = uuid.uuid4().hex[:6]
        tag = f"sens_{sfx}"
        admin.request("POST", f"{M}/tags", json={"key": tag, "values": ["public", "confidential"]})
        secrets = {}
        for who in ("sales", "web", "consumer"):
            secrets[who] = admin.request("POST", f"{M}/principals", json={"name": f"svc_{who}"})["client_secret"]
        admin.request("POST", f"{M}/grants", json={"permissions": "SELECT,DESCRIBE", "principal": "svc_consumer",
                                                   "tags": [f"{tag}=public"]})

        def as_(who: str, warehouse: str | None = None):
            client = server.client(f"svc_{who}", secrets[who])
            return client.rest_catalog(**({"warehouse": warehouse} if warehouse else {}))

        def with_catalog_create(who: str, ns: str, warehouse: str | None = None) -> None:
            grant = {"permissions": "CREATE_TABLE", "principal": f"svc_{who}", "catalog": True}
            admin.request("POST", f"{M}/grants", json=grant)
            as_(who, warehouse).create_namespace(ns)
            admin.request("POST", f"{M}/grants/revoke", json=grant)

        with_catalog_create("sales", "sales")
        with_catalog_create("web", "web")
        with_catalog_create("web", "sales", "scratch")  # web owns `sales` in scratch only
        yield {"server": server, "admin": admin, "as": as_, "secrets": secrets, "tag": tag}


def claim(project: str, model: str, version: str = "") -> dict[str, str]:
    props = {product_claims.PROJECT: project, product_claims.MODEL: model}
    if version:
        props[product_claims.VERSION] = version
    return props


def test_a_producer_cannot_claim_another_projects_ref(mesh):
    web = mesh["as"]("web")
    with pytest.raises(ForbiddenError, match="cannot claim dbt project 'sales'"):
        web.create_table("web.orders", schema=ROWS.schema, properties=claim("sales", "orders"))
    sales = mesh["as"]("sales")
    sales.create_table("sales.orders", schema=ROWS.schema, properties=claim("sales", "orders"))  # binds sales
    table = web.create_table("web.plain", schema=ROWS.schema)
    with pytest.raises(ForbiddenError, match="cannot claim dbt project 'sales'"):  # not by a later property change
        table.transaction().set_properties(claim("sales", "orders")).commit_transaction()
    # Not even in the namespace of that name elsewhere: web owns scratch's `sales`, but the project is bound.
    with pytest.raises(ForbiddenError, match="only its own principal publishes it"):
        mesh["as"]("web", "scratch").create_table("sales.orders", schema=ROWS.schema, properties=claim("sales", "orders"))
    # One table per (project, model, version).
    with pytest.raises(Exception, match="already is"):
        sales.create_table("sales.orders_again", schema=ROWS.schema, properties=claim("sales", "orders"))
    sales.create_table("sales.orders_v2", schema=ROWS.schema, properties=claim("sales", "orders", "2"))
    products = mesh["server"].client("svc_consumer", mesh["secrets"]["consumer"]).request(
        "GET", f"{M}/products", params={"include_tables": "true"})
    claimed = [p["name"] for p in products if p["dbt"].get("project") == "sales"]
    assert "web.orders" not in claimed and "web.plain" not in claimed


def test_the_registry_refuses_claims_an_older_catalog_let_through():
    web = NamespaceRef(("web",))
    sales = NamespaceRef(("sales",))
    orders = product_claims.Claim("sales", "orders", "")
    assert product_claims.registry_refusal(orders, web, None) is not None
    assert product_claims.registry_refusal(orders, web, (sales, "svc_sales")) is not None
    assert product_claims.registry_refusal(orders, sales, (sales, "svc_sales")) is None
    twins = [{"name": n, "dbt": {"project": "sales", "model": "orders"}} for n in ("sales.a", "sales.b")]
    assert _without_duplicate_claims(twins + [{"name": "sales.c", "dbt": {}}]) == [{"name": "sales.c", "dbt": {}}]


def test_a_scratch_owner_cannot_tag_production(mesh):
    admin, tag = mesh["admin"], mesh["tag"]
    production = mesh["as"]("sales").create_table("sales.secret", schema=ROWS.schema)
    production.append(ROWS)
    scratch = mesh["as"]("web", "scratch").create_table("sales.secret", schema=ROWS.schema)
    scratch.append(ROWS)
    web = mesh["server"].client("svc_web", mesh["secrets"]["web"])
    # Governance's table tags apply in every warehouse: scratch's owner cannot override them there either.
    admin.request("POST", f"{M}/tag-assignments", json={"key": tag, "value": "confidential", "table": "sales.secret"})
    with pytest.raises(Exception, match="was set by governance"):
        web.request("POST", f"{M}/tag-assignments", json={"key": tag, "value": "public", "table": "sales.secret",
                                                          "warehouse": "scratch"})
    admin.request("POST", f"{M}/tag-assignments/remove", json={"key": tag, "table": "sales.secret"})
    admin.request("POST", f"{M}/tag-assignments", json={"key": tag, "value": "confidential", "table": "sales.secret",
                                                        "warehouse": "default"})
    # The owner of scratch's sales.secret tags it public... where it owns it.
    web.request("POST", f"{M}/tag-assignments", json={"key": tag, "value": "public", "table": "sales.secret",
                                                      "warehouse": "scratch"})
    with pytest.raises(Exception, match="lacks ALTER|you may see"):
        web.request("POST", f"{M}/tag-assignments", json={"key": tag, "value": "public", "table": "sales.secret"})
    consumer = mesh["server"].client("svc_consumer", mesh["secrets"]["consumer"])
    with pytest.raises(NoSuchTableError):
        consumer.rest_catalog().load_table("sales.secret")  # production: still confidential
    shown = admin.request("GET", f"{M}/effective-tags", params={"resource": "sales.secret"})
    assert shown["tags"][tag]["value"] == "confidential"
    in_scratch = admin.request("GET", f"{M}/effective-tags", params={"resource": "sales.secret", "warehouse": "scratch"})
    assert in_scratch["tags"][tag]["value"] == "public"


def test_declared_tags_land_with_the_first_rows_and_never_alone(mesh):
    """The least-privilege publish: CREATE_TABLE on its namespace is enough to create a tagged product."""
    import json

    admin, tag = mesh["admin"], mesh["tag"]
    sales = mesh["as"]("sales")
    declared = {"icemesh.tags": json.dumps([{"column": "", "key": tag, "value": "public"},
                                            {"column": "secret", "key": tag, "value": "confidential"}])}
    txn = sales.create_table_transaction("sales.tagged", schema=ROWS.schema, properties=declared)
    txn.append(ROWS)
    txn.commit_transaction()
    shown = admin.request("GET", f"{M}/effective-tags", params={"resource": "sales.tagged"})
    assert shown["tags"][tag]["value"] == "public" and shown["columns"]["secret"][tag]["value"] == "confidential"
    consumer = mesh["server"].client("svc_consumer", mesh["secrets"]["consumer"])
    limited = consumer.rest_catalog(**{"header.X-Icemesh-Column-Limits": "apply"}).load_table("sales.tagged")
    assert limited.scan().to_arrow().column_names == ["id"]
    # A failing commit (an unknown tag value) leaves neither tags nor rows.
    bad = {"icemesh.tags": json.dumps([{"column": "", "key": tag, "value": "secretish"}])}
    with pytest.raises(Exception, match="not an allowed value"):
        txn = sales.create_table_transaction("sales.untagged", schema=ROWS.schema, properties=bad)
        txn.append(ROWS)
        txn.commit_transaction()
    with pytest.raises(NoSuchTableError):
        sales.load_table("sales.untagged")
    missing = httpx.get(f"{mesh['server'].uri}{M}/effective-tags", params={"resource": "sales.untagged"},
                        headers=admin.headers(), timeout=30)
    assert missing.status_code == 404
    # A declared tag cannot lower one governance set.
    admin.request("POST", f"{M}/tag-assignments", json={"key": tag, "value": "confidential", "table": "sales.tagged"})
    table = sales.load_table("sales.tagged")
    lowered = {"icemesh.tags": json.dumps([{"column": "", "key": tag, "value": "public"}])}
    with pytest.raises(ForbiddenError, match="was set by governance"):
        table.transaction().set_properties(lowered).commit_transaction()
