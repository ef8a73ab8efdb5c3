"""CPU per request inside one process, no HTTP server or load generator: the app called as an
ASGI callable, against the database the last `make bench` loaded (PostgreSQL by default).

    .venv/bin/python -m bench.request_cpu get 3000            # µs of CPU per request (min, median)
    .venv/bin/python -m bench.request_cpu create 500 --profile # plus a cProfile of the run
    .venv/bin/python -m bench.request_cpu create 5 --sql       # the statements one request runs
    .venv/bin/python -m bench.request_cpu bulk 10 --relay      # plus the relay's CPU per event

Scenarios: get, timeline, list, search, create, patch, bulk (1000 contacts a request). Prints
the minimum and median CPU time per request over five batches (the minimum is the steadiest
figure on a shared machine); with
`--profile`, the 40 costliest functions by cumulative time and the share of each package. With
`--relay`, the relay then dispatches the events those requests recorded (in batches of
`RAPPORT_OUTBOX_BATCH_SIZE`, 500 by default) and its CPU per event is printed too (profiled
instead of the requests with `--profile`). Events left pending by an earlier run are dispatched
first, untimed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import json
import os
import pstats
import random
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from bench.generate import bench_settings
from rapport.core.outbox import Relay
from rapport.main import create_app

WORK = Path(__file__).resolve().parent / ".work"


def request_for(scenario: str, ids: list[str]) -> tuple[str, str, bytes, bytes]:
    contact = random.choice(ids)
    if scenario == "get":
        return "GET", f"/api/v1/contacts/{contact}", b"", b""
    if scenario == "timeline":
        return "GET", f"/api/v1/contacts/{contact}/activities", b"limit=20", b""
    if scenario == "list":
        return "GET", "/api/v1/contacts", b"status=qualified&sort_by=last_name&limit=50", b""
    if scenario == "search":
        return "GET", "/api/v1/contacts", b"search=hopper&limit=20", b""
    if scenario == "create":
        body = {"first_name": "P", "last_name": "Q", "email": f"{uuid.uuid4().hex}@p.example.com"}
        phone = f"(979) {random.randrange(200, 1000)}-{random.randrange(10000):04d}"
        return "POST", "/api/v1/contacts", b"", orjson.dumps({**body, "phone": phone})
    if scenario == "bulk":  # the bench's bulk create: 1000 contacts in one request
        items = [
            {
                "first_name": "Bulk",
                "last_name": f"Row{i}",
                "email": f"bulk-{uuid.uuid4().hex}@bench.example.com",
                "phone": f"(979) {random.randrange(200, 1000)}-{random.randrange(10000):04d}",
                "status": "new",
            }
            for i in range(1000)
        ]
        return "POST", "/api/v1/contacts/bulk", b"", orjson.dumps({"items": items})
    if scenario == "patch":
        return "PATCH", f"/api/v1/contacts/{contact}", b"", orjson.dumps({"job_title": "Eng"})
    raise SystemExit(f"unknown scenario {scenario}")


def by_package(stats: pstats.Stats) -> list[tuple[str, float, int]]:
    own: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    for (filename, _, _), (_, ncalls, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        if "site-packages/" in filename:
            key = filename.split("site-packages/")[-1].split("/")[0]
        elif "src/rapport/" in filename:
            key = "rapport/" + filename.split("src/rapport/")[-1].split("/")[0]
        else:
            key = "builtins" if filename == "~" else Path(filename).name
        own[key] += tottime
        calls[key] += ncalls
    return [(k, v, calls[k]) for k, v in own.most_common(12)]


def make_relay(app: Any) -> Relay:
    """A relay as the app's background would run it (its services, its batch size)."""
    settings, db = app.state.settings, app.state.db
    return Relay(db, services={"settings": settings, "db": db}, batch=settings.outbox_batch_size)


async def relay_cpu(app: Any, profiler: cProfile.Profile | None) -> None:
    """Dispatch what the requests recorded, timed: CPU and wall time per event."""
    relay = make_relay(app)
    if profiler:
        profiler.enable()
    cpu, wall = time.process_time(), time.perf_counter()
    events = await relay.run_all(limit=10_000_000)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if profiler:
        profiler.disable()
    print(
        f"relay: {events} events in batches of {relay.batch}, CPU per event "
        f"{cpu / max(events, 1) * 1e6:.0f} µs, wall {wall / max(events, 1) * 1e6:.0f} µs"
    )


async def run(
    scenario: str, n: int, profile: bool, backend: str, show_sql: bool, relay: bool
) -> None:
    saved = json.loads((WORK / f"loaded-{backend}.json").read_text())
    app = create_app(bench_settings(saved["url"], rate_limit_default="100000000/minute"))
    key = saved["workspace"]["api_key"].encode()
    ids = (WORK / "ids.txt").read_text().split()

    async def call() -> None:
        method, path, query, body = request_for(scenario, ids)
        headers = [(b"authorization", b"Bearer " + key), (b"host", b"bench")]
        if body:
            headers += [(b"content-type", b"application/json")]
            headers += [(b"content-length", str(len(body)).encode())]
        scope: dict[str, Any] = {
            "type": "http", "method": method, "path": path, "raw_path": path.encode(),
            "root_path": "", "query_string": query, "headers": headers, "scheme": "http",
            "server": ("bench", 80), "client": ("127.0.0.1", 1), "http_version": "1.1",
            "asgi": {"version": "3.0"}, "app": app,
        }  # fmt: skip
        sent: list[dict[str, Any]] = []
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                await asyncio.Event().wait()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        if sent[0]["status"] >= 300:
            raise SystemExit(f"{sent[0]['status']}: {sent[1].get('body', b'')[:300]!r}")

    async with app.router.lifespan_context(app):
        if relay:  # what an earlier run left pending is not this run's work
            await make_relay(app).run_all(limit=10_000_000)
        for _ in range(100 if not relay else 2):
            await call()
        if show_sql:  # the statements one more request runs, as the engine sees them
            from sqlalchemy import event

            engine = app.state.db.engine.sync_engine
            seen: list[str] = []

            def record(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
                seen.append(" ".join(statement.split())[:160])

            event.listen(engine, "before_cursor_execute", record)
            await call()
            event.remove(engine, "before_cursor_execute", record)
            print(f"{scenario}: {len(seen)} statements")
            for line in seen:
                print("  ", line)
        profiler = cProfile.Profile(time.process_time) if profile else None  # CPU, not waits
        if profiler and not relay:
            profiler.enable()
        batches = []
        for _ in range(5):
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(n // 5):
                await call()
            batches.append(
                ((time.process_time() - cpu) / (n // 5), (time.perf_counter() - wall) / (n // 5))
            )
        if profiler and not relay:
            profiler.disable()
        if relay:
            await relay_cpu(app, profiler)
    batches.sort()
    print(
        f"{scenario}: CPU per request min {batches[0][0] * 1e6:.0f} µs, median "
        f"{batches[2][0] * 1e6:.0f} µs; wall min {min(b[1] for b in batches) * 1e6:.0f} µs"
    )
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(40)
        if os.environ.get("PROFILE_CALLERS"):  # who calls functions matching this pattern
            stats.print_callers(os.environ["PROFILE_CALLERS"])
        total = sum(v for _, v, _ in by_package(stats)) or 1
        for name, seconds, calls in by_package(stats):
            print(f"{100 * seconds / total:5.1f}%  {calls // n:6} calls/request  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario")
    parser.add_argument("n", type=int, nargs="?", default=2000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sql", action="store_true", help="list one request's statements")
    parser.add_argument("--relay", action="store_true", help="then time the relay")
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    args = parser.parse_args()
    asyncio.run(run(args.scenario, args.n, args.profile, args.backend, args.sql, args.relay))


if __name__ == "__main__":
    main()
