"""Logins that cannot take the catalog down: failures back off per client id and per address, and secret
hashing (slow on purpose) runs on a small pool of its own with a bounded queue, so a flood of logins is
refused early instead of starving the threads that serve loads and commits.

State is in memory, per server process: a restart forgets it (as a login throttle may), and with
`--workers N` each process counts its own.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, TypeVar

T = TypeVar("T")

# Failures allowed before backoff starts: few per client id (someone guessing one secret), more per address
# (many people can share one, behind a NAT or a notebook server). Then 1 s, 2 s, 4 s ... per further failure.
FREE_FAILURES = {"id": 5, "ip": 20}
MAX_DELAY_S = {"id": 300.0, "ip": 60.0}
BASE_DELAY_S = 1.0
FORGET_AFTER_S = 3600.0    # a key quiet this long starts over
HASH_WORKERS = 2
HASH_QUEUE = 32            # logins waiting for a hashing thread beyond this are refused at once


class TooManyLogins(Exception):
    def __init__(self, retry_after_s: float, message: str) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.message = message
        self.first = True


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    blocked_until: float = 0.0
    refusals: int = 0  # attempts refused while blocked (only the first of a block is worth an audit row)


class LoginGuard:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: dict[str, _Failures] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=HASH_WORKERS, thread_name_prefix="icemesh-login")
        self._slots = threading.BoundedSemaphore(HASH_QUEUE)

    def check(self, client_id: str, address: str) -> None:
        """Raise TooManyLogins while the client id or the address is backing off (its `first` says whether
        it is the first refusal of this block: a flood of refusals is audited once, not once per request)."""
        now = self._clock()
        with self._lock:
            for key in (f"id:{client_id}", f"ip:{address}"):
                entry = self._failures.get(key)
                if entry is not None and entry.blocked_until > now:
                    wait = entry.blocked_until - now
                    entry.refusals += 1
                    refused = TooManyLogins(wait, f"Too many failed logins; retry in {max(1, round(wait))} s")
                    refused.first = entry.refusals == 1
                    raise refused

    def failed(self, client_id: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) > 100_000:  # bounded memory under a spray of random ids
                self._failures = {k: v for k, v in self._failures.items() if now - v.last < FORGET_AFTER_S}
            for kind, key in (("id", f"id:{client_id}"), ("ip", f"ip:{address}")):
                entry = self._failures.setdefault(key, _Failures())
                if now - entry.last > FORGET_AFTER_S:
                    entry.count = 0
                entry.count += 1
                entry.last = now
                if entry.count >= FREE_FAILURES[kind]:
                    delay = min(BASE_DELAY_S * 2 ** min(entry.count - FREE_FAILURES[kind], 20), MAX_DELAY_S[kind])
                    entry.blocked_until = now + delay
                    entry.refusals = 0

    def succeeded(self, client_id: str) -> None:
        with self._lock:
            self._failures.pop(f"id:{client_id}", None)

    def run(self, work: Callable[[], T]) -> Future:
        """Run a login's hashing on the login pool; refuse at once when the queue is full."""
        if not self._slots.acquire(blocking=False):
            raise TooManyLogins(1.0, "Too many logins in progress; retry in a moment")
        try:
            future = self._pool.submit(work)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _f: self._slots.release())
        return future
