"""The fast tier: the catalog's ASGI app in this process, spoken to through Starlette's test client (no server
process, no port). For the service and governance logic; what users do with real clients is the other tier."""

from __future__ import annotations

import os
from dataclasses import dataclass

from starlette.testclient import TestClient

from icemesh.server.app import build_service, create_app
from icemesh.server.settings import ServerSettings, WarehouseSettings

M = "/management/v1"


@dataclass
class Catalog:
    http: TestClient
    prefix: str

    def login(self, client_id: str, secret: str) -> dict[str, str]:
        response = self.http.post("/v1/oauth/tokens", data={"grant_type": "client_credentials", "client_id": client_id,
                                                            "client_secret": secret, "scope": "catalog"})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def principal(self, admin: dict[str, str], name: str) -> dict[str, str]:
        created = self.http.post(f"{M}/principals", json={"name": name}, headers=admin)
        assert created.status_code in (200, 201), created.text
        return self.login(name, created.json()["client_secret"])

    def rest(self, path: str) -> str:
        return f"/v1/{self.prefix}{path}"


def start(tmp_path, warehouses: dict[str, str] | None = None) -> tuple[Catalog, dict[str, str], TestClient]:
    """A catalog on a fresh SQLite file; returns it, the admin's headers, and the client (close it when done)."""
    secret = "inprocess-admin-secret"
    os.environ["ICEMESH_ADMIN_SECRET"] = secret
    names = warehouses or {"default": str(tmp_path / "warehouse")}
    settings = ServerSettings(db=f"sqlite:///{tmp_path}/catalog.db",
                              warehouses=[WarehouseSettings(n, root) for n, root in names.items()])
    service = build_service(settings)
    service.authenticator.ensure_admin(None)
    client = TestClient(create_app(settings, service))
    client.__enter__()
    catalog = Catalog(client, next(iter(names)))
    return catalog, catalog.login("admin", secret), client


def shop_world(tmp_path, principals: tuple[str, ...] = ("producer", "reader", "outsider"),
               other_namespaces: tuple[str, ...] = ()):
    """The fast tier's usual world: governance tags namespace `shop` domain=shop; `svc_producer` may CREATE_TABLE
    and DESCRIBE there (it owns what it creates), `svc_reader` may SELECT `domain=shop AND sens=public`, the
    others nothing; `other_namespaces` are the admin's. Returns (catalog, admin headers, {name: headers}, client)."""
    catalog, admin, client = start(tmp_path)
    http = catalog.http
    http.post(f"{M}/tags", json={"key": "sens", "values": ["public", "internal", "confidential"]}, headers=admin)
    http.post(f"{M}/tags", json={"key": "domain", "values": ["shop", "billing"]}, headers=admin)
    who = {name: catalog.principal(admin, f"svc_{name}") for name in principals}
    for ns in ("shop", *other_namespaces):
        assert http.post(catalog.rest("/namespaces"), json={"namespace": [ns]}, headers=admin).status_code == 200
    http.post(f"{M}/tag-assignments", json={"key": "domain", "value": "shop", "namespace": "shop"}, headers=admin)
    for body in ({"permissions": "CREATE_TABLE,DESCRIBE", "principal": "svc_producer", "namespace": "shop"},
                 {"permissions": "SELECT,DESCRIBE", "principal": "svc_reader", "tags": ["domain=shop", "sens=public"]}):
        assert http.post(f"{M}/grants", json=body, headers=admin).status_code in (200, 201)
    return catalog, admin, who, client
