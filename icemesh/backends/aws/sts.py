"""Vended storage credentials from STS: AssumeRole with an inline session policy for one table's prefix.

The role (`serve --vend-credentials-role`) holds what every vended key may do at most; the session policy
(icemesh.storage.session_policy) narrows each key to one table and to reading or writing. The server's own
AWS credentials come from the default chain and need only sts:AssumeRole on that role. Keys are returned to
the caller and nothing else: never logged, never stored.
"""

from __future__ import annotations

import json
import re
from typing import Any

from icemesh.backends.aws.settings import AwsError, AwsSettings, describe
from icemesh.catalog.ports import VendedCredentials
from icemesh.storage.session_policy import session_policy

MIN_DURATION_S = 900  # STS's bounds for DurationSeconds
MAX_DURATION_S = 43200
_SESSION_NAME_UNSAFE = re.compile(r"[^\w+=,.@-]")


def session_name(principal: str) -> str:
    """RoleSessionName (2-64 of `\\w+=,.@-`): shows in CloudTrail which principal used the key."""
    return ("icemesh-" + _SESSION_NAME_UNSAFE.sub("_", principal))[:64]


class StsCredentialVendor:
    def __init__(self, aws: AwsSettings, role_arn: str, duration_s: int = MIN_DURATION_S) -> None:
        if not role_arn.startswith("arn:"):
            raise ValueError(f"--vend-credentials-role {role_arn!r} is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)")
        if not MIN_DURATION_S <= duration_s <= MAX_DURATION_S:
            raise ValueError(f"--vend-credentials-duration {duration_s} is outside STS's {MIN_DURATION_S}..{MAX_DURATION_S} s")
        self.aws = aws
        self.role_arn = role_arn
        self.duration_s = duration_s
        self._client: Any = None

    def _sts(self) -> Any:
        if self._client is None:
            self._client = self.aws.client("sts")
        return self._client

    def vend(self, location: str, write: bool, principal: str) -> VendedCredentials:
        policy = json.dumps(session_policy(location, write), separators=(",", ":"))
        try:
            answer = self._sts().assume_role(RoleArn=self.role_arn, RoleSessionName=session_name(principal),
                                             Policy=policy, DurationSeconds=self.duration_s)
        except Exception as exc:  # the reason, never the request (it holds no secret, but the answer would)
            raise AwsError(f"Could not vend storage credentials (STS AssumeRole on {self.role_arn} failed: "
                           f"{describe(exc)}); check the role's trust policy and the server's AWS credentials") from None
        creds = answer["Credentials"]
        return VendedCredentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"],
                                 int(creds["Expiration"].timestamp() * 1000), write)
