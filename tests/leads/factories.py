"""Lead factories for tests: plain async functions with keyword overrides."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select

from rapport.activities.models import Activity
from rapport.core.db import Database
from tests.factories import Account

LEADS = "/api/v1/leads"
activities = Activity.__table__


async def make_lead(client: httpx.AsyncClient, account: Account, **fields: Any) -> dict[str, Any]:
    payload = {"first_name": "Ada", "last_name": "Lovelace", **fields}
    response = await client.post(LEADS, json=payload, headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def lead_notes(database: Database, lead_id: str) -> list[dict[str, Any]]:
    """The activity rows on a lead's timeline, oldest first."""
    async with database.read_sessions() as session:
        stmt = (
            select(activities)
            .where(activities.c.lead_id == uuid.UUID(lead_id))
            .order_by(activities.c.created_at, activities.c.id)
        )
        return [dict(r) for r in (await session.execute(stmt)).mappings().all()]


async def event_types(database: Database, resource_id: str) -> list[str]:
    """The outbox events recorded for a record, oldest first."""
    from rapport.core.events import TABLE as events

    async with database.read_sessions() as session:
        stmt = (
            select(events.c.type)
            .where(events.c.resource_id == uuid.UUID(resource_id))
            .order_by(events.c.occurred_at, events.c.id)
        )
        return list((await session.execute(stmt)).scalars().all())
