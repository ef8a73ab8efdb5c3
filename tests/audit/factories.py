"""Audit test helpers: relay what is pending, then read histories and the audit log over HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select

from rapport.audit.models import AuditEntry
from rapport.core.db import Database
from tests.factories import Account

API = "/api/v1"
AUDIT_LOG = f"{API}/audit-log"


async def drain(app: Any) -> None:
    """Relay every pending event (the audit subscriber writes the entries) and run due jobs."""
    await app.state.background.drain()


async def history(
    client: httpx.AsyncClient, account: Account, path: str, record_id: str, **params: Any
) -> list[dict[str, Any]]:
    """A record's history (`path` like "contacts"), newest first, every page."""
    return await _all(client, account, f"{API}/{path}/{record_id}/history", params)


async def audit_log(
    client: httpx.AsyncClient, account: Account, **params: Any
) -> list[dict[str, Any]]:
    """The account's workspace audit log, newest first, every page."""
    return await _all(client, account, AUDIT_LOG, params)


async def _all(
    client: httpx.AsyncClient, account: Account, url: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    query = {"limit": 200, **params}
    while True:
        response = await client.get(url, params=query, headers=account.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        out.extend(body["data"])
        if not body["meta"]["has_more"]:
            return out
        query["cursor"] = body["meta"]["next_cursor"]


def actions(entries: list[dict[str, Any]]) -> list[str]:
    return [e["action"] for e in entries]


async def stored_entries(database: Database, workspace_id: str) -> list[dict[str, Any]]:
    """The workspace's audit rows as stored (snapshots included), oldest first."""
    t = AuditEntry.__table__
    async with database.read_sessions() as session:
        stmt = (
            select(t)
            .where(t.c.workspace_id == uuid.UUID(workspace_id))
            .order_by(t.c.occurred_at, t.c.id)
        )
        return [dict(r) for r in (await session.execute(stmt)).mappings().all()]
