"""CSV import probe: a large contacts CSV uploaded through `POST /api/v1/imports` (ASGI, in
process), its job run to the end; prints rows/s (the bulk endpoint's rate as baseline) and peak RSS.

Not a test and not part of `make test`: run it on demand, e.g.

    .venv/bin/python -m bench.import_probe                          # 200,000 rows, SQLite
    .venv/bin/python -m bench.import_probe --rows 100000 --backend all
    .venv/bin/python -m bench.import_probe --rows 1000000 --backend postgres
    RAPPORT_BENCH_POSTGRES_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -m bench.import_probe --backend postgres

The memory claim is that an import's footprint does not grow with the file: compare the peak RSS
of two sizes (`--rows 20000` and `--rows 200000`). The peak is `resource.getrusage` (ru_maxrss),
read before the upload, after it, and after the job; the growth during the job is what the
import itself costs. The outbox relay is off, so the job's own work is timed (the contact.created
events it records are dispatched later by the relay, as in production).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from rapport.core.config import Settings
from rapport.core.db import Database
from rapport.main import create_app
from rapport.migrations.runner import upgrade

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
STATUSES = ("new", "contacted", "qualified", "customer", "inactive")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def generate(path: Path, rows: int, bad_every: int) -> int:
    """Writes the CSV row by row (never in memory); every `bad_every`-th row has a broken email.
    Returns the number of bad rows."""
    bad = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["First name", "Last name", "Email", "Phone", "Title", "Status", "Tags", "City"]
        )
        for i in range(rows):
            broken = bad_every and i % bad_every == bad_every - 1
            bad += bool(broken)
            writer.writerow(
                [
                    f"First{i}",
                    f"Last{i % 997}",
                    f"person{i}.example.com" if broken else f"person{i}@example.com",
                    f"+1415{i % 10_000_000:07d}",
                    "Engineer",
                    STATUSES[i % len(STATUSES)],
                    f"import;batch{i % 50}",
                    "Lisbon",
                ]
            )
    return bad


def _settings(url: str, data_dir: Path) -> Settings:
    return Settings(
        env="production",
        database_url=url,
        data_dir=data_dir,
        secret_key="bench-secret-" + "x" * 40,
        argon2_time_cost=1,
        argon2_memory_cost_kib=1024,
        rate_limit_enabled=False,
        log_level="WARNING",
        access_log=False,
        auto_migrate=False,
        background=False,
        import_max_bytes=2 * 1024**3,
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


async def _bulk_baseline(client: httpx.AsyncClient, headers: dict[str, str]) -> float:
    """Rows/s of `POST /contacts/bulk` (1000 items, `atomic=false`) in the same process and
    database, just before the import: the import can only be as fast as the bulk path it uses,
    and on a shared machine the ratio says more than either figure."""
    timings = []
    for round_no in range(4):
        items = [
            {
                "first_name": f"Base{i}",
                "email": f"base{round_no}.{i}@bulk.example.com",
                "phone": f"+1415{i:07d}",
                "status": STATUSES[i % len(STATUSES)],
                "tags": ["import", f"batch{i % 50}"],
                "address": {"city": "Lisbon"},
            }
            for i in range(1000)
        ]
        started = time.perf_counter()
        response = await client.post(
            "/api/v1/contacts/bulk",
            params={"atomic": "false"},
            json={"items": items},
            headers=headers,
        )
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        if round_no:  # the first warms the app up
            timings.append(elapsed)
    return 1000 / statistics.median(timings)


async def _raw_baseline(url: str, workspace_id: uuid.UUID, source: Path) -> float | None:
    """Rows/s of the floor on PostgreSQL: the file's own rows (their emails prefixed, so the
    import meets none of them) with their search documents by raw COPY into the same indexed
    tables (`bench.run.bulk_raw_once`), in transactions of 1000 rows as the import writes them,
    just before the import. The target's yardstick: the same data, into tables as full as the
    import's. None on SQLite (the bench's floor there is executemany, not a COPY)."""
    if not url.startswith("postgresql"):
        return None
    from bench.run import bulk_raw_once

    elapsed, written, chunk = 0.0, 0, []
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)  # the header
        for first, last, email, phone, title, status, tags, city in reader:
            if "@" not in email:
                continue  # refused by the import: never written
            chunk.append(
                {
                    "first_name": first,
                    "last_name": last,
                    "email": f"raw-{email}",
                    "phone": phone,
                    "job_title": title,
                    "status": status,
                    "tags": tags.split(";"),
                    "address": {"city": city},
                }
            )
            if len(chunk) == 1000:
                elapsed += await bulk_raw_once(url, workspace_id, "", items=chunk)
                written, chunk = written + len(chunk), []
    if chunk:
        elapsed += await bulk_raw_once(url, workspace_id, "", items=chunk)
        written += len(chunk)
    return written / elapsed


async def _probe(
    url: str, data_dir: Path, rows: int, bad_every: int, dedupe: str = "create"
) -> dict[str, Any]:
    await upgrade(url)
    settings = _settings(url, data_dir)
    database = Database(settings, url=url)
    app = create_app(settings, db=database)
    source = data_dir / "people.csv"
    bad = generate(source, rows, bad_every)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    mapping = (
        '{"First name": "first_name", "Last name": "last_name", "Email": "email", '
        '"Phone": "phone", "Title": "job_title", "Status": "status", "Tags": "tags", '
        '"City": "address.city"}'
    )
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=transport, base_url="http://bench.local", timeout=None
            ) as client,
        ):
            email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
            registered = await client.post(
                "/api/v1/auth/register",
                json={"email": email, "password": "correct horse battery", "full_name": "Bench"},
            )
            registered.raise_for_status()
            headers = {"Authorization": f"Bearer {registered.json()['data']['access_token']}"}
            baseline = await _bulk_baseline(client, headers)
            raw = await _raw_baseline(
                url, uuid.UUID(registered.json()["data"]["workspace"]["id"]), source
            )
            rss_start = peak_rss_mib()
            started = time.perf_counter()
            with source.open("rb") as handle:
                response = await client.post(
                    "/api/v1/imports",
                    files={"file": ("people.csv", handle, "text/csv")},
                    data={"resource": "contacts", "mapping": mapping, "dedupe": dedupe},
                    headers=headers,
                )
            if response.status_code != 201:
                raise RuntimeError(f"upload failed: {response.status_code} {response.text}")
            upload_s = time.perf_counter() - started
            rss_upload = peak_rss_mib()
            import_id = response.json()["data"]["id"]
            runner = app.state.background.runner
            started = time.perf_counter()
            while True:
                await runner.run_due()
                got = await client.get(f"/api/v1/imports/{import_id}", headers=headers)
                state = got.json()["data"]
                if state["status"] in ("completed", "failed"):
                    break
                await asyncio.sleep(0.05)
            job_s = time.perf_counter() - started
            rss_job = peak_rss_mib()
    finally:
        await database.dispose()
    if state["status"] != "completed" or state["errors"] != bad:
        raise RuntimeError(f"unexpected outcome: {state}")
    return {
        "rows": rows,
        "bytes": source.stat().st_size,
        "upload_s": upload_s,
        "job_s": job_s,
        "rows_per_s": rows / job_s,
        "bulk_rows_per_s": baseline,
        "raw_rows_per_s": raw,
        "created": state["created"],
        "errors": state["errors"],
        "rss_start": rss_start,
        "rss_upload": rss_upload,
        "rss_job": rss_job,
    }


async def run_sqlite(rows: int, bad_every: int, dedupe: str = "create") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rapport-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        return await _probe(url, Path(tmp), rows, bad_every, dedupe)


async def run_postgres(
    admin_url: str, rows: int, bad_every: int, dedupe: str = "create"
) -> dict[str, Any]:
    name = f"rapport_bench_{uuid.uuid4().hex[:10]}"
    await _pg_admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        with tempfile.TemporaryDirectory(prefix="rapport-bench-") as tmp:
            return await _probe(url, Path(tmp), rows, bad_every, dedupe)
    finally:
        await _pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _line(backend: str, r: dict[str, Any]) -> str:
    return (
        f"{backend:9} {r['rows']:>9,} rows ({r['bytes'] / 1024**2:.1f} MiB): "
        f"upload {r['upload_s']:.1f} s, job {r['job_s']:.1f} s = {r['rows_per_s']:,.0f} rows/s "
        f"({r['rows_per_s'] / r['bulk_rows_per_s']:.0%} of POST /contacts/bulk's "
        f"{r['bulk_rows_per_s']:,.0f} rows/s here"
        + (
            f"; {r['rows_per_s'] / r['raw_rows_per_s']:.2f} of raw COPY's "
            f"{r['raw_rows_per_s']:,.0f} rows/s"
            if r["raw_rows_per_s"]
            else ""
        )
        + ") "
        f"(created {r['created']:,}, refused {r['errors']:,}); peak RSS MiB: "
        f"start {r['rss_start']:.0f}, after upload {r['rss_upload']:.0f}, "
        f"after job {r['rss_job']:.0f} (+{r['rss_job'] - r['rss_upload']:.0f})"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="up to 1,000,000 and more")
    parser.add_argument("--bad-every", type=int, default=1000, help="one bad row in N (0: none)")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="sqlite")
    parser.add_argument(
        "--dedupe", choices=("create", "skip", "update"), default="create", help="the import's"
    )
    args = parser.parse_args()
    if args.backend in ("sqlite", "all"):
        print(_line("sqlite", await run_sqlite(args.rows, args.bad_every, args.dedupe)), flush=True)
    if args.backend in ("postgres", "all"):
        admin_url = os.environ.get("RAPPORT_BENCH_POSTGRES_URL", DEFAULT_PG)
        try:
            result = await run_postgres(admin_url, args.rows, args.bad_every, args.dedupe)
        except OSError as exc:
            print(f"postgres  skipped: {admin_url} not reachable ({exc})", file=sys.stderr)
            return 0 if args.backend == "all" else 1
        print(_line("postgres", result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
