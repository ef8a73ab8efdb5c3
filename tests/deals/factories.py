"""Deal and pipeline factories for tests: plain async functions with keyword overrides."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, insert, select

from rapport.activities.models import Activity
from rapport.contacts.models import Contact
from rapport.core.db import Database
from rapport.core.events import TABLE as events
from rapport.core.ids import new_id
from rapport.deals.models import DealStageChange, Pipeline, Stage
from rapport.tasks.models import Task
from tests.contacts.factories import contact_values
from tests.factories import Account

DEALS = "/api/v1/deals"
PIPELINES = "/api/v1/pipelines"


async def make_deal(client: httpx.AsyncClient, account: Account, **fields: Any) -> dict[str, Any]:
    payload = {"name": "Acme renewal", **fields}
    response = await client.post(DEALS, json=payload, headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def make_pipeline(
    client: httpx.AsyncClient, account: Account, **fields: Any
) -> dict[str, Any]:
    payload = {
        "name": "Enterprise",
        "stages": [
            {"name": "Discovery", "probability": 20},
            {"name": "Demo", "probability": 40},
            {"name": "Closed won", "is_won": True},
            {"name": "Closed lost", "is_lost": True},
        ],
        **fields,
    }
    response = await client.post(PIPELINES, json=payload, headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def default_pipeline(client: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    response = await client.get(PIPELINES, headers=account.headers)
    assert response.status_code == 200, response.text
    found = [p for p in response.json()["data"] if p["is_default"]]
    assert len(found) == 1, response.text
    return found[0]


def stage_id(pipeline: dict[str, Any], name: str) -> str:
    return next(st["id"] for st in pipeline["stages"] if st["name"] == name)


async def make_contact_row(
    database: Database, account: Account, first_name: str, last_name: str
) -> str:
    """A contact written straight into its table (the deals tests do not depend on /contacts)."""
    values = contact_values(
        uuid.UUID(account.workspace_id), first_name=first_name, last_name=last_name
    )
    async with database.write_sessions() as session:
        await session.execute(insert(Contact.__table__).values(**values))
        await session.commit()
    return str(values["id"])


async def make_linked_rows(database: Database, account: Account, deal_id: str) -> tuple[str, str]:
    """An activity and a task that point at the deal, written straight into their tables."""
    now = datetime.now(UTC)
    workspace_id = uuid.UUID(account.workspace_id)
    activity_id, task_id = new_id(), new_id()
    common = {"created_at": now, "updated_at": now, "version": 1, "tags": [], "custom_fields": {}}
    async with database.write_sessions() as session:
        await session.execute(
            insert(Activity.__table__).values(
                workspace_id=workspace_id,
                id=activity_id,
                kind="note",
                subject="Call notes",
                occurred_at=now,
                deal_id=uuid.UUID(deal_id),
                **common,
            )
        )
        await session.execute(
            insert(Task.__table__).values(
                workspace_id=workspace_id,
                id=task_id,
                title="Send the proposal",
                status="open",
                priority="normal",
                deal_id=uuid.UUID(deal_id),
                **common,
            )
        )
        await session.commit()
    return str(activity_id), str(task_id)


async def row_of(database: Database, table: Any, record_id: str) -> dict[str, Any] | None:
    async with database.read_sessions() as session:
        stmt = select(table).where(table.c.id == uuid.UUID(record_id))
        found = (await session.execute(stmt)).mappings().first()
        return dict(found) if found is not None else None


async def stage_change_count(database: Database, deal_id: str) -> int:
    table = DealStageChange.__table__
    async with database.read_sessions() as session:
        stmt = select(func.count()).where(table.c.deal_id == uuid.UUID(deal_id))
        return (await session.execute(stmt)).scalar_one()


async def pipeline_rows(database: Database, account: Account) -> tuple[int, int, int]:
    """(pipelines incl. soft-deleted, default pipelines alive, stages) of a workspace."""
    pipelines, stages = Pipeline.__table__, Stage.__table__
    workspace_id = uuid.UUID(account.workspace_id)
    async with database.read_sessions() as session:
        total = (
            await session.execute(
                select(func.count()).where(pipelines.c.workspace_id == workspace_id)
            )
        ).scalar_one()
        defaults = (
            await session.execute(
                select(func.count()).where(
                    pipelines.c.workspace_id == workspace_id,
                    pipelines.c.is_default.is_(True),
                    pipelines.c.deleted_at.is_(None),
                )
            )
        ).scalar_one()
        stage_count = (
            await session.execute(select(func.count()).where(stages.c.workspace_id == workspace_id))
        ).scalar_one()
    return total, defaults, stage_count


async def event_types(database: Database, resource_id: str) -> list[str]:
    """The outbox events recorded for a record, oldest first."""
    async with database.read_sessions() as session:
        stmt = (
            select(events.c.type)
            .where(events.c.resource_id == uuid.UUID(resource_id))
            .order_by(events.c.occurred_at, events.c.id)
        )
        return list((await session.execute(stmt)).scalars().all())
