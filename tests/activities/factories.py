"""Activity factories, and the records activities name.

Companies are created through their routes; contacts, leads and deals are written straight into
their tables (their own modules test their routes), so these tests depend only on activities.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import Table, insert, select

from rapport.contacts.models import Contact
from rapport.core.clock import utcnow
from rapport.core.db import Database
from rapport.core.events import TABLE as events
from rapport.core.ids import new_id
from rapport.deals.models import Deal, Pipeline, Stage
from rapport.leads.models import Lead
from tests.factories import Account

ACTIVITIES = "/api/v1/activities"
COMPANIES = "/api/v1/companies"
PLURAL = {"contact": "contacts", "company": "companies", "lead": "leads", "deal": "deals"}


async def insert_row(database: Database, table: Table, account: Account, **values: Any) -> str:
    now = utcnow()
    row = {
        "workspace_id": uuid.UUID(account.workspace_id),
        "id": new_id(),
        "created_at": now,
        "updated_at": now,
        "version": 1,
        **values,
    }
    async with database.write_sessions() as session, session.begin():
        await session.execute(insert(table).values(row))
    return str(row["id"])


async def make_contact(database: Database, account: Account, **values: Any) -> str:
    return await insert_row(database, Contact.__table__, account, first_name="Ada", **values)


async def make_lead(database: Database, account: Account, **values: Any) -> str:
    return await insert_row(database, Lead.__table__, account, first_name="Lee", **values)


async def make_company(client: httpx.AsyncClient, account: Account, **fields: Any) -> str:
    response = await client.post(
        COMPANIES, json={"name": "Acme", **fields}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


async def make_deal(database: Database, account: Account, **values: Any) -> str:
    pipeline = await insert_row(database, Pipeline.__table__, account, name="Sales")
    stage = await insert_row(
        database, Stage.__table__, account, pipeline_id=uuid.UUID(pipeline), name="New"
    )
    return await insert_row(
        database,
        Deal.__table__,
        account,
        name="Big deal",
        pipeline_id=uuid.UUID(pipeline),
        stage_id=uuid.UUID(stage),
        **values,
    )


async def make_record(
    client: httpx.AsyncClient, database: Database, account: Account, resource: str
) -> str:
    if resource == "company":
        return await make_company(client, account)
    maker = {"contact": make_contact, "lead": make_lead, "deal": make_deal}[resource]
    return await maker(database, account)


async def make_activity(
    client: httpx.AsyncClient, account: Account, **fields: Any
) -> dict[str, Any]:
    payload = {"kind": "call", **fields}
    response = await client.post(ACTIVITIES, json=payload, headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def read_row(database: Database, table: Table, record_id: str) -> dict[str, Any]:
    async with database.read_sessions() as session:
        stmt = select(table).where(table.c.id == uuid.UUID(record_id))
        return dict((await session.execute(stmt)).mappings().one())


async def activity_count(database: Database, lead_id: str) -> int:
    return (await read_row(database, Lead.__table__, lead_id))["activity_count"]


async def event_types(database: Database, resource_id: str) -> list[str]:
    """The outbox events recorded for a record, oldest first."""
    async with database.read_sessions() as session:
        stmt = (
            select(events.c.type)
            .where(events.c.resource_id == uuid.UUID(resource_id))
            .order_by(events.c.occurred_at, events.c.id)
        )
        return list((await session.execute(stmt)).scalars().all())
