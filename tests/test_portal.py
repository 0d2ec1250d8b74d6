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


def _product(catalog, name: str, columns: dict[str, pa.DataType], upstream: list[str], description: str, tags,
             **dbt):
    """A product as dbt publishes it (`icemesh.dbt.*` properties, JSON where dbt's are), written twice by two
    invocations; `dbt` adds properties (group, version, freshness, contract...)."""
    ns, model = name.split(".")
    docs = dbt.pop("docs", {})
    schema = pa.schema([pa.field(c, t, metadata={"doc": docs[c]} if c in docs else None) for c, t in columns.items()])
    props = {"comment": description, "icemesh.dbt.project": ns, "icemesh.dbt.model": model,
             "icemesh.dbt.access": "public", "icemesh.dbt.owner": json.dumps({"email": f"{ns}-team@example.com"}),
             "icemesh.dbt.upstream": json.dumps(upstream), "icemesh.dbt.tags": json.dumps(tags),
             **{f"icemesh.dbt.{k}": v if isinstance(v, str) else json.dumps(v) for k, v in dbt.items()}}
    table = catalog.create_table(name, schema=schema, properties=props)
    rows = pa.table({c: pa.array([1, 2], type=t) if pa.types.is_integer(t) else pa.array(["a", "b"], type=t)
                     for c, t in columns.items()})
    table.append(rows, snapshot_properties={"icemesh.dbt.invocation_id": f"inv-{model}-1"})
    table.append(rows, snapshot_properties={"icemesh.dbt.invocation_id": f"inv-{model}-2"})


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
                 "Every customer <script>alert(1)</script>", ["pii"], group="crm", docs={"id": "The customer's key"},
                 freshness={"warn_after": {"count": 12, "period": "hour"}, "error_after": {"count": 1, "period": "day"}},
                 contract={"enforced": True, "columns": [{"name": "id", "data_type": "bigint", "not_null": True},
                                                         {"name": "email", "data_type": "varchar", "not_null": False},
                                                         {"name": "region", "data_type": "varchar(8)", "not_null": False}]})
        _product(catalog, "sales.orders", {"order_id": pa.int64(), "customer_id": pa.int64(), "amount": pa.int64()},
                 ["sales.customers"], "Orders as placed", ["core"], version="2", latest_version="3",
                 deprecation_date="2027-01-31",  # past warn_after (a millisecond), long before error_after
                 freshness={"warn_after": {"count": 0.00001, "period": "minute"}, "error_after": {"count": 1, "period": "day"}})
        _product(catalog, "finance.revenue", {"month": pa.string(), "total": pa.int64()}, ["sales.orders"],
                 "Revenue per month", ["core"], freshness={"error_after": {"count": 0.00001, "period": "minute"}})
        secrets = {}
        for name in ("svc_analyst", "svc_finance", "svc_browse"):
            created = http.post(f"{M}/principals", json={"name": name}, headers=admin)
            assert created.status_code == 201, created.text
            secrets[name] = created.json()["client_secret"]
        for body in ({"permissions": "DESCRIBE,SELECT", "principal": "svc_analyst", "table": "sales.orders"},
                     {"permissions": "DESCRIBE,SELECT", "principal": "svc_analyst", "table": "finance.revenue"},
                     {"permissions": "DESCRIBE", "principal": "svc_analyst", "table": "sales.customers"},
                     {"permissions": "SELECT", "principal": "svc_analyst", "table": "sales.customers",
                      "columns": ["id", "region"]},
                     {"permissions": "DESCRIBE,SELECT", "principal": "svc_finance", "table": "finance.revenue"},
                     {"permissions": "DESCRIBE", "principal": "svc_browse", "table": "sales.orders"}):
            assert http.post(f"{M}/grants", json=body, headers=admin).status_code == 201, body
        assert http.post(f"{M}/tags", json={"key": "domain", "values": ["sales", "finance"]}, headers=admin).status_code == 201
        assert http.post(f"{M}/tag-assignments", json={"key": "domain", "value": "sales", "namespace": "sales"},
                         headers=admin).status_code == 200
        assert http.post(f"{M}/tags", json={"key": "pii", "values": ["email"]}, headers=admin).status_code == 201
        assert http.post(f"{M}/tag-assignments", json={"key": "pii", "value": "email", "table": "sales.customers",
                                                       "column": "email"}, headers=admin).status_code == 200
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
    assert "icemesh_portal" not in {c["name"] for c in page.context.cookies()}
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
    assert page.inner_text("#freshness").startswith("warn: updated ")  # past its warn_after
    assert page.inner_text("#ref") == "{{ ref('sales', 'orders', v=2) }}"
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


def test_product_page_shows_contract_freshness_history_and_usage(world, browser):
    server, secrets = world
    admin = _login(browser, server, "admin", secrets["admin"])
    admin.goto(f"{server.uri}/products/sales.customers")
    assert "sales-team@example.com" in admin.inner_text("#owner") and "dbt group crm" in admin.inner_text("#owner")
    assert admin.inner_text("#domain").startswith("sales (dbt project sales, model customers)")
    assert admin.inner_text("#access") == "public"
    assert admin.get_attribute("#freshness", "data-level") == "fresh"
    assert "warn after 12 h, error after 24 h" in admin.inner_text("#freshness-detail")
    declared = dict(zip(_columns(admin), admin.locator("tr.column td.declared").all_inner_texts()))
    assert declared == {"id": "bigint", "email": "varchar", "region": "varchar(8)"}  # the producer's, not Iceberg's
    required = dict(zip(_columns(admin), admin.locator("tr.column td.required").all_inner_texts()))
    assert required == {"id": "yes", "email": "no", "region": "no"}
    assert "The customer's key" in admin.inner_text("tr.column[data-column=id]")  # the column's doc
    assert "dbt contract enforced" in admin.inner_text("#contract")
    email_row = admin.inner_text("tr.column[data-column=email]")
    assert "pii=email" in email_row and "from column sales.customers.email" in email_row
    assert "domain=sales" in email_row and "from namespace sales" in email_row  # inherited down to the column
    history = admin.locator("#history tr").all_inner_texts()[1:]
    assert len(history) == 2 and "inv-customers-2" in history[0] and "inv-customers-1" in history[1]
    assert "\t2\t4\t1\t2\t" in history[0]  # rows added, rows, files added, files of the newest
    assert "4 rows in 2 files" in admin.inner_text("#current") and "inv-customers-2" in admin.inner_text("#current")
    assert admin.inner_text("#may-read") == "all columns" and admin.locator("#ask").count() == 0
    assert admin.inner_text("#query") == "icemesh query 'select id, email, region from sales.customers limit 10'"

    admin.goto(f"{server.uri}/products/sales.orders")
    assert admin.get_attribute("#freshness", "data-level") == "warn"
    assert admin.inner_text("#freshness").startswith("warn: updated ")
    assert admin.inner_text("#version").startswith("v2 (latest v3)")
    assert "deprecated: removed after 2027-01-31" in admin.inner_text("#deprecation")
    assert admin.inner_text("#ref") == "{{ ref('sales', 'orders', v=2) }}"
    assert admin.inner_text("#upstream") == "sales.customers" and admin.inner_text("#downstream") == "finance.revenue"
    admin.screenshot(path=str(ARTIFACTS / "product-admin.png"), full_page=True)
    admin.goto(f"{server.uri}/products/finance.revenue")
    assert admin.get_attribute("#freshness", "data-level") == "error"
    assert "no enforced dbt contract" in admin.inner_text("#contract").lower()

    analyst = _login(browser, server, "svc_analyst", secrets["svc_analyst"])
    analyst.goto(f"{server.uri}/products/sales.customers")
    assert "icemesh grant SELECT --to svc_analyst --table sales.customers" in analyst.inner_text("#ask")
    assert list(dict(zip(_columns(analyst), analyst.locator("tr.column td.declared").all_inner_texts()))) == ["id", "region"]
    assert "email" not in analyst.content() and "varchar," not in analyst.content()  # not even via the contract


def test_describe_only_principal_may_read_nothing_and_learns_the_grant(world, browser):
    server, secrets = world
    page = _login(browser, server, "svc_browse", secrets["svc_browse"])
    assert _products(page) == ["sales.orders"]
    page.goto(f"{server.uri}/products/sales.orders")
    assert page.inner_text("#may-read") == "nothing" and page.get_attribute("#may-read", "data-level") == "none"
    assert "icemesh grant SELECT --to svc_browse --table sales.orders" in page.inner_text("#ask")
    assert _columns(page) == [] and page.locator("#history-none").count() == 1
    assert page.inner_text("#upstream") == "-" and page.inner_text("#downstream") == "-"  # neither is visible to it
    assert "sales.customers" not in page.content() and "finance.revenue" not in page.content()
    page.screenshot(path=str(ARTIFACTS / "product-describe-only.png"), full_page=True)


def test_hostile_principal_learns_nothing_of_hidden_products(world, browser):
    server, secrets = world
    finance = _login(browser, server, "svc_finance", secrets["svc_finance"])
    for hidden in ("sales.customers", "sales.orders", "sales.nope"):  # hidden and missing look the same
        response = finance.goto(f"{server.uri}/products/{hidden}")
        assert response.status == 404
        assert finance.inner_text("main").startswith(f"Product {hidden} does not exist (or you may not see it)")
    finance.goto(f"{server.uri}/products/finance.revenue")
    assert finance.inner_text("#upstream") == "-"  # its upstream sales.orders is not named
    assert "sales." not in finance.content()
    for url in ("/lineage", "/lineage?focus=sales.orders", "/lineage?focus=finance.revenue", "/?q=sales",
                "/?tag=domain%3Dsales", "/?domain=sales"):
        finance.goto(f"{server.uri}{url}")
        assert "sales.orders" not in finance.content() and "sales.customers" not in finance.content(), url
    finance.goto(f"{server.uri}/lineage?focus=sales.orders")
    assert finance.inner_text("#missing") == "That product does not exist (or you may not see it)"
    assert finance.locator("svg.lineage .node.focus").count() == 0


def test_lineage_highlights_one_products_upstream_and_downstream(world, browser):
    server, secrets = world
    page = _login(browser, server, "admin", secrets["admin"])
    page.goto(f"{server.uri}/products/sales.orders")
    page.click("#lineage-link")
    assert page.url.endswith("/lineage?focus=sales.orders")
    assert page.eval_on_selector_all("svg.lineage a.node.focus", "els => els.map(e => e.dataset.name)") == ["sales.orders"]
    assert page.eval_on_selector_all("svg.lineage a.node.up", "els => els.map(e => e.dataset.name)") == ["sales.customers"]
    assert page.eval_on_selector_all("svg.lineage a.node.down", "els => els.map(e => e.dataset.name)") == ["finance.revenue"]
    assert page.locator("svg.lineage path.edge.hl").count() == 2
    page.screenshot(path=str(ARTIFACTS / "lineage-focus.png"), full_page=True)
    page.goto(f"{server.uri}/lineage")
    assert page.locator("svg.lineage path.edge.hl").count() == 0


def test_home_pages_and_facets_by_governance_tags(world, browser):
    server, secrets = world
    page = _login(browser, server, "admin", secrets["admin"])
    page.goto(f"{server.uri}/?size=2")
    assert _products(page) == ["finance.revenue", "sales.customers"]
    assert page.inner_text("#count").startswith("1-2 of 3 matching") and page.locator("#prev").count() == 0
    page.click("#next")
    assert _products(page) == ["sales.orders"] and "page 2 of 2" in page.inner_text("#pager")
    assert page.locator("#next").count() == 0
    page.click("#prev")
    assert _products(page) == ["finance.revenue", "sales.customers"]
    facets = page.eval_on_selector_all("#facet-tag a", "els => els.map(e => e.dataset.value)")
    assert "domain=sales" in facets and "pii" in facets  # assigned by an admin on the namespace, and dbt's own
    page.click("#facet-tag a[data-value='domain=sales']")
    assert _products(page) == ["sales.customers", "sales.orders"] and "size=2" in page.url
    page.goto(f"{server.uri}/?domain=finance")
    assert _products(page) == ["finance.revenue"]
    for bad, message in (("page=abc", "page must be a whole number, not 'abc'"), ("page=0", "page must be 1 or more"),
                         ("size=5000", "size must be from 1 to 200")):
        response = page.goto(f"{server.uri}/?{bad}")
        assert response.status == 400 and page.inner_text("main p.error") == message
    page.goto(f"{server.uri}/?page=99&size=2")
    assert _products(page) == ["sales.orders"]  # past the end: the last page


def test_forms_refuse_cross_site_posts(world, browser):
    server, secrets = world
    raw = httpx.Client(base_url=server.uri)
    good = {"client_id": "admin", "client_secret": secrets["admin"]}
    forged = raw.post("/login", data=good)  # right credentials, no token: a login CSRF
    assert forged.status_code == 403 and "icemesh_portal" not in forged.cookies
    assert "did not come from the portal" in forged.text and "Traceback" not in forged.text
    form = raw.get("/login")
    token = form.cookies["icemesh_portal_csrf"]
    assert f'name="csrf" value="{token}"' in form.text
    raw.cookies.set("icemesh_portal_csrf", token)
    assert raw.post("/login", data={**good, "csrf": "x" + token}).status_code == 403
    assert raw.post("/login", data={**good, "csrf": token}, headers={"Origin": "http://evil.example"}).status_code == 403
    assert "icemesh_portal" not in raw.cookies
    ok = raw.post("/login", data={**good, "csrf": token}, headers={"Origin": server.uri})
    assert ok.status_code == 303 and "icemesh_portal" in ok.cookies
    session = ok.cookies["icemesh_portal"]

    victim = httpx.Client(base_url=server.uri, cookies={"icemesh_portal": session})
    refused = victim.post("/logout")  # another site's logout form has no token
    assert refused.status_code == 403 and "icemesh_portal" not in refused.headers.get("set-cookie", "")
    assert victim.get("/", follow_redirects=False).status_code == 200  # still logged in
    page = browser.new_context().new_page()
    page.context.add_cookies([{"name": "icemesh_portal", "value": session, "url": server.uri}])
    page.goto(f"{server.uri}/")
    page.click("text=Log out")  # the portal's own form carries the token
    assert page.url.endswith("/login") and "icemesh_portal" not in {c["name"] for c in page.context.cookies()}


def test_a_revoked_grant_or_a_new_snapshot_shows_at_once(world, browser):
    """The portal keeps each principal's view per catalog version: a grant or a commit is seen on the next page."""
    server, secrets = world
    http = httpx.Client(base_url=server.uri)
    token = http.post("/v1/oauth/tokens", data={"grant_type": "client_credentials", "client_id": "admin",
                                                "client_secret": secrets["admin"]}).json()["access_token"]
    admin = {"Authorization": f"Bearer {token}"}
    finance = _login(browser, server, "svc_finance", secrets["svc_finance"])
    assert _products(finance) == ["finance.revenue"]  # its view is now kept
    grant = {"permissions": "DESCRIBE", "principal": "svc_finance", "table": "sales.orders"}
    assert http.post(f"{M}/grants", json=grant, headers=admin).status_code == 201
    finance.goto(f"{server.uri}/")
    assert _products(finance) == ["finance.revenue", "sales.orders"]
    assert http.post(f"{M}/grants/revoke", json=grant, headers=admin).status_code == 200
    finance.goto(f"{server.uri}/")
    assert _products(finance) == ["finance.revenue"]
    finance.goto(f"{server.uri}/products/sales.orders")
    assert "does not exist (or you may not see it)" in finance.inner_text("main")

    from pyiceberg.catalog import load_catalog

    finance.goto(f"{server.uri}/products/finance.revenue")
    before = len(finance.locator("#history tr").all_inner_texts())
    catalog = load_catalog("portal", type="rest", uri=server.uri, credential=f"admin:{secrets['admin']}",
                           **{"oauth2-server-uri": f"{server.uri}/v1/oauth/tokens"})
    table = catalog.load_table("finance.revenue")
    table.append(pa.table({"month": pa.array(["c"]), "total": pa.array([3], type=pa.int64())}))
    finance.goto(f"{server.uri}/products/finance.revenue")
    assert len(finance.locator("#history tr").all_inner_texts()) == before + 1


def test_freshness_levels_follow_the_declared_thresholds():
    from icemesh.freshness import assess

    hour = {"count": 1, "period": "hour"}
    now = 1_000_000.0
    at = lambda age_s: int((now - age_s) * 1000)  # noqa: E731
    both = {"freshness": {"warn_after": hour, "error_after": {"count": 2, "period": "hours"}}}
    assert [assess(both, at(a), now).level for a in (10, 3601, 7201)] == ["fresh", "warn", "error"]
    assert assess({}, at(10**5), now).level == "unknown"  # no thresholds: an age, never a verdict
    assert assess(both, None, now).level == "empty"
    assert assess({"freshness": {"warn_after": {"count": "x"}, "error_after": {"period": "fortnight", "count": 1}}},
                  at(10**5), now).level == "unknown"  # thresholds it cannot read are not made up
