"""The floor: a minimal Starlette app doing the same SQL and JSON encoding as Rapport's contact
endpoints, without our framework (no FastAPI, no SQLAlchemy, no middlewares, no validation beyond
parsing). Every Rapport figure in `make bench` is also reported as a ratio to this one.

PostgreSQL through an asyncpg pool (20 connections, like Rapport's); SQLite through the standard
sqlite3 module on one connection per process. Authentication is a dictionary lookup of the bearer
key (Rapport caches its principals too, so neither spends a query on it).

    BENCH_URL=postgresql://... BENCH_KEY=... BENCH_WORKSPACE=... BENCH_USER=... \
        uvicorn bench.floor:app --workers 2
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

URL = os.environ.get("BENCH_URL", "")
KEY = os.environ.get("BENCH_KEY", "")
WORKSPACE = uuid.UUID(os.environ.get("BENCH_WORKSPACE", str(uuid.UUID(int=0))))
USER = uuid.UUID(os.environ.get("BENCH_USER", str(uuid.UUID(int=0))))
PG = URL.startswith("postgresql")
NON_DIGITS = re.compile(r"\D+")

COLUMNS = (
    "first_name, last_name, email, phone, phone_e164, job_title, status, address, notes, "
    "owner_id, primary_company_id, merged_into_id, last_activity_at, workspace_id, id, "
    "created_at, updated_at, version, deleted_at, tags, custom_fields"
)
COMPANY_NAME = (
    "(SELECT company.name FROM company WHERE company.workspace_id = contact.workspace_id "
    "AND company.id = contact.primary_company_id) AS company_name"
)
ACTIVITY_COLUMNS = (
    "kind, direction, subject, body, duration_minutes, occurred_at, contact_id, company_id, "
    "lead_id, deal_id, author_id, workspace_id, id, created_at, updated_at, version, deleted_at, "
    "tags, custom_fields"
)


def _q(sql: str) -> str:
    """Write `$1`-style placeholders once; SQLite gets `?`."""
    return sql if PG else re.sub(r"\$\d+", "?", sql)


GET = _q(
    f"SELECT {COLUMNS}, {COMPANY_NAME} FROM contact "
    "WHERE workspace_id = $1 AND deleted_at IS NULL AND id = $2"
)
LIST = _q(
    f"SELECT {COLUMNS}, {COMPANY_NAME}, coalesce(lower(last_name), '') AS _sort_key FROM contact "
    "WHERE workspace_id = $1 AND deleted_at IS NULL AND status = $2 "
    "ORDER BY coalesce(lower(last_name), '') ASC, id ASC LIMIT $3"
)
SEARCH_PG = (
    f"SELECT {COLUMNS}, {COMPANY_NAME} FROM contact WHERE workspace_id = $1 AND deleted_at IS NULL "
    "AND EXISTS (SELECT * FROM search_document d WHERE d.workspace_id = contact.workspace_id "
    "AND d.resource = 'contact' AND d.record_id = contact.id AND d.content LIKE {pattern}) "
    "ORDER BY created_at DESC, id DESC LIMIT $2"
)  # the pattern inline, as Rapport sends it: each term gets its own plan (see search/indexer.py)
SEARCH_SQLITE = (
    f"SELECT {COLUMNS}, {COMPANY_NAME} FROM contact WHERE workspace_id = ? AND deleted_at IS NULL "
    "AND EXISTS (SELECT * FROM search_document d WHERE d.workspace_id = contact.workspace_id "
    "AND d.resource = 'contact' AND d.record_id = contact.id AND d.rowid IN "
    "(SELECT rowid FROM search_fts WHERE search_fts MATCH ?)) "
    "ORDER BY created_at DESC, id DESC LIMIT ?"
)
EXISTS = _q("SELECT id FROM contact WHERE workspace_id = $1 AND deleted_at IS NULL AND id = $2")
TIMELINE = _q(
    f"SELECT {ACTIVITY_COLUMNS} FROM activity WHERE workspace_id = $1 AND deleted_at IS NULL "
    "AND contact_id = $2 ORDER BY occurred_at DESC, created_at DESC, id DESC LIMIT $3"
)
INSERT = _q(
    "INSERT INTO contact (workspace_id, id, first_name, last_name, email, phone, phone_e164, "
    "job_title, status, address, notes, owner_id, primary_company_id, created_at, updated_at, "
    "version, tags, custom_fields) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, "
    f"NULL, $11, $11, 1, $12, $13) RETURNING {COLUMNS}"
)
UPDATE = _q(
    "UPDATE contact SET job_title = $1, updated_at = $2, version = version + 1 "
    f"WHERE workspace_id = $3 AND deleted_at IS NULL AND id = $4 RETURNING {COLUMNS}"
)
# Written as dispatched: the floor's events are no one's work. Left pending, Rapport's relay (its
# server runs beside the floor's) audited them during the floor's own window, on the same cores:
# the floor's PATCH measured 948 req/s that way, 1,300 without.
EVENT = _q(
    "INSERT INTO event (workspace_id, id, type, resource_id, actor_type, actor_id, credential_id, "
    "data, occurred_at, dispatched_at) VALUES ($1, $2, $3, $4, 'api_key', $5, NULL, $6, $7, $7)"
)
DOCUMENT = _q(
    "INSERT INTO search_document (workspace_id, resource, record_id, title, subtitle, content, "
    "is_deleted, updated_at) VALUES ($1, 'contact', $2, $3, $4, $5, false, $6) "
    "ON CONFLICT (workspace_id, resource, record_id) DO UPDATE SET title = excluded.title, "
    "subtitle = excluded.subtitle, content = excluded.content, updated_at = excluded.updated_at"
)


def _id(value: uuid.UUID) -> Any:
    return value if PG else value.hex


def _now() -> Any:
    now = datetime.now(UTC)
    return now if PG else now.replace(tzinfo=None).isoformat(sep=" ")


def _json(value: Any) -> Any:
    return orjson.dumps(value).decode()


def _row(record: Any) -> dict[str, Any]:
    row = dict(record)
    for name in ("address", "tags", "custom_fields"):
        if isinstance(row.get(name), str):
            row[name] = orjson.loads(row[name])
    row.pop("_sort_key", None)
    row["full_name"] = " ".join(p for p in (row["first_name"], row["last_name"]) if p)
    return row


def _ok(data: Any, status: int = 200, meta: dict[str, Any] | None = None) -> Response:
    body = {"success": True, "data": data, "error": None, "meta": meta or {}}
    # asyncpg returns its own UUID type, which orjson does not know: `default=str` encodes it.
    return Response(
        orjson.dumps(body, default=str), status_code=status, media_type="application/json"
    )


def _denied(request: Request) -> Response | None:
    if request.headers.get("authorization") != f"Bearer {KEY}":
        return Response(b'{"success":false}', status_code=401, media_type="application/json")
    return None


def _search_content(row: dict[str, Any], company: str | None) -> tuple[str, str | None, str]:
    name = row["full_name"]
    subtitle = company or row["job_title"]
    words = [name, subtitle, row["first_name"], row["last_name"], row["email"], row["job_title"]]
    text = [w.strip().lower() for w in words if w]
    for phone in (row["phone"], row["phone_e164"]):
        if phone:
            text += [phone.lower(), NON_DIGITS.sub("", phone)]
    return name, subtitle, " | ".join(text)


class Store:
    """The same five operations on each backend."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class PostgresStore(Store):
    async def start(self) -> None:
        import asyncpg

        async def init(conn: Any) -> None:
            for kind in ("json", "jsonb"):
                await conn.set_type_codec(
                    kind, encoder=_json, decoder=orjson.loads, schema="pg_catalog"
                )

        self.pool = await asyncpg.create_pool(URL, min_size=20, max_size=20, init=init)

    async def stop(self) -> None:
        await self.pool.close()

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self.pool.acquire() as conn:
            return await conn.fetch(sql, *args)

    async def write(self, steps: list[tuple[str, tuple[Any, ...]]]) -> Any:
        async with self.pool.acquire() as conn, conn.transaction():
            first = await conn.fetchrow(steps[0][0], *steps[0][1])
            if first is None:
                return None
            row = _row(first)
            for sql, args in steps[1](row):
                await conn.execute(sql, *args)
            return row


class SQLiteStore(Store):
    async def start(self) -> None:
        path = URL.split("///", 1)[1]
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA busy_timeout=15000")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.create_function(
            "lower", 1, lambda v: v.lower() if isinstance(v, str) else v, deterministic=True
        )

    async def stop(self) -> None:
        self.conn.close()

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return self.conn.execute(sql, args).fetchall()

    async def write(self, steps: Any) -> Any:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            first = self.conn.execute(steps[0][0], steps[0][1]).fetchone()
            if first is None:
                self.conn.execute("ROLLBACK")
                return None
            row = _row(first)
            for sql, args in steps[1](row):
                self.conn.execute(sql, args)
            self.conn.execute("COMMIT")
            return row
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise


store: Any = PostgresStore() if PG else SQLiteStore()


async def get_contact(request: Request) -> Response:
    if (denied := _denied(request)) is not None:
        return denied
    rows = await store.fetch(GET, _id(WORKSPACE), _id(uuid.UUID(request.path_params["id"])))
    if not rows:
        return Response(b'{"success":false}', status_code=404, media_type="application/json")
    return _ok(_row(rows[0]))


async def list_contacts(request: Request) -> Response:
    if (denied := _denied(request)) is not None:
        return denied
    q = request.query_params
    limit = int(q.get("limit", "50"))
    if "search" in q:
        term = q["search"].lower()
        if PG:
            pattern = "'%" + term.replace("'", "''") + "%'"
            rows = await store.fetch(SEARCH_PG.format(pattern=pattern), WORKSPACE, limit + 1)
        else:
            rows = await store.fetch(SEARCH_SQLITE, WORKSPACE.hex, f'"{term}"', limit + 1)
    else:
        rows = await store.fetch(LIST, _id(WORKSPACE), q.get("status", "new"), limit + 1)
    data = [_row(r) for r in rows[:limit]]
    return _ok(data, meta={"has_more": len(rows) > limit, "next_cursor": None})


async def timeline(request: Request) -> Response:
    if (denied := _denied(request)) is not None:
        return denied
    contact_id = _id(uuid.UUID(request.path_params["id"]))
    if not await store.fetch(EXISTS, _id(WORKSPACE), contact_id):
        return Response(b'{"success":false}', status_code=404, media_type="application/json")
    limit = int(request.query_params.get("limit", "20"))
    rows = await store.fetch(TIMELINE, _id(WORKSPACE), contact_id, limit + 1)
    data = [_row_plain(r) for r in rows[:limit]]
    return _ok(data, meta={"has_more": len(rows) > limit, "next_cursor": None})


def _row_plain(record: Any) -> dict[str, Any]:
    row = dict(record)
    for name in ("tags", "custom_fields"):
        if isinstance(row.get(name), str):
            row[name] = orjson.loads(row[name])
    return row


def _after_write(verb: str) -> Any:
    def steps(row: dict[str, Any]) -> list[tuple[str, tuple[Any, ...]]]:
        now = _now()
        title, subtitle, content = _search_content(row, None)
        data = orjson.loads(orjson.dumps(row, default=str))
        return [
            (
                EVENT,
                (
                    _id(WORKSPACE),
                    _id(uuid.uuid4()),
                    f"contact.{verb}",
                    _id(row["id"]) if isinstance(row["id"], uuid.UUID) else row["id"],
                    _id(USER),
                    data if PG else _json(data),
                    now,
                ),
            ),
            (
                DOCUMENT,
                (
                    _id(WORKSPACE),
                    _id(row["id"]) if isinstance(row["id"], uuid.UUID) else row["id"],
                    title,
                    subtitle,
                    content,
                    now,
                ),
            ),
        ]

    return steps


async def create_contact(request: Request) -> Response:
    if (denied := _denied(request)) is not None:
        return denied
    body = orjson.loads(await request.body())
    phone = body.get("phone")
    digits = NON_DIGITS.sub("", phone or "")
    e164 = f"+1{digits}" if len(digits) == 10 else None
    args = (
        _id(WORKSPACE),
        _id(uuid.uuid4()),
        body.get("first_name"),
        body.get("last_name"),
        (body.get("email") or "").lower() or None,
        phone,
        e164,
        body.get("job_title"),
        body.get("status", "new"),
        {} if PG else "{}",
        _now(),
        [] if PG else "[]",
        {} if PG else "{}",
    )
    row = await store.write([(INSERT, args), _after_write("created")])
    return _ok(row, status=201)


async def patch_contact(request: Request) -> Response:
    if (denied := _denied(request)) is not None:
        return denied
    body = orjson.loads(await request.body())
    contact_id = _id(uuid.UUID(request.path_params["id"]))
    args = (body.get("job_title"), _now(), _id(WORKSPACE), contact_id)
    row = await store.write([(UPDATE, args), _after_write("updated")])
    if row is None:
        return Response(b'{"success":false}', status_code=404, media_type="application/json")
    return _ok(row)


@contextlib.asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    await store.start()
    yield
    await store.stop()


app = Starlette(
    routes=[
        Route("/api/v1/contacts", list_contacts, methods=["GET"]),
        Route("/api/v1/contacts", create_contact, methods=["POST"]),
        Route("/api/v1/contacts/{id}", get_contact, methods=["GET"]),
        Route("/api/v1/contacts/{id}", patch_contact, methods=["PATCH"]),
        Route("/api/v1/contacts/{id}/activities", timeline, methods=["GET"]),
    ],
    lifespan=lifespan,
)
