"""The S3 session policy that scopes vended credentials to one table's files (pure: no I/O).

STS AssumeRole intersects the role's own policies with this document, so a vended key reaches only the
table's prefix, whatever the role allows. The prefix always ends in `/`: `wh/orders/` never matches
`wh/orders_secret/...`. IAM reads `*`, `?` and `$` in a resource or a StringLike value as wildcards and
variables; a table location holding one is written with IAM's escapes (`${*}`, `${?}`, `${$}`), so a name
can never widen the policy.
"""

from __future__ import annotations

READ_ACTIONS = ("s3:GetObject",)
WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject")
S3_SCHEMES = ("s3", "s3a", "s3n")


def table_prefix(location: str) -> tuple[str, str]:
    """(bucket, key prefix ending in `/`) of an S3 table location; ValueError for anything else."""
    # Split by hand, not with urlparse: S3 keys may hold `?` and `#`, which a URL parser would cut off as a query
    # or a fragment, turning `t?x` into a policy for `t/`.
    scheme, sep, rest = location.partition("://")
    bucket, _slash, key = rest.partition("/")
    if not sep or scheme not in S3_SCHEMES or not bucket:
        raise ValueError(f"{location!r} is not an S3 location (s3://bucket/prefix)")
    key = key.strip("/")
    if not key:
        raise ValueError(f"{location!r} is a whole bucket: credentials are vended for a table's prefix only")
    return bucket, key + "/"


def _escape(text: str) -> str:
    """IAM's literal forms of its wildcard and variable characters (`$` first: the escapes contain one)."""
    return text.replace("$", "${$}").replace("*", "${*}").replace("?", "${?}")


def session_policy(location: str, write: bool) -> dict:
    """The inline session policy for one table: read its objects and list its prefix; writers may also put
    and delete objects under it. Nothing else: no other prefix, no bucket-wide action."""
    bucket, prefix = table_prefix(location)
    objects = f"arn:aws:s3:::{_escape(bucket)}/{_escape(prefix)}*"
    statements = [
        {"Sid": "ReadTableFiles", "Effect": "Allow", "Action": list(READ_ACTIONS), "Resource": [objects]},
        {"Sid": "ListTableFiles", "Effect": "Allow", "Action": ["s3:ListBucket"],
         "Resource": [f"arn:aws:s3:::{_escape(bucket)}"],
         "Condition": {"StringLike": {"s3:prefix": [_escape(prefix), _escape(prefix) + "*"]}}},
    ]
    if write:
        statements.append({"Sid": "WriteTableFiles", "Effect": "Allow", "Action": list(WRITE_ACTIONS),
                           "Resource": [objects]})
    return {"Version": "2012-10-17", "Statement": statements}
