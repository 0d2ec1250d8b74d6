"""Enforcement: the service asks here before every operation; the pure Evaluator decides.

Each decision is audited. The policy snapshot is cached per warehouse and reloaded when its version
changes: checked at most every `refresh_s`, at once after this process changes governance, and
again before a denial, so a grant or a new owner (also one made through another server process)
counts immediately; a revocation made through another process takes effect within `refresh_s`.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterable

from icemesh.protocol import RequestContext
from icemesh.catalog.ports import AuditLog, AuditRecord, PolicyStore
from icemesh.names import Namespace, TableIdent
from icemesh.errors import Forbidden
from icemesh.governance.evaluator import Decision, Evaluator
from icemesh.governance.permissions import Permission
from icemesh.governance.resources import NamespaceRef, TableRef


def table_ref(ident: TableIdent) -> TableRef:
    return TableRef(NamespaceRef(ident.namespace.levels), ident.name)


def namespace_ref(ns: Namespace) -> NamespaceRef:
    return NamespaceRef(ns.levels)


class Authorizer:
    def __init__(self, policy: PolicyStore, audit: AuditLog, refresh_s: float = 1.0) -> None:
        self.policy = policy
        self.audit_log = audit
        self.refresh_s = refresh_s
        self._evaluators: dict[str, tuple[Evaluator, int, float]] = {}
        self._lock = threading.Lock()
        self._force_recheck = False

    def evaluator(self, warehouse: str, fresh: bool = False) -> Evaluator:
        """The cached evaluator; `fresh` re-checks the policy version now (used before any denial)."""
        now = time.monotonic()
        cached = self._evaluators.get(warehouse)
        if cached is not None and now - cached[2] < self.refresh_s and not fresh:
            return cached[0]
        version = self.policy.policy_version()
        if cached is not None and cached[1] == version:
            self._evaluators[warehouse] = (cached[0], version, now)
            return cached[0]
        with self._lock:
            policy = self.policy.load_policy(warehouse)
            evaluator = Evaluator(policy)
            self._evaluators[warehouse] = (evaluator, policy.version, now)
        return evaluator

    def invalidate(self) -> None:
        """Governance changed here: reload before the next decision."""
        self._evaluators.clear()

    def note_new_owner(self) -> None:
        """A namespace or table was just created: the next denial must look at the current policy.

        Cheaper than `invalidate` (which reloads the whole policy on the next request): bulk creates by
        an already-permitted principal never pay a reload, while a creator who is denied by a snapshot
        from before its create is re-evaluated at once.
        """
        self._force_recheck = True

    def _recheck(self, warehouse: str) -> Evaluator | None:
        """Before a denial: the current evaluator if the policy may have changed since the snapshot."""
        cached = self._evaluators.get(warehouse)
        if not self._force_recheck and cached is not None and time.monotonic() - cached[2] < 0.05:
            return None  # just checked: many denials in a row (a filtered listing) cost one version query
        self._force_recheck = False
        return self.evaluator(warehouse, fresh=True)

    # -- checks ------------------------------------------------------------------------------------

    def table(self, ctx: RequestContext, warehouse: str, action: Permission, ident: TableIdent,
              columns: Iterable[str] = (), enforce: bool = True, audit: bool = True) -> Decision:
        columns = list(columns)
        decision = self.evaluator(warehouse).decide_table(ctx.principal.name, action, table_ref(ident), columns)
        if not decision.allowed:  # a grant or a new owner may be newer than the snapshot
            current = self._recheck(warehouse)
            if current is not None:
                decision = current.decide_table(ctx.principal.name, action, table_ref(ident), columns)
        return self._record(ctx, decision, enforce, audit)

    def namespace(self, ctx: RequestContext, warehouse: str, action: Permission, ns: Namespace,
                  tables_within: Callable[[], Iterable[TableIdent]] | None = None, enforce: bool = True,
                  audit: bool = True) -> Decision:
        """`tables_within` is called only when a DESCRIBE is not decided by the namespace itself (it reads
        every table below the namespace), so admins, owners and namespace grants never pay for it."""
        decision = self._decide_namespace(self.evaluator(warehouse), ctx, action, ns, tables_within)
        if not decision.allowed:
            current = self._recheck(warehouse)
            if current is not None:
                decision = self._decide_namespace(current, ctx, action, ns, tables_within)
        return self._record(ctx, decision, enforce, audit)

    @staticmethod
    def _decide_namespace(evaluator: Evaluator, ctx: RequestContext, action: Permission, ns: Namespace,
                          tables_within: Callable[[], Iterable[TableIdent]] | None) -> Decision:
        decision = evaluator.decide_namespace(ctx.principal.name, action, namespace_ref(ns))
        if decision.allowed or action is not Permission.DESCRIBE or tables_within is None:
            return decision
        return evaluator.decide_namespace(ctx.principal.name, action, namespace_ref(ns),
                                          [table_ref(t) for t in tables_within()])

    def catalog(self, ctx: RequestContext, warehouse: str, action: Permission) -> Decision:
        """Catalog-level actions: creating a top-level namespace needs CREATE_TABLE on the catalog (or ADMIN)."""
        evaluator = self.evaluator(warehouse)
        principal = ctx.principal.name
        admin = evaluator.is_admin(principal)
        if admin is not None:
            decision = Decision(True, principal, action, "the catalog", str(admin), (admin.id,))
        else:
            grant = next((g for g in evaluator.grants_for(principal) if g.catalog and action in g.permissions), None)
            decision = Decision(grant is not None, principal, action, "the catalog",
                                str(grant) if grant else f"no grant gives {action} on the catalog",
                                (grant.id,) if grant else ())
        return self._record(ctx, decision, True)

    def admin(self, ctx: RequestContext, warehouse: str, what: str) -> Decision:
        decision = self.evaluator(warehouse).may_administer(ctx.principal.name)
        if not decision.allowed:
            decision = Decision(False, decision.principal, Permission.ADMIN, what, decision.reason)
        return self._record(ctx, decision, True)

    def deny(self, ctx: RequestContext, action: Permission, resource: str, message: str) -> None:
        """Refuse for a reason the evaluator does not see (e.g. a client that cannot apply column limits)."""
        self.audit_log.audit(AuditRecord(time.time(), ctx.principal.name, str(action), resource, False, message,
                                          ctx.request_id))
        raise Forbidden(message)

    def audit_refusal(self, ctx: RequestContext | None, method: str, path: str, message: str) -> None:
        """A refused request that no permission decided (a bad location, a file outside the table...)."""
        principal = ctx.principal.name if ctx is not None else "anonymous"
        self.audit_log.audit(AuditRecord(time.time(), principal, method, path, False, message,
                                          ctx.request_id if ctx is not None else None))

    def record(self, ctx: RequestContext, decision: Decision) -> None:
        """Audit a decision made earlier and repeated now (a kept loadTable answer: catalog/load_cache.py)."""
        self._record(ctx, decision, False)

    def _record(self, ctx: RequestContext, decision: Decision, enforce: bool, audit: bool = True) -> Decision:
        if audit:
                self.audit_log.audit(AuditRecord(time.time(), decision.principal, str(decision.action), decision.resource,
                                              decision.allowed, decision.reason if decision.allowed else decision.message(),
                                              ctx.request_id))
        if enforce and not decision.allowed:
            raise Forbidden(decision.message())
        return decision
