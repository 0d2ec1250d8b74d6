"""What a scan plan computed, kept in memory for a while so its plan-id and plan-tasks are answered without reading
the manifests again.

Bounded three ways: a TTL, a number of plans and a number of files over all plans (the oldest go first; a plan
larger than the whole budget is not kept). Ids are random (`secrets`), and a plan is found only by the principal,
catalog prefix and table that made it: anyone else gets the same answer as for an id that never existed. A
cancelled id is remembered (as a tombstone, same bounds) so its plan-tasks are refused rather than planned again.
Per server process: with several workers, a plan-id made on one is unknown to the others.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

TTL = float(os.environ.get("ICEMESH_PLAN_TTL_SECONDS", "600"))
MAX_PLANS = max(1, int(os.environ.get("ICEMESH_PLAN_CACHE_PLANS", "256")))
MAX_FILES = max(1, int(os.environ.get("ICEMESH_PLAN_CACHE_FILES", "200000")))


@dataclass
class Plan:
    owner: str
    prefix: str
    table: tuple[str, ...]
    request: Any  # the PlanTableScanRequest, to re-check the caller's column limits on every page
    snapshot_id: int | None
    schema: Any
    tasks: list = field(default_factory=list)  # pyiceberg FileScanTasks, in page order
    restrictions: str = ""  # the reader's row filter and masks when planned (Restrictions.key): pages need the same
    cancelled: bool = False
    created: float = field(default_factory=time.monotonic)


class PlanStore:
    def __init__(self, ttl: float = TTL, max_plans: int = MAX_PLANS, max_files: int = MAX_FILES) -> None:
        self.ttl, self.max_plans, self.max_files = ttl, max_plans, max_files
        self._plans: OrderedDict[str, Plan] = OrderedDict()
        self._files = 0
        self._lock = threading.Lock()

    def add(self, plan: Plan) -> str:
        plan_id = secrets.token_urlsafe(24)
        if len(plan.tasks) > self.max_files:
            return plan_id  # answered, never kept: its plan-tasks plan again
        with self._lock:
            self._expire()
            self._plans[plan_id] = plan
            self._files += len(plan.tasks)
            while len(self._plans) > self.max_plans or self._files > self.max_files:
                self._drop(next(iter(self._plans)))
        return plan_id

    def get(self, plan_id: Any, owner: str, prefix: str, table: tuple[str, ...]) -> Plan | None:
        """The plan, cancelled or not, if this caller made it for this table; else None (as for no such id)."""
        if not isinstance(plan_id, str) or len(plan_id) > 64:
            return None
        with self._lock:
            self._expire()
            plan = self._plans.get(plan_id)
        if plan is None or (plan.owner, plan.prefix, plan.table) != (owner, prefix, table):
            return None
        return plan

    def cancel(self, plan_id: str) -> None:
        with self._lock:
            plan = self._plans.get(plan_id)
            if plan is not None and not plan.cancelled:
                self._files -= len(plan.tasks)
                plan.tasks, plan.cancelled = [], True

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.ttl
        while self._plans:
            oldest_id, oldest = next(iter(self._plans.items()))
            if oldest.created > cutoff:
                break
            self._drop(oldest_id)

    def _drop(self, plan_id: str) -> None:
        plan = self._plans.pop(plan_id)
        self._files -= len(plan.tasks)
