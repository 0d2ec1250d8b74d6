"""The change feed, read by a caller: `GET /management/v1/events?after=CURSOR`.

A catalog event is about a namespace or a table; a caller sees the events of what it may DESCRIBE now (a
dropped table's as far as its namespace's grants still show it), and a commit's snapshot id and summary
only where it may SELECT the table. Governance's events (`x-` types): a tag assignment as its resource, a
tag key to everyone (the vocabulary names no data), a grant to admins and its grantee, a policy apply to
admins. The cursor of the answer moves past events the caller may not see,
so a filtered reader neither rereads nor skips. Field names follow the Iceberg REST events proposal
(apache/iceberg#12584) where it has one: `event-id`, `timestamp-ms`, `operation-type`, `identifier`.
"""

from __future__ import annotations

from typing import Any

from icemesh.catalog.ports import CatalogEvent
from icemesh.errors import BadRequest, Unsupported
from icemesh.governance.permissions import Permission
from icemesh.governance.policy import PRINCIPAL, ROLE
from icemesh.governance.resources import NamespaceRef, TableRef
from icemesh.protocol import EVENT_TYPES, RequestContext

TYPES = frozenset(EVENT_TYPES)
MAX_LIMIT = 1000
MAX_WAIT_S = 30.0


class EventService:
    def __init__(self, catalog) -> None:
        self.catalog = catalog
        self.log = catalog.backend.events

    def read(self, ctx: RequestContext, after: int = 0, limit: int = 100, types: list[str] | None = None,
             wait: float = 0.0) -> dict[str, Any]:
        """Events after `after`, oldest first; with `wait`, hold the request until one arrives (at most 30 s)."""
        if self.log is None:
            raise Unsupported("This catalog's backend keeps no change feed")
        unknown = sorted(set(types or ()) - TYPES)
        if unknown:
            raise BadRequest(f"Unknown event type {unknown[0]!r}: use one of {', '.join(sorted(TYPES))}")
        if after < 0:
            raise BadRequest("after must be 0 (from the start) or an event-id from an earlier answer")
        limit = max(1, min(limit, MAX_LIMIT))
        wanted = frozenset(types) if types else None
        if wait > 0:
            self.log.wait(after, min(wait, MAX_WAIT_S))
        cursor, shown = after, []
        evaluators: dict[str, Any] = {}
        for event in self.log.read(after, limit, wanted):
            cursor = event.id
            if event.warehouse not in evaluators:  # the policy as of these events, not a snapshot from before
                # them: a table created in the same transaction as its event is visible to its grantees, and
                # the cursor never moves past an event its reader was wrongly refused
                evaluators[event.warehouse] = self.catalog.auth.evaluator(event.warehouse, fresh=True)
            seen = self._visible(ctx, event, evaluators[event.warehouse])
            if seen is not None:
                shown.append(seen)
        return {"events": shown, "next-after": cursor}

    def _visible(self, ctx: RequestContext, event: CatalogEvent, evaluator) -> dict[str, Any] | None:
        who = ctx.principal.name
        if event.type == "x-tag-key":  # the tag vocabulary names no data: everyone may list it
            return _json(event, reads=False)
        if event.type == "x-policy-apply":  # its lines name every grantee and target: for admins
            return _json(event, reads=False) if evaluator.is_admin(who) is not None else None
        if event.type == "x-grant":  # an admin's, or the grantee's own (as `icemesh grants list` shows them)
            grantee = event.detail["grantee"]
            mine = (grantee["type"] == PRINCIPAL and grantee["name"] == who) or \
                (grantee["type"] == ROLE and grantee["name"] in ctx.principal.roles)
            return _json(event, reads=False) if mine or evaluator.is_admin(who) is not None else None
        ns = NamespaceRef(tuple(event.namespace))
        if not event.name:
            if not evaluator.decide_namespace(who, Permission.DESCRIBE, ns, []).allowed:
                return None
            return _json(event, reads=False)
        names = [TableRef(ns, event.name)]
        destination = event.detail.get("destination")
        if destination:  # a rename: seen by whoever may see the table under its old or its new name
            names.append(TableRef(NamespaceRef(tuple(destination["namespace"])), destination["name"]))
        if not any(evaluator.decide_table(who, Permission.DESCRIBE, t).allowed for t in names):
            return None
        reads = any(evaluator.decide_table(who, Permission.SELECT, t).allowed for t in names)
        return _json(event, reads)


def _json(event: CatalogEvent, reads: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "event-id": event.id,
        "timestamp-ms": int(event.at * 1000),
        "operation-type": event.type,
        "principal": event.principal,
        "warehouse": event.warehouse,
        "identifier": {"namespace": list(event.namespace), **({"name": event.name} if event.name else {})},
    }
    for key in ("table-uuid", "destination", "purge", "key", "value", "values", "column", "change", "grant",
                "grantee", "permissions", "changes"):
        if key in event.detail and event.detail[key] not in ("", None):
            out[key] = event.detail[key]
    if reads and event.snapshot_id is not None:
        out["snapshot-id"] = event.snapshot_id
        if "summary" in event.detail:
            out["summary"] = event.detail["summary"]
    return out
