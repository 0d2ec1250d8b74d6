"""Server settings: the catalog database, the warehouses and where to listen."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

DEFAULT_DB = "sqlite:///.icemesh/catalog.db"
DEFAULT_WAREHOUSE = ".icemesh/warehouse"
DEFAULT_WAREHOUSE_NAME = "default"
SETTINGS_ENV = "ICEMESH_SERVER_SETTINGS"


@dataclass
class WarehouseSettings:
    name: str
    root: str
    properties: dict[str, str] = field(default_factory=dict)


@dataclass
class ServerSettings:
    db: str = DEFAULT_DB
    warehouses: list[WarehouseSettings] = field(
        default_factory=lambda: [WarehouseSettings(DEFAULT_WAREHOUSE_NAME, DEFAULT_WAREHOUSE)]
    )
    host: str = "127.0.0.1"
    port: int = 8181
    workers: int = 1
    access_log: bool = False
    max_body_bytes: int = 32 * 1024 * 1024
    token_ttl_s: int = 3600
    admin_secret_file: str = ".icemesh/admin-secret"
    backend: str = "sql"  # sql | glue
    glue_region: str | None = None
    glue_endpoint: str | None = None
    glue_catalog_id: str | None = None
    events_retention_days: float = 30.0  # the change feed keeps events this long
    scan_planning: str = "client"  # "server": clients are told to plan scans on the server (/plan)
    vend_credentials_role: str | None = None  # an IAM role ARN: loadTable vends keys scoped to the table (STS)
    vend_credentials_duration_s: int = 900
    sts_endpoint: str | None = None  # STS for vending (a stand-in such as moto); None: as boto3 finds it

    def aws(self):
        """AWS settings of the Glue backend (one warehouse, in S3)."""
        from icemesh.backends.aws.settings import AwsSettings
        from icemesh.errors import InvalidConfiguration

        if len(self.warehouses) != 1:  # one Glue catalog holds the tables: one warehouse (in S3 for AWS engines)
            raise InvalidConfiguration("--backend glue serves one warehouse: --warehouse s3://bucket/prefix")
        return AwsSettings(self.glue_region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "",
                           self.glue_endpoint, self.glue_catalog_id)

    def sts(self):
        """AWS settings of the STS client that vends storage credentials."""
        from icemesh.backends.aws.settings import AwsSettings
        from icemesh.storage import aws_environment

        s3_region = next((w.properties.get("s3.region") for w in self.warehouses if w.properties.get("s3.region")), None)
        return AwsSettings(s3_region or aws_environment.region() or "us-east-1",
                           self.sts_endpoint or aws_environment.endpoint_url("sts"))

    @property
    def default_warehouse(self) -> str:
        return self.warehouses[0].name

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> "ServerSettings":
        raw = json.loads(os.environ[SETTINGS_ENV])
        raw["warehouses"] = [WarehouseSettings(**w) for w in raw["warehouses"]]
        return cls(**raw)
