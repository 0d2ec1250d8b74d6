"""Client secrets and tokens: generated with `secrets`, stored only as hashes.

Client secrets are hashed with scrypt (slow on purpose: they are long-lived); bearer tokens are random
256-bit values, so a single SHA-256 is enough to store them and lets every request look them up fast.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _secrets

_SCRYPT = dict(n=2**14, r=8, p=1, dklen=32)


def new_secret() -> str:
    return _secrets.token_urlsafe(32)


def new_token() -> str:
    return "icm_" + _secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    salt = _secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode("utf-8"), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(secret.encode("utf-8"), salt=base64.b64decode(salt_b64), **_SCRYPT)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
