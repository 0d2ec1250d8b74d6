"""The portal in a real headless Chromium against a real `icemesh serve`: each principal sees what the REST API
lets it DESCRIBE, hidden columns absent; search, product page, lineage SVG, login errors and redirects."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from icemesh.server.process import CatalogProcess

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "portal"
CHROMIUM = "/usr/bin/chromium"
M = "/management/v1"

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (make install)")
if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
    pytest.skip("chromium is not installed and apt-get could not install it (make test does)", allow_module_level=True)


def _product(catalog, name: str, columns: dict[str, pa.DataType], upstream: list[str], description: str, tags):
    ns, model = name.split(".")
    schema = pa.schema([pa.field(c, t) for c, t in columns.items()])
    props = {"comment": description, "icemesh.dbt.project": ns, "icemesh.dbt.model": model,
             "icemesh.dbt.access": "public", "icemesh.dbt.owner": json.dumps({"email": f"{ns}-team@example.com"}),
             "icemesh.dbt.upstream": json.dumps(upstream), "icemesh.dbt.tags": json.dumps(tags)}
    table = catalog.create_table(name, schema=schema, properties=props)
    table.append(pa.table({c: pa.array([1, 2], type=t) if pa.types.is_integer(t) else pa.array(["a", "b"], type=t)
                           for c, t in columns.items()}))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from pyiceberg.catalog import load_catalog

    home = tmp_path_factory.mktemp("portal")
    server = CatalogProcess(db=f"sqlite:///{home}/catalog.db", warehouse=str(home / "warehouse"), cwd=str(home)).start()
    try:
        http = httpx.Client(base_url=server.uri)
        token = http.post("/v1/oauth/tokens", data={"grant_type": "client_credentials", "client_id": "admin",
                                                    "client_secret": server.admin_secret}).json()["access_token"]
        admin = {"Authorization": f"Bearer {token}"}
        catalog = load_catalog("portal", type="rest", uri=server.uri, credential=f"admin:{server.admin_secret}",
                               **{"oauth2-server-uri": f"{server.uri}/v1/oauth/tokens"})
        for ns in ("sales", "finance"):
            catalog.create_namespace(ns)
        _product(catalog, "sales.customers", {"id": pa.int64(), "email": pa.string(), "region": pa.string()}, [],
                 "Every customer <script>alert(1)</script>", ["pii"])
        _product(catalog, "sales.orders", {"order_id": pa.int64(), "customer_id": pa.int64(), "amount": pa.int64()},
                 ["sales.customers"], "Orders as placed", ["core"])
        _product(catalog, "finance.revenue", {"month": pa.string(), "total": pa.int64()}, ["sales.orders"],
                 "Revenue per month", ["core"])
        secrets = {}
        for name in ("svc_analyst", "svc_finance"):
            created = http.post(f"{M}/principals", json={"name": name}, headers=admin)
            assert created.status_code == 201, created.text
            secrets[name] = created.json()["client_secret"]
        for body in ({"permissions": "DESCRIBE,SELECT", "principal": "svc_analyst", "table": "sales.orders"},
                     {"permissions": "DESCRIBE,SELECT", "principal": "svc_analyst", "table": "finance.revenue"},
                     {"permissions": "DESCRIBE", "principal": "svc_analyst", "table": "sales.customers"},
                     {"permissions": "SELECT", "principal": "svc_analyst", "table": "sales.customers",
                      "columns": ["id", "region"]},
                     {"permissions": "DESCRIBE,SELECT", "principal": "svc_finance", "table": "finance.revenue"}):
            assert http.post(f"{M}/grants", json=body, headers=admin).status_code == 201, body
        assert http.post(f"{M}/tags", json={"key": "domain", "values": ["sales", "finance"]}, headers=admin).status_code == 201
        assert http.post(f"{M}/tag-assignments", json={"key": "domain", "value": "sales", "namespace": "sales"},
                         headers=admin).status_code == 200
        finance = http.post("/v1/oauth/tokens", data={"grant_type": "client_credentials", "client_id": "svc_finance",
                                                      "client_secret": secrets["svc_finance"]}).json()["access_token"]
        refused = http.post(f"{M}/tags", json={"key": "x", "values": ["y"]},
                            headers={"Authorization": f"Bearer {finance}"})
        assert refused.status_code == 403  # a denial for the governance page's audit
        yield server, {"admin": server.admin_secret, **secrets}
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which("chromium") or CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _login(browser, server, who: str, secret: str):
    page = browser.new_context().new_page()
    page.goto(f"{server.uri}/login")
    page.fill("input[name=client_id]", who)
    page.fill("input[name=client_secret]", secret)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.uri}/")
    return page


def _products(page) -> list[str]:
    return page.eval_on_selector_all(".product", "els => els.map(e => e.dataset.name)")


def _columns(page) -> list[str]:
    return page.eval_on_selector_all("tr.column", "els => els.map(e => e.dataset.column)")


def test_unauthenticated_visit_redirects_to_login(world):
    server, _ = world
    response = httpx.get(f"{server.uri}/products/sales.orders", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"


def test_wrong_password_shows_one_line_error(world, browser):
    server, _ = world
    page = browser.new_context().new_page()
    page.goto(f"{server.uri}/")
    assert page.url.endswith("/login")
    page.fill("input[name=client_id]", "svc_analyst")
    page.fill("input[name=client_secret]", "wrong")
    page.click("button[type=submit]")
    error = page.inner_text("#error")
    assert "wrong client_secret" in error and "\n" not in error
    assert not page.context.cookies()
    page.screenshot(path=str(ARTIFACTS / "login-error.png"))


def test_each_principal_sees_what_it_may_describe(world, browser):
    server, secrets = world
    admin = _login(browser, server, "admin", secrets["admin"])
    assert _products(admin) == ["finance.revenue", "sales.customers", "sales.orders"]
    admin.goto(f"{server.uri}/products/sales.customers")
    assert _columns(admin) == ["id", "email", "region"]
    assert admin.inner_text("#may-read") == "all columns"
    assert "<script>alert(1)</script>" in admin.inner_text("main") and admin.locator("main script").count() == 0

    analyst = _login(browser, server, "svc_analyst", secrets["svc_analyst"])
    cookie = analyst.context.cookies()[0]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert _products(analyst) == ["finance.revenue", "sales.customers", "sales.orders"]
    analyst.goto(f"{server.uri}/products/sales.customers")
    assert _columns(analyst) == ["id", "region"]
    assert "email" not in analyst.content()
    assert analyst.inner_text("#may-read") == "these columns: id, region"
    analyst.screenshot(path=str(ARTIFACTS / "product-column-limited.png"), full_page=True)

    finance = _login(browser, server, "svc_finance", secrets["svc_finance"])
    assert _products(finance) == ["finance.revenue"]
    finance.screenshot(path=str(ARTIFACTS / "home-finance.png"), full_page=True)
    finance.goto(f"{server.uri}/products/sales.customers")
    assert "does not exist (or you may not see it)" in finance.inner_text("main")
    finance.goto(f"{server.uri}/lineage")
    assert finance.locator("svg.lineage .node").count() == 1  # no upstream it may not see
    finance.click("text=Log out")
    assert finance.url.endswith("/login")
    finance.goto(f"{server.uri}/")
    assert finance.url.endswith("/login")


def test_search_by_column_name_and_facets(world, browser):
    server, secrets = world
    page = _login(browser, server, "admin", secrets["admin"])
    page.fill("input[name=q]", "customer_id")
    page.click("form[action='/'] button")
    assert _products(page) == ["sales.orders"]
    page.goto(f"{server.uri}/?domain=finance")
    assert _products(page) == ["finance.revenue"]
    page.goto(f"{server.uri}/?tag=pii")
    assert _products(page) == ["sales.customers"]
    page.goto(f"{server.uri}/")
    page.screenshot(path=str(ARTIFACTS / "home-admin.png"), full_page=True)
    analyst = _login(browser, server, "svc_analyst", secrets["svc_analyst"])
    analyst.goto(f"{server.uri}/?q=email")
    assert _products(analyst) == []  # a hidden column is not searchable either


def test_product_page_freshness_ref_and_lineage(world, browser):
    server, secrets = world
    page = _login(browser, server, "svc_analyst", secrets["svc_analyst"])
    page.click("text=sales.orders")
    assert page.inner_text("#freshness").startswith("updated ")
    assert page.inner_text("#ref") == "{{ ref('sales', 'orders') }}"
    assert "finance.revenue" in page.inner_text("main")  # downstream
    page.screenshot(path=str(ARTIFACTS / "product.png"), full_page=True)
    page.goto(f"{server.uri}/lineage")
    cross = page.locator("svg.lineage path.edge.cross")
    assert cross.count() == 1
    assert cross.get_attribute("data-from") == "sales.orders" and cross.get_attribute("data-to") == "finance.revenue"
    assert page.locator("svg.lineage g.domain").count() == 2
    page.screenshot(path=str(ARTIFACTS / "lineage.png"), full_page=True)
    page.click("svg.lineage a.node >> text=finance.revenue")
    page.wait_for_url(f"{server.uri}/products/finance.revenue")


def test_portal_open_prints_the_url(world):
    from click.testing import CliRunner

    from icemesh.cli.main import cli

    server, _ = world
    result = CliRunner().invoke(cli, ["portal", "open", "--uri", server.uri, "--output", "json"])
    assert result.exit_code == 0 and json.loads(result.output) == {"url": f"{server.uri}/", "opened": False}
    assert httpx.get(json.loads(result.output)["url"], follow_redirects=True).url.path == "/login"


def test_product_history_and_inherited_tags(world, browser):
    server, secrets = world
    page = _login(browser, server, "svc_analyst", secrets["svc_analyst"])
    page.goto(f"{server.uri}/products/sales.customers")  # column-limited: its history still shows
    assert page.locator("#history td").first.inner_text().isdigit()
    assert "append" in page.inner_text("#history")
    assert "domain=sales" in page.inner_text("#tags") and "namespace sales" in page.inner_text("#tags")


def test_governance_page_is_for_admins(world, browser):
    server, secrets = world
    analyst = _login(browser, server, "svc_analyst", secrets["svc_analyst"])
    response = analyst.goto(f"{server.uri}/governance")
    assert response.status == 403 and "needs ADMIN" in analyst.inner_text("main")
    admin = _login(browser, server, "admin", secrets["admin"])
    admin.goto(f"{server.uri}/governance")
    assert "svc_finance" in admin.inner_text("#principals")
    assert "columns id, region" in admin.inner_text("#grants")
    assert "domain" in admin.inner_text("#tags")
    denied = admin.locator("#audit tr.denied")
    rows = denied.all_inner_texts()
    assert any("svc_finance" in r and "DENY" in r for r in rows) and any("wrong client_secret" in r for r in rows)
    admin.screenshot(path=str(ARTIFACTS / "governance.png"), full_page=True)
