"""Factories for the contacts tests: contacts and companies through HTTP, and rows of the tables
that point at contacts (activities, tasks, deals, leads) inserted directly, so merge and erase
tests do not depend on those modules' routes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.activities.models import Activity
from rapport.contacts.models import Contact, ContactCompany
from rapport.core.clock import utcnow
from rapport.core.db import Database
from rapport.core.events import TABLE as EVENTS
from rapport.core.ids import new_id
from rapport.deals.models import Deal, Pipeline, Stage
from rapport.leads.models import Lead
from rapport.tasks.models import Task
from tests.factories import Account

CONTACTS = "/api/v1/contacts"
COMPANIES = "/api/v1/companies"


def contact_values(workspace_id: uuid.UUID, **fields: Any) -> dict[str, Any]:
    """A contact row as its table stores it, to be written straight into it."""
    now = utcnow()
    return {
        "workspace_id": workspace_id,
        "id": new_id(),
        "status": "new",
        "address": {},
        "tags": [],
        "custom_fields": {},
        "created_at": now,
        "updated_at": now,
        "version": 1,
        **fields,
    }


@asynccontextmanager
async def holding_email(
    database: Database, workspace_id: uuid.UUID, email: str, contact_id: uuid.UUID | None = None
) -> AsyncIterator[AsyncSession]:
    """Another transaction holding an uncommitted contact with `email` (a write of the same
    email waits on the unique index until it ends); the caller commits or rolls it back."""
    values = contact_values(workspace_id, first_name="Rival", email=email)
    if contact_id is not None:
        values["id"] = contact_id
    async with database.write_sessions() as rival:
        await rival.execute(insert(Contact.__table__).values(**values))
        yield rival


async def waits_on_a_row_lock(database: Database) -> bool:
    """Whether a statement comes to wait on another transaction's row (within 3 s). Polled from
    autocommit reads: a transaction keeps its first pg_stat_activity snapshot."""
    async with database.read_sessions() as watcher:
        for _ in range(300):
            waiting = await watcher.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND wait_event = 'transactionid'"
                )
            )
            if waiting.scalar_one():
                return True
            await asyncio.sleep(0.01)
    return False


async def make_contact(client: httpx.AsyncClient, account: Account, **fields: Any) -> dict:
    payload = {"first_name": "Ada", "last_name": "Lovelace", **fields}
    response = await client.post(CONTACTS, json=payload, headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def make_company(client: httpx.AsyncClient, account: Account, **fields: Any) -> dict:
    payload = {"name": "Acme", **fields}
    response = await client.post(COMPANIES, json=payload, headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def link(
    client: httpx.AsyncClient, account: Account, contact_id: str, company_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"{CONTACTS}/{contact_id}/companies/{company_id}",
        json=body or None,
        headers=account.headers,
    )


def _record(workspace_id: str, **values: Any) -> dict[str, Any]:
    now = utcnow()
    return {
        "workspace_id": uuid.UUID(workspace_id),
        "id": new_id(),
        "created_at": now,
        "updated_at": now,
        "version": 1,
        **values,
    }


def _uuid(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


async def insert_related(
    database: Database,
    account: Account,
    *,
    contact_id: str | None = None,
    company_id: str | None = None,
    deleted: bool = False,
) -> dict[str, uuid.UUID]:
    """One activity, task, deal and converted lead pointing at the contact and/or company."""
    ws = account.workspace_id
    refs = {"contact_id": _uuid(contact_id), "company_id": _uuid(company_id)}
    extra = {"tags": [], "custom_fields": {}, "deleted_at": utcnow() if deleted else None}
    pipeline = _record(ws, name="Sales", is_default=False, position=0)
    stage = _record(
        ws,
        pipeline_id=pipeline["id"],
        name="New",
        position=0,
        probability=10,
        is_won=False,
        is_lost=False,
    )
    activity = _record(ws, kind="call", occurred_at=utcnow(), **refs, **extra)
    task = _record(ws, title="Call back", status="open", priority="normal", **refs, **extra)
    deal = _record(
        ws,
        name="Deal",
        pipeline_id=pipeline["id"],
        stage_id=stage["id"],
        status="open",
        **refs,
        **extra,
    )
    lead = _record(
        ws,
        first_name="Lead",
        status="converted",
        activity_count=0,
        converted_contact_id=refs["contact_id"],
        converted_company_id=refs["company_id"],
        **extra,
    )
    async with database.write_sessions() as session, session.begin():
        await session.execute(insert(Pipeline.__table__).values(pipeline))
        await session.execute(insert(Stage.__table__).values(stage))
        await session.execute(insert(Activity.__table__).values(activity))
        await session.execute(insert(Task.__table__).values(task))
        await session.execute(insert(Deal.__table__).values(deal))
        await session.execute(insert(Lead.__table__).values(lead))
    return {"activity": activity["id"], "task": task["id"], "deal": deal["id"], "lead": lead["id"]}


REFERENCE_COLUMNS = {
    "activity": (Activity.__table__, "contact_id", "company_id"),
    "task": (Task.__table__, "contact_id", "company_id"),
    "deal": (Deal.__table__, "contact_id", "company_id"),
    "lead": (Lead.__table__, "converted_contact_id", "converted_company_id"),
}


async def references(database: Database, rows: dict[str, uuid.UUID]) -> dict[str, tuple]:
    """(contact id, company id) each inserted row points at now."""
    out = {}
    async with database.read_sessions() as session:
        for name, row_id in rows.items():
            table, contact_col, company_col = REFERENCE_COLUMNS[name]
            stmt = select(table.c[contact_col], table.c[company_col]).where(table.c.id == row_id)
            contact, company = (await session.execute(stmt)).one()
            out[name] = (
                str(contact) if contact else None,
                str(company) if company else None,
            )
    return out


async def link_rows(
    database: Database, workspace_id: str
) -> set[tuple[str, str, str | None, bool]]:
    async with database.read_sessions() as session:
        t = ContactCompany.__table__
        stmt = select(t.c.contact_id, t.c.company_id, t.c.role, t.c.is_primary).where(
            t.c.workspace_id == uuid.UUID(workspace_id)
        )
        return {
            (str(a), str(b), role, primary)
            for a, b, role, primary in (await session.execute(stmt)).all()
        }


async def contact_row(database: Database, contact_id: str) -> dict[str, Any] | None:
    async with database.read_sessions() as session:
        t = Contact.__table__
        row = (
            (await session.execute(select(t).where(t.c.id == uuid.UUID(contact_id))))
            .mappings()
            .first()
        )
        return dict(row) if row else None


async def events_of(database: Database, workspace_id: str, type_: str) -> list[dict[str, Any]]:
    async with database.read_sessions() as session:
        stmt = (
            select(EVENTS.c.data)
            .where(EVENTS.c.workspace_id == uuid.UUID(workspace_id), EVENTS.c.type == type_)
            .order_by(EVENTS.c.occurred_at, EVENTS.c.id)
        )
        return [row.data for row in (await session.execute(stmt)).all()]


async def count_contacts(database: Database, workspace_id: str) -> int:
    async with database.read_sessions() as session:
        t = Contact.__table__
        stmt = select(func.count()).where(t.c.workspace_id == uuid.UUID(workspace_id))
        return (await session.execute(stmt)).scalar_one()
