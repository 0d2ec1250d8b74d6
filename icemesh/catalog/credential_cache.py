"""Vended credentials kept in memory for reuse by later loads of the same table by the same principal.

loadTable is the catalog's hottest call and pyiceberg and DuckDB ask for vended keys on every one; an STS
round trip each time would multiply its latency and run into STS's request quotas. Keys are reused only for
the same (principal, table location, read or write) and only while more than half their lifetime is left, so
a client never gets keys about to expire. Permissions are checked before every hand-out, cached or not: the
cache saves the STS call, never a decision. Memory only, bounded; never written anywhere.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable

from icemesh.catalog.ports import CredentialVendor, VendedCredentials

MAX_ENTRIES = 10_000


class CredentialCache:
    def __init__(self, vendor: CredentialVendor, clock: Callable[[], float] = time.time,
                 max_entries: int = MAX_ENTRIES) -> None:
        self.vendor = vendor
        self.clock = clock
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str, bool], tuple[float, VendedCredentials]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, location: str, write: bool, principal: str, fresh: bool = False) -> VendedCredentials:
        """Keys for the table; `fresh` always mints new ones (the credentials endpoint: a refresh)."""
        key = (principal, location, write)
        now = self.clock()
        if not fresh:
            with self._lock:
                found = self._entries.get(key)
                if found is not None:
                    minted, creds = found
                    if now < minted + (creds.expires_at_ms / 1000 - minted) / 2:
                        self._entries.move_to_end(key)
                        return creds
                    del self._entries[key]
        creds = self.vendor.vend(location, write, principal)
        with self._lock:
            self._entries[key] = (now, creds)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return creds
