"""Load a Rapport database with N contacts and their companies, leads, deals and activities.

PostgreSQL: COPY (asyncpg `copy_records_to_table`); SQLite: batched executemany through
SQLAlchemy Core. Rows are shaped exactly as the API writes them (normalised e-mails and phones,
search documents made by each service's own `search_document`), so the benchmark reads what a real
workspace holds. The workspace, its admin, an API key and the default pipeline are made through
the application itself.

    .venv/bin/python -m bench.generate -n 100000 \
        --url postgresql+asyncpg://postgres@127.0.0.1:5432/rapport_bench
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import JSON, create_engine, event, insert, select, text
from sqlalchemy.engine import make_url

from rapport.activities.service import ActivityService
from rapport.companies.service import CompanyService
from rapport.contacts.schemas import STATUSES
from rapport.contacts.service import ContactService
from rapport.core.config import Settings
from rapport.core.db import Database, register_sqlite_functions
from rapport.core.ids import new_id
from rapport.core.values import phone_e164
from rapport.deals.models import Pipeline, Stage
from rapport.deals.service import DealService
from rapport.leads.service import LeadService
from rapport.main import create_app
from rapport.migrations.models import metadata
from rapport.migrations.runner import upgrade
from rapport.notifications.handlers import HOLDER_FIELDS
from rapport.search.indexer import document_text

FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Ken",
    "Barbara",
    "Edsger",
    "Donald",
    "Margaret",
    "Tim",
    "Radia",
    "Frances",
    "Dennis",
    "John",
    "Mary",
    "Niklaus",
    "Leslie",
    "Guido",
    "Yukihiro",
    "Anders",
]
LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Thompson",
    "Liskov",
    "Dijkstra",
    "Knuth",
    "Hamilton",
    "Berners-Lee",
    "Perlman",
    "Allen",
    "Ritchie",
    "McCarthy",
    "Shaw",
    "Wirth",
    "Lamport",
    "Rossum",
    "Matsumoto",
    "Hejlsberg",
]
WORDS = [
    "acme",
    "global",
    "systems",
    "labs",
    "data",
    "cloud",
    "works",
    "digital",
    "north",
    "river",
    "summit",
    "blue",
    "green",
    "orbit",
]
KINDS = ["call", "email", "meeting", "note", "sms"]
ADMIN_EMAIL = "bench@rapport.example.com"
ADMIN_PASSWORD = "bench password 123"
CHUNK = 10_000


@dataclass
class Workspace:
    id: uuid.UUID
    user_id: uuid.UUID
    api_key: str
    pipeline_id: uuid.UUID
    stage_ids: list[uuid.UUID]


def bench_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "production",
        "database_url": url,
        "secret_key": "bench-secret-" + "x" * 40,
        "argon2_time_cost": 1,
        "argon2_memory_cost_kib": 1024,
        "log_level": "WARNING",
        "access_log": False,
        "auto_migrate": False,
        "background": False,
    }
    values.update(overrides)
    return Settings(**values)


async def make_workspace(url: str) -> Workspace:
    """Register the admin, make an API key and the default pipeline, through the app itself."""
    app = create_app(bench_settings(url, rate_limit_enabled=False))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        r = await client.post(
            "/api/v1/auth/register",
            json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "full_name": "Bench Admin"},
        )
        r.raise_for_status()
        data = r.json()["data"]
        headers = {"Authorization": f"Bearer {data['access_token']}"}
        key = await client.post(
            "/api/v1/api-keys", json={"name": "bench", "role": "admin"}, headers=headers
        )
        key.raise_for_status()
        deal = await client.post("/api/v1/deals", json={"name": "Seed deal"}, headers=headers)
        deal.raise_for_status()
        pipeline_id = uuid.UUID(deal.json()["data"]["pipeline_id"])
        workspace_id = uuid.UUID(data["workspace"]["id"])
        db: Database = app.state.db
        async with db.read_sessions() as session:
            stages = (
                await session.execute(
                    select(Stage.__table__.c.id)
                    .where(
                        Stage.__table__.c.workspace_id == workspace_id,
                        Stage.__table__.c.pipeline_id == pipeline_id,
                    )
                    .order_by(Stage.__table__.c.position)
                )
            ).scalars()
            stage_ids = list(stages)
        await db.dispose()
    assert Pipeline  # imported for the metadata
    return Workspace(
        id=workspace_id,
        user_id=uuid.UUID(data["user"]["id"]),
        api_key=key.json()["data"]["key"],
        pipeline_id=pipeline_id,
        stage_ids=stage_ids,
    )


# -- rows ------------------------------------------------------------------------------------
def _base(ws: Workspace, now: datetime, i: int) -> dict[str, Any]:
    stamp = now - timedelta(seconds=i)
    return {
        "workspace_id": ws.id,
        "id": new_id(),
        "created_at": stamp,
        "updated_at": stamp,
        "version": 1,
        "deleted_at": None,
        "tags": [],
        "custom_fields": {},
    }


def _phone(rng: random.Random) -> str:
    return f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}"


def companies(ws: Workspace, n: int, now: datetime) -> list[dict[str, Any]]:
    rng = random.Random(1)
    rows = []
    for i in range(n):
        name = f"{rng.choice(WORDS).title()} {rng.choice(WORDS).title()} {i}"
        phone = _phone(rng)
        rows.append(
            {
                **_base(ws, now, i),
                "name": name,
                "domain": f"{name.lower().replace(' ', '-')}.example.com",
                "industry": rng.choice(["software", "retail", "health", "finance"]),
                "size": rng.choice(["1-10", "11-50", "51-200", "201-1000"]),
                "phone": phone,
                "phone_e164": _e164(phone),
                "address": {"city": "Springfield", "country": "US"},
                "owner_id": ws.user_id,
            }
        )
    return rows


def _e164(phone: str) -> str | None:
    try:
        return phone_e164(phone)
    except ValueError:
        return None


def contacts(
    ws: Workspace, n: int, company_rows: list[dict[str, Any]], now: datetime
) -> Iterator[dict[str, Any]]:
    rng = random.Random(2)
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        company = company_rows[rng.randrange(len(company_rows))] if company_rows else None
        phone = _phone(rng)
        yield {
            **_base(ws, now, i),
            "first_name": first,
            "last_name": last,
            "email": f"{first}.{last}.{i}@example.com".lower(),
            "phone": phone,
            "phone_e164": _e164(phone),
            "job_title": rng.choice(["Engineer", "Manager", "Director", "Founder"]),
            "status": rng.choice(STATUSES),
            "address": {},
            "notes": None,
            "owner_id": ws.user_id,
            "primary_company_id": company["id"] if company else None,
            "company_name": company["name"] if company else None,
        }


def leads(ws: Workspace, n: int, now: datetime) -> Iterator[dict[str, Any]]:
    rng = random.Random(3)
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        phone = _phone(rng)
        low = rng.randint(1, 100) * 100_00
        yield {
            **_base(ws, now, i),
            "first_name": first,
            "last_name": last,
            "email": f"lead.{first}.{last}.{i}@example.com".lower(),
            "phone": phone,
            "phone_e164": _e164(phone),
            "company_name": f"{rng.choice(WORDS).title()} Co",
            "status": rng.choice(["new", "contacted", "qualified"]),
            "source": rng.choice(["web", "referral", "event"]),
            "value": low,
            "currency": "USD",
            "budget_min": low,
            "budget_max": low * 2,
            "owner_id": ws.user_id,
            "activity_count": 0,
        }


def deals(
    ws: Workspace, n: int, contact_ids: list[uuid.UUID], now: datetime
) -> Iterator[dict[str, Any]]:
    rng = random.Random(4)
    for i in range(n):
        yield {
            **_base(ws, now, i),
            "name": f"Deal {i}",
            "amount": rng.randint(1, 500) * 1000_00,
            "currency": "USD",
            "pipeline_id": ws.pipeline_id,
            "stage_id": ws.stage_ids[0],
            "status": "open",
            "expected_close_date": (now + timedelta(days=rng.randint(1, 365))).date(),
            "contact_id": rng.choice(contact_ids) if contact_ids else None,
            "owner_id": ws.user_id,
        }


def activities(
    ws: Workspace, n: int, contact_ids: list[uuid.UUID], now: datetime
) -> Iterator[dict[str, Any]]:
    rng = random.Random(5)
    for i in range(n):
        kind = rng.choice(KINDS)
        yield {
            **_base(ws, now, i),
            "kind": kind,
            "direction": rng.choice(["inbound", "outbound"]),
            "subject": f"{kind.title()} about the proposal {i}",
            "body": "Discussed pricing and next steps.",
            "occurred_at": now - timedelta(minutes=i),
            "contact_id": contact_ids[i % len(contact_ids)] if contact_ids else None,
            "author_id": ws.user_id,
        }


def holder_row(workspace_id: uuid.UUID, row: dict[str, Any], field: str) -> dict[str, Any]:
    """The holder the notifications subscriber keeps for an assignable record, as it would have
    saved it on the record's creation. Without it, the first change of each loaded record
    wrote one (a delete and an insert in its relay batch), work a record created through the
    API had done long before: in a PATCH run, nearly every change was such a first."""
    return {"workspace_id": workspace_id, "resource_id": row["id"], "user_id": row[field]}


def search_row(
    workspace_id: uuid.UUID, resource: str, service: Any, row: dict[str, Any]
) -> dict[str, Any]:
    doc = service.search_document(None, row)
    return {
        "workspace_id": workspace_id,
        "resource": resource,
        "record_id": row["id"],
        "title": (doc.title or "")[:500],
        "subtitle": doc.subtitle[:500] if doc.subtitle else None,
        "content": document_text([doc.title, doc.subtitle, *doc.parts], doc.phones),
        "is_deleted": False,
        "updated_at": row["updated_at"],
    }


# -- writers ---------------------------------------------------------------------------------
class Writer:
    async def write(self, table: str, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class PostgresWriter(Writer):
    def __init__(self, url: str) -> None:
        self.url = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.conn: Any = None

    async def open(self) -> None:
        """Bulk-load mode: foreign-key triggers off for this session (the generator makes
        consistent rows), GIN indexes dropped and rebuilt once at the end (much faster than
        maintaining them row by row)."""
        import asyncpg

        self.conn = await asyncpg.connect(self.url)
        await self.conn.execute("SET session_replication_role = replica")
        self.gin = await self.conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = 'public' AND indexdef ILIKE '%USING gin%'"
        )
        for row in self.gin:
            await self.conn.execute(f'DROP INDEX "{row["indexname"]}"')

    async def write(self, table: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        columns = [c for c in metadata.tables[table].columns]
        names = [c.name for c in columns]
        json_cols = {c.name for c in columns if isinstance(c.type, JSON) or "JSON" in repr(c.type)}
        records = [
            tuple(
                orjson.dumps(row.get(name)).decode() if name in json_cols else row.get(name)
                for name in names
            )
            for row in rows
        ]
        await self.conn.copy_records_to_table(table, records=records, columns=names)

    async def close(self) -> None:
        await self.conn.execute("SET maintenance_work_mem = '512MB'")
        for row in self.gin:
            await self.conn.execute(row["indexdef"])
        await self.conn.close()


class SQLiteWriter(Writer):
    def __init__(self, url: str) -> None:
        path = make_url(url).database
        self.engine = create_engine(f"sqlite:///{path}")
        event.listen(self.engine, "connect", self._on_connect)
        self.conn = self.engine.connect()

    @staticmethod
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        register_sqlite_functions(dbapi_connection)
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=OFF",
            "cache_size=-262144",
            "temp_store=MEMORY",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    async def write(self, table: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        t = metadata.tables[table]
        names = {c.name for c in t.columns}
        cleaned = [{k: v for k, v in row.items() if k in names} for row in rows]
        for c in t.columns:
            for row in cleaned:
                row.setdefault(c.name, None)
        self.conn.execute(insert(t), cleaned)
        self.conn.commit()

    async def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


async def load(url: str, n: int, *, quiet: bool = False) -> tuple[Workspace, dict[str, float]]:
    """Migrate, make the workspace, load `n` contacts and the rest; returns rows/s per table."""
    await upgrade(url)
    ws = await make_workspace(url)
    writer: Writer
    if url.startswith("postgresql"):
        writer = PostgresWriter(url)
        await writer.open()  # type: ignore[attr-defined]
    else:
        writer = SQLiteWriter(url)
    now = datetime.now(UTC)
    rates: dict[str, float] = {}

    async def put(table: str, rows: Iterator[dict[str, Any]], resource: str | None, service: Any):
        started, count, batch, docs, held = time.perf_counter(), 0, [], [], []
        ids: list[uuid.UUID] = []
        for row in rows:
            batch.append(row)
            if resource:
                docs.append(search_row(ws.id, resource, service, row))
            if table in HOLDER_FIELDS and row.get(HOLDER_FIELDS[table]) is not None:
                held.append(holder_row(ws.id, row, HOLDER_FIELDS[table]))
            if table == "contact" and len(ids) < 100_000:
                ids.append(row["id"])
            if len(batch) >= CHUNK:
                await writer.write(table, batch)
                await writer.write("search_document", docs)
                await writer.write("notification_holder", held)
                count += len(batch)
                batch, docs, held = [], [], []
        await writer.write(table, batch)
        await writer.write("search_document", docs)
        await writer.write("notification_holder", held)
        count += len(batch)
        elapsed = time.perf_counter() - started
        rates[table] = count / elapsed if elapsed else 0.0
        if not quiet:
            print(f"  {table:10} {count:>9} rows in {elapsed:6.1f} s ({rates[table]:,.0f}/s)")
        return ids

    company_rows = companies(ws, max(n // 10, 1), now)
    await put("company", iter(company_rows), "company", CompanyService)
    contact_ids = await put(
        "contact", contacts(ws, n, company_rows, now), "contact", ContactService
    )
    await put("lead", leads(ws, max(n // 5, 1), now), "lead", LeadService)
    await put("deal", deals(ws, max(n // 10, 1), contact_ids, now), "deal", DealService)
    await put("activity", activities(ws, n, contact_ids, now), "activity", ActivityService)
    await writer.close()
    if url.startswith("postgresql"):
        import asyncpg

        conn = await asyncpg.connect(PostgresWriter(url).url)
        await conn.execute("ANALYZE")
        await conn.close()
    else:
        engine = create_engine(f"sqlite:///{make_url(url).database}")
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
        engine.dispose()
    return ws, rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("-n", type=int, default=100_000)
    args = parser.parse_args()
    started = time.perf_counter()
    ws, _ = asyncio.run(load(args.url, args.n))
    print(f"workspace {ws.id}; api key {ws.api_key}; {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
