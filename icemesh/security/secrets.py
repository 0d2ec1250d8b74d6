"""Client secrets and tokens: generated with `secrets`, stored only as hashes.

Client secrets are hashed with scrypt (slow on purpose: they are long-lived); bearer tokens are random
256-bit values, so a single SHA-256 is enough to store them and lets every request look them up fast.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _secrets
import threading
import time
from collections import OrderedDict

_SCRYPT = dict(n=2**14, r=8, p=1, dklen=32)


def new_secret() -> str:
    return _secrets.token_urlsafe(32)


def new_token() -> str:
    return "icm_" + _secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    salt = _secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode("utf-8"), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


class _RecentlyVerified:
    """Secrets that matched their stored hash in the last minutes, kept as keyed hashes (HMAC under a key made
    at start, never stored): a client that logs in again, as every dbt invocation does, skips scrypt.

    Only a match is remembered: a wrong secret always costs scrypt, and guessing is no faster. The mark covers
    the stored hash too, so a rotated or reset secret never matches through an old entry.
    """

    TTL_S, MAX = 600.0, 4096

    def __init__(self) -> None:
        self._key = _secrets.token_bytes(32)
        self._marks: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    def mark(self, secret: str, stored: str) -> bytes:
        return hmac.new(self._key, stored.encode("utf-8") + b"\0" + secret.encode("utf-8"), hashlib.sha256).digest()

    def seen(self, mark: bytes) -> bool:
        with self._lock:
            until = self._marks.get(mark)
            if until is None:
                return False
            if until < time.monotonic():
                del self._marks[mark]
                return False
            return True

    def add(self, mark: bytes) -> None:
        with self._lock:
            self._marks[mark] = time.monotonic() + self.TTL_S
            self._marks.move_to_end(mark)
            while len(self._marks) > self.MAX:
                self._marks.popitem(last=False)


_RECENT = _RecentlyVerified()


def verify_secret(secret: str, stored: str) -> bool:
    mark = _RECENT.mark(secret, stored)
    if _RECENT.seen(mark):
        return True
    if _scrypt_matches(secret, stored):
        _RECENT.add(mark)
        return True
    return False


def _scrypt_matches(secret: str, stored: str) -> bool:
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
