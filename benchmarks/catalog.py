"""Catalog benchmark: loadTable throughput/latency over HTTP, pyiceberg in-process baseline, concurrent commits.

    .venv/bin/python benchmarks/catalog.py              # full run (1,000 tables), about 2-3 minutes
    .venv/bin/python benchmarks/catalog.py --quick      # 200 tables, short phases, for iteration
    .venv/bin/python benchmarks/catalog.py --db postgres               # scratch PostgreSQL database
    .venv/bin/python benchmarks/catalog.py --db postgresql://postgres@127.0.0.1:5432/icemesh_bench
    .venv/bin/python benchmarks/catalog.py --quick --load-only --workers 2   # loadTable phases only

What it does:
  1. starts a real `icemesh serve` (CatalogProcess) on a temp dir (SQLite by default) and creates
     N namespaces x M tables through pyiceberg's RestCatalog, each with one or two appended snapshots;
  2. loadTable (GET /v1/{prefix}/namespaces/{ns}/tables/{t}) on random tables from several client
     processes (threads with persistent http.client connections, then keep-alive `requests` Sessions, one
     per thread) at concurrency 1 and 16, for a fixed duration after a warm-up: req/s, p50/p99 latency
     from every sample, errors, client/server CPU. The same clients then drive the ceiling, a trivial
     ASGI app under uvicorn (benchmarks/ceiling_app.py, same worker count) answering a fixed body of the
     mean loadTable size, back to back, and icemesh/ceiling is reported for throughput and p99;
  3. pyiceberg's own SqlCatalog.load_table, in-process, on the same metadata files (register_table);
  4. 8 writers (processes, one RestCatalog each) appending to ONE table, retrying on
     CommitFailedException; checks that every acknowledged append is in the table's final history.

Results are printed and written to benchmarks/results/catalog.json. Floors that fail print FAIL,
but the exit status stays 0: this is a report, not a gate.

Only the standard library is imported at module level, so the spawned client processes start fast.
"""

from __future__ import annotations

import argparse
import array
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import uuid
from urllib.parse import quote, urlparse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
try:  # the venv's editable install (or PYTHONPATH, e.g. a scratch copy) provides icemesh
    import importlib.util

    if importlib.util.find_spec("icemesh") is None:
        sys.path.append(REPO)
except ImportError:
    sys.path.append(REPO)

RESULTS_PATH = os.path.join(REPO, "benchmarks", "results", "catalog.json")

FLOOR_LOAD_RPS = 1000.0  # loadTable requests/s at concurrency 16
FLOOR_LOAD_P99_MS = 20.0  # loadTable p99 at concurrency 16
FLOOR_LOST_COMMITS = 0
FLOOR_CEILING_RATIO = 0.7  # loadTable req/s at concurrency 16 over the trivial ASGI app's, same client, same run

CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- small helpers ---------------------------------------------------------------------------------


def percentile(sorted_values, p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (seconds in, same unit out)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def latency_summary(samples_s) -> dict:
    values = sorted(samples_s)
    ms = lambda v: round(v * 1000.0, 3)  # noqa: E731
    return {
        "samples": len(values),
        "p50_ms": ms(percentile(values, 50)),
        "p90_ms": ms(percentile(values, 90)),
        "p99_ms": ms(percentile(values, 99)),
        "max_ms": ms(values[-1]) if values else float("nan"),
        "mean_ms": ms(sum(values) / len(values)) if values else float("nan"),
    }


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user+system) used so far by `pid` and its descendants (uvicorn --workers children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
        todo.extend(children.get(p, []))
    return total


def named_processes_cpu(comm: str) -> float:
    """CPU seconds used so far by every process named `comm` (e.g. the local PostgreSQL server's backends)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                head, _, rest = f.read().rpartition(")")
            if head.split("(", 1)[1] != comm:
                continue
            fields = rest.split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            continue
    return total


def machine_busy_cpu() -> float:
    """CPU seconds all cores have spent busy since boot (from /proc/stat): the rest of the machine's load."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    guest = sum(fields[8:10]) if len(fields) > 9 else 0  # already counted in user/nice
    return (sum(fields) - idle - guest) / CLK_TCK


def server_token(server) -> str | None:
    """A bearer token for the admin principal when the server enforces authentication (None otherwise)."""
    if not hasattr(server, "client"):
        return None
    return server.client().token()


def auth_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def rest_catalog(name: str, uri: str, token: str | None):
    from pyiceberg.catalog.rest import RestCatalog

    auth = {"token": token, "oauth2-server-uri": uri + "/v1/oauth/tokens"} if token else {}
    return RestCatalog(name, uri=uri, **auth)


def sleep_until(t: float) -> None:
    while True:
        left = t - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.5))


def say(msg: str = "") -> None:
    print(msg, flush=True)


# -- catalog database (SQLite in the temp dir, or a scratch PostgreSQL database) --------------------


def prepare_database(arg: str | None, tmp: str):
    """Returns (url, cleanup) for the catalog server's database."""
    if not arg or arg == "sqlite":
        return f"sqlite:///{tmp}/catalog.db", lambda: None
    if arg.startswith("sqlite"):
        return arg, lambda: None
    if arg in ("postgres", "postgresql"):
        arg = f"postgresql://postgres@127.0.0.1:5432/icemesh_bench_{uuid.uuid4().hex[:8]}"
    if not arg.startswith("postgresql"):
        raise SystemExit(f"--db must be sqlite, postgres, or a postgresql:// URL (got {arg!r})")
    try:  # psycopg 3 if present, else psycopg2: same calls below
        import psycopg as pg
        from psycopg import sql
    except ImportError:
        import psycopg2 as pg
        from psycopg2 import sql

    u = urlparse(arg)
    name = u.path.lstrip("/")
    if not name:
        raise SystemExit("--db postgresql://...: name the scratch database, e.g. postgresql://postgres@127.0.0.1:5432/icemesh_bench")
    admin = dict(host=u.hostname or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres", dbname="postgres")
    if u.password:
        admin["password"] = u.password

    def admin_run(*statements):
        conn = pg.connect(**admin, connect_timeout=5)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                out = None
                for stmt, params in statements:
                    cur.execute(stmt, params)
                    out = cur.fetchall() if cur.description else out
                return out
        finally:
            conn.close()

    exists = admin_run(("SELECT 1 FROM pg_database WHERE datname = %s", (name,)))
    if exists:
        raise SystemExit(f"PostgreSQL database {name!r} already exists: the benchmark creates and drops its own scratch "
                         "database, so pass a new name (or --db postgres for a random one)")
    admin_run((sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)), None))

    def cleanup():
        admin_run(("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)),
                  (sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)), None))

    return arg, cleanup


# -- phase 1: build the catalog ------------------------------------------------------------------


def table_schema():
    from pyiceberg.schema import Schema
    from pyiceberg.types import DoubleType, LongType, NestedField, StringType, TimestamptzType

    return Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "category", StringType(), required=False),
        NestedField(3, "amount", DoubleType(), required=False),
        NestedField(4, "event_ts", TimestamptzType(), required=False),
    )


def small_batch(rows: int, tag: int, seq: int):
    import datetime as dt

    import pyarrow as pa

    base = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    return pa.table({
        "id": pa.array([tag * 1_000_000 + seq * rows + i for i in range(rows)], pa.int64()),
        "category": pa.array([f"c{(seq + i) % 7}" for i in range(rows)], pa.string()),
        "amount": pa.array([float(i) * 1.25 for i in range(rows)], pa.float64()),
        "event_ts": pa.array([base + dt.timedelta(seconds=seq * rows + i) for i in range(rows)], pa.timestamp("us", tz="UTC")),
    })


_creator: dict = {}


def _creator_init(uri: str, token: str | None) -> None:
    _creator["catalog"] = rest_catalog("bench-creator", uri, token)
    _creator["schema"] = table_schema()


def _create_chunk(chunk: list[tuple[str, str, int]]) -> int:
    cat, schema = _creator["catalog"], _creator["schema"]
    for ns, name, appends in chunk:
        tbl = cat.create_table(f"{ns}.{name}", schema, properties={"owner": "bench", "write.format.default": "parquet"})
        for seq in range(appends):
            tbl.append(small_batch(10, int(name[1:]), seq))
    return len(chunk)


def build_catalog(uri: str, n_ns: int, per_ns: int, procs: int, token: str | None) -> dict:
    import httpx

    headers = auth_headers(token)
    r = httpx.get(uri + "/v1/config", headers=headers)
    r.raise_for_status()
    prefix = r.json()["overrides"]["prefix"]
    for i in range(n_ns):
        r = httpx.post(f"{uri}/v1/{prefix}/namespaces", json={"namespace": [f"bench_ns{i:02d}"], "properties": {}},
                       headers=headers)
        if r.status_code >= 400:
            raise RuntimeError(f"create namespace answered {r.status_code}: {r.text[:300]}")
    specs = [(f"bench_ns{i:02d}", f"t{j:03d}", 1 + (j % 2)) for i in range(n_ns) for j in range(per_ns)]
    chunks = [specs[k:k + 10] for k in range(0, len(specs), 10)]
    total, done, next_report = len(specs), 0, 100
    t0 = time.monotonic()
    with mp.get_context("spawn").Pool(procs, initializer=_creator_init, initargs=(uri, token)) as pool:
        for n in pool.imap_unordered(_create_chunk, chunks):
            done += n
            if done >= next_report or done == total:
                say(f"      created {done:>5}/{total} tables  ({time.monotonic() - t0:5.1f} s)")
                while next_report <= done:
                    next_report += 100
    elapsed = time.monotonic() - t0
    return {"prefix": prefix, "tables": [(ns, name) for ns, name, _ in specs], "snapshots": sum(a for *_, a in specs),
            "seconds": round(elapsed, 2), "tables_per_s": round(total / elapsed, 1)}


def index_tables(uri: str, prefix: str, tables: list[tuple[str, str]], token: str | None) -> dict:
    """One sequential loadTable per table: checks every table answers, warms the server's metadata cache,
    and collects the metadata locations for the pyiceberg baseline."""
    import http.client

    u = urlparse(uri)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    locations, sizes = {}, []
    headers = auth_headers(token)
    for ns, name in tables:
        conn.request("GET", table_path(prefix, ns, name), headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"loadTable {ns}.{name} answered {resp.status}: {body[:300]!r}")
        doc = json.loads(body)
        locations[(ns, name)] = doc["metadata-location"]
        sizes.append(len(body))
    conn.close()
    return {"locations": locations, "response_bytes_mean": round(sum(sizes) / len(sizes)), "response_bytes_max": max(sizes)}


def table_path(prefix: str, ns: str, name: str) -> str:
    return f"/v1/{quote(prefix, safe='')}/namespaces/{quote(ns, safe='')}/tables/{quote(name, safe='')}"


# -- phase 2: loadTable load generator -----------------------------------------------------------


class _RequestsConnection:
    """The `requests` client behind http.client's two calls: one keep-alive Session per thread, as
    applications use it (more client CPU per request than bare http.client, so both are reported)."""

    def __init__(self, host: str, port: int, timeout: float):
        import requests

        self.base, self.timeout = f"http://{host}:{port}", timeout
        self.session = requests.Session()
        self.response = None

    def connect(self) -> None:
        pass

    def request(self, method: str, path: str, headers: dict[str, str]) -> None:
        self.response = self.session.request(method, self.base + path, headers=headers, timeout=self.timeout)

    def getresponse(self):
        return self

    @property
    def status(self) -> int:
        return self.response.status_code

    def read(self) -> bytes:
        return self.response.content

    def close(self) -> None:
        self.session.close()


CLIENTS = ("http.client", "requests")


def _load_client(host: str, port: int, paths: list[str], headers: dict[str, str], threads: int, seed: int,
                 warmup: float, duration: float, ready_q, go, start_at, result_q, client: str = "http.client") -> None:
    import http.client
    import threading

    results = []
    lock = threading.Lock()
    connection = http.client.HTTPConnection if client == "http.client" else _RequestsConnection

    def worker(k: int) -> None:
        rnd = random.Random(seed * 1000 + k)
        conn = connection(host, port, timeout=30)
        conn.connect()
        lat = array.array("d")
        errors, bytes_in, error_samples = 0, 0, []
        go.wait()
        ws = start_at.value + warmup
        we = ws + duration
        n_paths = len(paths)
        while True:
            path = paths[rnd.randrange(n_paths)]
            t = time.perf_counter()
            ok = False
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                ok = resp.status == 200 and len(body) > 0
                if not ok and len(error_samples) < 3:
                    error_samples.append(f"HTTP {resp.status}: {body[:200]!r}")
            except Exception as exc:  # count it, reconnect, carry on
                if len(error_samples) < 3:
                    error_samples.append(repr(exc))
                conn.close()
                conn = connection(host, port, timeout=30)
                body = b""
            end = time.perf_counter()
            if end >= we:
                break
            if end >= ws:
                if ok:
                    lat.append(end - t)
                    bytes_in += len(body)
                else:
                    errors += 1
        conn.close()
        with lock:
            results.append((lat, errors, bytes_in, error_samples))

    pool = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(threads)]
    for th in pool:
        th.start()
    ready_q.put(os.getpid())
    go.wait()
    ws = start_at.value + warmup
    sleep_until(ws)
    cpu0 = sum(os.times()[:2])
    sleep_until(ws + duration)
    cpu1 = sum(os.times()[:2])
    for th in pool:
        th.join()
    lat_all = array.array("d")
    errors = bytes_in = 0
    samples = []
    for lat, e, b, s in results:
        lat_all.extend(lat)
        errors += e
        bytes_in += b
        samples.extend(s)
    result_q.put({"lat": lat_all.tobytes(), "errors": errors, "bytes": bytes_in, "cpu_s": cpu1 - cpu0,
                  "error_samples": samples[:3]})


def run_load(uri: str, paths: list[str], concurrency: int, client_procs: int, warmup: float, duration: float,
             server_pid: int, token: str | None = None, client: str = "http.client") -> dict:
    ctx = mp.get_context("spawn")
    u = urlparse(uri)
    procs_n = max(1, min(client_procs, concurrency))
    per_proc = [concurrency // procs_n + (1 if i < concurrency % procs_n else 0) for i in range(procs_n)]
    ready_q, result_q = ctx.Queue(), ctx.Queue()
    go, start_at = ctx.Event(), ctx.Value("d", 0.0)
    procs = [ctx.Process(target=_load_client, args=(u.hostname, u.port, paths, auth_headers(token), n, i + 1, warmup, duration,
                                                     ready_q, go, start_at, result_q, client), daemon=True)
             for i, n in enumerate(per_proc)]
    for p in procs:
        p.start()
    for _ in procs:
        ready_q.get(timeout=60)
    t0 = time.monotonic() + 0.2
    start_at.value = t0
    go.set()
    ws, we = t0 + warmup, t0 + warmup + duration
    sleep_until(ws)
    srv0, db0, busy0 = process_tree_cpu(server_pid), named_processes_cpu("postgres"), machine_busy_cpu()
    sleep_until(we)
    srv1, db1, busy1 = process_tree_cpu(server_pid), named_processes_cpu("postgres"), machine_busy_cpu()
    outs = [result_q.get(timeout=duration + warmup + 120) for _ in procs]
    for p in procs:
        p.join(30)
    lat = array.array("d")
    errors = bytes_in = 0
    client_cpu = 0.0
    error_samples = []
    for o in outs:
        lat.frombytes(o["lat"])
        errors += o["errors"]
        bytes_in += o["bytes"]
        client_cpu += o["cpu_s"]
        error_samples.extend(o["error_samples"])
    result = {
        "client": client,
        "concurrency": concurrency,
        "client_processes": procs_n,
        "threads_per_process": per_proc,
        "duration_s": duration,
        "warmup_s": warmup,
        "requests": len(lat),
        "errors": errors,
        "throughput_rps": round(len(lat) / duration, 1),
        **latency_summary(lat),
        "mb_per_s": round(bytes_in / duration / 1e6, 2),
        "client_cores": round(client_cpu / duration, 2),
        "server_cores": round((srv1 - srv0) / duration, 2),
        "postgres_cores": round((db1 - db0) / duration, 2),
        "machine_busy_cores": round((busy1 - busy0) / duration, 2),
    }
    # Whatever else ran on the machine meanwhile (other jobs skew the figures: rerun when this is high).
    result["other_load_cores"] = round(max(0.0, result["machine_busy_cores"] - result["client_cores"]
                                           - result["server_cores"] - result["postgres_cores"]), 2)
    if error_samples:
        result["error_samples"] = error_samples[:5]
    return result


# -- the ceiling: a trivial ASGI app under uvicorn, same body size, same client ----------------------


class CeilingProcess:
    """benchmarks/ceiling_app.py in its own process on a free port, answering `size` bytes to every GET."""

    def __init__(self, size: int, workers: int = 1):
        self.size, self.workers, self.proc, self.uri = size, workers, None, None

    def start(self, timeout: float = 30.0) -> None:
        import socket
        import subprocess

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.proc = subprocess.Popen([sys.executable, os.path.join(REPO, "benchmarks", "ceiling_app.py"), "--port", str(port),
                                      "--bytes", str(self.size), "--workers", str(self.workers)])
        self.uri = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the ceiling app exited with {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the ceiling app did not listen within 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except Exception:
                self.proc.kill()


def load_matrix(targets: dict[str, tuple[str, int]], paths: list[str], clients: list[str], client_procs: int,
                warmup: float, duration: float, token: str | None) -> dict:
    """matrix[client][target]["c1"|"c16"]: each client drives icemesh, then the ceiling, at each concurrency,
    back to back, so both see the same machine."""
    matrix: dict = {}
    for client in clients:
        for c in (1, 16):
            for target, (uri, pid) in targets.items():
                r = run_load(uri, paths, c, 1 if c == 1 else client_procs, warmup, duration, pid, token, client)
                matrix.setdefault(client, {}).setdefault(target, {})[f"c{c}"] = r
                say(f"      {client:<11} {target:<8} c={c:<2}: {r['throughput_rps']:>7} req/s, p50 {r['p50_ms']} ms, "
                    f"p99 {r['p99_ms']} ms, errors {r['errors']}, other load {r['other_load_cores']} cores")
    return matrix


def ceiling_ratios(matrix: dict) -> dict:
    """icemesh / ceiling per client and concurrency: throughput (higher is better), p99 (lower is better)."""
    out = {}
    for client, targets in matrix.items():
        for c in ("c1", "c16"):
            ice, top = targets["icemesh"][c], targets["ceiling"][c]
            out[f"{client} {c}"] = {
                "throughput_ratio": round(ice["throughput_rps"] / top["throughput_rps"], 3) if top["throughput_rps"] else None,
                "p99_ratio": round(ice["p99_ms"] / top["p99_ms"], 3) if top["p99_ms"] else None,
                "icemesh_rps": ice["throughput_rps"], "ceiling_rps": top["throughput_rps"],
                "icemesh_p99_ms": ice["p99_ms"], "ceiling_p99_ms": top["p99_ms"],
            }
    return out


# -- phase 3: pyiceberg in-process baseline ------------------------------------------------------


def run_pyiceberg_inprocess(tmp: str, warehouse: str, locations: dict, warmup: float, duration: float) -> dict:
    from pyiceberg.catalog.sql import SqlCatalog

    cat = SqlCatalog("bench", uri=f"sqlite:///{tmp}/pyiceberg-catalog.db", warehouse="file://" + warehouse)
    t = time.monotonic()
    for ns in sorted({ns for ns, _ in locations}):
        cat.create_namespace(ns)
    for (ns, name), loc in locations.items():
        cat.register_table(f"{ns}.{name}", loc)
    register_s = time.monotonic() - t
    idents = [(ns, name) for ns, name in locations]
    rnd = random.Random(7)
    end = time.monotonic() + warmup
    while time.monotonic() < end:
        cat.load_table(idents[rnd.randrange(len(idents))])
    lat = array.array("d")
    cpu0, busy0 = time.process_time(), machine_busy_cpu()
    ws = time.perf_counter()
    we = ws + duration
    while True:
        ident = idents[rnd.randrange(len(idents))]
        t = time.perf_counter()
        tbl = cat.load_table(ident)
        end = time.perf_counter()
        if end >= we:
            break
        assert tbl.metadata_location == locations[ident]
        lat.append(end - t)
    cpu, busy = time.process_time() - cpu0, machine_busy_cpu() - busy0
    cat.engine.dispose()
    return {"concurrency": 1, "duration_s": duration, "loads": len(lat), "loads_per_s": round(len(lat) / duration, 1),
            **latency_summary(lat), "cores": round(cpu / duration, 2),
            "other_load_cores": round(max(0.0, (busy - cpu) / duration), 2), "register_s": round(register_s, 2)}


# -- phase 4: concurrent commits to one table ----------------------------------------------------


def _writer(idx: int, uri: str, token: str | None, ident: str, rows: int, duration: float, ready_q, go, start_at,
            result_q) -> None:
    from pyiceberg.exceptions import CommitFailedException, CommitStateUnknownException

    import logging

    logging.getLogger("pyiceberg").setLevel(logging.ERROR)
    cat = rest_catalog(f"writer{idx}", uri, token)
    tbl = cat.load_table(ident)
    batches = [small_batch(rows, idx, seq) for seq in range(4)]
    ready_q.put(idx)
    go.wait()
    deadline = start_at.value + duration
    acked, lat = [], []
    retries = unknown = errors = abandoned = 0
    error_samples = []
    seq = 0
    while time.monotonic() < deadline:
        df = batches[seq % len(batches)]
        seq += 1
        first = time.perf_counter()
        while True:
            try:
                tbl.append(df)
            except CommitFailedException:
                retries += 1
                if time.monotonic() >= deadline:
                    abandoned += 1
                    break
                tbl.refresh()
                continue
            except CommitStateUnknownException as exc:
                unknown += 1
                if len(error_samples) < 3:
                    error_samples.append(repr(exc)[:300])
                tbl.refresh()
                break
            except Exception as exc:  # count, reload, move on
                errors += 1
                if len(error_samples) < 3:
                    error_samples.append(repr(exc)[:300])
                time.sleep(0.05)
                tbl = cat.load_table(ident)
                break
            # The commit response is the metadata this commit wrote: its current snapshot is ours.
            acked.append(tbl.metadata.current_snapshot_id)
            lat.append(time.perf_counter() - first)
            break
    result_q.put({"writer": idx, "acked": acked, "lat": lat, "retries": retries, "unknown": unknown, "errors": errors,
                  "abandoned": abandoned, "finished_at": time.monotonic(), "error_samples": error_samples})


def run_commits(uri: str, writers: int, duration: float, rows: int, token: str | None) -> dict:
    cat = rest_catalog("bench-commits", uri, token)
    ns = "bench_commits"
    cat.create_namespace(ns)
    ident = f"{ns}.target"
    # pyiceberg 0.12 retries a conflicting commit by itself (4 times, with back-off) and only then raises
    # CommitFailedException. Turn that off on this table so every 409 reaches the writer loop, which
    # refreshes and retries at once, and is counted.
    cat.create_table(ident, table_schema(), properties={"commit.retry.num-retries": "0"})
    ctx = mp.get_context("spawn")
    ready_q, result_q = ctx.Queue(), ctx.Queue()
    go, start_at = ctx.Event(), ctx.Value("d", 0.0)
    procs = [ctx.Process(target=_writer, args=(i, uri, token, ident, rows, duration, ready_q, go, start_at, result_q), daemon=True)
             for i in range(writers)]
    for p in procs:
        p.start()
    for _ in procs:
        ready_q.get(timeout=120)
    t0 = time.monotonic() + 0.2
    start_at.value = t0
    go.set()
    outs = [result_q.get(timeout=duration + 300) for _ in procs]
    for p in procs:
        p.join(30)
    elapsed = max(o["finished_at"] for o in outs) - t0

    final = cat.load_table(ident).metadata
    snapshots = {s.snapshot_id: s for s in final.snapshots}
    appends_in_table = sum(1 for s in final.snapshots if s.summary is not None and s.summary.operation.value == "append")
    main_history = set()
    sid = final.current_snapshot_id
    while sid is not None and sid in snapshots and sid not in main_history:
        main_history.add(sid)
        sid = snapshots[sid].parent_snapshot_id
    acked_ids = [s for o in outs for s in o["acked"]]
    acked_set = set(acked_ids)
    lat = [x for o in outs for x in o["lat"]]
    missing = acked_set - main_history
    unacked_in_table = main_history - acked_set
    n_acked = len(acked_ids)
    result = {
        "writers": writers,
        "rows_per_append": rows,
        "retry_policy": "writer loop: on CommitFailedException refresh() and retry at once (pyiceberg's own retries "
                        "disabled with commit.retry.num-retries=0); stop retrying at the deadline",
        "duration_s": round(elapsed, 2),
        "acknowledged_appends": n_acked,
        "commits_per_s": round(n_acked / elapsed, 1) if elapsed > 0 else 0.0,
        "retries": sum(o["retries"] for o in outs),
        "commit_state_unknown": sum(o["unknown"] for o in outs),
        "other_errors": sum(o["errors"] for o in outs),
        "abandoned_at_deadline": sum(o["abandoned"] for o in outs),
        "per_writer_acked": [len(o["acked"]) for o in sorted(outs, key=lambda o: o["writer"])],
        "append_snapshots_in_final_metadata": appends_in_table,
        "snapshots_in_main_history": len(main_history),
        "duplicate_acked_snapshot_ids": n_acked - len(acked_set),
        "acked_missing_from_history": len(missing),
        "lost_commits": max(n_acked - appends_in_table, len(missing)),
        "unacknowledged_snapshots_in_history": len(unacked_in_table),
        "commit_latency": latency_summary(lat),
        "final_metadata_location": cat.load_table(ident).metadata_location,
    }
    samples = [s for o in outs for s in o["error_samples"]]
    if samples:
        result["error_samples"] = samples[:5]
    return result


# -- report ----------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_report(res: dict) -> None:
    c1, c16 = res["load_table"]["c1"], res["load_table"]["c16"]
    py = res["pyiceberg_inprocess"]
    cm = res["commits"]
    cfg = res["config"]
    line = "-" * 96
    say()
    say("=" * 96)
    say(f"icemesh catalog benchmark   backend={cfg['backend']}  server workers={cfg['server_workers']}  "
        f"tables={cfg['tables']}  cores on machine={cfg['machine_cores']}")
    say("=" * 96)
    say(f"{'loadTable':<27}{'req/s':>9}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'max ms':>8}"
        f"{'errors':>7}{'client':>8}{'server':>8}{'other':>7}")
    say(f"{'':<27}{'':>9}{'':>8}{'':>8}{'':>8}{'':>8}{'':>7}{'cores':>8}{'cores':>8}{'cores':>7}")
    say(line)
    for client, targets in res["load_table_by_client"].items():
        for target, by_c in targets.items():
            for c, r in by_c.items():
                label = f"{target} {'http' if client == 'http.client' else client} c={c[1:]}"
                procs = f"{r['client_processes']}p x {max(r['threads_per_process'])}t"
                say(f"{label + ' (' + procs + ')':<27}{r['throughput_rps']:>9.1f}{r['p50_ms']:>8.2f}{r['p90_ms']:>8.2f}"
                    f"{r['p99_ms']:>8.2f}{r['max_ms']:>8.2f}{r['errors']:>7}{r['client_cores']:>8.2f}{r['server_cores']:>8.2f}"
                    f"{r['other_load_cores']:>7.2f}")
    if py:
        say(f"{'pyiceberg SqlCatalog c=1':<27}{py['loads_per_s']:>9.1f}{py['p50_ms']:>8.2f}{py['p90_ms']:>8.2f}"
            f"{py['p99_ms']:>8.2f}{py['max_ms']:>8.2f}{0:>7}{py['cores']:>8.2f}{'-':>8}{py['other_load_cores']:>7.2f}")
    say(line)
    say("ceiling = a trivial ASGI app under uvicorn answering a fixed body of the same size (benchmarks/ceiling_app.py)")
    say("client cores = CPU used by the load generator (or by pyiceberg in-process); other = rest of the machine")
    if cfg["backend"] == "postgresql":
        say(f"PostgreSQL server processes used {c1['postgres_cores']:.2f} cores at c=1 and {c16['postgres_cores']:.2f} at c=16 "
            "(not in 'server' or 'other')")
    others = [r["other_load_cores"] for t in res["load_table_by_client"].values() for by_c in t.values() for r in by_c.values()]
    if max(others + ([py["other_load_cores"]] if py else [])) > 0.25:
        say("WARNING: other processes used noticeable CPU during the measurements; figures are pessimistic, rerun on an idle machine")
    for key, r in res["icemesh_over_ceiling"].items():
        say(f"icemesh / ceiling, {key:<15}: throughput {r['throughput_ratio']:.2f}x ({r['icemesh_rps']:.0f} / {r['ceiling_rps']:.0f} req/s), "
            f"p99 {r['p99_ratio']:.2f}x ({r['icemesh_p99_ms']:.1f} / {r['ceiling_p99_ms']:.1f} ms)")
    ratios = res["ratios"]
    if py:
        say(f"icemesh HTTP c=1 / pyiceberg in-process c=1 : {ratios['icemesh_c1_over_pyiceberg_c1']:.2f}x")
        say(f"icemesh HTTP c=16 / pyiceberg in-process c=1: {ratios['icemesh_c16_over_pyiceberg_c1']:.2f}x")
    say(f"loadTable response size: mean {res['catalog']['response_bytes_mean']} B, max {res['catalog']['response_bytes_max']} B")
    say()
    if cm is None:
        print_floors(res)
        return
    say(f"commits: {cm['writers']} writers appending {cm['rows_per_append']} rows to ONE table for {cm['duration_s']:.1f} s")
    say(line)
    say(f"  acknowledged appends      {cm['acknowledged_appends']:>8}   ({cm['commits_per_s']:.1f} commits/s; per writer {cm['per_writer_acked']})")
    say(f"  retries (409 conflicts)   {cm['retries']:>8}   abandoned at deadline {cm['abandoned_at_deadline']}, "
        f"state unknown {cm['commit_state_unknown']}, other errors {cm['other_errors']}")
    say(f"  append snapshots in table {cm['append_snapshots_in_final_metadata']:>8}   (in main's history: {cm['snapshots_in_main_history']})")
    say(f"  lost commits              {cm['lost_commits']:>8}   (acked ids missing from history: {cm['acked_missing_from_history']}; "
        f"unacknowledged snapshots in history: {cm['unacknowledged_snapshots_in_history']})")
    lat = cm["commit_latency"]
    say(f"  commit latency incl. retries: p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, max {lat['max_ms']:.1f} ms")
    say()
    print_floors(res)


def print_floors(res: dict) -> None:
    line = "-" * 96
    say("floors")
    say(line)
    for f in res["floors"]:
        say(f"  {verdict(f['pass']):<6}{f['name']:<58}measured {f['measured']}")
    say(line)
    if all(f["pass"] for f in res["floors"]):
        say("ALL FLOORS PASS")
    else:
        say("FAIL: " + ", ".join(f["name"] for f in res["floors"] if not f["pass"]))


# -- main ------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="200 tables, short phases (for iteration)")
    ap.add_argument("--db", default=None, help="sqlite (default, temp dir), postgres (scratch DB), or a postgresql:// URL "
                                               "naming a database to create and drop")
    ap.add_argument("--namespaces", type=int, default=None, help="namespaces (default 10; quick 2)")
    ap.add_argument("--tables-per-namespace", type=int, default=100)
    ap.add_argument("--duration", type=float, default=None, help="seconds per loadTable phase (default 10; quick 3)")
    ap.add_argument("--warmup", type=float, default=None, help="warm-up seconds (default 2; quick 1)")
    ap.add_argument("--commit-duration", type=float, default=None, help="seconds of concurrent appends (default 15; quick 5)")
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--client-procs", type=int, default=4, help="load-generator processes at concurrency 16")
    ap.add_argument("--create-procs", type=int, default=3, help="processes creating the tables")
    ap.add_argument("--workers", type=int, default=1, help="icemesh serve --workers")
    ap.add_argument("--access-log", action="store_true", help="run the server with --access-log")
    ap.add_argument("--clients", default=",".join(CLIENTS), help="load clients, comma-separated: http.client, requests")
    ap.add_argument("--load-only", action="store_true", help="loadTable phases only (skip the pyiceberg baseline and commits)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (server log, warehouse)")
    ap.add_argument("--out", default=RESULTS_PATH)
    args = ap.parse_args(argv)
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    if not clients or any(c not in CLIENTS for c in clients):
        raise SystemExit(f"--clients takes {', '.join(CLIENTS)} (comma-separated), got {args.clients!r}")

    n_ns = args.namespaces or (2 if args.quick else 10)
    duration = args.duration or (3.0 if args.quick else 10.0)
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    commit_duration = args.commit_duration or (5.0 if args.quick else 15.0)

    from icemesh.server.process import CatalogProcess

    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="icemesh-bench-")
    warehouse = os.path.join(tmp, "warehouse")
    db_url, db_cleanup = prepare_database(args.db, tmp)
    backend = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    extra = ["--workers", str(args.workers)] + (["--access-log"] if args.access_log else [])
    server = CatalogProcess(db=db_url, warehouse=warehouse, cwd=tmp, extra_args=extra, log_path=os.path.join(tmp, "server.log"))
    ceiling = None
    res: dict = {}
    try:
        server.start()
        token = server_token(server)
        say(f"icemesh serve on {server.uri}  (db={backend}, workers={args.workers}, "
            f"{'as principal admin (bearer token)' if token else 'anonymous'}, temp dir {tmp})")
        n_tables = n_ns * args.tables_per_namespace
        say(f"[1/4] creating {n_tables} tables ({n_ns} namespaces x {args.tables_per_namespace}), 1-2 appends each, "
            f"{args.create_procs} client processes")
        built = build_catalog(server.uri, n_ns, args.tables_per_namespace, args.create_procs, token)
        indexed = index_tables(server.uri, built["prefix"], built["tables"], token)
        paths = [table_path(built["prefix"], ns, name) for ns, name in built["tables"]]
        say(f"      done in {built['seconds']} s ({built['tables_per_s']} tables/s); loadTable response mean "
            f"{indexed['response_bytes_mean']} B")

        ceiling = CeilingProcess(indexed["response_bytes_mean"], args.workers)
        ceiling.start()
        say(f"[2/4] loadTable over HTTP against the ceiling (a trivial ASGI app under uvicorn on {ceiling.uri}, "
            f"{indexed['response_bytes_mean']} B bodies, {args.workers} worker(s)): clients {', '.join(clients)}, "
            f"concurrency 1 and 16, {warmup:g} s warm-up + {duration:g} s each")
        matrix = load_matrix({"icemesh": (server.uri, server.proc.pid), "ceiling": (ceiling.uri, ceiling.proc.pid)},
                             paths, clients, args.client_procs, warmup, duration, token)
        ceiling.stop()
        first = matrix[clients[0]]["icemesh"]
        c1, c16 = first["c1"], first["c16"]
        vs_ceiling = ceiling_ratios(matrix)

        if args.load_only:
            py = cm = None
        else:
            say(f"[3/4] pyiceberg SqlCatalog.load_table in-process, concurrency 1, {duration:g} s")
            py = run_pyiceberg_inprocess(tmp, warehouse, indexed["locations"], min(warmup, 1.0), duration)
            say(f"      {py['loads_per_s']} loads/s, p50 {py['p50_ms']} ms, p99 {py['p99_ms']} ms")

            say(f"[4/4] commits: {args.writers} writers appending to one table for {commit_duration:g} s")
            cm = run_commits(server.uri, args.writers, commit_duration, 5, token)
            say(f"      {cm['acknowledged_appends']} acknowledged ({cm['commits_per_s']} /s), {cm['retries']} retries, "
                f"lost {cm['lost_commits']}")

        floors = [
            {"name": f"loadTable c=16 throughput >= {FLOOR_LOAD_RPS:,.0f} req/s", "floor": FLOOR_LOAD_RPS,
             "measured": c16["throughput_rps"], "pass": c16["throughput_rps"] >= FLOOR_LOAD_RPS},
            {"name": f"loadTable c=16 p99 <= {FLOOR_LOAD_P99_MS:g} ms", "floor": FLOOR_LOAD_P99_MS,
             "measured": c16["p99_ms"], "pass": c16["p99_ms"] <= FLOOR_LOAD_P99_MS},
        ]
        for client in clients:
            r = vs_ceiling[f"{client} c16"]
            floors.append({"name": f"loadTable c=16 ({client}) >= {FLOOR_CEILING_RATIO:g}x the ceiling's req/s",
                           "floor": FLOOR_CEILING_RATIO, "measured": r["throughput_ratio"],
                           "pass": (r["throughput_ratio"] or 0) >= FLOOR_CEILING_RATIO})
            # With `requests`, the client's own CPU sets the latency: say so when the trivial app misses it too.
            bound = (f" (the ceiling's own p99: {r['ceiling_p99_ms']:.1f} ms, bound by this client)"
                     if r["ceiling_p99_ms"] > FLOOR_LOAD_P99_MS else "")
            floors.append({"name": f"loadTable c=16 ({client}) p99 <= {FLOOR_LOAD_P99_MS:g} ms{bound}",
                           "floor": FLOOR_LOAD_P99_MS, "measured": r["icemesh_p99_ms"],
                           "pass": r["icemesh_p99_ms"] <= FLOOR_LOAD_P99_MS})
        if cm is not None:
            floors.append({"name": "lost commits == 0", "floor": FLOOR_LOST_COMMITS, "measured": cm["lost_commits"],
                           "pass": cm["lost_commits"] == FLOOR_LOST_COMMITS and cm["acked_missing_from_history"] == 0})
        import pyiceberg

        res = {
            "benchmark": "icemesh catalog",
            "timestamp_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "config": {
                "quick": args.quick, "load_only": args.load_only, "clients": clients, "backend": backend, "server_workers": args.workers, "access_log": args.access_log,
                "namespaces": n_ns, "tables_per_namespace": args.tables_per_namespace, "tables": n_tables,
                "load_duration_s": duration, "warmup_s": warmup, "commit_duration_s": commit_duration,
                "writers": args.writers, "machine_cores": os.cpu_count(),
                "caller": "admin principal, bearer token" if token else "anonymous",
                "python": platform.python_version(), "pyiceberg": pyiceberg.__version__, "platform": platform.platform(),
                "note": "server and load generator share the machine's cores; see client_cores/server_cores",
            },
            "catalog": {k: v for k, v in {**built, **indexed}.items() if k not in ("tables", "locations")},
            "load_table": {"c1": c1, "c16": c16, "client": clients[0]},
            "load_table_by_client": matrix,
            "icemesh_over_ceiling": vs_ceiling,
            "pyiceberg_inprocess": py,
            "ratios": {
                "icemesh_c1_over_pyiceberg_c1": round(c1["throughput_rps"] / py["loads_per_s"], 3) if py and py["loads_per_s"] else None,
                "icemesh_c16_over_pyiceberg_c1": round(c16["throughput_rps"] / py["loads_per_s"], 3) if py and py["loads_per_s"] else None,
            },
            "commits": cm,
            "floors": floors,
            "all_floors_pass": all(f["pass"] for f in floors),
        }
        res["total_seconds"] = round(time.monotonic() - started, 1)
        print_report(res)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(res, f, indent=2)
        say(f"results written to {os.path.relpath(args.out, os.getcwd())}  (total {res['total_seconds']} s)")
    except Exception:
        say("benchmark failed; server log tail:\n" + server.log())
        raise
    finally:
        if ceiling is not None:
            ceiling.stop()
        server.stop()
        db_cleanup()
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
