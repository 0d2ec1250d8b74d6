"""docker-compose.yml cannot run here (no Docker engine): check what can go wrong without one.

The catalog's command line is parsed by `icemesh serve`'s own click parser (an unknown or misspelt flag fails
here), its database, S3 endpoint and port point at the services that provide them, and every published port
is the one the README's Production section gives.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import yaml

from icemesh.cli.serve import serve

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _expand(value: str) -> str:
    """Compose's `${VAR:-default}` and `${VAR:?message}` as compose would with an empty environment
    (a required variable gets a placeholder)."""
    value = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{\w+:\?[^}]*\}", "required-value", value)


def _serve_params(command: list[str]) -> dict:
    assert command[:2] == ["icemesh", "serve"], command
    return serve.make_context("serve", [_expand(str(a)) for a in command[2:]]).params


def _published(service: dict) -> dict[int, int]:
    """container port -> host port; every one must be bound to 127.0.0.1."""
    ports = {}
    for spec in service.get("ports", []):
        host_ip, host_port, container_port = str(spec).split(":")
        assert host_ip == "127.0.0.1", f"{spec}: publish on 127.0.0.1 only"
        ports[int(container_port)] = int(host_port)
    return ports


def test_services_are_the_production_like_set():
    assert set(SERVICES) == {"postgres", "minio", "minio-init", "catalog", "spark-master", "spark-worker"}
    assert SERVICES["catalog"]["build"] == "."
    for name, service in SERVICES.items():
        image = service.get("image", "")
        assert image and not image.endswith(":latest") and ":" in image, f"{name}: pin the image ({image!r})"
    depends = SERVICES["catalog"]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["minio-init"]["condition"] == "service_completed_successfully"


def test_catalog_command_uses_only_real_serve_flags_and_reaches_its_services():
    params = _serve_params(SERVICES["catalog"]["command"])
    assert params["db"].startswith("postgresql://") and "@postgres:5432/" in params["db"]
    postgres = SERVICES["postgres"]["environment"]
    assert params["db"].endswith("/" + postgres["POSTGRES_DB"])
    assert params["warehouses"] == ("s3://warehouse/mesh",)
    assert "mb --ignore-existing local/warehouse" in SERVICES["minio-init"]["command"][0]  # the bucket exists
    endpoint = re.fullmatch(r"http://([\w-]+):(\d+)", params["s3_endpoint"])
    assert endpoint and endpoint.group(1) == "minio" and int(endpoint.group(2)) in _published(SERVICES["minio"])
    assert params["host"] == "0.0.0.0"  # inside its container; published on the host's 127.0.0.1 only
    assert _published(SERVICES["catalog"]) == {params["port"]: params["port"]}
    env = SERVICES["catalog"]["environment"]
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "ICEMESH_ADMIN_SECRET"} <= set(env)
    assert ":?" in env["ICEMESH_ADMIN_SECRET"], "no default admin secret: compose must demand one"


def test_the_parser_really_refuses_unknown_flags():
    with pytest.raises(click.NoSuchOption):
        serve.make_context("serve", ["--db", "sqlite:///x.db", "--s3-endpiont", "http://minio:9000"])


def test_dockerfile_runs_the_same_server():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^EXPOSE 8181$", dockerfile, re.M)
    cmd = yaml.safe_load(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))
    assert _serve_params(cmd)["port"] == 8181


def test_spark_defaults_point_at_the_catalog_and_minio():
    conf = dict(line.split(None, 1) for line in (ROOT / "config" / "spark-defaults.conf").read_text().splitlines()
                if line.strip() and not line.startswith("#"))
    port = _serve_params(SERVICES["catalog"]["command"])["port"]
    assert conf["spark.sql.catalog.mesh.uri"] == f"http://catalog:{port}"
    assert conf["spark.sql.catalog.mesh.s3.endpoint"] == _serve_params(SERVICES["catalog"]["command"])["s3_endpoint"]
    for name in ("spark-master", "spark-worker"):
        assert "./config/spark-defaults.conf:/opt/spark/conf/spark-defaults.conf:ro" in SERVICES[name]["volumes"]


def test_published_ports_match_the_readme():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Production"):]
    documented = {m.group(1): sorted(int(p) for p in m.group(2).split(","))
                  for m in re.finditer(r"^\| `([\w-]+)` \| ([\d, ]+) \|", section, re.M)}
    published = {name: sorted(_published(s).values()) for name, s in SERVICES.items() if s.get("ports")}
    assert documented == published
