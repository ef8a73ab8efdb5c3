"""`make bench`: load N contacts, then measure Rapport against the floor in the same run.

For each scenario, wrk (a separate process, 8 connections by default) drives the floor app
(`bench/floor.py`: Starlette + asyncpg or sqlite3, the same SQL and JSON encoding) and then
Rapport, both served by uvicorn with 2 workers, uvloop and httptools, alternately `--repeat`
times (3 by default: runs on a shared machine drift by a third or more). Reported, from the
round with the median ratio: requests/s, p50 and p99 latency, the ratio Rapport/floor (with
every round's ratio), errors over all rounds, and Rapport's peak worker RSS. Bulk create
(`POST /contacts/bulk`, 1000 contacts) is compared with raw COPY (PostgreSQL) or executemany
(SQLite) of the same rows into the same indexed table: `--bulk-rounds` rounds, each 5 requests
back to back (until the relay has dispatched their events) then 5 raw batches, the median ratio
reported. Results: `bench/results/<stamp>-<backend>.md`
and `.json`.

    .venv/bin/python -m bench.run --backend postgres -n 1000000
    .venv/bin/python -m bench.run --backend sqlite -n 100000 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.generate import Workspace, load

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
WORK = ROOT / ".work"
PG_ADMIN = os.environ.get("BENCH_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DB = "rapport_bench"
RAPPORT_PORT, FLOOR_PORT = 8100, 8101
SCENARIOS = ["get", "list", "search", "timeline", "create", "patch"]
TARGETS = {"read": 0.6, "write": 0.5, "p99_factor": 2.0, "bulk": 0.5, "rss_mb": 150}


@dataclass
class Load:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


@dataclass
class Row:
    scenario: str
    floor: Load
    rapport: Load
    ratio: float
    p99_ratio: float
    rss_mb: float
    ratios: list[float] = field(default_factory=list)  # each round's, in the order run


@dataclass
class Report:
    backend: str
    contacts: int
    connections: int
    duration_s: int
    workers: int
    started: str
    machine: str
    load_rates: dict[str, float]
    parallel_query: bool = False
    rows: list[Row] = field(default_factory=list)
    bulk: dict[str, Any] = field(default_factory=dict)
    fanout: dict[str, Any] = field(default_factory=dict)


# -- processes -------------------------------------------------------------------------------
def _venv_bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def serve(target: str, port: int, env: dict[str, str], workers: int, factory: bool) -> Any:
    args = [
        _venv_bin("uvicorn"),
        target,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    if factory:
        args.append("--factory")
    WORK.mkdir(exist_ok=True)
    log = (WORK / f"server-{port}.log").open("ab")  # what the server printed: read it on errors
    proc = subprocess.Popen(
        args,
        env={**os.environ, **env},
        cwd=ROOT.parent,
        start_new_session=True,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/contacts/{uuid.uuid4()}", timeout=2)
            return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    stop(proc)
    raise RuntimeError(f"{target} did not start on port {port}")


def _log_size(port: int) -> int:
    path = WORK / f"server-{port}.log"
    return path.stat().st_size if path.exists() else 0


def _log_problems(port: int, since: int) -> int:
    """Tracebacks and error lines a server printed after offset `since` of its log."""
    path = WORK / f"server-{port}.log"
    if not path.exists():
        return 0
    with path.open("rb") as log:
        log.seek(since)
        text = log.read().decode(errors="replace")
    return sum(1 for line in text.splitlines() if "Traceback" in line or '"level": "error"' in line)


def stop(proc: Any) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def worker_rss_mb(proc: Any) -> float:
    """The largest resident set among the server's worker processes (children of uvicorn)."""
    biggest = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        ppid = re.search(r"PPid:\s+(\d+)", text)
        rss = re.search(r"VmRSS:\s+(\d+)", text)
        if ppid and rss and int(ppid.group(1)) == proc.pid:
            biggest = max(biggest, int(rss.group(1)))
    return biggest / 1024


def wrk(scenario: str, port: int, env: dict[str, str], connections: int, duration: int) -> Load:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(ROOT / "wrk" / f"{scenario}.lua"),
            f"http://127.0.0.1:{port}",
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    n_errors = int(errors.group(1)) if errors else 0
    if socket:
        n_errors += sum(int(g) for g in socket.groups())
    return Load(rps, _latency(out, "50%"), _latency(out, "99%"), n_errors, total)


def _latency(out: str, pct: str) -> float:
    match = re.search(rf"\s{re.escape(pct)}\s+([\d.]+)(us|ms|s)", out)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


# -- bulk ------------------------------------------------------------------------------------
def _bulk_items(n: int, tag: str) -> list[dict[str, Any]]:
    return [
        {
            "first_name": "Bulk",
            "last_name": f"Row{i}",
            "email": f"bulk-{tag}-{i}@bench.example.com",
            # distinct, as real data is (parsed phones are remembered)
            "phone": f"(979) {random.randrange(200, 1000)}-{random.randrange(10000):04d}",
            "status": "new",
        }
        for i in range(n)
    ]


def bulk_api_once(client: httpx.Client, key: str, tag: str) -> float:
    """Seconds for one `POST /contacts/bulk` of 1000 contacts."""
    # Encoded by orjson, as a client in a hurry would: the load generator shares the cores with
    # the server (the standard library's encoder took 1.2 ms of them per request, orjson 0.1).
    body = orjson.dumps({"items": _bulk_items(1000, tag)})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    started = time.perf_counter()
    resp = client.post("/api/v1/contacts/bulk", content=body, headers=headers)
    elapsed = time.perf_counter() - started
    if resp.status_code not in (200, 201):
        raise RuntimeError(f"bulk create failed: {resp.status_code} {resp.text[:300]}")
    return elapsed


async def bulk_raw_once(
    url: str, workspace_id: uuid.UUID, tag: str, items: list[dict[str, Any]] | None = None
) -> float:
    """Seconds for the floor: the same 1000 contacts (with their search documents) by COPY into
    the same indexed tables on PostgreSQL, by executemany on SQLite. `items`: other contacts
    (the API's fields) instead of the bench's."""
    from bench.generate import PostgresWriter, SQLiteWriter, search_row
    from rapport.contacts.service import ContactService
    from rapport.core.ids import new_id
    from rapport.core.values import phone_e164

    now = datetime.now(UTC)
    rows = []
    for item in items if items is not None else _bulk_items(1000, tag):
        row = {
            "job_title": None,
            "tags": [],
            "address": {},
            **item,
            "workspace_id": workspace_id,
            "id": new_id(),
            "created_at": now,
            "updated_at": now,
            "version": 1,
            "deleted_at": None,
            "custom_fields": {},
            "phone_e164": phone_e164(item["phone"]),
        }
        rows.append(row)
    docs = [search_row(workspace_id, "contact", ContactService, row) for row in rows]
    if url.startswith("postgresql"):
        writer: Any = PostgresWriter(url)
        import asyncpg

        writer.conn = await asyncpg.connect(writer.url)
        started = time.perf_counter()
        async with writer.conn.transaction():
            await writer.write("contact", rows)
            await writer.write("search_document", docs)
        elapsed = time.perf_counter() - started
        await writer.conn.close()
    else:
        writer = SQLiteWriter(url)
        started = time.perf_counter()
        await writer.write("contact", rows)
        await writer.write("search_document", docs)
        elapsed = time.perf_counter() - started
        await writer.close()
    return elapsed


async def _connect(url: str) -> Any:
    """A plain asyncpg connection to the bench's PostgreSQL database (as the floor connects)."""
    import asyncpg

    from bench.generate import PostgresWriter

    return await asyncpg.connect(PostgresWriter(url).url)


async def _relayed(url: str) -> None:
    """Until the relay has dispatched every event (a bulk write's thousand events are part of
    what it costs, though the request does not wait for them). Polled on one connection: a new
    one every 10 ms would cost the server a backend each, while it relays. The poll asks for the
    first pending event through the relay's own index: a count, planned by statistics that
    think every event pending (autovacuum is off on these machines), read the whole table every
    10 ms, 12 ms each time, on the cores the relay was being timed on."""
    from sqlalchemy import make_url

    query = "SELECT id FROM event WHERE dispatched_at IS NULL ORDER BY id LIMIT 1"
    if url.startswith("postgresql"):
        conn = await _connect(url)
        try:
            while await conn.fetchval(query) is not None:  # noqa: ASYNC110 - polled: nothing to await
                await asyncio.sleep(0.01)
        finally:
            await conn.close()
        return
    with sqlite3.connect(make_url(url).database or "") as lite:
        while lite.execute(query).fetchone() is not None:  # noqa: ASYNC110 - polled: nothing to await
            await asyncio.sleep(0.01)


# Every GIN index's pending list, merged into the index: see `_settled`.
_CLEAN_GIN = (
    "SELECT gin_clean_pending_list(c.oid::regclass) FROM pg_class c "
    "JOIN pg_am am ON am.oid = c.relam WHERE am.amname = 'gin' AND c.relkind = 'i'"
)


async def _settled(url: str) -> None:
    """Before each side's round (untimed), on PostgreSQL: the GIN indexes' pending lists merged.
    New entries of a GIN index (the search documents' trigrams) wait in a pending list that the
    insert crossing its 4 MB merges into the index (autovacuum, off on these machines, would do
    it in the background): about every 3,000 search documents here, inside a COPY. Left alone,
    which side's round met it was chance; from an empty list, the two sides' 5,000 rows meet it
    alike. (It is not what spreads the rounds: they read 0.32-0.78 with and without it.)"""
    if not url.startswith("postgresql"):
        return
    conn = await _connect(url)
    try:
        await conn.execute(_CLEAN_GIN)
    finally:
        await conn.close()


def bulk_rounds(url: str, ws: Workspace, rounds: int, batches: int = 5) -> dict[str, Any]:
    """Bulk create against raw COPY as sustained rates, alternated: each round sends `batches`
    requests back to back and waits for the relay to dispatch their events (the whole cost of
    the write), then copies as many batches raw; after a warm-up of each. The figures are those
    of the round with the median ratio; every round's ratio is listed."""
    pairs: list[tuple[float, float]] = []
    drains: list[float] = []  # of each round's time, the share spent waiting for the relay
    with httpx.Client(base_url=f"http://127.0.0.1:{RAPPORT_PORT}", timeout=120) as client:
        for w in range(4):  # every worker's first bulk write (its plans and caches), not timed
            bulk_api_once(client, ws.api_key, f"warm{uuid.uuid4().hex[:8]}{w}")
        asyncio.run(_relayed(url))
        asyncio.run(bulk_raw_once(url, ws.id, f"rawwarm{uuid.uuid4().hex[:8]}"))
        for r in range(rounds):
            asyncio.run(_settled(url))
            started = time.perf_counter()
            for b in range(batches):
                bulk_api_once(client, ws.api_key, f"{uuid.uuid4().hex[:8]}{r}x{b}")
            sent = time.perf_counter()
            asyncio.run(_relayed(url))
            api = time.perf_counter() - started
            drains.append((time.perf_counter() - sent) / api)
            asyncio.run(_settled(url))
            raw = sum(
                asyncio.run(bulk_raw_once(url, ws.id, f"raw{uuid.uuid4().hex[:8]}{r}x{b}"))
                for b in range(batches)
            )
            pairs.append((1000 * batches / api, 1000 * batches / raw))
    ordered = sorted(pairs, key=lambda pair: pair[0] / pair[1])
    api_rate, raw_rate = ordered[(len(ordered) - 1) // 2]
    return {
        "api_rows_per_s": api_rate,
        "raw_rows_per_s": raw_rate,
        "ratio": api_rate / raw_rate,
        "ratios": [a / r for a, r in pairs],
        "rows_per_s": [{"rapport": a, "raw": r} for a, r in pairs],
        "relay_shares": drains,
    }


# -- the run ---------------------------------------------------------------------------------
def _psql(sql: str) -> None:
    subprocess.run(["psql", PG_ADMIN, "-qc", sql], check=True)


def serial_queries(backend: str, parallel: bool) -> None:
    """The database's sessions plan without parallel workers (unless `parallel`), for the floor
    and Rapport alike: the server setting the README recommends for an API on a few cores.

    With PostgreSQL's default (2 workers per Gather), the search scenario's plan starts workers
    from a pool of 8 that 8 connections' queries share: a side that spends less time between its
    queries finds the pool taken more often and runs them alone, which on 2 cores is cheaper. In
    one run the floor's searches launched no worker 55% of the time, Rapport's 29% (auto_explain,
    5 s of wrk each), and each of Rapport's took 9.4 ms of the machine's CPU against the floor's
    6.1: the ratio measured the pool's luck more than either side's work."""
    if backend == "postgres":
        setting = "RESET" if parallel else "SET"
        value = "" if parallel else " = 0"
        _psql(f"ALTER DATABASE {PG_DB} {setting} max_parallel_workers_per_gather{value}")


def prepare_database(backend: str) -> str:
    if backend == "postgres":
        _psql(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        _psql(f"CREATE DATABASE {PG_DB}")
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        return f"{base}/{PG_DB}"
    path = WORK / "rapport_bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite+aiosqlite:///{path}"


def snapshot(backend: str) -> None:
    """Keep the database as loaded, so `--reuse` measures the same rows every time (the write
    scenarios add contacts that would otherwise change what the next run's reads find)."""
    if backend == "postgres":
        _psql(f"DROP DATABASE IF EXISTS {PG_DB}_loaded")
        _psql(f"CREATE DATABASE {PG_DB}_loaded TEMPLATE {PG_DB}")
    else:
        shutil.copyfile(WORK / "rapport_bench.db", WORK / "rapport_bench_loaded.db")


def restore(backend: str) -> None:
    if backend == "postgres":
        _psql(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        _psql(f"CREATE DATABASE {PG_DB} TEMPLATE {PG_DB}_loaded")
    else:
        for suffix in ("-wal", "-shm"):
            Path(f"{WORK / 'rapport_bench.db'}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(WORK / "rapport_bench_loaded.db", WORK / "rapport_bench.db")


def migrate(url: str) -> bool:
    """Bring a reused database to the code's schema; whether any migration ran."""
    from rapport.migrations.runner import current, upgrade

    before = asyncio.run(current(url))
    asyncio.run(upgrade(url))
    after = asyncio.run(current(url))
    if after != before:
        print(f"Migrated the reused database from {before} to {after}")
        vacuum(url)
    return after != before


def vacuum(url: str) -> None:
    """Settle the loaded tables before anything is measured: visibility map, merged GIN entries,
    statistics (PostgreSQL's autovacuum may be off, as on these machines)."""
    if url.startswith("postgresql"):

        async def run() -> None:
            conn = await _connect(url)
            await conn.execute("VACUUM ANALYZE")
            await conn.close()

        started = time.perf_counter()
        asyncio.run(run())
        print(f"VACUUM ANALYZE in {time.perf_counter() - started:.0f} s")


def write_ids(url: str, ws: Workspace) -> Path:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    path = WORK / "ids.txt"
    if url.startswith("postgresql"):

        async def fetch() -> list[str]:
            conn = await _connect(url)
            rows = await conn.fetch(
                "SELECT id FROM contact WHERE workspace_id = $1 ORDER BY random() LIMIT 20000",
                ws.id,
            )
            await conn.close()
            return [str(r["id"]) for r in rows]

        ids = asyncio.run(fetch())
    else:
        engine = create_engine(f"sqlite:///{make_url(url).database}")
        with engine.connect() as conn:
            ids = [
                str(uuid.UUID(r[0]))
                for r in conn.execute(text("SELECT id FROM contact ORDER BY random() LIMIT 20000"))
            ]
        engine.dispose()
    path.write_text("\n".join(ids) + "\n")
    return path


def _save_loaded(path: Path, url: str, n: int, ws: Workspace, rates: dict[str, float]) -> None:
    path.write_text(
        json.dumps(
            {"url": url, "contacts": n, "workspace": asdict(ws), "rates": rates}, default=str
        )
    )


def _load_saved(path: Path) -> tuple[str, Workspace, dict[str, float]]:
    saved = json.loads(path.read_text())
    raw = saved["workspace"]
    ws = Workspace(
        id=uuid.UUID(raw["id"]),
        user_id=uuid.UUID(raw["user_id"]),
        api_key=raw["api_key"],
        pipeline_id=uuid.UUID(raw["pipeline_id"]),
        stage_ids=[uuid.UUID(s) for s in raw["stage_ids"]],
    )
    return saved["url"], ws, saved["rates"]


def main() -> None:
    parser = argparse.ArgumentParser(description="Rapport against the floor, same run")
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("-n", type=int, default=int(os.environ.get("BENCH_CONTACTS", "1000000")))
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bulk-rounds", type=int, default=3)
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="floor and Rapport runs alternated per scenario; the median ratio is reported",
    )
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument(
        "--fanout",
        type=int,
        default=5000,
        help="contacts created (in bulk writes of 1000) for the webhook fan-out phase; 0: none",
    )
    parser.add_argument("--fanout-endpoints", type=int, default=4)
    parser.add_argument(
        "--parallel-query",
        action="store_true",
        help="keep PostgreSQL's parallel query for both sides (by default the bench database "
        "plans without parallel workers, as the README recommends for an API on a few cores)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the database the previous run loaded (same backend and -n) instead of "
        "loading it again",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (Debian)")
    WORK.mkdir(exist_ok=True)
    RESULTS.mkdir(exist_ok=True)

    saved = WORK / f"loaded-{args.backend}.json"
    if args.reuse and saved.exists() and json.loads(saved.read_text())["contacts"] == args.n:
        url, ws, rates = _load_saved(saved)
        started = time.perf_counter()
        restore(args.backend)
        print(
            f"Reusing the {args.n:,} contacts loaded into {args.backend} earlier "
            f"(restored as loaded in {time.perf_counter() - started:.0f} s)"
        )
        if migrate(url):  # the schema moved on since the load: keep the migrated copy
            snapshot(args.backend)
    else:
        saved.unlink(missing_ok=True)
        url = prepare_database(args.backend)
        print(f"Loading {args.n:,} contacts into {args.backend} ...")
        started = time.perf_counter()
        ws, rates = asyncio.run(load(url, args.n))
        print(f"Loaded in {time.perf_counter() - started:.0f} s")
        vacuum(url)
        snapshot(args.backend)
        _save_loaded(saved, url, args.n, ws, rates)
    ids = write_ids(url, ws)
    serial_queries(args.backend, args.parallel_query)

    report = Report(
        backend=args.backend,
        contacts=args.n,
        connections=args.connections,
        duration_s=args.duration,
        workers=args.workers,
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=f"{platform.node()} {os.cpu_count()} cpu",
        load_rates=rates,
        parallel_query=args.parallel_query,
    )
    lua_env = {"BENCH_IDS": str(ids), "BENCH_KEY": ws.api_key, "BENCH_WRK": str(ROOT / "wrk")}
    rapport_env = {
        "RAPPORT_ENV": "production",
        "RAPPORT_DATABASE_URL": url,
        "RAPPORT_SECRET_KEY": "bench-secret-" + "x" * 40,
        "RAPPORT_AUTO_MIGRATE": "false",
        "RAPPORT_LOG_LEVEL": "WARNING",
        "RAPPORT_ACCESS_LOG": "false",
        "RAPPORT_RATE_LIMIT_DEFAULT": "100000000/minute",
    }
    raw_url = url.replace("postgresql+asyncpg", "postgresql", 1).replace(
        "sqlite+aiosqlite", "sqlite", 1
    )
    floor_env = {
        "BENCH_URL": raw_url,
        "BENCH_KEY": ws.api_key,
        "BENCH_WORKSPACE": str(ws.id),
        "BENCH_USER": str(ws.user_id),
    }
    for scenario in filter(None, args.scenarios.split(",")):
        marks = {port: _log_size(port) for port in (FLOOR_PORT, RAPPORT_PORT)}
        floor = serve("bench.floor:app", FLOOR_PORT, floor_env, args.workers, factory=False)
        rapport = serve("rapport.main:create_app", RAPPORT_PORT, rapport_env, args.workers, True)
        try:
            rounds: list[tuple[Load, Load]] = []
            rss = 0.0
            for _ in range(args.repeat):  # alternated, so drift on the machine hits both alike
                wrk(scenario, FLOOR_PORT, lua_env, args.connections, 3)  # warm-up
                floor_load = wrk(scenario, FLOOR_PORT, lua_env, args.connections, args.duration)
                wrk(scenario, RAPPORT_PORT, lua_env, args.connections, 3)
                rapport_load = wrk(scenario, RAPPORT_PORT, lua_env, args.connections, args.duration)
                rss = max(rss, worker_rss_mb(rapport))
                rounds.append((floor_load, rapport_load))
        finally:
            stop(floor)
            stop(rapport)
        for port, mark in marks.items():
            if problems := _log_problems(port, mark):
                print(f"  {problems} tracebacks or errors: see {WORK / f'server-{port}.log'}")
        row = _median_row(scenario, rounds, rss)
        report.rows.append(row)
        floor_load, rapport_load = row.floor, row.rapport
        spread = (
            f" (rounds {min(row.ratios):.2f}–{max(row.ratios):.2f})" if len(row.ratios) > 1 else ""
        )
        print(
            f"{scenario:9} floor {floor_load.requests_per_s:8.0f} req/s"
            f" p99 {floor_load.p99_ms:6.1f} ms"
            f" | rapport {rapport_load.requests_per_s:8.0f} req/s p99 {rapport_load.p99_ms:6.1f} ms"
            f" | ratio {row.ratio:.2f}{spread} | rss {rss:.0f} MB"
            f" | errors floor {floor_load.errors} rapport {rapport_load.errors}"
        )

    if args.bulk_rounds > 0:  # 0: the scenarios only
        rapport = serve("rapport.main:create_app", RAPPORT_PORT, rapport_env, args.workers, True)
        try:
            report.bulk = b = bulk_rounds(url, ws, args.bulk_rounds)
        finally:
            stop(rapport)
        print(
            f"bulk     raw {b['raw_rows_per_s']:8.0f} rows/s | rapport {b['api_rows_per_s']:8.0f}"
            f" rows/s | ratio {b['ratio']:.2f} (rounds {min(b['ratios']):.2f}–"
            f"{max(b['ratios']):.2f}) | waiting for the relay "
            f"{' '.join(f'{share:.0%}' for share in b['relay_shares'])} of each round"
        )
    if args.fanout >= 1000:
        from bench import fanout

        report.fanout = f = fanout.measure(
            rapport_env, ws.api_key, args.fanout, args.fanout_endpoints, args.workers
        )
        ours, floor = f["rapport"], f["floor"]
        print(
            f"webhooks floor {floor['per_s']:8.0f} deliveries/s | rapport {ours['per_s']:8.0f}"
            f" deliveries/s ({ours['deliveries']} of {ours['expected']}) | ratio {f['ratio']:.2f}"
            f" | commit to receiver at {ours['trickle_per_s']} events/s: p50"
            f" {ours['p50_ms']:.0f} ms p99 {ours['p99_ms']:.0f} ms"
        )
    write_results(report)


def _median_row(scenario: str, rounds: list[tuple[Load, Load]], rss: float) -> Row:
    """One scenario's figures over alternated rounds: the round with the median ratio (its
    own floor and Rapport loads, so p99s stay paired), errors summed over every round."""
    ordered = sorted(rounds, key=lambda pair: pair[1].requests_per_s / pair[0].requests_per_s)
    floor, rapport = ordered[(len(ordered) - 1) // 2]
    floor = replace(floor, errors=sum(f.errors for f, _ in rounds))
    rapport = replace(rapport, errors=sum(r.errors for _, r in rounds))
    return Row(
        scenario,
        floor,
        rapport,
        rapport.requests_per_s / floor.requests_per_s,
        rapport.p99_ms / floor.p99_ms,
        rss,
        [r.requests_per_s / f.requests_per_s for f, r in rounds],
    )


def _parallel(report: Report) -> str:
    if report.backend != "postgres":
        return ""
    return f"; PostgreSQL parallel query {'on' if report.parallel_query else 'off'} for both sides"


def write_results(report: Report) -> None:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = RESULTS / f"{stamp}-{report.backend}"
    base.with_suffix(".json").write_text(json.dumps(asdict(report), indent=2))
    lines = [
        f"# Rapport vs floor: {report.backend}, {report.contacts:,} contacts",
        "",
        f"{report.started}; {report.machine}; wrk {report.connections} connections, "
        f"{report.duration_s} s per run; uvicorn {report.workers} workers{_parallel(report)}.",
        "",
        "| scenario | floor req/s | floor p99 ms | Rapport req/s | Rapport p99 ms | ratio | "
        "each round | p99 × floor | target | worker RSS MB | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report.rows:
        target = TARGETS["write"] if row.scenario in ("create", "patch") else TARGETS["read"]
        if row.floor.errors or row.rapport.errors:
            met = "invalid: errors"  # timeouts or failures make the ratio meaningless
        else:
            met = "yes" if row.ratio >= target else "no"
        lines.append(
            f"| {row.scenario} | {row.floor.requests_per_s:.0f} | {row.floor.p99_ms:.1f} | "
            f"{row.rapport.requests_per_s:.0f} | {row.rapport.p99_ms:.1f} | {row.ratio:.2f} | "
            f"{' '.join(f'{r:.2f}' for r in row.ratios)} | {row.p99_ratio:.2f} | "
            f"≥ {target} ({met}) | {row.rss_mb:.0f} | "
            f"{row.rapport.errors} |"
        )
    if report.bulk:
        b = report.bulk
        lines += [
            "",
            f"Bulk create of 1000 contacts: Rapport {b['api_rows_per_s']:.0f} rows/s, raw "
            f"{b['raw_rows_per_s']:.0f} rows/s: ratio {b['ratio']:.2f} "
            f"(target ≥ {TARGETS['bulk']}; rounds {' '.join(f'{r:.2f}' for r in b['ratios'])}). "
            "Share of each round spent waiting for the relay after the last response: "
            f"{' '.join(f'{share:.0%}' for share in b['relay_shares'])}.",
        ]
    if report.fanout:
        f = report.fanout
        ours, floor = f["rapport"], f["floor"]
        lines += [
            "",
            f"Webhook fan-out: {f['events']:,} contact.created events to {f['endpoints']} "
            f"endpoints: Rapport delivered {ours['deliveries']:,} of {ours['expected']:,} at "
            f"{ours['per_s']:.0f}/s; the floor (a bare signed POST each) {floor['per_s']:.0f}/s: "
            f"ratio {f['ratio']:.2f} (no target). Commit to receiver, at "
            f"{ours['trickle_per_s']} single creates a second: p50 {ours['p50_ms']:.0f} ms, p99 "
            f"{ours['p99_ms']:.0f} ms (in the burst, queue included: p50 "
            f"{ours['burst_p50_ms']:.0f} ms, p99 {ours['burst_p99_ms']:.0f} ms).",
        ]
    lines += [
        "",
        "Load rates (rows/s): " + ", ".join(f"{k} {v:,.0f}" for k, v in report.load_rates.items()),
    ]
    base.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"Wrote {base}.md and .json")


if __name__ == "__main__":
    main()
