"""Helpers for the notifications tests: the caller's inbox, tasks, raw events and a statement
counter."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event, select

from rapport.core import events
from rapport.core.db import Database
from rapport.core.events import TABLE as EVENTS
from tests.factories import Account

NOTIFICATIONS = "/api/v1/notifications"
TASKS = "/api/v1/tasks"


async def drain(app: Any) -> None:
    await app.state.background.drain()


async def inbox(client: httpx.AsyncClient, account: Account, **params: Any) -> list[dict[str, Any]]:
    """The account's notifications (one page of up to 200), newest first."""
    response = await client.get(
        NOTIFICATIONS, params={"limit": 200, **params}, headers=account.headers
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def unread(client: httpx.AsyncClient, account: Account) -> int:
    response = await client.get(f"{NOTIFICATIONS}/unread-count", headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]["unread"]


async def make_task(client: httpx.AsyncClient, account: Account, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        TASKS, json={"title": "Send the proposal", **fields}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def patch(
    client: httpx.AsyncClient, account: Account, path: str, **fields: Any
) -> dict[str, Any]:
    response = await client.patch(path, json=fields, headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def record_event(
    database: Database,
    workspace_id: str,
    type_: str,
    data: dict[str, Any],
    resource_id: str | None = None,
) -> None:
    """An event written the way a service writes it (by the system: no principal)."""
    async with database.write_sessions() as session, session.begin():
        await events.record(
            session,
            workspace_id=uuid.UUID(workspace_id),
            type=type_,
            data=data,
            resource_id=uuid.UUID(resource_id) if resource_id else None,
        )
    database.events_committed()


async def notification_events(database: Database, workspace_id: str) -> list[dict[str, Any]]:
    async with database.read_sessions() as session:
        stmt = (
            select(EVENTS.c.type, EVENTS.c.data, EVENTS.c.resource_id)
            .where(
                EVENTS.c.workspace_id == uuid.UUID(workspace_id),
                EVENTS.c.type == "notification.created",
            )
            .order_by(EVENTS.c.id)
        )
        return [dict(r) for r in (await session.execute(stmt)).mappings().all()]


@contextmanager
def statements(database: Database) -> Iterator[list[str]]:
    """Every SQL statement the database runs inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(re.sub(r"\s+", " ", statement))

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
