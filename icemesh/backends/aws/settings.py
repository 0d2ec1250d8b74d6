"""AWS clients for the Glue backend and Lake Formation: one place for region, endpoint and retries.

Keys come from the AWS default chain (environment, profile, instance role); icemesh never stores them.
An endpoint override points everything at a stand-in such as moto; without one, boto3 itself follows
AWS_ENDPOINT_URL_<SERVICE> / AWS_ENDPOINT_URL (S3 does the same through storage/aws_environment.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from icemesh.errors import IcemeshError, InvalidConfiguration


class AwsError(IcemeshError):
    """Glue or Lake Formation refused or failed a call icemesh cannot map to a catalog error."""

    code = 502
    type = "ServerErrorException"


@dataclass(frozen=True)
class AwsSettings:
    region: str
    endpoint: str | None = None
    catalog_id: str | None = None  # the AWS account whose Glue catalog is used; None: the caller's own

    def client(self, service: str, retries: int = 5) -> Any:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:  # pragma: no cover - the `aws` extra is part of every supported install
            raise InvalidConfiguration("The Glue backend needs boto3: pip install 'icemesh[aws]'") from None
        if not self.region:
            raise InvalidConfiguration("Name the AWS region of the Glue catalog: --glue-region REGION (or AWS_REGION)")
        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint or None,
                            config=Config(retries={"mode": "standard", "max_attempts": retries},
                                          connect_timeout=5, read_timeout=30))

    def account_id(self) -> str:
        """The catalog's account: given, or the caller's own (STS GetCallerIdentity)."""
        if self.catalog_id:
            return self.catalog_id
        try:
            return self.client("sts").get_caller_identity()["Account"]
        except Exception as exc:  # no credentials, no network: say so once, clearly
            raise InvalidConfiguration(f"Cannot find the AWS account (STS GetCallerIdentity failed: {describe(exc)}); "
                                       "check the AWS credentials or pass --catalog-id") from None


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def describe(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    error = response.get("Error", {})
    if error.get("Message") or error.get("Code"):
        return f"{error.get('Code', '')}: {error.get('Message', '')}".strip(": ")
    return str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
