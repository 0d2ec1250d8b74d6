"""Server-side scan planning: `POST .../tables/{table}/plan` and `POST .../tables/{table}/tasks` (Iceberg REST).

The server reads the manifests and answers with the data files (and delete files) a scan needs, with the caller's
policies applied first, as loading the table does: SELECT, column limits (a hidden column may not be selected,
filtered on or asked statistics of: a filter prunes files by the hidden values, which would leak them), no hidden
partition or sort source. Files come only from a snapshot of this table. A reader held to a data filter (read
restrictions) gets only files that may hold rows of its row filter (ANDed into the plan's filter), may not filter
on or ask statistics of a masked column (they would answer with unmasked values), and with a row filter may ask
no statistics at all (a file's bounds cover the rows it may not see); its client still applies the filter and
masks to the rows, as after a load.

Plans complete at once (`status: completed`) with a `plan-id`: `GET .../plan/{plan-id}` answers the same result
again and `DELETE` cancels it. A plan of more than PAGE files answers the first PAGE and a `plan-task` per further
page, served from what the plan kept (icemesh/catalog/plan_store.py). Ids and tasks belong to the principal and
table that planned; every call checks the caller's grants again, so a revoked grant fails the next page. A task
whose plan is no longer kept (expired, or made by another server process) is planned again from the request it
carries, as its caller, under the grants of that moment.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from pydantic import ValidationError
from pyiceberg.catalog.noop import NoopCatalog
from pyiceberg.catalog.rest.scan_planning import (CountMap, PlanTableScanRequest, RESTDataFile, RESTEqualityDeleteFile,
                                                  RESTPositionDeleteFile, ValueMap)
from pyiceberg.conversions import from_bytes
from pyiceberg.expressions import AlwaysTrue, And
from pyiceberg.expressions.visitors import bind, extract_field_ids
from pyiceberg.manifest import DataFileContent
from pyiceberg.table import Table

from icemesh.catalog.plan_store import Plan, PlanStore
from icemesh.errors import BadRequest, IcemeshError
from icemesh.governance.data_filters import Restrictions
from icemesh.governance.permissions import Permission
from icemesh.names import TableIdent
from icemesh.protocol import RequestContext
from icemesh.tables import row_filters

PAGE = max(1, int(os.environ.get("ICEMESH_PLAN_PAGE_SIZE", "1000")))  # files per answer; the rest as plan-tasks
TASK_PREFIX = "icemesh-plan-1."


class NoSuchPlanTask(IcemeshError):
    code = 404
    type = "NoSuchPlanTaskException"


class NoSuchPlanId(IcemeshError):
    code = 404
    type = "NoSuchPlanIdException"


class ScanPlanner:
    def __init__(self, catalog, store: PlanStore | None = None) -> None:
        self.catalog = catalog  # CatalogService: the table as this caller may read it
        self.store = store or PlanStore()

    def plan(self, ctx: RequestContext, prefix: str, ident: TableIdent, body: Any) -> dict[str, Any]:
        request = _request(body)
        schema, hidden_ids, snapshot_id, tasks, restrictions = self._files(ctx, prefix, ident, request, None)
        plan = Plan(ctx.principal.name, prefix, _key(ident), request, snapshot_id, schema, tasks, restrictions=restrictions.key())
        plan_id = self.store.add(plan)
        return self._answer(plan_id, plan, hidden_ids, prefix, ident)

    def fetch(self, ctx: RequestContext, prefix: str, ident: TableIdent, plan_id: str) -> dict[str, Any]:
        """The completed result again, under the caller's grants of now."""
        plan = self._plan(ctx, prefix, ident, plan_id)
        hidden_ids, restrictions = self._authorize(ctx, prefix, ident, plan.request, plan.schema)
        if restrictions.key() != plan.restrictions:
            raise NoSuchPlanId(f"Plan {plan_id[:40]!r} was made under another data filter of yours on {ident}: plan the "
                               "table again")
        return self._answer(plan_id, plan, hidden_ids, prefix, ident)

    def cancel(self, ctx: RequestContext, prefix: str, ident: TableIdent, plan_id: str) -> None:
        self._plan(ctx, prefix, ident, plan_id)
        self.store.cancel(plan_id)

    def tasks(self, ctx: RequestContext, prefix: str, ident: TableIdent, body: Any) -> dict[str, Any]:
        token = body.get("plan-task") if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise BadRequest("Body must be {\"plan-task\": \"...\"}, a plan-task from a plan of this table")
        task = _decode(token)
        missing = NoSuchPlanTask(f"No plan-task {token[:40]!r} for table {ident}: plan the table again")
        if (task is None or task.get("table") != list(_key(ident)) or task.get("prefix") != prefix
                or task.get("principal") != ctx.principal.name):
            raise missing
        page = int(task["page"])
        plan = self.store.get(task.get("plan-id"), ctx.principal.name, prefix, _key(ident))
        if plan is not None:
            if plan.cancelled:
                raise missing
            hidden_ids, restrictions = self._authorize(ctx, prefix, ident, plan.request, plan.schema)
            if restrictions.key() == plan.restrictions:
                return self._render(plan.tasks, page, plan.schema, self._stats_ids(plan.schema, plan.request, hidden_ids))
        # Expired, evicted, made by another server process or under another data filter: plan again, as this
        # caller, under today's grants.
        request = _request(task["request"])
        schema, hidden_ids, _, tasks, _restrictions = self._files(ctx, prefix, ident, request, task.get("snapshot-id"))
        return self._render(tasks, page, schema, self._stats_ids(schema, request, hidden_ids))

    def _plan(self, ctx: RequestContext, prefix: str, ident: TableIdent, plan_id: str) -> Plan:
        plan = self.store.get(plan_id, ctx.principal.name, prefix, _key(ident))
        if plan is None or plan.cancelled:
            raise NoSuchPlanId(f"No plan {plan_id[:40]!r} for table {ident}: plan the table again")
        return plan

    def _authorize(self, ctx: RequestContext, prefix: str, ident: TableIdent, request: PlanTableScanRequest,
                   schema) -> tuple[set[int], Restrictions]:
        """SELECT on the table and the request's columns, checked again on every call: grants change."""
        _wh, _entry, hidden_ids, restrictions = self.catalog.readable_table(ctx, prefix, ident)
        self._check_columns(ctx, ident, schema, request, hidden_ids, restrictions)
        return hidden_ids, restrictions

    def _files(self, ctx: RequestContext, prefix: str, ident: TableIdent, request: PlanTableScanRequest,
               snapshot_id: int | None) -> tuple[Any, set[int], int | None, list, Restrictions]:
        wh, entry, hidden_ids, restrictions = self.catalog.readable_table(ctx, prefix, ident)
        metadata = entry.model
        snapshot_id = snapshot_id if snapshot_id is not None else request.snapshot_id
        if snapshot_id is None:
            snapshot_id = metadata.current_snapshot_id
        if snapshot_id is not None and snapshot_id != -1 and metadata.snapshot_by_id(snapshot_id) is None:
            raise BadRequest(f"Table {ident} has no snapshot {snapshot_id}: plan one of its snapshots (or none: the "
                             "current one)")
        schema = metadata.schema()
        if request.use_snapshot_schema and snapshot_id not in (None, -1):
            snap = metadata.snapshot_by_id(snapshot_id)
            schema = next((s for s in metadata.schemas if s.schema_id == snap.schema_id), schema) if snap else schema
        self._check_columns(ctx, ident, schema, request, hidden_ids, restrictions)
        if snapshot_id in (None, -1):
            return schema, hidden_ids, None, [], restrictions
        table = Table(_key(ident), metadata, entry.location, wh.io, NoopCatalog("icemesh"))
        wanted = request.filter or AlwaysTrue()
        if restrictions.row_filter is not None:  # only files that may hold rows this reader may see
            wanted = And(wanted, row_filters.parse(restrictions.row_filter))
        scan = table.scan(row_filter=wanted, case_sensitive=request.case_sensitive, snapshot_id=snapshot_id)
        tasks = sorted(scan.plan_files(), key=lambda t: t.file.file_path)  # one order for every page
        return schema, hidden_ids, snapshot_id, tasks, restrictions

    def _answer(self, plan_id: str, plan: Plan, hidden_ids: set[int], prefix: str, ident: TableIdent
                ) -> dict[str, Any]:
        answer = self._render(plan.tasks, 0, plan.schema, self._stats_ids(plan.schema, plan.request, hidden_ids))
        pages = (len(plan.tasks) + PAGE - 1) // PAGE
        answer["plan-id"] = plan_id
        answer["plan-tasks"] = [_encode(plan_id, plan, p) for p in range(1, pages)]
        return answer

    @staticmethod
    def _render(tasks: list, page: int, schema, stats: set[int]) -> dict[str, Any]:
        deletes: list[dict[str, Any]] = []
        index: dict[str, int] = {}
        out = []
        for task in tasks[page * PAGE:(page + 1) * PAGE]:
            refs = []
            for delete in sorted(task.delete_files, key=lambda d: d.file_path):
                if delete.file_path not in index:
                    index[delete.file_path] = len(deletes)
                    deletes.append(_delete_file(delete))
                refs.append(index[delete.file_path])
            item: dict[str, Any] = {"data-file": _data_file(task.file, schema, stats)}
            if refs:
                item["delete-file-references"] = refs
            out.append(item)
        return {"status": "completed", "file-scan-tasks": out, "delete-files": deletes, "plan-tasks": []}

    def _check_columns(self, ctx: RequestContext, ident: TableIdent, schema, request: PlanTableScanRequest,
                       hidden_ids: set[int], restrictions: Restrictions) -> None:
        """Unknown names are the client's mistake (400); hidden ones are refused as reading them would be (403), and
        so are a masked column's values (filter, statistics) and, under a row filter, any statistics."""
        def field_id(name: str, what: str) -> int:
            try:
                found = schema.find_field(name, case_sensitive=request.case_sensitive)
            except ValueError:
                raise BadRequest(f"{what} names {name!r}, which is not a column of {ident}") from None
            return found.field_id

        refused = []
        for name in request.select or ():
            if field_id(name, "select") in hidden_ids:
                refused.append(name)
        for name in request.stats_fields or ():
            if field_id(name, "stats-fields") in hidden_ids:
                refused.append(name)
        if request.filter is not None:
            try:
                bound = bind(schema, request.filter, case_sensitive=request.case_sensitive)
            except ValueError as exc:
                raise BadRequest(f"filter cannot apply to {ident}: {exc}") from None
            refused += [schema.find_column_name(i) or str(i) for i in sorted(extract_field_ids(bound) & _with_children(
                schema, hidden_ids))]
        if refused:
            self.catalog.auth.deny(ctx, Permission.SELECT, f"table {ident}",
                                   f"{ctx.principal.name} may not read column(s) {', '.join(sorted(set(refused)))} of "
                                   f"{ident}: a plan may not select, filter on or ask statistics of a hidden column")
        if restrictions:
            self._check_restricted(ctx, ident, schema, request, restrictions)

    def _check_restricted(self, ctx: RequestContext, ident: TableIdent, schema, request: PlanTableScanRequest,
                          restrictions: Restrictions) -> None:
        masked = {f.field_id for f in schema.fields if f.name in restrictions.masks}
        masked = _with_children(schema, masked)
        named = sorted({n for n in request.stats_fields or ()
                        if schema.find_field(n, case_sensitive=request.case_sensitive).field_id in masked})
        if request.filter is not None:
            bound = bind(schema, request.filter, case_sensitive=request.case_sensitive)
            named += [schema.find_column_name(i) or str(i) for i in sorted(extract_field_ids(bound) & masked)]
        if named:
            self.catalog.auth.deny(ctx, Permission.SELECT, f"table {ident}",
                                   f"{ctx.principal.name} may read column(s) {', '.join(sorted(set(named)))} of {ident} "
                                   "only masked: a plan may not filter on or ask statistics of a masked column (it would "
                                   "answer with unmasked values); filter the masked rows in the query instead")
        if restrictions.rows is not None and request.stats_fields:
            self.catalog.auth.deny(ctx, Permission.SELECT, f"table {ident}",
                                   f"{ctx.principal.name} may read only some rows of {ident}: a plan may not ask "
                                   "statistics (stats-fields), which cover every row of a file; plan without them")

    @staticmethod
    def _stats_ids(schema, request: PlanTableScanRequest, hidden_ids: set[int]) -> set[int]:
        ids = set()
        for name in request.stats_fields or ():
            ids.add(schema.find_field(name, case_sensitive=request.case_sensitive).field_id)
        return ids - _with_children(schema, hidden_ids)


def _with_children(schema, ids: set[int]) -> set[int]:
    """Hidden top-level fields and every field nested in them."""
    out = set(ids)
    for field in schema.fields:
        if field.field_id in ids:
            out |= {f.field_id for f in _nested(field.field_type)}
    return out


def _nested(field_type) -> list:
    found = []
    for child in getattr(field_type, "fields", None) or []:
        found.append(child)
        found += _nested(child.field_type)
    for attr in ("element_field", "key_field", "value_field"):
        child = getattr(field_type, attr, None)
        if child is not None:
            found.append(child)
            found += _nested(child.field_type)
    return found


def _request(body: Any) -> PlanTableScanRequest:
    if not isinstance(body, dict):
        raise BadRequest("Body must be a JSON object (a PlanTableScanRequest)")
    try:
        request = PlanTableScanRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise BadRequest(f"Invalid scan plan request at {where}: {first.get('msg')}") from None
    if request.start_snapshot_id is not None or request.end_snapshot_id is not None:
        raise BadRequest("Incremental scan planning (start-snapshot-id, end-snapshot-id) is not supported: plan one "
                         "snapshot with snapshot-id")
    return request


def _key(ident: TableIdent) -> tuple[str, ...]:
    return (*ident.namespace.levels, ident.name)


def _encode(plan_id: str, plan: Plan, page: int) -> str:
    """Names the kept plan; carries the request too, so a server process that does not hold it can plan again."""
    payload = {"plan-id": plan_id, "principal": plan.owner, "prefix": plan.prefix, "table": list(plan.table),
               "page": page, "snapshot-id": plan.snapshot_id,
               "request": json.loads(plan.request.model_dump_json(by_alias=True, exclude_none=True))}
    return TASK_PREFIX + base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def _decode(token: str) -> dict[str, Any] | None:
    if not token.startswith(TASK_PREFIX) or len(token) > 65536:
        return None
    try:
        task = json.loads(base64.urlsafe_b64decode(token[len(TASK_PREFIX):].encode()))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(task, dict) or not isinstance(task.get("page"), int) or task["page"] < 1:
        return None
    return task


def _data_file(file, schema, stats: set[int]) -> dict[str, Any]:
    """The spec's DataFile; column statistics only of the visible fields the client asked for."""
    def counts(values):
        kept = {k: v for k, v in (values or {}).items() if k in stats}
        return CountMap(keys=list(kept), values=list(kept.values())) if kept else None

    def bounds(values):
        kept = {}
        for field_id, raw in (values or {}).items():
            if field_id in stats:
                field = schema.find_field(field_id)
                kept[field_id] = from_bytes(field.field_type, raw)
        return ValueMap(keys=list(kept), values=list(kept.values())) if kept else None

    model = RESTDataFile(**{
        "spec-id": file.spec_id, "partition": list(file.partition), "file-path": file.file_path,
        "file-format": file.file_format, "file-size-in-bytes": file.file_size_in_bytes,
        "record-count": file.record_count, "split-offsets": file.split_offsets, "sort-order-id": file.sort_order_id,
        "column-sizes": counts(file.column_sizes), "value-counts": counts(file.value_counts),
        "null-value-counts": counts(file.null_value_counts), "nan-value-counts": counts(file.nan_value_counts),
        "lower-bounds": bounds(file.lower_bounds), "upper-bounds": bounds(file.upper_bounds)})
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


def _delete_file(file) -> dict[str, Any]:
    common = {"spec-id": file.spec_id, "partition": list(file.partition), "file-path": file.file_path,
              "file-format": file.file_format, "file-size-in-bytes": file.file_size_in_bytes,
              "record-count": file.record_count}
    if file.content == DataFileContent.EQUALITY_DELETES:
        model = RESTEqualityDeleteFile(**common, **{"equality-ids": list(file.equality_ids or [])})
    else:
        model = RESTPositionDeleteFile(**common)
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")
