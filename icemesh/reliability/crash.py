"""kill -9 the catalog server during a commit storm, restart it, verify (benchmarks/crash.py runs many cycles)."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from typing import Any, Callable

from icemesh.reliability.workload import append_batch, append_schema, rest_catalog, verify_catalog, widen_request

NS = "storm"
PAIR = ["a", "b"]
LEASE_S = 2  # idempotency claims of a dead server are taken over after this (ICEMESH_IDEMPOTENCY_LEASE_SECONDS)


class Storm:
    """Writers that run until the server dies, remembering everything it acknowledged."""

    def __init__(self, uri: str, token: str, prefix: str, cycle: int, appenders: int, tables: int) -> None:
        self.uri, self.token, self.prefix, self.cycle = uri, token, prefix, cycle
        self.appenders, self.tables = appenders, tables
        self.acked_appends: list[tuple[str, int]] = []
        self.acked_columns: list[str] = []
        self.acked_creates: list[str] = []
        self.in_flight: tuple[str, dict, str] | None = None  # (idempotency key, body, column)
        self.counts = {"appends": 0, "transactions": 0, "creates": 0, "retries": 0}
        self.unexpected: list[str] = []  # an HTTP answer no client should get (5xx while the server is up...)

    def _append(self, writer: int) -> None:
        from pyiceberg.exceptions import CommitFailedException

        ident = f"{NS}.t{writer % self.tables}"
        try:
            table = rest_catalog(self.uri, self.token, f"w{writer}").load_table(ident)
            for seq in range(10**6):
                while True:
                    try:
                        table.append(append_batch(writer, self.cycle * 10**6 + seq))
                        break
                    except CommitFailedException:
                        self.counts["retries"] += 1
                        table.refresh()
                self.acked_appends.append((ident, table.metadata.current_snapshot_id))
                self.counts["appends"] += 1
        except Exception:
            return  # the server died

    def _transact(self) -> None:
        import httpx

        try:
            with httpx.Client(base_url=self.uri, headers={"Authorization": f"Bearer {self.token}"}, timeout=30) as http:
                for i in range(10**6):
                    column = f"x{self.cycle}_{i}"
                    key = str(uuid.uuid4())
                    while True:
                        body = widen_request(http, self.prefix, NS, PAIR, column)
                        self.in_flight = (key, body, column)
                        response = http.post(f"/v1/{self.prefix}/transactions/commit", json=body,
                                             headers={"Idempotency-Key": key})
                        self.in_flight = None
                        if response.status_code == 409:
                            self.counts["retries"] += 1
                            key = str(uuid.uuid4())
                            continue
                        if response.status_code != 204:
                            self.unexpected.append(f"transaction: {response.status_code} {response.text[:200]}")
                            return
                        break
                    self.acked_columns.append(column)
                    self.counts["transactions"] += 1
        except Exception:
            return

    def _create(self) -> None:
        try:
            catalog = rest_catalog(self.uri, self.token, "creator")
            for i in range(10**6):
                ident = f"{NS}.c{self.cycle}_{i}"
                catalog.create_table(ident, schema=append_schema())
                self.acked_creates.append(ident)
                self.counts["creates"] += 1
        except Exception:
            return

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._append, args=(w,)) for w in range(self.appenders)]
        threads += [threading.Thread(target=self._transact), threading.Thread(target=self._create)]
        for t in threads:
            t.start()
        return threads


def setup(uri: str, token: str, tables: int) -> None:
    catalog = rest_catalog(uri, token)
    catalog.create_namespace(NS)
    for i in range(tables):
        catalog.create_table(f"{NS}.t{i}", schema=append_schema())
    for name in PAIR:
        catalog.create_table(f"{NS}.{name}", schema=append_schema())


def check_after_restart(db_url: str, server, token: str, prefix: str, storms: list[Storm]) -> list[str]:
    import httpx

    report = verify_catalog(db_url, server.uri, token, [[f"{NS}.{t}" for t in PAIR]], namespace=NS)
    problems = list(report["problems"])
    catalog = rest_catalog(server.uri, token, "checker")
    last = storms[-1]
    if last.in_flight is not None:  # the client never got an answer: retry exactly that request
        key, body, column = last.in_flight
        with httpx.Client(base_url=server.uri, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            started = time.monotonic()
            retry = http.post(f"/v1/{prefix}/transactions/commit", json=body, headers={"Idempotency-Key": key})
            waited = time.monotonic() - started
        if retry.status_code not in (204, 409):
            problems.append(f"retry of the in-flight transaction after the crash: {retry.status_code} {retry.text[:200]} "
                            f"after {waited:.1f} s")
        elif retry.status_code == 409 or retry.headers.get("idempotent-replayed") != "true":
            last.in_flight_outcome = "re-ran" if retry.status_code == 204 else "refused: had landed"
        else:
            last.in_flight_outcome = "replayed"
        if retry.status_code == 204:
            last.acked_columns.append(column)
        elif retry.status_code == 409:  # its requirements no longer hold: only because it had landed
            last.acked_columns.append(column)
    histories: dict[str, set[int]] = {}
    for storm in storms:
        for ident, snapshot_id in storm.acked_appends:
            if ident not in histories:
                table = catalog.load_table(ident)
                histories[ident] = {s.snapshot_id for s in table.snapshots()}
            if snapshot_id not in histories[ident]:
                problems.append(f"acknowledged append {snapshot_id} to {ident} is gone")
        for ident in storm.acked_creates:
            if not catalog.table_exists(ident):
                problems.append(f"acknowledged create of {ident} is gone")
    columns = [f.name for f in catalog.load_table(f"{NS}.{PAIR[0]}").schema().fields]
    for storm in storms:
        for column in storm.acked_columns:
            if columns.count(column) != 1:
                problems.append(f"acknowledged transaction column {column} appears {columns.count(column)} times")
    return problems


def run_crash_cycles(db_url: str, home: str, cycles: int, appenders: int = 3, tables: int = 2,
                     storm_s: tuple[float, float] = (0.3, 1.5), seed: int | None = None,
                     say: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Start, storm, kill -9, restart and verify `cycles` times on one database and warehouse."""
    from icemesh.server.process import CatalogProcess

    import logging

    logging.getLogger("pyiceberg").setLevel(logging.ERROR)  # its own commit retries are expected here
    rng = random.Random(seed)
    secret = uuid.uuid4().hex
    warehouse = os.path.join(home, "warehouse")

    def server(cycle: int) -> CatalogProcess:
        return CatalogProcess(db=db_url, warehouse=warehouse, cwd=home, admin_secret=secret,
                              log_path=os.path.join(home, f"server-{cycle}.log"),
                              env={"ICEMESH_IDEMPOTENCY_LEASE_SECONDS": str(LEASE_S)}).start()

    current = server(0)
    storms: list[Storm] = []
    outcomes: list[dict[str, Any]] = []
    try:
        admin = current.client()
        token, prefix = admin.token(), admin.prefix()
        setup(current.uri, token, tables)
        for cycle in range(cycles):
            storm = Storm(current.uri, token, prefix, cycle, appenders, tables)
            threads = storm.start()
            storm_time = rng.uniform(*storm_s)
            time.sleep(storm_time)
            current.stop(kill=True)  # SIGKILL: no shutdown hooks, no flush
            for t in threads:
                t.join(60)
            storms.append(storm)
            current = server(cycle + 1)
            problems = check_after_restart(db_url, current, token, prefix, storms) + storm.unexpected
            outcome = {"cycle": cycle + 1, "storm_s": round(storm_time, 2), **storm.counts,
                       "in_flight_transaction": getattr(storm, "in_flight_outcome", None), "problems": problems}
            outcomes.append(outcome)
            say(f"cycle {cycle + 1}/{cycles}: killed after {storm_time:.2f} s ({storm.counts['appends']} appends, "
                f"{storm.counts['transactions']} transactions, {storm.counts['creates']} creates acknowledged; "
                f"in-flight transaction: {outcome['in_flight_transaction'] or 'none'}) -> "
                f"{'OK' if not problems else 'PROBLEMS: ' + '; '.join(problems[:3])}")
    finally:
        current.stop()
    return {"cycles": cycles, "outcomes": outcomes, "problems": sum(len(o["problems"]) for o in outcomes),
            "appends": sum(o["appends"] for o in outcomes), "transactions": sum(o["transactions"] for o in outcomes),
            "creates": sum(o["creates"] for o in outcomes),
            "in_flight_retried": sum(1 for o in outcomes if o["in_flight_transaction"])}

