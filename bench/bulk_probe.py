"""Bulk create probe: times `POST /contacts/bulk` with 1000 contacts through the ASGI app, in
process, on SQLite and (when reachable) PostgreSQL, and counts the SQL statements each request
sends.

Not a test and not part of `make test`: run it on demand, e.g.

    .venv/bin/python bench/bulk_probe.py                     # SQLite, and PostgreSQL if reachable
    .venv/bin/python bench/bulk_probe.py --items 1000 --rounds 5 --backend sqlite
    RAPPORT_BENCH_POSTGRES_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test \
        .venv/bin/python bench/bulk_probe.py --backend postgres

Each round posts a fresh batch (distinct emails) into the same workspace, so later rounds write
into a table that already holds the earlier ones, as an import would. Figures are the median of
the rounds; the first request of a run (warm-up) is not counted. The background relay is off, so
only the request's own work is timed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.engine import make_url

from rapport.core.config import Settings
from rapport.core.db import Database
from rapport.main import create_app
from rapport.migrations.runner import upgrade

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _settings(url: str, data_dir: Path) -> Settings:
    return Settings(
        env="test",
        database_url=url,
        data_dir=data_dir,
        secret_key="bench-secret-" + "x" * 40,
        argon2_time_cost=1,
        argon2_memory_cost_kib=1024,
        rate_limit_enabled=False,
        log_level="WARNING",
        access_log=False,
        auto_migrate=False,
        # The outbox relay would dispatch each batch's 1000 events while the next request runs:
        # real work, but not the write path this probe times.
        background=False,
    )


async def _pg_admin(admin_url: str, sql: str) -> None:
    import asyncpg

    url = make_url(admin_url)
    conn = await asyncpg.connect(
        user=url.username,
        password=url.password,
        host=url.host,
        port=url.port or 5432,
        database=url.database,
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _items(round_no: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "first_name": f"First{i}",
            "last_name": f"Last{round_no}",
            "email": f"r{round_no}.c{i}@example.com",
            "phone": f"+1415555{i:04d}",
            "job_title": "Engineer",
            "tags": ["bulk", f"r{round_no}"],
        }
        for i in range(count)
    ]


async def _probe(url: str, data_dir: Path, items: int, rounds: int) -> dict[str, Any]:
    await upgrade(url)
    settings = _settings(url, data_dir)
    database = Database(settings, url=url)
    app = create_app(settings, db=database)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.strip().split()[0].upper())

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    timings: list[float] = []
    per_request: list[int] = []
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://bench.local") as client,
        ):
            email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
            registered = await client.post(
                "/api/v1/auth/register",
                json={"email": email, "password": "correct horse battery", "full_name": "Bench"},
            )
            registered.raise_for_status()
            headers = {"Authorization": f"Bearer {registered.json()['data']['access_token']}"}
            for round_no in range(rounds + 1):
                body = {"items": _items(round_no, items)}
                statements.clear()
                started = time.perf_counter()
                response = await client.post("/api/v1/contacts/bulk", json=body, headers=headers)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise RuntimeError(
                        f"bulk create failed: {response.status_code} {response.text}"
                    )
                if round_no:  # round 0 warms caches and the app
                    timings.append(elapsed)
                    per_request.append(len(statements))
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)
        await database.dispose()
    median = statistics.median(timings)
    return {
        "items": items,
        "rounds": rounds,
        "median_s": median,
        "best_s": min(timings),
        "rows_per_s": items / median,
        "statements": statistics.median(per_request),
    }


async def run_sqlite(items: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rapport-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        return await _probe(url, Path(tmp), items, rounds)


async def run_postgres(admin_url: str, items: int, rounds: int) -> dict[str, Any]:
    name = f"rapport_bench_{uuid.uuid4().hex[:10]}"
    await _pg_admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        with tempfile.TemporaryDirectory(prefix="rapport-bench-") as tmp:
            return await _probe(url, Path(tmp), items, rounds)
    finally:
        await _pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _line(backend: str, result: dict[str, Any]) -> str:
    return (
        f"{backend:9} {result['items']} contacts: median {result['median_s'] * 1000:8.1f} ms "
        f"(best {result['best_s'] * 1000:.1f} ms), {result['rows_per_s']:8.0f} rows/s, "
        f"{result['statements']:.0f} statements per request"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    args = parser.parse_args()
    if args.backend in ("sqlite", "all"):
        print(_line("sqlite", await run_sqlite(args.items, args.rounds)), flush=True)
    if args.backend in ("postgres", "all"):
        admin_url = os.environ.get("RAPPORT_BENCH_POSTGRES_URL", DEFAULT_PG)
        try:
            result = await run_postgres(admin_url, args.items, args.rounds)
        except OSError as exc:
            print(f"postgres  skipped: {admin_url} not reachable ({exc})", file=sys.stderr)
            return 0 if args.backend == "all" else 1
        print(_line("postgres", result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
