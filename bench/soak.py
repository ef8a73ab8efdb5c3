"""`make soak`: minutes of mixed reads and writes at 64 connections, with faults.

Rapport (uvicorn, 2 workers) runs on PostgreSQL and Redis. 64 clients mix gets, lists, searches,
creates and patches. Mid-run PostgreSQL is restarted (the API must answer 503 while it is down and
recover by itself) and later Redis is stopped and started again (rate limits fall back as
configured; the API keeps serving). At the end every write the API acknowledged (2xx) is read back
from the database and compared. Prints requests, responses by status inside and outside the fault
windows, and writes verified; exits non-zero on any error outside a fault window, on any 500, or on
any lost write.

    .venv/bin/python -m bench.soak --duration 300
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from bench.generate import load
from bench.run import PG_ADMIN, serve, stop

PORT = 8102
DB = "rapport_soak"
REDIS_START = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
    "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
)


@dataclass
class Stats:
    by_status: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: list[str] = field(default_factory=list)
    written: dict[str, str] = field(default_factory=dict)  # contact id -> last acknowledged title
    fault: str = ""  # the fault in progress, if any


def pg_cluster() -> str:
    return subprocess.run(["ls", "/etc/postgresql"], capture_output=True, text=True).stdout.split()[
        0
    ]


async def client_loop(
    stats: Stats, key: str, ids: list[str], stop_at: float, rng: random.Random
) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{PORT}", timeout=30, headers=headers
    ) as client:
        while time.monotonic() < stop_at:
            roll = rng.random()
            try:
                if roll < 0.35:
                    r = await client.get(f"/api/v1/contacts/{rng.choice(ids)}")
                elif roll < 0.55:
                    r = await client.get(
                        "/api/v1/contacts",
                        params={"limit": 20, "sort_by": "created_at", "sort_order": "desc"},
                    )
                elif roll < 0.65:
                    r = await client.get(
                        "/api/v1/contacts", params={"search": "hopper", "limit": 10}
                    )
                elif roll < 0.85:
                    title = f"t-{uuid.uuid4().hex[:8]}"
                    r = await client.post(
                        "/api/v1/contacts",
                        json={
                            "first_name": "Soak",
                            "job_title": title,
                            "email": f"soak-{uuid.uuid4().hex}@example.com",
                        },
                    )
                    if r.status_code == 201:
                        stats.written[r.json()["data"]["id"]] = title
                else:
                    mine = list(stats.written)
                    target = rng.choice(mine) if mine else rng.choice(ids)
                    title = f"p-{uuid.uuid4().hex[:8]}"
                    r = await client.patch(f"/api/v1/contacts/{target}", json={"job_title": title})
                    if r.status_code == 200 and target in stats.written:
                        stats.written[target] = title
                status = str(r.status_code)
            except httpx.HTTPError as exc:
                status = f"transport:{type(exc).__name__}"
            window = stats.fault or "normal"
            stats.by_status[f"{window} {status}"] += 1
            ok = status.startswith("2") or (stats.fault == "postgres" and status == "503")
            if not ok:
                stats.errors.append(f"{window}: {status}")
                await asyncio.sleep(0.05)


async def sh(*args: str, check: bool = True, shell: bool = False) -> None:
    """A command run off the event loop, so the clients keep going while it runs."""
    cmd: Any = args[0] if shell else list(args)
    await asyncio.to_thread(subprocess.run, cmd, check=check, shell=shell)


async def faults(stats: Stats, duration: float, log: list[str]) -> None:
    cluster = pg_cluster()
    await asyncio.sleep(duration * 0.25)
    stats.fault = "postgres"
    log.append(f"{time.strftime('%X')} PostgreSQL stopped")
    await sh("pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "stop", "-m", "fast")
    await asyncio.sleep(10)
    await sh("pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "start")
    log.append(f"{time.strftime('%X')} PostgreSQL started")
    await asyncio.sleep(5)  # pools reconnect
    stats.fault = ""
    await asyncio.sleep(duration * 0.25)
    stats.fault = "redis"
    await sh("redis-cli", "shutdown", "nosave", check=False)
    log.append(f"{time.strftime('%X')} Redis stopped")
    await asyncio.sleep(15)
    await sh(REDIS_START, shell=True)
    log.append(f"{time.strftime('%X')} Redis started")
    await asyncio.sleep(3)
    stats.fault = ""


async def verify(url: str, stats: Stats) -> int:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql", 1))
    rows = await conn.fetch(
        "SELECT id::text, job_title FROM contact WHERE id = ANY($1::uuid[])", list(stats.written)
    )
    await conn.close()
    found = {r["id"]: r["job_title"] for r in rows}
    lost = [i for i, title in stats.written.items() if found.get(i) != title]
    for i in lost[:10]:
        stats.errors.append(
            f"lost write {i}: expected {stats.written[i]!r}, found {found.get(i)!r}"
        )
    return len(lost)


async def run(duration: float, connections: int) -> int:
    await sh("psql", PG_ADMIN, "-qc", f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    await sh("psql", PG_ADMIN, "-qc", f"CREATE DATABASE {DB}")
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    url = f"{base}/{DB}"
    ws, _ = await load(url, 20_000, quiet=True)
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql", 1))
    ids = [str(r["id"]) for r in await conn.fetch("SELECT id FROM contact LIMIT 5000")]
    await conn.close()
    env = {
        "RAPPORT_ENV": "production",
        "RAPPORT_DATABASE_URL": url,
        "RAPPORT_REDIS_URL": "redis://127.0.0.1:6379/0",
        "RAPPORT_REDIS_KEY_PREFIX": f"soak-{uuid.uuid4().hex[:6]}:",
        "RAPPORT_SECRET_KEY": "soak-secret-" + "x" * 40,
        "RAPPORT_LOG_LEVEL": "ERROR",
        "RAPPORT_ACCESS_LOG": "false",
        "RAPPORT_RATE_LIMIT_DEFAULT": "100000000/minute",
        "RAPPORT_RATE_LIMIT_REDIS_FALLBACK": "memory",
        "RAPPORT_DB_STATEMENT_TIMEOUT_MS": "5000",
    }
    server = serve("rapport.main:create_app", PORT, env, 2, True)
    stats, log = Stats(), []
    started = time.monotonic()
    try:
        stop_at = started + duration
        await asyncio.gather(
            faults(stats, duration, log),
            *(
                client_loop(stats, ws.api_key, ids, stop_at, random.Random(i))
                for i in range(connections)
            ),
        )
    finally:
        stop(server)
    lost = await verify(url, stats)
    total = sum(stats.by_status.values())
    print(
        f"\nSoak: {total} requests in {time.monotonic() - started:.0f} s, {connections} connections"
    )
    for line in log:
        print("  " + line)
    for key, count in sorted(stats.by_status.items()):
        print(f"  {key:28} {count}")
    print(f"  acknowledged writes verified: {len(stats.written) - lost} of {len(stats.written)}")
    # Only PostgreSQL's outage excuses errors (503 by design); Redis going away must not show.
    outside = [e for e in stats.errors if not e.startswith("postgres")]
    server_errors = [e for e in stats.errors if e.endswith(": 500")]
    print(
        f"  errors outside the PostgreSQL outage: {len(outside)}; "
        f"500s: {len(server_errors)}; lost writes: {lost}"
    )
    return 1 if outside or server_errors or lost else 0


def main() -> None:
    parser = argparse.ArgumentParser(description="Mixed load with PostgreSQL and Redis faults")
    parser.add_argument("--duration", type=float, default=300)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("the soak restarts PostgreSQL and Redis: run it as root on a disposable machine")
    sys.exit(asyncio.run(run(args.duration, args.connections)))


if __name__ == "__main__":
    main()
