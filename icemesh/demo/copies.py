"""Measuring "no copies": fingerprints of every warehouse file, compared around each cross-domain read.

A consumer's build may write only into its own namespace, and a query writes nothing at all: anything else
found between two fingerprints is counted as bytes copied between domains.
"""

from __future__ import annotations

import hashlib
import os

Fingerprint = dict[str, tuple[int, str]]  # path relative to the warehouse -> (size, sha256)


def fingerprint(warehouse: str) -> Fingerprint:
    files: Fingerprint = {}
    for base, _dirs, names in os.walk(warehouse):
        for name in names:
            path = os.path.join(base, name)
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            files[os.path.relpath(path, warehouse)] = (os.path.getsize(path), digest.hexdigest())
    return files


def namespace_of(relative_path: str) -> str:
    return relative_path.split(os.sep, 1)[0]


def written(before: Fingerprint, after: Fingerprint) -> dict[str, int]:
    """Bytes of new or changed files between two fingerprints, per namespace."""
    out: dict[str, int] = {}
    for path, (size, digest) in after.items():
        if before.get(path, (None, None))[1] != digest:
            out[namespace_of(path)] = out.get(namespace_of(path), 0) + size
    return out


def copied_bytes(before: Fingerprint, after: Fingerprint, own_namespace: str | None) -> int:
    """Bytes written outside `own_namespace` (None: a pure read, so every written byte counts), plus any data
    file of another domain duplicated byte for byte into this one."""
    changes = written(before, after)
    outside = sum(size for ns, size in changes.items() if ns != own_namespace)
    others = {digest for path, (_s, digest) in before.items() if namespace_of(path) != own_namespace}
    duplicated = sum(size for path, (size, digest) in after.items()
                     if path not in before and namespace_of(path) == own_namespace and digest in others)
    return outside + duplicated
