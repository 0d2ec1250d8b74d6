"""The change feed's throughput and its latency from a commit to a waiting reader.

    .venv/bin/python benchmarks/events.py [--commits 400] [--threads 4] [--trials 20]

For SQLite and PostgreSQL (127.0.0.1:5432, skipped when it is not there), a real `icemesh serve`:
- written: `--threads` clients commit `set-properties` to their own tables (each commit is one event, written in
  the commit's transaction): commits (= events) per second;
- read: the whole feed read back by the admin in pages of 1,000: events per second;
- latency: a reader long-polls (`wait=20`) while a writer commits; from the commit request's start to the
  reader's answer (what a Dagster sensor or a `--follow` would wait), p50 and max over `--trials`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
M = "/management/v1"
SCHEMA = {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}


def _postgres() -> str | None:
    try:
        import psycopg2
    except ImportError:
        return None
    name = f"icemesh_events_bench_{uuid.uuid4().hex[:6]}"
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=3)
    except Exception:
        return None
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')  # a generated name, not input
    conn.close()
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def run(db: str | None, commits: int, threads: int, trials: int) -> dict:
    import httpx

    from icemesh.server.process import CatalogProcess

    home = tempfile.mkdtemp(prefix="events-bench-")
    with CatalogProcess(db=db or f"sqlite:///{home}/c.db", warehouse=f"{home}/wh", cwd=home) as server:
        client = server.client()
        token = client.token()
        headers = {"Authorization": f"Bearer {token}"}
        prefix = httpx.get(f"{server.uri}/v1/config", headers=headers).json().get("overrides", {}).get("prefix", "default")
        base = f"{server.uri}/v1/{prefix}"
        httpx.post(f"{base}/namespaces", json={"namespace": ["bench"]}, headers=headers).raise_for_status()
        for i in range(threads):
            httpx.post(f"{base}/namespaces/bench/tables", json={"name": f"t{i}", "schema": SCHEMA},
                       headers=headers).raise_for_status()
        start = _end(server.uri, headers)

        def writer(i: int, n: int) -> None:
            with httpx.Client(headers=headers, timeout=60) as http:
                for k in range(n):
                    http.post(f"{base}/namespaces/bench/tables/t{i}",
                              json={"requirements": [], "updates": [{"action": "set-properties",
                                                                     "updates": {"k": str(k)}}]}).raise_for_status()

        began = time.perf_counter()
        workers = [threading.Thread(target=writer, args=(i, commits // threads)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        written_s = time.perf_counter() - began
        written = (commits // threads) * threads

        began, read, cursor = time.perf_counter(), 0, start
        with httpx.Client(headers=headers, timeout=60) as http:
            while True:
                page = http.get(f"{server.uri}{M}/events", params={"after": cursor, "limit": 1000}).json()
                read += len(page["events"])
                if page["next-after"] == cursor:
                    break
                cursor = page["next-after"]
        read_s = time.perf_counter() - began

        latencies = []
        with httpx.Client(headers=headers, timeout=60) as reader, httpx.Client(headers=headers, timeout=60) as writer_http:
            for k in range(trials):
                cursor = _end(server.uri, headers)
                got: dict[str, float] = {}

                def wait() -> None:
                    reader.get(f"{server.uri}{M}/events", params={"after": cursor, "wait": 20})
                    got["at"] = time.perf_counter()

                poll = threading.Thread(target=wait)
                poll.start()
                time.sleep(0.3)  # the reader is waiting
                sent = time.perf_counter()
                writer_http.post(f"{base}/namespaces/bench/tables/t0", json={"requirements": [], "updates": [
                    {"action": "set-properties", "updates": {"trial": str(k)}}]}).raise_for_status()
                poll.join(30)
                latencies.append(got["at"] - sent)
    return {"events_written_per_s": round(written / written_s, 1), "events_read_per_s": round(read / read_s, 1),
            "events_read": read, "commit_to_reader_ms": {"p50": round(statistics.median(latencies) * 1000, 1),
                                                         "max": round(max(latencies) * 1000, 1)}}


def _end(uri: str, headers: dict) -> int:
    import httpx

    cursor = 0
    while True:
        page = httpx.get(f"{uri}{M}/events", params={"after": cursor, "limit": 1000}, headers=headers).json()
        if page["next-after"] == cursor:
            return cursor
        cursor = page["next-after"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=400)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    report = {}
    for name, db in (("sqlite", None), ("postgres", _postgres())):
        if name == "postgres" and db is None:
            print("postgres: not reachable on 127.0.0.1:5432, skipped", flush=True)
            continue
        report[name] = run(db, args.commits, args.threads, args.trials)
        print(f"{name}: {json.dumps(report[name])}", flush=True)
    os.makedirs(os.path.join(REPO, "benchmarks", "results"), exist_ok=True)
    with open(os.path.join(REPO, "benchmarks", "results", "events.json"), "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
