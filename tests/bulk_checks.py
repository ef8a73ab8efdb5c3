"""What the bulk-write tests of every record module check: how many SQL statements a request sends
(the counter of tests/core/test_request_path.py), and the events and search documents a bulk
write leaves behind, read straight from their tables."""

from __future__ import annotations

import math
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select

from rapport.core.bulk import WRITE_CHUNK
from rapport.core.db import Database
from rapport.core.events import TABLE as EVENTS
from rapport.search.models import SearchDocument
from tests.core.test_request_path import statements  # noqa: F401 - the shared fixture
from tests.factories import Account

DOCUMENTS = SearchDocument.__table__
# Statements a bulk write may add, whatever its size: insertmanyvalues sends 1000 rows per
# statement, so a 1000-item batch may take one more INSERT than a 10-item one, per table.
SLACK = 3


def per_chunk(few: int, count: int, items: int, backend: str) -> bool:
    """Whether a bulk write of `items` sent no more statements than one of a few items, once per
    chunk: on PostgreSQL the items are checked and written `WRITE_CHUNK` at a time (a chunk's
    statements do not grow with its items), elsewhere all at once."""
    chunks = math.ceil(items / WRITE_CHUNK) if backend == "postgres" else 1
    return count <= few * chunks + SLACK


async def counted(
    client: httpx.AsyncClient,
    seen: list[str],
    account: Account,
    method: str,
    path: str,
    items: list[dict[str, Any]],
) -> tuple[httpx.Response, int]:
    """(response, number of SQL statements the request sent)."""
    seen.clear()
    response = await client.request(method, path, json={"items": items}, headers=account.headers)
    return response, len(seen)


async def event_count(
    database: Database, workspace_id: str, type_: str, resource_ids: list[str] | None = None
) -> int:
    async with database.read_sessions() as session:
        stmt = select(func.count()).where(
            EVENTS.c.workspace_id == uuid.UUID(workspace_id), EVENTS.c.type == type_
        )
        if resource_ids is not None:
            stmt = stmt.where(EVENTS.c.resource_id.in_([uuid.UUID(i) for i in resource_ids]))
        return (await session.execute(stmt)).scalar_one()


async def events_of(database: Database, resource_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(type, data) of a record's events, oldest first."""
    async with database.read_sessions() as session:
        stmt = (
            select(EVENTS.c.type, EVENTS.c.data)
            .where(EVENTS.c.resource_id == uuid.UUID(resource_id))
            .order_by(EVENTS.c.id)
        )
        return [(row.type, row.data) for row in (await session.execute(stmt)).all()]


async def documents(database: Database, workspace_id: str, resource: str) -> dict[str, str]:
    """record id → title of the workspace's search documents of one resource."""
    async with database.read_sessions() as session:
        stmt = select(DOCUMENTS.c.record_id, DOCUMENTS.c.title).where(
            DOCUMENTS.c.workspace_id == uuid.UUID(workspace_id),
            DOCUMENTS.c.resource == resource,
        )
        return {str(row.record_id): row.title for row in (await session.execute(stmt)).all()}


async def total(client: httpx.AsyncClient, account: Account, path: str) -> int:
    response = await client.get(f"{path}?include_total=true&limit=1", headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()["meta"]["total"]


async def search_ids(client: httpx.AsyncClient, account: Account, term: str) -> list[str]:
    """The ids `GET /search` finds for a term."""
    response = await client.get("/api/v1/search", params={"q": term}, headers=account.headers)
    assert response.status_code == 200, response.text
    return [hit["id"] for hit in response.json()["data"]]


def failed(response: httpx.Response) -> dict[int, dict[str, Any]]:
    """index → error of each failed item of a non-atomic bulk response."""
    assert response.status_code == 200, response.text
    return {r["index"]: r["error"] for r in response.json()["data"]["items"] if not r["success"]}


def written(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return [r["data"] for r in response.json()["data"]["items"] if r["success"]]
